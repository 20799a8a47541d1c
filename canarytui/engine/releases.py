"""The releases the deploy dialog offers: ``deploy.releases`` on the canaries plus the journal's.

The command runs on every chosen canary at once, each bounded by a timeout; a host that
cannot be asked or a command that fails is a short note, never an error, so the operator
can always type a version instead. Only lines that pass ``version_pattern`` are listed
(the others are counted in a note). The list is newest first; the version the fleet runs
(``stable``), the last one rolled back, and the journal's others are marked, and the
release highlighted at first is the next one after the stable.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from canarytui import events as ev
from canarytui.config import Environment, VersionError, render
from canarytui.engine.bus import Context
from canarytui.engine.supervise import each_host
from canarytui.journal import DeploymentRecord, Journal
from canarytui.ssh import CommandResult, Script, SshError

STABLE = "stable"  # what most of the fleet runs now
ROLLED_BACK = "rolled back"  # the last deployment that was rolled back (or whose canary failed)
ROLLED_BACK_BEFORE = "rolled back before"  # an older one, never completed since
DEPLOYED_BEFORE = "deployed before"  # completed once, per the journal

LIST_TIMEOUT = 10.0  # seconds the command may take on a host (at most ssh.command_timeout)
MAX_RELEASES = 500  # entries kept, newest first
JOURNAL_DEPTH = 200  # past deployments read
NOTE_CHARS = 160
MAX_VERSION_CHARS = 256
FAILED = frozenset(
    {
        ev.Outcome.CANARY_FAILED.value,
        ev.Outcome.PROMOTION_ROLLED_BACK.value,
        ev.Outcome.ROLLED_BACK.value,
        ev.Outcome.ABORTED.value,
    }
)

# What one host answered: the command's result, or why it could not be asked.
Listing = CommandResult | str


@dataclass(frozen=True)
class Release:
    version: str
    marks: tuple[str, ...] = ()
    listed: bool = False  # printed by ``deploy.releases`` on a canary
    in_journal: bool = False


@dataclass(frozen=True)
class Catalogue:
    """The dialog's list, newest first, with the entry to highlight and what went wrong."""

    releases: tuple[Release, ...] = ()
    default: str | None = None  # the next release after the stable one
    stable: str | None = None
    rolled_back: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def versions(self) -> list[str]:
        return [r.version for r in self.releases]

    def get(self, version: str) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)


def unlisted(catalogue: Catalogue, version: str, asked: str = "the canaries list") -> str | None:
    """Why ``version`` may be a slip of the keys: not among the releases the hosts asked
    list (``deploy.releases``; ``asked`` says which: the canaries, or without any the first
    host to change), though they list some; None when it is, or when they list none (a
    file without the command: every version is typed)."""
    listed = [r.version for r in catalogue.releases if r.listed]
    if not listed or version in listed:
        return None
    near = [v for v in listed if version.lower() in v.lower()][:3]
    like = f" ({', '.join(near)} {'is' if len(near) == 1 else 'are'})" if near else ""
    return f"{version} is not among the releases {asked}{like}"


def asked_for_releases(canaries: Sequence[str], first: Sequence[str]) -> tuple[list[str], str]:
    """The hosts whose release list a deployment is checked against, and how they are
    said: its canaries; without any (straight to the waves), the first host it changes."""
    if canaries:
        return list(canaries), "the canaries list"
    return list(first[:1]), f"{first[0]} lists" if first else "the hosts list"


# Order ----------------------------------------------------------------------------------

_PART = re.compile(r"\d+|\D+")


def unknown_to_restore(known: Sequence[str], version: str, env: Environment) -> str | None:
    """Why ``rollback --to version`` is refused unless a host runs it now, or None: it puts
    a release on every host with no canary and no analysis, so only one seen on these hosts
    goes back that way (``known``: what the journal saw, a completed deployment's or what
    hosts ran before one; a journal of another machine may know none)."""
    if version in known:
        return None
    seen = f"known here: {', '.join(known[:8])}" if known else "this journal knows none yet"
    return (
        f"{version} is neither a release this journal saw good on {env.name}'s hosts (one a "
        f"deployment completed, or one they ran before a deployment; {seen}) "
        "nor one a host runs now: rollback --to puts one back without a canary; a new one "
        f"goes out with its canary first: canarytui deploy {env.path} {version}"
    )


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    # Numbers compare as numbers and before text at the same place, so 1.10 > 1.9.
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in _PART.findall(text))


