"""The plan of a deployment: which hosts are canaries, the baseline sample, the waves."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from canarytui.config import Environment, Promote, WaveSpec, canaries_by_percent
from canarytui.textsafe import harmless, listed


class PlanError(ValueError):
    """Bad canary choice (unknown host, empty, the whole fleet)."""


@dataclass(frozen=True)
class Plan:
    canaries: list[str]
    waves: list[list[str]]

    @property
    def hosts(self) -> list[str]:
        """Every host of the plan, canaries first, in the order they are deployed."""
        return self.canaries + [h for wave in self.waves for h in wave]


def already_running(version: str, reached_only: bool = False, analysed: bool = True) -> str:
    """What a deployment of the release every host runs does (a wrong pick, mostly)."""
    every = "every host reached" if reached_only else "every host"
    judged = f", and the analysis compares {version} with itself" if analysed else ""
    return f"{every} runs {version} already: its steps run again{judged}"


def some_running(version: str, hosts: Sequence[str], analysed: bool, others: bool) -> str:
    """What a deployment does on the hosts that run its release already (a rollout that
    stopped part way, a host deployed by hand): its steps run again there, and (being no
    sample of the release before it) the analysis's baseline leaves them out while
    ``others``, hosts that are no canary and run another release, can stand in."""
    said = f"{listed(hosts, 8)} run(s) {version} already: its steps run again there"
    if not analysed:
        return said
    if others:
        return said + "; the analysis's baseline leaves them out"
    return said + f"; no other host to compare with, the analysis compares {version} with itself"


def running_said(
    version: str, found: Mapping[str, object], canaries: Sequence[str]
) -> tuple[str, str] | None:
    """What a deployment says as it starts (a notice's level and words) about the hosts
    that run its release already (``found``: each host's version, None if it reported
    none; anything else, unreachable): a warning when every host reached does, a word
    when some do, None when none does."""
    reached = {h: v for h, v in found.items() if v is None or isinstance(v, str)}
    there = [h for h, v in reached.items() if v == version]
    if not there:
        return None
    if len(there) == len(reached):
        return "warning", already_running(version, len(reached) < len(found), bool(canaries))
    others = any(h not in canaries and v != version for h, v in reached.items())
    return "info", some_running(version, there, bool(canaries), others)


def stops_at(
    plan: Plan, down: Collection[str], promote: Promote, kind: str = "deploy"
) -> str | None:
    """Hosts unreachable now count against ``max_failures`` if they still are when their
    wave comes: with more of them than it tolerates, the wave where the rollout would stop,
    said (None: the budget holds them all)."""
    down = set(down)  # thousands of hosts, hundreds of them down: one look each
    seen = 0
    for number, wave in enumerate(plan.waves, 1):
        seen += sum(1 for h in wave if h in down)
        if seen > promote.max_failures:
            late = [h for w in plan.waves for h in w if h in down]
            return stop_said(late, promote, number, len(plan.waves), kind)
    return None


def stop_said(
    down: Sequence[str],
    promote: Promote,
    wave: int,
    waves: int,
    kind: str = "deploy",
    earlier: int = 0,
) -> str:
    """Hosts unreachable now, more than ``max_failures`` (with the ``earlier`` hosts that
    failed or were skipped before, which count too): where the rollout would stop (a
    rollback --to's, ``kind``, halts there whatever ``on_failure`` says: never undone)."""
    how = f"on_failure: {promote.on_failure}"
    if kind == "rollback" and promote.on_failure == "rollback":
        how = "halted, what it put back kept: a rollback --to is not rolled back"
    also = f" and {earlier} host(s) failed or skipped before" if earlier else ""
    return (
        f"{listed(down)} unreachable now{also}, more than promote.max_failures "
        f"({promote.max_failures}): if they do not answer by wave {wave}/{waves}, the "
        f"rollout stops there ({how})"
    )


def plan_waves(rest: Sequence[str], specs: Sequence[WaveSpec]) -> list[list[str]]:
    """Cumulative shares (or counts) of the remaining hosts -> disjoint waves.

    The last wave always reaches every remaining host; waves that would add no host
    are dropped.
    """
    n = len(rest)
    waves: list[list[str]] = []
    if n == 0:
        return waves
    done = 0
    for spec in specs:
        target = math.ceil(n * spec.value / 100.0) if spec.percent else int(spec.value)
        target = max(1, min(n, target))
        if target > done:
            waves.append(list(rest[done:target]))
            done = target
    if done < n:
        waves.append(list(rest[done:]))
    return waves


def failures_said(index: int, whole: bool, counted: list[str], budget: int, which: str) -> str:
    """Why promotion stops after wave ``index``: more failed hosts (``counted``; ``which``:
    them by state) than ``max_failures`` (``budget``) tolerates, or (``whole``) not one
    host of the wave took the release (of several, or no host runs it), however many that
    tolerates."""
    if whole:
        return (
            f"every host of wave {index} failed, which max_failures ({budget}) does not "
            f"tolerate (a few failed hosts, never a whole wave, nor every host): {which}"
        )
    more = f"more than max_failures ({budget})"
    return f"{len(counted)} host(s) failed during promotion, {more}: {which}"


def rollback_kept(version: str) -> str:
    """Why a rollback to a known release that failed is not rolled back itself."""
    return (
        f"{version} is kept on the hosts it reached (on_failure: rollback is for deploys: "
        "undoing a rollback would put back the release it escapes)"
    )


def waves_kept(d: int, plan: list[list[str]], specs: Sequence[WaveSpec]) -> str | None:
    """What to say when deployment ``d`` goes on in the waves it planned (``plan``, in the
    journal since it started) where the file's ``promote.waves`` (``specs``, edited since)
    now make other ones of its hosts; None when they make the same."""
    now = plan_waves([h for wave in plan for h in wave], specs)
    if now == plan:
        return None

    def sizes(waves: list[list[str]]) -> str:
        return f"{len(waves)} wave(s) of {', '.join(str(len(w)) for w in waves)} host(s)"

    return (
        f"deployment #{d} goes on in the waves it planned when it started ({sizes(plan)}); "
        f"the file's promote.waves make {sizes(now)} now: a new deployment follows them"
    )


def select_hosts(env: Environment, items: Sequence[str]) -> list[str]:
    """``deploy --hosts``: the file's hosts that one of ``items`` names (a host's name, a
    pattern of them, ``web-*``, or ``role=NAME``), in the file's order. An item that names
    no host is a mistake, said with each such item (exit 2): nothing is deployed to a
    subset other than the one meant."""
    names = env.host_names
    chosen: set[str] = set()
    wrong: list[str] = []
    for item in items:
        if item.startswith("role="):
            role = item.removeprefix("role=")
            found = {h.name for h in env.hosts if role in h.roles}
        elif any(c in item for c in "*?["):
            found = set(fnmatch.filter(names, item))
        else:
            found = {item} if item in env.host_names_set else set()
        if not found:
            wrong.append(harmless(item, 100))  # as typed, bounded
        chosen |= found
    if wrong:
        roles = sorted({r for h in env.hosts for r in h.roles})
        known = f" (its roles: {listed(roles, 8)})" if roles else " (its hosts have no roles)"
        said = "role=" in " ".join(wrong)
        raise PlanError(
            f"--hosts: nothing in {env.path.name} matches {listed(wrong, 8)}"
            + (known if said else "")
            + ": give host names, patterns (web-*) or role=NAME, comma-separated"
        )
    return [n for n in names if n in chosen]


def limited_to(
    env: Environment, items: Sequence[str] | None
) -> tuple[list[str] | None, str | None]:
    """``deploy --hosts``: the hosts the items name and how the journal says the limit (the
    items as given; many, a few and a count); (None, None) without items, or when they
    name every host."""
    if not items:
        return None, None
    only = select_hosts(env, items)
    if len(only) == len(env.host_names):
        return None, None
    said = ",".join(items)
    return only, harmless(said if len(said) <= 200 else listed(items, 8, ","), 300)


_EVERY_HOST = (
    ": every host a canary leaves no host to compare them with and no wave after them; "
    "for every host in the file's waves, each health-gated: --no-canary"
)


def make_plan(
    env: Environment,
    canaries: Sequence[str] | None = None,
    canary_percent: float | None = None,
    only: Sequence[str] | None = None,
    canary_phase: bool = True,
) -> Plan:
    """Canaries and waves over the file's hosts, or over ``only`` (a deployment limited to
    them: ``select_hosts``); ``canary_phase`` False: straight to the waves."""
    names = env.host_names if only is None else list(only)
    inside = set(names)
    if canaries:
        unknown = [c for c in canaries if c not in env.host_names_set]
        if unknown:
            shown = listed([harmless(c, 100) for c in unknown], 8)  # as typed, bounded
            raise PlanError(f"canary host(s) not in {env.path.name}: {shown}")
        outside = [c for c in canaries if c not in inside]
        if outside:
            raise PlanError(
                f"canary host(s) not among the hosts deployed to (--hosts): {listed(outside, 8)}"
            )
        wanted = set(canaries)
        chosen = [n for n in names if n in wanted]
    elif canary_percent is not None:
        if not 0 < canary_percent < 100:
            raise PlanError(
                f"--canary-percent must be more than 0 and less than 100, got {canary_percent:g}"
                + _EVERY_HOST * (canary_percent == 100)
            )
        chosen = canaries_by_percent(names, canary_percent)
    else:
        if not env.canary.enabled or not canary_phase:
            # No canary section (or --no-canary): the waves go straight to every host.
            return Plan([], plan_waves(names, env.promote.waves))
        chosen = env.default_canaries(names)
        if not chosen and only is not None:
            raise PlanError(
                f"none of {env.path.name}'s canaries ({listed(env.default_canaries(), 8)}) is "
                "among the hosts deployed to (--hosts): name some (--canary HOST), or "
                "deploy them without a canary phase (--no-canary)"
            )
    if not chosen:
        raise PlanError("at least one canary host is needed")
    taken = set(chosen)
    rest = [n for n in names if n not in taken]
    return Plan(chosen, plan_waves(rest, env.promote.waves))


def pick_baseline(candidates: Sequence[str], count: int) -> list[str]:
    """Spread the baseline sample over the fleet rather than taking its first hosts."""
    if count <= 0 or not candidates:
        return []
    if count >= len(candidates):
        return list(candidates)
    step = len(candidates) / count
    return [candidates[int(i * step)] for i in range(count)]
