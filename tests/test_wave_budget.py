"""A wave stops changing hosts once its failures are beyond the budget (demo fleet, real SSH).

Six demo hosts, no canary, one wave, one host at a time. A last step fails for 1.1.0 on
every host holding a ``broken-host`` file: a release that breaks everywhere reaches
``max_failures + 1`` hosts, not the whole wave; the others are left exactly as they were.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env, engine_for, run_cli

from canarytui import events as ev
from canarytui.cli.args import EXIT_PROMOTION_FAILED
from canarytui.cli.rollout import failure_lines
from canarytui.demo import DemoFleet
from canarytui.engine import Engine, notify

BROKEN = "broken-host"


def _env(demo: DemoFleet, tmp_path: Path, on_failure: str, max_failures: int = 1) -> Path:
    def edit(data: dict[str, Any]) -> None:
        data.pop("canary", None)
        data.pop("traffic", None)
        data["ssh"]["max_parallel"] = 1
        data["promote"] = {
            "waves": ["100%"],
            "max_failures": max_failures,
            "pause": "0s",
            "on_failure": on_failure,
        }
        # Rolling back (to 1.0.0) runs the same steps: only 1.1.0 breaks.
        check = f"[ {{version}} != 1.1.0 ] || test ! -e {BROKEN}"
        data["deploy"]["steps"].append({"name": "check", "run": check})

    return edit_env(demo.env_path, tmp_path / f"{on_failure}.yaml", edit)


def _break_all(demo: DemoFleet) -> None:
    for name in demo.host_names:
        (demo.sandbox_of(name) / BROKEN).touch()


def _untouched(demo: DemoFleet, name: str) -> bool:
    sandbox = demo.sandbox_of(name)
    return demo.version_on(name) == "1.0.0" and not (sandbox / "releases" / "1.1.0").exists()


async def _deploy(engine: Engine, seen: list[ev.Event]) -> ev.Outcome:
    engine.subscribe(seen.append)
    return await asyncio.wait_for(engine.deploy("1.1.0"), 60)


async def _release(env: Path, state_dir: Path) -> tuple[ev.Outcome, list[ev.Event], Engine]:
    """Deploy 1.1.0 once, the connections closed after; what it said, and the engine."""
    engine = engine_for(env, state_dir)
    seen: list[ev.Event] = []
    try:
        outcome = await _deploy(engine, seen)
    finally:
        await engine.fleet.close()
    return outcome, seen, engine


def _finished(seen: list[ev.Event]) -> ev.WaveFinished:
    (wave,) = [e for e in seen if isinstance(e, ev.WaveFinished)]
    return wave


@pytest.mark.parametrize("on_failure", ["halt", "rollback"])
async def test_a_wave_stops_once_beyond_max_failures(
    demo: DemoFleet, state_dir: Path, tmp_path: Path, on_failure: str
) -> None:
    _break_all(demo)
    outcome, seen, engine = await _release(_env(demo, tmp_path, on_failure), state_dir)
    wave = _finished(seen)
    # max_failures 1: the second failure stops the wave; nothing more starts.
    assert len(wave.failed) == 2 and wave.succeeded == []
    assert sorted(wave.not_started) == sorted(set(demo.host_names) - set(wave.failed))
    assert len(wave.not_started) == 4
    for name in wave.not_started:
        assert _untouched(demo, name), name
    changed = {e.host for e in seen if isinstance(e, ev.StepResult)}
    assert changed == set(wave.failed)  # deploying and rolling back alike
    notice = next(e for e in seen if isinstance(e, ev.Notice) and e.level == "error")
    assert "more than max_failures (1): " in notice.message
    assert "4 of its hosts not started" in notice.message
    record = engine.journal.last_deployment("demo", "shop")
    assert record is not None
    journaled = engine.journal.events(record.id)
    stored = next(e for e in journaled if e["event"] == "wave_finished")
    assert sorted(stored["not_started"]) == sorted(wave.not_started)
    hosts = engine.journal.hosts(record.id)
    if on_failure == "halt":
        assert outcome is ev.Outcome.HALTED and record.is_open
        assert {hosts[n].state for n in wave.not_started} == {"pending"}
        assert {demo.version_on(n) for n in wave.failed} == {"1.1.0"}
    else:
        # Only the hosts the release reached are rolled back; the rest are idle again.
        assert outcome is ev.Outcome.PROMOTION_ROLLED_BACK and not record.is_open
        assert {hosts[n].state for n in wave.not_started} == {"idle"}
        assert {demo.version_on(n) for n in demo.host_names} == {"1.0.0"}


async def test_a_wave_where_every_host_failed_halts_within_max_failures(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """max_failures 6 tolerates every host failing; a wave where not one took the release
    halts all the same (it ended "complete (0 of 6 hosts)")."""
    _break_all(demo)
    outcome, seen, engine = await _release(_env(demo, tmp_path, "halt", max_failures=6), state_dir)
    assert outcome is ev.Outcome.HALTED
    wave = _finished(seen)
    assert len(wave.failed) == 6 and wave.succeeded == []
    notice = next(e for e in seen if isinstance(e, ev.Notice) and e.level == "error")
    assert notice.message.startswith(
        "every host of wave 1 failed, which max_failures (6) does not tolerate"
    ), notice.message
    record = engine.journal.last_deployment("demo", "shop")
    assert record is not None and record.is_open and record.outcome is None


async def test_the_only_host_of_a_release_failing_halts_it_within_max_failures(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """``--hosts web-06`` (no canary among them): its one host fails within max_failures
    (1): the release runs nowhere, so it halts (exit 4), never "complete (0 of 1
    hosts)"; a host failing alone in a wave is tolerated once another runs the release."""
    (demo.sandbox_of("web-06") / BROKEN).touch()
    env = _env(demo, tmp_path, "halt", max_failures=1)
    result = await run_cli("deploy", str(env), "1.1.0", "--hosts", "web-06")
    assert result.code == EXIT_PROMOTION_FAILED, result.out + result.err
    assert "every host of wave 1 failed" in result.out, result.out
    assert "complete" not in result.out.splitlines()[-1], result.out
    # Another host on the release: web-06 failing alone is within max_failures again.
    assert (await run_cli("rollback", str(env))).code == 0
    (demo.sandbox_of("web-05") / BROKEN).unlink(missing_ok=True)
    both = await run_cli("deploy", str(env), "1.1.0", "--hosts", "web-05,web-06")
    assert both.code == 0 and "every host of wave" not in both.out, both.out