def version_key(version: str) -> tuple[object, ...]:
    """Sort key: numeric parts as numbers, the rest as text; ``1.2.0-rc1`` before ``1.2.0``
    (a semver pre-release), the exact text last so the order is total."""
    core, dash, pre = version.partition("-")
    if dash and core and core[0].isdigit() and _natural(core)[-1][0] == 0:
        return (_natural(core), 0, _natural(pre), version)
    return (_natural(version), 1, (), version)


def newest_first(versions: Iterable[str]) -> list[str]:
    return sorted(set(versions), key=version_key, reverse=True)


# What the fleet and the journal say -------------------------------------------------------


def stable_version(
    versions: Mapping[str, str | None], history: Sequence[DeploymentRecord]
) -> str | None:
    """The version most hosts run (the newest on a tie); if no host's is known, the last
    completed deployment's. ``history`` is newest first."""
    counted = Counter(v for v in versions.values() if v)
    if counted:
        return max(counted, key=lambda v: (counted[v], version_key(v)))
    done = next((d for d in history if d.outcome == ev.Outcome.COMPLETE.value), None)
    return done.version if done is not None else None


def failed_versions(history: Sequence[DeploymentRecord]) -> list[str]:
    """Versions whose deployment was rolled back or whose canary failed and which never
    completed on the whole fleet afterwards, the most recent first (``history`` is newest
    first): a deployment limited to some hosts (``--hosts``, the UI's filter) that
    completed there does not clear a failed canary."""
    completed_later: set[str] = set()
    found: list[str] = []
    for d in history:
        if d.outcome == ev.Outcome.COMPLETE.value and d.scope is None:
            completed_later.add(d.version)
        elif (
            d.kind == "deploy"
            and d.outcome in FAILED
            and d.version not in completed_later
            and d.version not in found
        ):
            found.append(d.version)
    return found


def went_bad_since(
    version: str,
    history: Sequence[DeploymentRecord],
    previous_of: Callable[[DeploymentRecord], Iterable[str | None]],
) -> str | None:
    """What the journal says against putting ``version`` back (``rollback --to``, ``b`` in
    history) though a deployment once completed it: the latest of a deployment of it that
    failed or was rolled back, or a ``rollback --to`` that took the fleet off it
    (``previous_of``: the versions its hosts ran before it); None when the latest word on
    it is good (a completion of it on the whole fleet, or a rollback to it). ``history``
    is newest first."""
    for d in history:
        if d.is_open:
            continue
        if d.version == version:
            if d.outcome in FAILED and d.kind == "deploy":
                return f"#{d.id}, a later deployment of {version}, ended {d.outcome}"
            if d.outcome == ev.Outcome.COMPLETE.value and d.scope is None:
                return None
        elif d.kind == "rollback" and d.outcome == ev.Outcome.COMPLETE.value:
            if version in previous_of(d):
                return f"#{d.id} put {d.version} back over it (rollback --to)"
    return None


def restore_doubt(journal: Journal, env: Environment, version: str) -> str | None:
    """``went_bad_since`` from ``journal``'s deployments of ``env``."""
    history = journal.history(env.name, env.app, limit=JOURNAL_DEPTH)

    def previous_of(d: DeploymentRecord) -> list[str | None]:
        return [h.previous for h in journal.hosts(d.id).values()]

    return went_bad_since(version, history, previous_of)


# Building the list ---------------------------------------------------------------------------


