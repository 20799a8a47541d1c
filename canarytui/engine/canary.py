"""The canary phase: deploy the canaries, watch them against a baseline, reach a verdict."""

from __future__ import annotations

import asyncio
import time

from canarytui import events as ev
from canarytui.engine.bus import Context
from canarytui.engine.hosts import HostWork
from canarytui.engine.plan import pick_baseline
from canarytui.engine.supervise import each_host
from canarytui.metrics import analysis as an
from canarytui.metrics.series import HostSeries, wanted_metrics
from canarytui.metrics.sources import probe


class CanaryPhase:
    """Runs the canary phase of the deployment in the context's state."""

    def __init__(self, ctx: Context, hosts: HostWork) -> None:
        self.ctx = ctx
        self.hosts = hosts
        self._wanted = wanted_metrics(ctx.env.canary.analysis.rules)

    async def run(self) -> ev.Verdict:
        """Deploy the canaries; a canary that fails to deploy is a failed verdict."""
        ctx = self.ctx
        d = ctx.state.deployment
        assert d is not None
        ctx.bus.phase(ev.Phase.CANARY)
        ctx.state.watched = set(d.canaries)
        ok = await self.hosts.deploy_many(d.canaries, d.version)
        failed = [h for h, good in ok.items() if not good]
        if not failed:
            return await self.analyse()
        ctx.bus.emit(
            ev.VerdictReached(
                verdict=ev.Verdict.FAIL,
                reasons=[
                    f"{h}: deploy {ctx.state.host_states[h].value}: {ctx.state.details.get(h, '')}"
                    for h in failed
                ],
                measurements=[],
                deployment=d.id,
            )
        )
        return ev.Verdict.FAIL

    async def analyse(self) -> ev.Verdict:
        """Probe canaries and baseline every interval for the analysis window; judge."""
        ctx = self.ctx
        state = ctx.state
        d = state.deployment
        assert d is not None
        cfg = ctx.env.canary.analysis
        ctx.bus.phase(ev.Phase.ANALYSIS)
        deployed = set(d.canaries)
        candidates = [
            h
            for h in ctx.env.host_names
            if h not in deployed and state.host_states.get(h) != ev.HostState.UNREACHABLE
        ]
        baseline = pick_baseline(candidates, cfg.baseline)
        state.watched = set(d.canaries) | set(baseline)
        ctx.bus.emit(
            ev.AnalysisStarted(
                canaries=d.canaries, baseline=baseline, duration=cfg.duration, deployment=d.id
            )
        )
        canary_series = {h: HostSeries() for h in d.canaries}
        base_series = {h: HostSeries() for h in baseline}
        interval = ctx.env.health.interval
        started = time.monotonic()
        deadline = started + cfg.duration
        measurements: list[ev.Measurement] = []
        while True:
            tick = time.monotonic()
            await self.probe_round(canary_series, base_series)
            measurements = an.measure(cfg, canary_series, base_series)
            elapsed = min(time.monotonic() - started, cfg.duration)
            ctx.bus.emit(
                ev.AnalysisUpdate(
                    elapsed=elapsed,
                    duration=cfg.duration,
                    measurements=measurements,
                    deployment=d.id,
                )
            )
            over_budget = [
                h for h, s in canary_series.items() if s.failed_checks > cfg.max_failed_checks
            ]
            if over_budget or time.monotonic() >= deadline:
                break
            await asyncio.sleep(
                max(0.0, min(interval - (time.monotonic() - tick), deadline - time.monotonic()))
            )
        verdict, reasons = an.verdict(measurements, cfg.rules, canary_series)
        ctx.bus.emit(
            ev.VerdictReached(
                verdict=verdict, reasons=reasons, measurements=measurements, deployment=d.id
            )
        )
        state.watched = set()
        return verdict

    async def probe_round(self, *groups: dict[str, HostSeries]) -> None:
        """One probe of every host in the groups, at once; each sample goes out as an event."""
        series = {h: s for group in groups for h, s in group.items()}

        async def one(name: str) -> None:
            sample, types = await probe(self.ctx.fleet, self.ctx.env, name, wanted=self._wanted)
            series[name].add(sample, types)
            self.ctx.bus.emit(sample)

        await each_host(series, one)
