"""One analysis as it runs: samples in, measurements out, and when to stop (no I/O here).

The engine feeds it the probes of the canaries and the baseline every interval; a bench
feeds it simulated ones. Samples taken during the warm-up are kept (they show on screen)
but not judged; the judged window starts when the warm-up ends. With ``early_fail``, the
analysis stops as soon as a rule has failed beyond doubt (at a stricter confidence than the
final verdict's, since it looks many times).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

from canarytui.config import Analysis
from canarytui.events import HealthSample, Measurement, Verdict
from canarytui.metrics import STOPPED
from canarytui.metrics import analysis as an
from canarytui.metrics.series import HostSeries


class AnalysisRun:
    """The analysis of some canaries against a baseline (and their own ``before``)."""

    def __init__(
        self,
        cfg: Analysis,
        canaries: Iterable[str],
        baseline: Iterable[str],
        *,
        started: float,
        before: Mapping[str, HostSeries] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.canaries = {h: HostSeries() for h in canaries}
        self.baseline = {h: HostSeries() for h in baseline}
        self.before = dict(before or {})
        self.started = started  # wall-clock time the canaries were healthy
        self.judged_from = started + cfg.warmup
        self.ends = started + cfg.watched
        self.measurements: list[Measurement] = []
        # The baseline's probes by time, and whether each got an answer: a canary's probe
        # that got none while the baseline got none either (within ``interval``) says this
        # machine lost the fleet, not that the release broke the canary.
        self.together = interval
        self._baseline_probes: list[tuple[float, bool]] = []
        # When each canary's probes got no answer (all of them: its series keeps only the
        # last ones, and a failed check once counted must stay decided by its own time).
        self._silent: dict[str, list[float]] = {h: [] for h in self.canaries}
        self.excused: dict[str, int] = {h: 0 for h in self.canaries}

    @property
    def hosts(self) -> list[str]:
        return [*self.canaries, *self.baseline]

    def add(self, sample: HealthSample) -> None:
        series = self.canaries.get(sample.host) or self.baseline.get(sample.host)
        if series is not None:
            series.add(sample)
        if sample.host in self.baseline:
            bisect.insort(self._baseline_probes, (sample.at, sample.ok is not None))
        elif sample.host in self._silent and sample.ok is None:
            self._silent[sample.host].append(sample.at)

    def _recount(self) -> None:
        """Each canary's failed checks, but for probes without an answer while every probe
        of the baseline around them had none either (``excused``: not the release's doing;
        without a baseline, every failed probe counts)."""
        probes = self._baseline_probes
        for host, series in self.canaries.items():
            excused = 0
            for at in self._silent[host]:
                low = bisect.bisect_left(probes, (at - self.together, False))
                high = bisect.bisect_right(probes, (at + self.together, True))
                around = probes[low:high]
                excused += bool(around) and not any(answered for _, answered in around)
            series.failed_checks += self.excused[host] - excused  # (counted as they came)
            self.excused[host] = excused

    def judging(self, now: float) -> bool:
        return now >= self.judged_from

    def check(self, now: float, probing: Mapping[str, float] | None = None) -> bool:
        """Measure what has come in; True when the analysis should stop now.
        ``probing``: the hosts whose probe is running, with when it began (``behind``)."""
        self._recount()
        over_budget = any(
            s.failed_checks > self.cfg.max_failed_checks for s in self.canaries.values()
        )
        done = now >= self.ends
        if self.judging(now) or over_budget:
            self.measurements = self._measure(done, self.behind(now, probing))
        if over_budget or done:
            return True
        return self.cfg.early_fail and an.early_failure(self.measurements)

    def finish(
        self, now: float | None = None, probing: Mapping[str, float] | None = None
    ) -> tuple[Verdict, list[str], list[Measurement]]:
        """The verdict on what was seen (the final look, at the rules' own confidence)."""
        self._recount()
        behind = self.behind(self.ends if now is None else now, probing)
        self.measurements = self._measure(True, behind)
        verdict, reasons = an.verdict(self.measurements, self.cfg.rules, self.canaries, behind)
        return verdict, reasons, self.measurements

    def behind(self, now: float, probing: Mapping[str, float] | None = None) -> dict[str, str]:
        """The canaries whose data stops short of ``now``, with why: their newest probe got
        no answer, or one has run for longer than an interval (a host that hangs answers
        nothing until its probe times out). What they said before is not compared with
        what the baseline says since: their rules wait for them (``an.measure``)."""
        out: dict[str, str] = {}
        for host, series in self.canaries.items():
            newest = series.samples[-1] if series.samples else None
            began = (probing or {}).get(host)
            slow = began is not None and now - began > self.together
            if not slow and (newest is None or newest.ok is not None):
                continue
            answered = next((s.at for s in reversed(series.samples) if s.ok is not None), None)
            out[host] = f"{STOPPED}: " + (
                f"no answer for {max(0.0, now - answered):.0f}s"
                if answered is not None
                else "no answer since the analysis began"
            )
        return out

    def _measure(self, final: bool, behind: Mapping[str, str]) -> list[Measurement]:
        return an.measure(
            self.cfg,
            self.canaries,
            self.baseline,
            start=self.judged_from,
            before=self.before,
            final=final,
            behind=behind,
            unanswered={h: len(t) - self.excused[h] for h, t in self._silent.items()},
        )