def build_catalogue(
    env: Environment,
    listings: Mapping[str, Listing],
    history: Sequence[DeploymentRecord],
    versions: Mapping[str, str | None],
) -> Catalogue:
    """The list from what each canary printed, the journal (newest first) and the hosts'
    versions now."""
    notes: list[str] = []
    listed: set[str] = set()
    if env.deploy.releases is None:
        notes.append("deploy.releases is not set: the journal's versions only")
    for host, listing in listings.items():
        if isinstance(listing, str):
            notes.append(_cut(listing if host in listing else f"{host}: {listing}"))
            continue
        if not listing.ok:
            last = next((ln for ln in reversed(listing.output.splitlines()) if ln.strip()), "")
            notes.append(
                _cut(f"{host}: deploy.releases exited {listing.exit_status}: {last.strip()}")
            )
        found, ignored = _versions_in(env, listing.stdout)
        listed.update(found)
        if ignored:
            notes.append(
                _cut(
                    f"{host}: {len(ignored)} line(s) ignored, not a version "
                    f"(version_pattern): {ignored[0]!r}"
                )
            )
    in_journal = {d.version for d in history}
    completed = {d.version for d in history if d.outcome == ev.Outcome.COMPLETE.value}
    stable = stable_version(versions, history)
    failed = failed_versions(history)
    rolled_back = failed[0] if failed else None
    everything = listed | in_journal | ({stable} if stable else set())
    ordered = newest_first(everything)
    if len(ordered) > MAX_RELEASES:
        notes.append(f"only the newest {MAX_RELEASES} of {len(ordered)} versions are listed")
        ordered = ordered[:MAX_RELEASES]

    def marks(version: str) -> tuple[str, ...]:
        if version == stable:
            return (STABLE,)
        if version == rolled_back:
            return (ROLLED_BACK,)
        if version in failed:
            return (ROLLED_BACK_BEFORE,)
        return (DEPLOYED_BEFORE,) if version in completed else ()

    releases = tuple(Release(v, marks(v), v in listed, v in in_journal) for v in ordered)
    return Catalogue(
        releases=releases,
        default=_next_after(stable, ordered, set(failed)),
        stable=stable,
        rolled_back=rolled_back,
        notes=tuple(notes),
    )


def _versions_in(env: Environment, text: str) -> tuple[list[str], list[str]]:
    found: list[str] = []
    ignored: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            if len(line) > MAX_VERSION_CHARS:
                raise VersionError("too long")
            found.append(env.validate_version(line))
        except VersionError:
            ignored.append(line[:40])
    return found, ignored


def _next_after(stable: str | None, ordered: Sequence[str], failed: set[str]) -> str | None:
    """The smallest version above the stable one that was not rolled back; with no stable
    known, the newest."""
    candidates = [v for v in ordered if v not in failed and v != stable]
    if stable is None:
        return candidates[0] if candidates else None
    above = [v for v in candidates if version_key(v) > version_key(stable)]
    return above[-1] if above else None


def _cut(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= NOTE_CHARS else line[: NOTE_CHARS - 1] + "…"


# Asking the hosts -------------------------------------------------------------------------


async def ask_hosts(
    ctx: Context, names: Sequence[str], shells: Mapping[str, Script] | None = None
) -> dict[str, Listing]:
    """``deploy.releases`` on each host at once; a host's failure is its answer. ``shells``:
    the hosts' kept shells (a deployment's, as it starts: no session more)."""
    template = ctx.env.deploy.releases
    if template is None:
        return {}
    seconds = min(LIST_TIMEOUT, ctx.env.ssh.command_timeout)
    # The connection has its own timeout; this bounds the whole answer, queueing included.
    bound = seconds + ctx.env.ssh.connect_timeout + 2.0

    async def ask(name: str) -> Listing:
        command = render(template, ctx.env.placeholders(name))
        try:
            async with asyncio.timeout(bound):
                shell = shells.get(name) if shells is not None else None
                return await ctx.fleet.run(name, command, timeout=seconds, shell=shell)
        except SshError as exc:
            return str(exc)
        except TimeoutError:
            return f"no answer within {bound:g}s"

    return await each_host(names, ask)


async def list_releases(
    ctx: Context, canaries: Sequence[str], shells: Mapping[str, Script] | None = None
) -> Catalogue:
    """The dialog's list for a deployment to ``canaries`` (without any: the first host)."""
    known = set(ctx.env.host_names)
    names = [n for n in canaries if n in known] or ctx.env.host_names[:1]
    listings = await ask_hosts(ctx, names, shells)
    history = ctx.journal.history(ctx.env.name, ctx.env.app, limit=JOURNAL_DEPTH)
    return build_catalogue(ctx.env, listings, history, dict(ctx.state.versions))
