"""What the deploy dialog asks: the plan in words, what would stop it, and (with the filter
on) the same release limited to the hosts the filter shows."""

from __future__ import annotations

from dataclasses import dataclass

from canarytui import events as ev
from canarytui.engine import (
    Engine,
    PlanError,
    make_plan,
    plan_waves,
    rolled_back_by,
    running_said,
    stops_at,
)
from canarytui.engine.releases import restore_doubt, version_key
from canarytui.journal import DeploymentRecord
from canarytui.textsafe import harmless, listed
from canarytui.ui.fleet_state import FleetState


@dataclass(frozen=True)
class Limited:
    """A deployment limited to the hosts the filter shows: its canaries (none: straight to
    the waves, each host health-gated)."""

    hosts: list[str]
    canaries: list[str]


def limited_to_shown(state: FleetState) -> Limited | None:
    """With the filter on and hiding some hosts, the deployment limited to those it shows:
    the picks among them, else the file's canaries among them, else no canary phase (a
    host left behind, caught up). None: the filter shows every host, or none."""
    shown = state.shown
    if not state.filter_text or not shown or len(shown) == len(state.env.hosts):
        return None
    # A copy: the hosts the question names are the ones deployed to, whatever the filter
    # shows by the time the operator answers (it follows hosts as their versions change).
    shown = list(shown)
    picked = [n for n in shown if n in state.picked]
    return Limited(shown, picked or state.env.default_canaries(shown))


def catch_up(state: FleetState, only: Limited | None) -> str | None:
    """With the filter showing only hosts behind the rest (each on an older release than
    the one most hosts run), that release: what the picker offers first (hosts left
    behind, caught up), not the release after it."""
    stable = state.versions()[0]
    if only is None or stable is None:
        return None
    theirs = [state.engine.versions.get(h) for h in only.hosts]
    behind = all(v is not None and version_key(v) < version_key(stable) for v in theirs)
    return stable if behind else None


def deploy_question(
    state: FleetState, version: str, canaries: list[str], watched: str, only: Limited | None
) -> str:
    """The question before a deployment of ``version`` to the whole fleet; with ``only``,
    first what enter does, the hosts the filter shows only, then the whole fleet (a)."""
    whole = _whole_said(state, version, canaries, watched)
    if only is None:
        return whole
    enter = "o" if not only.canaries else "o, or enter"  # no canary: never by a reflex
    return (
        f"{_only_said(state, version, only, watched)} ({enter})\n\nOr every host (a): "
        + whole[0].lower()
        + whole[1:]
    )


def _whole_said(state: FleetState, version: str, canaries: list[str], watched: str) -> str:
    """The deployment of ``version`` to the whole fleet, and what would stop it."""
    env = state.env
    if canaries:
        question = (
            f"Deploy {version} to {len(canaries)} canary host(s): "
            f"{listed(canaries, 10)}?\n\nThe analysis then watches them for "
            f"{watched}; promotion waits for you."
        )
    else:
        waves = plan_waves(env.host_names, env.promote.waves)
        question = (
            f"Deploy {version} straight to the waves (this environment has no "
            f"canary phase): {len(env.hosts)} hosts in {len(waves)} "
            "wave(s), each host health-gated."
        )
    question += down_warning(state, canaries)
    versions = state.engine.versions
    said = running_said(version, {n: versions.get(n) for n in env.host_names}, canaries)
    if said is not None:
        level, words = said
        question += f"\n\n{'Warning: ' if level == 'warning' else ''}{words}."
    return question


def _only_said(state: FleetState, version: str, only: Limited, watched: str) -> str:
    """The release to the hosts the filter shows only (``watched``: the analysis's time)."""
    filtered = harmless(state.filter_text, 60)
    waves = plan_waves([h for h in only.hosts if h not in only.canaries], state.env.promote.waves)
    how = (
        f"canary {listed(only.canaries, 5)}, watched by the analysis for {watched}, then "
        f"{len(waves)} wave(s) when you promote"
        if only.canaries
        else f"no canary among them: straight to {len(waves)} wave(s), each host "
        "health-gated, without canary or analysis"
    )
    running = sum(1 for h in only.hosts if state.engine.versions.get(h) == version)
    also = f"; {running} of them run(s) {version} already" if running else ""
    return (
        f"Deploy {version} to only the {len(only.hosts)} host(s) the filter shows "
        f"({filtered}): {listed(only.hosts, 8)}; {how}{also}. The others are not changed"
    )


