"""A canary that stops answering during its analysis: what it said before is not compared
with what the baseline says since (that measures the silence, not the release), and its
silence is never a pass. The verdict says it stopped answering, or fails on the checks it
left unanswered, not on a rule its frozen counters happen to break."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from conftest import edit_env, engine_for, wait_for

from canarytui import events as ev
from canarytui.config import Analysis, Rule
from canarytui.demo import DemoFleet
from canarytui.engine.canary import watch
from canarytui.events import HealthSample, Verdict
from canarytui.metrics.run import AnalysisRun

TRAFFIC = Rule(name="traffic", metric="http_requests_total", min_vs_baseline=0.5)
KEY = "values:http_requests_total"


def sample(host: str, at: float, requests: float | None) -> HealthSample:
    """A probe at ``at``: answered with the host's request counter, or (None) unanswered."""
    if requests is None:
        return HealthSample(host=host, ok=None, latency=3.0, at=at)
    metrics = {KEY: {"c:": requests}}
    return HealthSample(host=host, ok=True, latency=0.01, metrics=metrics, at=at)


def run_of(budget: int = 2, early_fail: bool = True) -> AnalysisRun:
    cfg = Analysis(duration=10.0, max_failed_checks=budget, early_fail=early_fail, rules=(TRAFFIC,))
    return AnalysisRun(cfg, ["c"], ["b1", "b2"], started=0.0, interval=1.0)


def serve(run: AnalysisRun, until: int, canary_until: int) -> None:
    """Every host serves 100 requests a second; the canary answers its probes only until
    ``canary_until``."""
    for t in range(until + 1):
        for host in ("b1", "b2"):
            run.add(sample(host, float(t), 100.0 * t))
        if t <= canary_until:
            run.add(sample("c", float(t), 100.0 * t))


def test_a_canary_that_hangs_is_not_failed_by_a_rule_on_its_frozen_counters() -> None:
    """Silent since 4 s, its probe running since (it hangs): at 8 s its counter stopped at
    400 while the baseline's reached 800, under the traffic rule's floor; that is the
    silence, not the release. The rule waits for it; nothing fails early on it."""
    run = run_of()
    serve(run, until=8, canary_until=4)
    assert not run.check(8.0, {"c": 4.5})
    traffic = next(m for m in run.measurements if m.rule == "traffic")
    assert traffic.state == "undecided", traffic
    assert traffic.note == "stopped answering: no answer for 4s", traffic.note
    # Without the probe running (it answered just now), the same data is judged.
    judged = run_of()
    serve(judged, until=8, canary_until=8)
    assert not judged.check(8.0, {})
    assert next(m for m in judged.measurements if m.rule == "traffic").state == "pass"


def test_its_unanswered_probes_fail_it_once_beyond_the_budget_and_the_verdict_says_so() -> None:
    run = run_of(budget=2)
    serve(run, until=4, canary_until=4)
    for at in (7.0, 10.0, 13.0):  # each probe times out after 3 s
        run.add(sample("c", at, None))
    assert run.check(13.0)  # over budget: stopped
    verdict, reasons, _ = run.finish(13.0)
    assert verdict is Verdict.FAIL
    assert reasons == ["c: failed-checks = 3, limit <= 2: FAIL (3 got no answer)"], reasons


def test_a_canary_silent_at_the_end_is_never_a_pass_whatever_it_said_before() -> None:
    """Its last probe got no answer, within the failed checks allowed: its rules passed on
    what it said before, and would have passed it."""
    run = run_of(budget=2, early_fail=False)
    serve(run, until=10, canary_until=9)
    run.add(sample("c", 10.5, None))
    assert run.check(10.5)  # the window is over
    verdict, reasons, measurements = run.finish(10.5)
    assert verdict is Verdict.INCONCLUSIVE
    assert reasons == [
        "c: stopped answering: no answer for 2s; what it said before is not judged"
    ], reasons
    assert next(m for m in measurements if m.rule == "traffic").state == "undecided"
    answered = run_of(budget=2, early_fail=False)
    serve(answered, until=10, canary_until=10)
    assert answered.check(10.5)
    assert answered.finish(10.5)[0] is Verdict.PASS


async def test_a_canary_that_hangs_late_in_its_analysis_is_not_passed(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The demo's canary hangs after its last probe but one: the verdict waits for the
    probe running at the end (it times out), says the canary stopped answering, and the
    deployment waits for the operator: nothing is promoted."""

    def short(data: dict[str, Any]) -> None:
        data["canary"]["analysis"].update(duration="3s", warmup="0s", early_fail=False)
        data["health"]["timeout"] = "1s"

    engine = engine_for(edit_env(demo.env_path, tmp_path / "env.yaml", short), state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        run = asyncio.ensure_future(engine.deploy("1.1.0", auto_promote=True))

        def answered() -> int:
            return sum(
                1
                for e in seen
                if isinstance(e, ev.HealthSample) and e.host == "web-01" and e.ok is not None
            )

        await wait_for(lambda: any(isinstance(e, ev.AnalysisStarted) for e in seen), 30, 0.01)
        await wait_for(lambda: answered() >= 2, 30, 0.01)
        await demo.set_fault("web-01", "hang")
        outcome = await asyncio.wait_for(run, 60)
    finally:
        await demo.set_fault("web-01", "up")
        await engine.fleet.close()
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert verdict.verdict in (Verdict.INCONCLUSIVE, Verdict.FAIL), verdict.reasons
    assert outcome is not ev.Outcome.COMPLETE, outcome
    blamed = [r for r in verdict.reasons if "traffic" in r or "error" in r or "latency" in r]
    assert not blamed, verdict.reasons
    assert any("no answer" in r or "got no answer" in r for r in verdict.reasons), verdict.reasons
    assert {demo.version_on(h) for h in demo.host_names[1:]} == {"1.0.0"}


class _Bus:
    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def emit(self, event: ev.Event) -> None:
        self.events.append(event)

    def notice(self, level: str, message: str) -> None:
        self.events.append(ev.Notice(level=level, message=message))


class _Prober:
    """Two canaries: ``bad`` answers with a failing check at once, ``hung`` never ends its
    probe (it would time out only much later)."""

    def __init__(self) -> None:
        self.began = {"hung": 0.0}
        self.settled: list[str] = []

    async def round(self, hosts: Any, within: float | None = None) -> list[HealthSample]:
        return [HealthSample(host="bad", ok=False, latency=0.01)]

    async def settle(self, hosts: Any) -> list[HealthSample]:
        self.settled.extend(hosts)
        return []

    def stop(self) -> None:
        pass


async def test_a_failing_verdict_is_not_held_back_by_a_canary_probe_still_running() -> None:
    """``bad`` is beyond its failed checks: the verdict fails now, without waiting for the
    probe of ``hung``; a verdict that could pass waits for it (the test above)."""
    cfg = Analysis(duration=60.0, max_failed_checks=0, rules=(TRAFFIC,))
    run = AnalysisRun(cfg, ["bad", "hung"], [], started=time.time(), interval=1.0)
    bus, prober = _Bus(), _Prober()
    ctx: Any = SimpleNamespace(bus=bus)
    verdict, reasons, _ = await asyncio.wait_for(watch(ctx, prober, run, 1.0, None), 10)
    assert verdict is Verdict.FAIL, reasons
    assert prober.settled == []
    assert reasons == ["bad: failed-checks = 1, limit <= 0: FAIL"], reasons
