"""On-call handoff: read the hosts' locks, show another machine's open deployment, take it over.

The journal lives on the machine that started a deployment. When its operator is gone,
the hosts' locks still say which deployment holds them, its version, who started it and
each host's previous version: enough for a colleague's machine to show it (``status``)
and roll it back (``rollback --take-over``), leaving a note on the hosts that the first
machine records in its own journal when it returns.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from canarytui import events as ev
from canarytui.config import render
from canarytui.engine import lockscripts
from canarytui.engine.bus import Context
from canarytui.engine.holding import LockKeeper
from canarytui.engine.locks import describe_owner, is_maintenance, since_of
from canarytui.engine.reported import reported_version
from canarytui.engine.supervise import each_host
from canarytui.journal import TAKE_OVER, DeploymentRecord, UnopenedStart
from canarytui.ssh import SshError
from canarytui.textsafe import listed


@dataclass
class HostLock:
    """What one host says: its lock's owner, the version it ran first, a take-over note."""

    owner: dict[str, Any] | None = None
    previous: str | None = None
    taken: dict[str, Any] | None = None
    current: str | None = None
    error: SshError | None = None


@dataclass
class ForeignDeployment:
    """A deployment known from the hosts' locks (not necessarily from this journal)."""

    token: str
    owner: dict[str, Any]
    hosts: dict[str, HostLock] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.owner.get("version", "?"))

    def describe(self) -> str:
        return describe_owner(self.owner)


async def inspect(ctx: Context, names: Sequence[str] | None = None) -> dict[str, HostLock]:
    """Every host's (or ``names``') lock, take-over note and version now; changes nothing."""
    env = ctx.env

    async def one(name: str) -> HostLock:
        current = render(env.deploy.current, env.placeholders(name))
        try:
            result = await ctx.fleet.run(
                name, lockscripts.inspect_command(env.app, env.name, current)
            )
        except SshError as exc:
            return HostLock(error=exc)
        reply = lockscripts.parse_reply(result.stdout)
        return HostLock(
            owner=reply.owner("HELD") if reply.has("HELD") else None,
            previous=reported_version(env, reply.sections.get("PREVIOUS")),
            taken=reply.owner("TAKEN") if reply.has("TAKEN") else None,
            current=reported_version(env, reply.sections.get("CURRENT")),
        )

    return await each_host(env.host_names if names is None else names, one)


def deployments(found: dict[str, HostLock]) -> list[ForeignDeployment]:
    """The deployments holding hosts' locks, newest first."""
    by_token: dict[str, ForeignDeployment] = {}
    for name, lock in found.items():
        token = lock.owner.get("token") if lock.owner else None
        if lock.owner is None or not isinstance(token, str):
            continue
        foreign = by_token.setdefault(token, ForeignDeployment(token, lock.owner))
        foreign.hosts[name] = lock
    return sorted(by_token.values(), key=lambda f: -(since_of(f.owner) or 0.0))


def taken_note(found: dict[str, HostLock], token: str) -> dict[str, Any] | None:
    """The note another machine left after rolling back the deployment ``token``."""
    for lock in found.values():
        if lock.taken and lock.taken.get("token") == token:
            return lock.taken
    return None


def describe_taken(note: dict[str, Any]) -> str:
    since = since_of({"since": note.get("at")})
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown time"
    who = f"{str(note.get('user', '?'))[:100]}@{str(note.get('machine', '?'))[:100]}"
    if note.get("outcome") == "rolling back":  # (left as it started: it rolls back there)
        return f"taken over by {who} at {when}, who rolls it back"
    return f"taken over and rolled back by {who} at {when}"


def adopt(ctx: Context, locks: LockKeeper, foreign: ForeignDeployment) -> DeploymentRecord:
    """This journal takes on the deployment: a record, each host's state, the decision."""
    hosts = list(foreign.hosts)
    d = ctx.journal.create_deployment(
        token=foreign.token,
        env=ctx.env.name,
        app=ctx.env.app,
        env_path=str(ctx.env.path),
        version=foreign.version,
        canaries=[],
        plan=[hosts],
        previous={},
        user=ctx.user,
        machine=ctx.machine,
    )
    previous = {
        name: reported_version(ctx.env, str(lock.owner.get("previous") or ""))
        if lock.owner
        else None
        for name, lock in foreign.hosts.items()
    }
    for name, lock in foreign.hosts.items():
        previous[name] = previous[name] or lock.previous
    ctx.journal.set_previous_many(d, previous)
    record = ctx.journal.deployment(d)
    assert record is not None
    ctx.state.deployment = record
    ctx.state.previous.clear()
    ctx.state.previous.update(previous)
    # "user@machine (deployment #N of V, pid P) since WHEN": the deployment said once.
    ctx.bus.decision(TAKE_OVER, f"{foreign.describe()}, from the hosts' locks")
    for name, lock in foreign.hosts.items():
        if lock.current is not None and lock.current == previous[name]:
            state = ev.HostState.PENDING  # the release never reached it (or left again)
        elif lock.current == foreign.version:
            state = ev.HostState.DEPLOYED
        else:
            state = ev.HostState.FAILED  # somewhere in between: roll it back
        # (said "web-01: deployed 1.1.0" as if it had just been: found so, taking it over)
        ctx.bus.host(name, state, version=lock.current, detail="as found, taking it over")
    locks.takeover_note = {
        "deployment": foreign.owner.get("deployment"),
        "version": foreign.version,
        "user": ctx.user,
        "machine": ctx.machine,
        "at": time.time(),
        "outcome": "rolled back",
    }
    return record


