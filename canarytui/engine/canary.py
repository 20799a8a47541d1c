"""The canary phase: probe the canaries first (``before``), deploy them, watch them against
a baseline for the analysis window, reach a verdict (early when a rule fails beyond doubt)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

from canarytui import events as ev
from canarytui.config import Rule
from canarytui.engine import outage
from canarytui.engine.bus import Context
from canarytui.engine.discovery import discover_one
from canarytui.engine.hooks import fire
from canarytui.engine.hosts import HostWork
from canarytui.engine.plan import pick_baseline
from canarytui.engine.start import StartRefused
from canarytui.engine.supervise import HostWorkFailed, each_host
from canarytui.metrics.analysis import early_failure
from canarytui.metrics.page import Page, picks
from canarytui.metrics.run import AnalysisRun
from canarytui.metrics.series import HostSeries
from canarytui.metrics.sources import probe
from canarytui.ssh import without_host
from canarytui.textsafe import harmless, listed

# Said once an analysis has set aside a canary's probes that got no answer while the
# baseline's got none either (``AnalysisRun.excused``).
EXCUSED = (
    "probes of the canaries got no answer while the baseline's got none either: not "
    "counted as failed checks (this machine, or its network, lost the fleet for a while)"
)


class CanaryPhase:
    """Runs the canary phase of the deployment in the context's state."""

    def __init__(self, ctx: Context, hosts: HostWork) -> None:
        self.ctx = ctx
        self.hosts = hosts
        self.prober = Prober(ctx, ctx.env.canary.analysis.rules)

    @property
    def interval(self) -> float:
        return self.ctx.env.canary.analysis.interval or self.ctx.env.health.interval

    async def run(self, kept: Sequence[str] = ()) -> ev.Verdict:
        """Deploy the canaries; a canary that fails to deploy is a failed verdict.

        ``kept``: the phase of a deployment stopped before its verdict, run again: these
        canaries (``still_on``) keep the release (deployed again, they would restart for
        nothing; the rules that compare with ``before`` have no values of them), the
        others get it; a whole new analysis follows, its warmup first."""
        ctx = self.ctx
        d = ctx.state.deployment
        assert d is not None
        todo = [h for h in d.canaries if h not in kept]
        if kept and any(r.compare_to == "before" for r in ctx.env.canary.analysis.rules):
            ctx.bus.notice(
                "warning",
                f"{listed(kept, 8)} run(s) {d.version} already: the rules compared with a "
                "canary's own values before have none of them",
            )
        before = await self.before(todo)
        ctx.bus.phase(ev.Phase.CANARY)
        ctx.state.watched = set(d.canaries)
        ok = await self.hosts.deploy_many(todo, d.version)
        failed = [h for h, good in ok.items() if not good]
        if not failed:
            # Users reach the canaries once they run the release and are healthy; a
            # failing hook raises HookFailed before any analysis (the engine halts).
            await fire(ctx, "canary_start", d.canaries)
            return await self.analyse(before)
        asked = await outage.lost_from_here(ctx, failed)
        if asked:
            raise outage.FleetLost(outage.lost_said(failed, asked, None))
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

    async def still_on(self) -> list[str]:
        """Before the phase runs again: the canaries the journal has on the release that
        still say they run it (one round trip each); one changed by hand since is deployed
        again rather than judged on another release. A canary that does not answer raises
        ``StartRefused``, nothing changed: the analysis would fail it for that alone."""
        ctx = self.ctx
        d = ctx.state.deployment
        assert d is not None
        running = await each_host(d.canaries, lambda name: discover_one(ctx, name))
        down = [h for h in d.canaries if h in ctx.state.refused]
        if down:
            said = without_host(ctx.env.host(down[0]), ctx.state.details.get(down[0], ""))
            why = harmless(said, 300)  # (the SSH error's text may quote the host)
            raise StartRefused(
                f"canary {listed(down, 8)} does not answer ({why}): its analysis cannot run "
                "again; nothing was changed (try again once it answers, or roll back)"
            )
        done = [h for h in d.canaries if ctx.state.host_states.get(h) is ev.HostState.DEPLOYED]
        changed = [h for h in done if running[h] != d.version]
        if changed:
            ctx.bus.notice(
                "warning",
                f"{listed(changed, 8)} do(es) not say {d.version} any more: deployed again",
            )
        return [h for h in done if h not in changed]

    async def before(self, canaries: list[str]) -> dict[str, HostSeries]:
        """``analysis.before``: the canaries as they are, for rules that compare_to: before."""
        seconds = self.ctx.env.canary.analysis.before
        series = {h: HostSeries() for h in canaries}
        if seconds <= 0 or not canaries:
            return series
        self.ctx.bus.notice(
            "info", f"probing {', '.join(canaries)} for {seconds:g}s before deploying them"
        )
        self.ctx.state.watched = set(canaries)
        deadline = time.monotonic() + seconds
        while True:
            tick = time.monotonic()
            for sample in await self.probe_round(canaries):
                series[sample.host].add(sample)
            if time.monotonic() >= deadline:
                return series
            await asyncio.sleep(
                max(
                    0.0, min(self.interval - (time.monotonic() - tick), deadline - time.monotonic())
                )
            )

    async def analyse(self, before: dict[str, HostSeries]) -> ev.Verdict:
        """Probe canaries and baseline every interval for the analysis window; judge."""
        ctx = self.ctx
        state = ctx.state
        d = state.deployment
        assert d is not None
        cfg = ctx.env.canary.analysis
        ctx.bus.phase(ev.Phase.ANALYSIS)
        baseline = choose_baseline(ctx, d.canaries, d.version, d.planned_hosts)
        state.watched = set(d.canaries) | set(baseline)
        run = AnalysisRun(
            cfg, d.canaries, baseline, started=time.time(), before=before, interval=self.interval
        )
        verdict, _, _ = await watch(ctx, self.prober, run, self.interval, d.id)
        state.watched = set()
        return verdict

    async def probe_round(self, hosts: Iterable[str]) -> list[ev.HealthSample]:
        """One probe of every host at once; each sample goes out as an event."""
        return await self.prober.round(hosts)


