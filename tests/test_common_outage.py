"""Probes that got no answer from a canary while the baseline's got none either: this
machine (or its network) lost the fleet, the release did not break the canary. They are
not counted against it; a failing check, or silence the baseline does not share, is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import edit_env, engine_for, wait_for

from canarytui import events as ev
from canarytui.config import Analysis
from canarytui.demo import DemoFleet
from canarytui.engine.canary import EXCUSED
from canarytui.events import HealthSample
from canarytui.metrics.run import AnalysisRun
from canarytui.metrics.series import SERIES_LIMIT


def unanswered(seen: list[ev.Event], host: str) -> int:
    return sum(
        1 for e in seen if isinstance(e, ev.HealthSample) and e.host == host and e.ok is None
    )


def sample(host: str, at: float, ok: bool | None) -> HealthSample:
    return HealthSample(host=host, ok=ok, latency=0.01, at=at)


def run_of(baseline: list[str]) -> AnalysisRun:
    cfg = Analysis(duration=3600.0, max_failed_checks=0, early_fail=False)
    return AnalysisRun(cfg, ["c"], baseline, started=0.0, interval=1.0)


def test_silence_the_baseline_shares_is_not_a_failed_check() -> None:
    run = run_of(["b1", "b2"])
    for at in (10.0, 11.0):
        run.add(sample("c", at, None))
        run.add(sample("b1", at + 0.2, None))
        run.add(sample("b2", at - 0.1, None))
    run.add(sample("c", 12.0, True))
    assert not run.check(12.5)  # within budget (0): nothing counted
    assert run.excused == {"c": 2}
    _, _, measurements = run.finish()
    budget = next(m for m in measurements if m.rule == "failed-checks")
    assert (budget.value, budget.passed) == (0.0, True)


def test_silence_the_baseline_does_not_share_or_a_failing_check_counts() -> None:
    run = run_of(["b1", "b2"])
    run.add(sample("c", 10.0, None))
    run.add(sample("b1", 10.1, None))
    run.add(sample("b2", 10.2, True))  # one baseline host answered: the fleet was there
    assert run.check(10.5)  # over budget: stopped
    assert run.excused == {"c": 0}
    failing = run_of(["b1"])
    failing.add(sample("c", 10.0, False))  # the check ran and failed: the release's doing
    failing.add(sample("b1", 10.0, None))
    assert failing.check(10.5) and failing.excused == {"c": 0}


def test_without_a_baseline_every_silent_probe_counts() -> None:
    run = run_of([])
    run.add(sample("c", 10.0, None))
    assert run.check(10.5)


def test_a_baseline_answer_that_comes_later_is_taken_into_account() -> None:
    """The baseline's probe may end after the canary's (it outlasted its round): what is
    excused is decided again at each look."""
    run = run_of(["b1"])
    run.add(sample("c", 10.0, None))
    run.add(sample("b1", 10.1, None))
    assert not run.check(10.2) and run.excused == {"c": 1}
    run.add(sample("b1", 10.5, True))  # b1 answered around it after all
    assert run.check(10.6) and run.excused == {"c": 0}


def test_an_outage_set_aside_stays_so_in_a_long_analysis() -> None:
    """A canary's series keeps its last samples only (``SERIES_LIMIT``): an outage early in
    a long analysis stays set aside once its samples have left it."""
    run = run_of(["b1"])
    run.add(sample("c", 10.0, None))
    run.add(sample("b1", 10.0, None))
    assert not run.check(10.5)
    for i in range(SERIES_LIMIT + 10):  # an hour later, the first samples are gone
        at = 20.0 + i
        run.add(sample("c", at, True))
        run.add(sample("b1", at, True))
    assert not run.check(20.0 + SERIES_LIMIT + 10)
    assert run.excused == {"c": 1} and run.canaries["c"].failed_checks == 0


async def test_the_fleet_lost_for_a_while_during_the_analysis_fails_no_good_release(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Every host gone for longer than the failed checks allowed (this machine's network
    down), then back: the good release passes, nothing is rolled back."""

    def longer(data: dict[str, Any]) -> None:
        data["canary"]["analysis"]["duration"] = "4s"

    engine = engine_for(edit_env(demo.env_path, tmp_path / "env.yaml", longer), state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        run = asyncio.ensure_future(engine.deploy("1.1.0"))
        await wait_for(lambda: any(isinstance(e, ev.AnalysisUpdate) for e in seen), 30, 0.01)
        for host in demo.host_names:
            await demo.set_fault(host, "down")
        # Longer than the failed checks allowed (2): four probes of the canary unanswered.
        await wait_for(lambda: unanswered(seen, "web-01") >= 4, 30, 0.01)
        for host in demo.host_names:
            await demo.set_fault(host, "up")
        outcome = await asyncio.wait_for(run, 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.CANARY_PASSED, outcome
    said = [e.message for e in seen if isinstance(e, ev.Notice)]
    assert EXCUSED in said, said
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert verdict.verdict is ev.Verdict.PASS, verdict.reasons
    assert demo.version_on("web-01") == "1.1.0"
