"""Hosts cut off mid-release while this machine has lost the whole fleet (demo fleet, real
SSH): the deployment stops, open, without a verdict on the release and without a rollback
sent into the outage; once the hosts answer it goes on. Hosts cut off while the others
answer are the release's failures, as before."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from conftest import edit_env, engine_for

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.engine.plan import make_plan
from canarytui.journal.records import WayOut

LOST = "this machine has lost the fleet"


def _env(demo: DemoFleet, tmp_path: Path) -> Path:
    def edit(data: dict[str, Any]) -> None:
        data.pop("traffic", None)
        data["promote"] = {
            "waves": ["40%", "100%"],  # of the 5 hosts after the canary: 2, then 3
            "max_failures": 0,
            "pause": "0s",
            "on_failure": "rollback",
        }

    return edit_env(demo.env_path, tmp_path / "env.yaml", edit)


def _when(
    seen: list[ev.Event], test: Callable[[ev.Event], bool], act: Callable[[ev.Event], Any]
) -> Any:
    """A subscriber that records every event and starts ``act(event)`` at the first that
    passes ``test`` (the engine's events are sent from its own task: ``act`` runs beside)."""
    done: list[asyncio.Future[Any]] = []

    def on(event: ev.Event) -> None:
        seen.append(event)
        if not done and test(event):
            done.append(asyncio.ensure_future(act(event)))

    return on


async def _all(demo: DemoFleet, mode: str, hosts: list[str] | None = None) -> None:
    for name in hosts if hosts is not None else demo.host_names:
        await demo.set_fault(name, mode)


def _said(seen: list[ev.Event]) -> list[str]:
    return [e.message for e in seen if isinstance(e, ev.Notice)]


async def _deploy(engine: Engine, seen: list[ev.Event], act: Any) -> ev.Outcome:
    engine.subscribe(act)
    try:
        return await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 90)
    finally:
        await engine.fleet.close()


async def _call(
    env: Path,
    state_dir: Path,
    call: Callable[[Engine], Awaitable[ev.Outcome]],
    seen: list[ev.Event] | None = None,
) -> ev.Outcome:
    """``call`` on a new engine (as a later command would), its connections closed after."""
    engine = engine_for(env, state_dir)
    if seen is not None:
        engine.subscribe(seen.append)
    try:
        return await asyncio.wait_for(call(engine), 90)
    finally:
        await engine.fleet.close()
        engine.journal.close()


async def _lose_the_fleet_in_wave_2(
    demo: DemoFleet, env: Path, state_dir: Path
) -> tuple[Engine, list[ev.Event], ev.WaveFinished]:
    """Deploy 1.1.0 with every host going down as wave 2 starts: the engine, what it
    said, and wave 2's end, once it halted."""
    engine = engine_for(env, state_dir)
    seen: list[ev.Event] = []
    second = _when(
        seen,
        lambda e: isinstance(e, ev.WaveStarted) and e.wave == 2,
        lambda _e: _all(demo, "down"),
    )
    outcome = await _deploy(engine, seen, second)
    assert outcome is ev.Outcome.HALTED, _said(seen)
    (wave,) = [e for e in seen if isinstance(e, ev.WaveFinished) and e.wave == 2]
    assert any(LOST in m for m in _said(seen)), _said(seen)
    assert not any(isinstance(e, ev.StepResult) and e.action == "rollback" for e in seen)
    return engine, seen, wave


async def test_a_fleet_lost_in_a_wave_halts_without_a_rollback_then_goes_on(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = _env(demo, tmp_path)
    engine, seen, wave = await _lose_the_fleet_in_wave_2(demo, env, state_dir)
    assert wave.failed and not wave.succeeded
    lost = [m for m in _said(seen) if LOST in m]
    assert len(lost) == 1 and "cut off in wave 2" in lost[0], _said(seen)
    assert "promote deploys the cut-off hosts again" in lost[0]
    # Nothing was sent to roll back: the canary and the first wave keep the release.
    assert not any(e.phase is ev.Phase.ROLLING_BACK for e in seen if isinstance(e, ev.PhaseChanged))
    d = engine.state.deployment
    assert d is not None
    on_release = [*d.canaries, *d.plan[0]]
    assert {demo.version_on(h) for h in on_release} == {"1.1.0"}
    record = engine.journal.deployment(d.id)
    assert record is not None and record.is_open and record.phase == "halted"
    assert any(LOST in e.get("message", "") for e in engine.journal.events(d.id))
    engine.journal.close()
    # The fleet back, a promote deploys the cut-off hosts again and finishes.
    await _all(demo, "up")
    assert await _call(env, state_dir, Engine.promote) is ev.Outcome.COMPLETE
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}