def choose_baseline(
    ctx: Context,
    canaries: Iterable[str],
    version: str | None,
    among: Sequence[str] | None = None,
) -> list[str]:
    """The baseline sample, spread over the fleet (``among``: the deployment's hosts, None:
    the file's): reachable hosts that are not canaries and do not run the release
    (``version``) already, a baseline being the release before it. When every such host
    runs it (a release deployed again: said as a warning when it starts), or with no
    ``version`` (``analyze``), hosts as they are."""
    skip = set(canaries)
    candidates = [
        h
        for h in (ctx.env.host_names if among is None else among)
        if h not in skip and ctx.state.host_states.get(h) != ev.HostState.UNREACHABLE
    ]
    before = [h for h in candidates if version is None or ctx.state.versions.get(h) != version]
    return pick_baseline(before or candidates, ctx.env.canary.analysis.baseline)


class Prober:
    """Probes hosts in rounds for the rules' metrics; keeps each host's last probe.

    A host's probe may outlast its round (``within``): it goes on, the host is not probed
    again until it ends, and its sample comes with a later round. A slow or hung host is
    so sampled less often, and never holds the others' samples back."""

    def __init__(self, ctx: Context, rules: Iterable[Rule]) -> None:
        self.ctx = ctx
        self.wanted = picks(rules)
        self.pages: dict[str, Page | None] = {}  # each host's last page (None: it gave none)
        self.last: dict[str, ev.HealthSample] = {}
        self._probing: dict[str, asyncio.Task[ev.HealthSample]] = {}
        self.began: dict[str, float] = {}  # when each running probe began (wall clock)

    async def round(
        self, hosts: Iterable[str], within: float | None = None
    ) -> list[ev.HealthSample]:
        """A probe of every host not still probing, at once; the samples that came in once
        every probe ended, or ``within`` seconds. Each sample goes out as an event."""
        for name in dict.fromkeys(hosts):
            if name not in self._probing:
                self._probing[name] = asyncio.ensure_future(self._one(name))
                self.began[name] = time.time()
        if not self._probing:
            return []
        try:
            await asyncio.wait(list(self._probing.values()), timeout=within)
        except BaseException:
            self.stop()
            raise
        return self._ended(list(self._probing))

    async def settle(self, hosts: Iterable[str]) -> list[ev.HealthSample]:
        """The samples of the probes of ``hosts`` still running, once they have ended."""
        running = [h for h in hosts if h in self._probing]
        if running:
            await asyncio.wait([self._probing[h] for h in running])
        return self._ended(running)

    def _ended(self, names: Iterable[str]) -> list[ev.HealthSample]:
        """The samples of the probes of ``names`` that have ended (no longer running)."""
        samples = []
        for name in names:
            task = self._probing[name]
            if not task.done():
                continue
            del self._probing[name], self.began[name]
            error = task.exception()
            if error is not None:  # not a host's outcome (those are samples): a bug
                self.stop()
                raise HostWorkFailed(name, error) from error
            samples.append(task.result())
        return samples

    def stop(self) -> None:
        """Cancel the probes still running (their round is over, and the analysis too)."""
        for task in self._probing.values():
            task.cancel()
        self._probing.clear()
        self.began.clear()

    async def _one(self, name: str) -> ev.HealthSample:
        found = await probe(self.ctx.fleet, self.ctx.env, name, wanted=self.wanted)
        self.pages[name] = found.page
        self.last[name] = found.sample
        self.ctx.bus.emit(found.sample)
        return found.sample