async def test_with_ask_the_first_failure_stops_the_wave(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    _break_all(demo)
    outcome, seen, _ = await _release(_env(demo, tmp_path, "ask", max_failures=3), state_dir)
    assert outcome is ev.Outcome.HALTED
    wave = _finished(seen)
    assert len(wave.failed) == 1 and len(wave.not_started) == 5
    assert all(_untouched(demo, name) for name in wave.not_started)
    (question,) = [e for e in seen if isinstance(e, ev.FailureQuestion)]
    assert [f.host for f in question.failures] == wave.failed
    assert question.failures[0].step == "check"
    assert question.waiting == 5
    said = "\n".join(failure_lines(question, "ask.yaml"))
    assert "the wave stopped there: 5 of its hosts not started" in said


def test_a_host_lost_before_any_step_is_said_once_headless() -> None:
    """Headless, like the UI's dialog: a host lost before a step has its reason recorded
    as its output too; it is said once. A failed step's output is still shown under it."""
    reason = "web-05 (127.0.0.1:2222): unreachable: Connect call failed"
    question = ev.FailureQuestion(
        wave=2,
        waves=3,
        failures=[
            ev.HostFailure(host="web-05", step="", exit_status=None, output=reason, detail=reason),
            ev.HostFailure(host="web-06", step="restart", exit_status=1, output="a\nb\nc\nd"),
        ],
        skippable=0,
    )
    said = failure_lines(question, "ask.yaml")
    assert said[:5] == [
        "   web-05: unreachable: Connect call failed",  # (its name and address said once)
        "   web-06: step restart exited 1",
        "      | b",
        "      | c",
        "      | d",
    ], said


async def test_a_stopped_wave_goes_on_where_it_stopped(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Halted, fixed, retried: the failed hosts and those never started get the release."""
    _break_all(demo)
    engine = engine_for(_env(demo, tmp_path, "halt"), state_dir)
    seen: list[ev.Event] = []
    try:
        assert await _deploy(engine, seen) is ev.Outcome.HALTED
        for name in demo.host_names:
            (demo.sandbox_of(name) / BROKEN).unlink()
        outcome = await asyncio.wait_for(engine.promote(retry=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert {demo.version_on(n) for n in demo.host_names} == {"1.1.0"}
    first, second = [e for e in seen if isinstance(e, ev.WaveFinished)]
    assert len(first.not_started) == 4
    assert sorted(second.succeeded) == sorted(first.failed + first.not_started)
    assert second.failed == [] and second.not_started == []


async def test_a_wave_within_its_budget_deploys_every_host(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Failures at the budget do not stop the wave: every host is tried."""
    broken = demo.host_names[:2]
    for name in broken:
        (demo.sandbox_of(name) / BROKEN).touch()
    outcome, seen, _ = await _release(_env(demo, tmp_path, "halt", max_failures=2), state_dir)
    assert outcome is ev.Outcome.COMPLETE
    wave = _finished(seen)
    assert sorted(wave.failed) == sorted(broken) and wave.not_started == []
    assert len(wave.succeeded) == 4


async def test_the_command_line_says_the_wave_stopped(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    _break_all(demo)
    env = _env(demo, tmp_path, "halt")
    result = await run_cli("deploy", str(env), "1.1.0", state_dir=state_dir)
    assert result.code == EXIT_PROMOTION_FAILED, result.err
    assert "wave 1/1 done: 0 ok, 2 failed (web-01, web-02), 4 not started" in result.out
    assert "the wave stopped there: 4 of its hosts not started" in result.out
    assert [demo.version_on(n) for n in demo.host_names[2:]] == ["1.0.0"] * 4
    report = await run_cli("report", str(env), "--format", "json", state_dir=state_dir)
    timeline = [line["what"] for line in json.loads(report.out)["timeline"]]
    assert "wave 1/1 done: 0 ok, 2 failed (web-01, web-02), 4 not started" in timeline


def test_notifications_say_how_many_hosts_waited() -> None:
    stopped = ev.WaveFinished(
        wave=2,
        waves=3,
        succeeded=["web-01"],
        failed=["web-02", "web-03"],
        not_started=["web-04", "web-05"],
        deployment=7,
    )
    assert notify.summary(stopped, "prod", "2.0.0") == (
        "[prod] deployment #7 of 2.0.0: wave 2/3 done, 1 ok, 2 failed (web-02, web-03), "
        "2 not started"
    )
    whole = ev.WaveFinished(wave=1, waves=1, succeeded=["web-01"], failed=[], deployment=7)
    assert not notify.summary(whole, "prod", "2.0.0").endswith("not started")


async def test_a_promote_says_first_that_hosts_down_would_stop_it(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The command line's promote (no question to ask) says, before any wave, which of
    its hosts could not be locked again and where they would stop the rollout; a wave
    says its unreachable hosts apart from failed ones; the stop names every host counted,
    with its state, not only the last wave's, and so does the outcome."""

    def short(data: dict[str, Any]) -> None:
        data["ssh"]["connect_timeout"] = "1s"
        data["promote"]["max_failures"] = 1

    env = edit_env(demo.env_path, tmp_path / "short.yaml", short)
    deployed = await run_cli("deploy", str(env), "1.1.0", state_dir=state_dir)
    assert deployed.code == 0, deployed.err
    await demo.set_fault("web-04", "down")  # wave 2/3 (web-02; web-03, web-04; web-05, web-06)
    await demo.set_fault("web-06", "down")
    result = await run_cli("promote", str(env), state_dir=state_dir)
    assert result.code == EXIT_PROMOTION_FAILED, result.err
    lines = result.out.splitlines()
    warning = (
        "   [warning] web-04, web-06 unreachable now, more than promote.max_failures (1): if "
        "they do not answer by wave 3/3, the rollout stops there (on_failure: rollback)"
    )
    assert warning in lines
    assert lines.index(warning) < lines.index("-- promoting wave 1/3")
    assert "   wave 2/3 done: 1 ok, 1 unreachable (web-04)" in lines
    assert "   wave 3/3 done: 1 ok, 1 unreachable (web-06)" in lines
    assert (
        "   [error] 2 host(s) failed during promotion, more than max_failures (1): "
        "web-04, web-06 unreachable" in lines
    )
    # The outcome says why the engine rolled back, in the history and the report too.
    why = "4 host(s) rolled back from 1.1.0 after web-04, web-06 unreachable (max_failures 1)"
    assert f"-- promotion rolled back: {why}" in lines
    assert {demo.version_on(n) for n in ("web-01", "web-02", "web-03", "web-05")} == {"1.0.0"}