def down_warning(state: FleetState, canaries: list[str]) -> str:
    """What the hosts the grid shows unreachable would do to the deployment: a canary
    among them, a refusal; more of them than ``max_failures``, the wave where the rollout
    would stop if they stay down (the engine says it again once it has tried them)."""
    env = state.env
    down = {n for n in env.host_names if state.unreachable(n)}
    if not down:
        return ""
    try:
        plan = make_plan(env, canaries or None)
    except PlanError:
        return ""  # the engine refuses it with its reason
    lost = [c for c in plan.canaries if c in down]
    if lost:
        hows = {state.refusal(c) for c in lost}  # "host key refused", or None
        how = (hows.pop() if len(hows) == 1 else None) or "unreachable"
        return (
            f"\n\nWarning: canary {listed(lost)} {how} now: the deployment would be "
            "refused (nothing would change); pick other canaries with space."
        )
    said = stops_at(plan, down, env.promote)
    return f"\n\nWarning: {said}." if said else ""


def promote_warning(
    state: FleetState,
    all_waves: bool,
    again: list[str],
    waves: list[tuple[int, list[str]]],
    total: int,
) -> str:
    """The hosts of a promote the grid shows unreachable, and those that have not answered
    since the screen opened (a health check reaches every host in turn): the wave where
    the rollout would stop if they stay so (as the engine counts its failure budget)."""
    going = again + [h for _, hosts in waves for h in hosts]
    down = [h for h in going if state.unreachable(h)]
    silent = [h for h in going if not state.hosts[h].probed and h not in down]
    if not down and not silent:
        return ""
    promote = state.env.promote
    said = f"\n\nWarning: {listed(down)} unreachable now" if down else ""
    if silent:
        said += "; " if down else "\n\nMind: "
        said += f"{listed(silent)} not answered yet (no health check since this screen opened)"
    stop = state.engine.promotion.stops_at(all_waves, set(down) | set(silent))
    if stop is None:
        each = ", each not answering in its turn" if silent else ""
        return f"{said}: counted against promote.max_failures ({promote.max_failures}){each}."
    return (
        f"{said}, more than promote.max_failures ({promote.max_failures}) allows: if they "
        f"do not answer by wave {stop}/{total}, the rollout stops there "
        f"(on_failure: {promote.on_failure})."
    )


def rollback_question(state: FleetState, record: DeploymentRecord) -> str:
    """What a rollback of ``record`` would do, as its journal has it: ``Roll deployment
    #4 (1.2.0) back on the 5 host(s) it reached (web-01, ...), to 1.0.0?``; and which of
    them the grid shows unreachable (the rollback fails there and stays open)."""
    what = f"deployment #{record.id} ({record.version})"
    recorded = state.engine.journal.hosts(record.id)
    back = rolled_back_by(record, recorded)
    done = sum(1 for h in recorded.values() if h.state == ev.HostState.ROLLED_BACK.value)
    if not back:
        return f"Close {what}? It reached no host yet: nothing to undo."
    to = sorted({v or "?" for v in back.values()})
    said = f"to {to[0]}" if len(to) == 1 else f"each to what it ran ({listed(to, 3)})"
    # A rollback halted part way has put some back already: the rest are said as such.
    reached, also = ("still to put back", f"; {done} back already") if done else ("it reached", "")
    hosts = f"the {len(back)} host(s) {reached} ({listed(list(back), 4)}{also})"
    down = [h for h in back if state.unreachable(h)]
    warn = (
        f"\n\nWarning: {listed(down)} unreachable now: if still so, the rollback fails "
        "there and the deployment stays open (r again once it answers)."
    )
    return f"Roll {what} back on {hosts}, {said}?" + (warn if down else "")


def restore_question(engine: Engine, version: str) -> str:
    """What ``b`` in history asks: ``version`` back on every host; how many run it already,
    and what the journal says against it since it completed (a later deployment of it
    rolled back, a ``rollback --to`` that took the fleet off it)."""
    names = engine.env.host_names
    on_it = sum(1 for h in names if engine.versions.get(h) == version)
    said = (
        f"Put {version} back on all {len(names)} hosts, in the file's waves, each host "
        "health-gated, without canary or analysis? Recorded as a rollback."
    )
    if on_it == len(names):
        said += f"\n\nEvery host runs {version} already: nothing would change."
    elif on_it:
        said += f"\n\n{on_it} of them run it already: left as they are."
    doubt = restore_doubt(engine.journal, engine.env, version)
    return said + (f"\n\nMind: {harmless(doubt)}." if doubt is not None else "")