async def watch(
    ctx: Context, prober: Prober, run: AnalysisRun, interval: float, deployment: int | None
) -> tuple[ev.Verdict, list[str], list[ev.Measurement]]:
    """Probe the run's hosts every interval until it stops; the verdict goes out as an event.

    Shared by the canary phase and ``analyze`` (no deployment: ``deployment`` None, so
    nothing is journaled).
    """
    total = run.cfg.watched
    ctx.bus.emit(
        ev.AnalysisStarted(
            canaries=list(run.canaries),
            baseline=list(run.baseline),
            duration=total,
            deployment=deployment,
        )
    )
    started = time.monotonic()
    excused_said = False
    try:
        while True:
            tick = time.monotonic()
            # A round waits for its probes until the next is due, or the window ends; the
            # round that reads the window's end (started at it) waits its whole interval.
            last = time.time() >= run.ends
            within = interval if last else max(0.0, min(interval, run.ends - time.time()))
            for sample in await prober.round(run.hosts, within):
                run.add(sample)
            stop = run.check(time.time(), prober.began)
            if sum(run.excused.values()) and not excused_said:
                excused_said = True
                ctx.bus.notice("warning", EXCUSED)
            ctx.bus.emit(
                ev.AnalysisUpdate(
                    elapsed=min(time.monotonic() - started, total),
                    duration=total,
                    measurements=run.measurements,
                    deployment=deployment,
                )
            )
            if stop and (last or time.time() < run.ends):  # stopped early, or the end read
                break
            await asyncio.sleep(
                max(0.0, min(interval - (time.monotonic() - tick), run.ends - time.time()))
            )
        # A verdict that can still pass waits for the canaries' probes still running (each
        # ends by its own timeout): it is made on what each says at the end, or on its
        # silence. A failure is not held back by them.
        if not early_failure(run.measurements):
            for sample in await prober.settle(run.canaries):
                run.add(sample)
    finally:
        prober.stop()
    verdict, reasons, measurements = run.finish(time.time())
    ctx.bus.emit(
        ev.VerdictReached(
            verdict=verdict, reasons=reasons, measurements=measurements, deployment=deployment
        )
    )
    return verdict, reasons, measurements
