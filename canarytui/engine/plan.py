"""The plan of a deployment: which hosts are canaries, the baseline sample, the waves."""

from __future__ import annotations

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


def stops_at(plan: Plan, down: Collection[str], promote: Promote) -> str | None:
    """Hosts unreachable now count against ``max_failures`` if they still are when their
    wave comes: with more of them than it tolerates, the wave where the rollout would stop,
    said (None: the budget holds them all)."""
    down = set(down)  # thousands of hosts, hundreds of them down: one look each
    seen = 0
    for number, wave in enumerate(plan.waves, 1):
        seen += sum(1 for h in wave if h in down)
        if seen > promote.max_failures:
            late = [h for w in plan.waves for h in w if h in down]
            return stop_said(late, promote, number, len(plan.waves))
    return None


def stop_said(down: Sequence[str], promote: Promote, wave: int, waves: int) -> str:
    """Hosts unreachable now, more than ``max_failures``: where the rollout would stop."""
    return (
        f"{listed(down)} unreachable now, more than promote.max_failures "
        f"({promote.max_failures}): if they do not answer by wave {wave}/{waves}, the "
        f"rollout stops there (on_failure: {promote.on_failure})"
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


def make_plan(
    env: Environment, canaries: Sequence[str] | None = None, canary_percent: float | None = None
) -> Plan:
    names = env.host_names
    if canaries:
        unknown = [c for c in canaries if c not in names]
        if unknown:
            shown = listed([harmless(c, 100) for c in unknown], 8)  # as typed, bounded
            raise PlanError(f"canary host(s) not in {env.path.name}: {shown}")
        chosen = [n for n in names if n in set(canaries)]
    elif canary_percent is not None:
        if not 0 < canary_percent <= 100:
            raise PlanError(
                f"--canary-percent must be more than 0 and at most 100, got {canary_percent:g}"
            )
        chosen = canaries_by_percent(names, canary_percent)
    else:
        chosen = env.default_canaries()
        if not env.canary.enabled:
            # No canary section: no canary phase, the waves go straight to every host.
            return Plan([], plan_waves(names, env.promote.waves))
    if not chosen:
        raise PlanError("at least one canary host is needed")
    rest = [n for n in names if n not in set(chosen)]
    return Plan(chosen, plan_waves(rest, env.promote.waves))


def pick_baseline(candidates: Sequence[str], count: int) -> list[str]:
    """Spread the baseline sample over the fleet rather than taking its first hosts."""
    if count <= 0 or not candidates:
        return []
    if count >= len(candidates):
        return list(candidates)
    step = len(candidates) / count
    return [candidates[int(i * step)] for i in range(count)]