async def test_hosts_cut_off_while_the_others_answer_are_the_release_failures(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    engine = engine_for(_env(demo, tmp_path), state_dir)
    seen: list[ev.Event] = []
    cut = _when(
        seen,
        lambda e: isinstance(e, ev.WaveStarted) and e.wave == 2,
        lambda e: _all(demo, "down", list(e.hosts)),
    )
    outcome = await _deploy(engine, seen, cut)
    assert not any(LOST in m for m in _said(seen)), _said(seen)
    # Beyond max_failures, on_failure: rollback, as for any failed host.
    assert any(e.phase is ev.Phase.ROLLING_BACK for e in seen if isinstance(e, ev.PhaseChanged))
    assert outcome is not ev.Outcome.COMPLETE
    await _all(demo, "up")


async def test_canaries_cut_off_with_the_fleet_get_no_verdict_and_are_analysed_again(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = _env(demo, tmp_path)
    engine = engine_for(env, state_dir)
    seen: list[ev.Event] = []
    canary = _when(
        seen,
        lambda e: isinstance(e, ev.PhaseChanged) and e.phase is ev.Phase.CANARY,
        lambda _e: _all(demo, "down"),
    )
    outcome = await _deploy(engine, seen, canary)
    assert outcome is ev.Outcome.HALTED, _said(seen)
    assert not any(isinstance(e, ev.VerdictReached) for e in seen)  # no verdict, no FAIL
    assert not any(isinstance(e, ev.StepResult) and e.action == "rollback" for e in seen)
    lost = [m for m in _said(seen) if LOST in m]
    assert len(lost) == 1 and "in the canary phase" in lost[0], _said(seen)
    assert engine.way_out_now() is WayOut.NO_VERDICT
    engine.journal.close()
    await _all(demo, "up")
    said: list[ev.Event] = []
    assert await _call(env, state_dir, Engine.promote, said) is ev.Outcome.COMPLETE, _said(said)
    assert any(isinstance(e, ev.Decision) and e.action == "analyse again" for e in said)
    verdicts = [e.verdict for e in said if isinstance(e, ev.VerdictReached)]
    assert verdicts == [ev.Verdict.PASS]
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}


async def test_hosts_down_since_the_start_are_not_asked_for_the_fleet(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Three hosts down from the start (marked unreachable), the canary lost during its
    steps while the other two answer: a failed canary, not a lost fleet. Asking the three
    known to be down would have taken their old silence for this machine's."""
    canary, *others = demo.host_names
    down, answering = others[:3], others[3:]
    await _all(demo, "down", down)
    engine = engine_for(_env(demo, tmp_path), state_dir)
    seen: list[ev.Event] = []
    cut = _when(
        seen,
        lambda e: isinstance(e, ev.PhaseChanged) and e.phase is ev.Phase.CANARY,
        lambda _e: _all(demo, "down", [canary]),
    )
    await _deploy(engine, seen, cut)
    assert answering and not any(LOST in m for m in _said(seen)), _said(seen)
    verdicts = [e.verdict for e in seen if isinstance(e, ev.VerdictReached)]
    assert verdicts == [ev.Verdict.FAIL]
    await _all(demo, "up")


async def test_a_host_down_since_the_start_and_lost_with_the_fleet_is_no_failure(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A host of wave 2 down as the deployment starts (tried again at its wave, its lock
    taken then) counts with the hosts the fleet's loss cut off there: the rollout halts,
    nothing rolled back."""
    env = _env(demo, tmp_path)
    late = make_plan(load_env(env)).waves[1][-1]
    await _all(demo, "down", [late])
    _engine, _seen, wave = await _lose_the_fleet_in_wave_2(demo, env, state_dir)
    assert late in wave.failed
    await _all(demo, "up")


async def test_a_rollback_into_the_lost_fleet_says_so_and_is_done_once_it_answers(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The operator rolls the halted deployment back while the fleet is still lost: every
    host fails to roll back, and the notice says why (not "fix the host(s)"); once the
    hosts answer, the rollback again puts every host back."""
    env = _env(demo, tmp_path)
    engine, _seen, _wave = await _lose_the_fleet_in_wave_2(demo, env, state_dir)
    engine.journal.close()
    said: list[ev.Event] = []
    assert await _call(env, state_dir, Engine.rollback, said) is ev.Outcome.ERROR
    failed = [m for m in _said(said) if m.startswith("rollback failed on ")]
    assert len(failed) == 1 and LOST in failed[0], _said(said)
    assert "roll it back again once the hosts answer" in failed[0]
    assert "fix the host(s)" not in failed[0]
    await _all(demo, "up")
    assert await _call(env, state_dir, Engine.rollback) is ev.Outcome.ROLLED_BACK
    assert {demo.version_on(h) for h in demo.host_names} == {"1.0.0"}


async def test_with_ask_the_question_waits_and_says_the_fleet_is_lost(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """``on_failure: ask``: the wave's question is asked as ever (nothing rolled back), and
    said before it: the fleet is lost from here, retry once it answers."""

    def ask(data: dict[str, Any]) -> None:
        data["promote"]["on_failure"] = "ask"

    env = edit_env(_env(demo, tmp_path), tmp_path / "ask.yaml", ask)
    engine, seen, _wave = await _lose_the_fleet_in_wave_2(demo, env, state_dir)
    assert any(isinstance(e, ev.FailureQuestion) for e in seen)
    lost = next(m for m in _said(seen) if LOST in m)
    assert "retry them (the question waits)" in lost
    engine.journal.close()
    await _all(demo, "up")
    retried = await _call(env, state_dir, lambda e: e.promote(retry=True))
    assert retried is ev.Outcome.COMPLETE
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