class NothingToTakeOver(Exception):
    """No host holds a lock of another machine's deployment (the message says what holds)."""


async def take_over(ctx: Context, locks: LockKeeper) -> DeploymentRecord:
    """Find the deployment the hosts' locks belong to, unknown to this journal; adopt it."""
    found = await inspect(ctx)
    held = deployments(found)
    ours = {f.token: ctx.journal.by_token(f.token) for f in held}
    foreign = [f for f in held if ours[f.token] is None]
    if not foreign:
        if held and all(isinstance(r, UnopenedStart) for r in ours.values()):
            raise NothingToTakeOver(
                "the locks on the hosts were left by a start of this journal, refused before "
                f"anything changed ({held[0].describe()}): the next deployment from here "
                "frees them (canarytui unlock ENV breaks them now)"
            )
        if held:
            raise NothingToTakeOver(
                "the locks on the hosts belong to a deployment in this journal: "
                f"roll it back without --take-over ({held[0].describe()})"
            )
        held_for = [lk.owner for lk in found.values() if lk.owner and is_maintenance(lk.owner)]
        if held_for:
            raise NothingToTakeOver(
                "nothing to take over: the environment is held for maintenance by "
                f"{describe_owner(held_for[0])}, not by a deployment (canarytui unlock ENV "
                "releases it)"
            )
        raise NothingToTakeOver("nothing to take over: no host holds a lock of this environment")
    record = adopt(ctx, locks, foreign[0])
    ctx.bus.notice(
        "warning",
        f"taking over {foreign[0].describe()} on {len(foreign[0].hosts)} host(s): rolling it back",
    )
    await _say_taking(ctx, locks, foreign[0])
    _unlocked_on_it(ctx, found, foreign[0])
    return record


async def _say_taking(ctx: Context, locks: LockKeeper, foreign: ForeignDeployment) -> None:
    """Leave the take-over's note on its hosts before any is rolled back: the first
    machine, if it still runs, stops at its next script on one of them (its lock check
    finds it), rather than go on changing hosts this rollback does not know it reached."""
    assert locks.takeover_note is not None
    note = {**locks.takeover_note, "token": foreign.token, "outcome": "rolling back"}
    command = lockscripts.taking_note_command(ctx.env.app, ctx.env.name, note)

    async def one(name: str) -> None:
        with contextlib.suppress(SshError):  # (unreachable: its rollback says so)
            await ctx.fleet.run(name, command)

    await each_host(list(foreign.hosts), one)


def _unlocked_on_it(ctx: Context, found: dict[str, HostLock], foreign: ForeignDeployment) -> None:
    """Hosts that run the deployment's release without its lock (its machine stopped while
    it locked them again, or they ran it before): not rolled back from here, said so."""
    hosts = [
        h for h, lk in found.items() if h not in foreign.hosts and lk.current == foreign.version
    ]
    if not hosts:
        return
    before = {ctx.state.previous.get(h) for h in foreign.hosts} - {None}  # (as adopted)
    to = f" {before.pop()}" if len(before) == 1 else " VERSION"
    ctx.bus.notice(
        "warning",
        f"{listed(hosts, 8)} run(s) {foreign.version} without a lock of it: left as it is (what "
        f"it ran before is not known here); if the deployment reached it, put it back after "
        f"with canarytui rollback {ctx.env.path} --to{to}",
    )


def record_taken_over(ctx: Context, note: dict[str, Any]) -> str:
    """Another machine rolled our open deployment back: say so in this journal too."""
    d = ctx.state.deployment
    assert d is not None
    what = describe_taken(note)
    ctx.bus.decision("taken over", f"{what} (from the note left on the hosts)")
    ctx.bus.phase(ev.Phase.ROLLED_BACK)
    ctx.bus.emit(
        ev.DeploymentFinished(
            outcome=ev.Outcome.ROLLED_BACK, summary=f"{d.version}: {what}", deployment=d.id
        )
    )
    return f"deployment #{d.id} of {d.version} was {what}: there is nothing left to do"
