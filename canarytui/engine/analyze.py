"""Analysis without a deployment: the rules on the running fleet now, canaries against a baseline.

How an operator tunes rules before trusting them: the canaries (the file's, or chosen) are
watched against a baseline sample for ``analysis.duration`` (or the duration asked for)
exactly as the canary phase watches them, but nothing is deployed, no lock is taken and
nothing is journaled: the events carry no deployment. There is no warm-up (nothing was
restarted) and no ``before`` window, so ``compare_to: before`` rules are not measurable.
Each host's last page is diagnosed: which rules' selectors match nothing there, and why.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from canarytui import events as ev
from canarytui.config import Environment
from canarytui.engine.bus import Context
from canarytui.engine.canary import Prober, choose_baseline, watch
from canarytui.engine.discovery import discover_one
from canarytui.engine.plan import PlanError, make_plan
from canarytui.engine.supervise import each_host
from canarytui.metrics.analysis import too_few_intervals
from canarytui.metrics.diagnose import Finding, diagnose, why_no_page
from canarytui.metrics.run import AnalysisRun
from canarytui.textsafe import listed

NOT_MEASURABLE = "not measurable without a deployment"
_BASELINE_PICKS = 3  # times the baseline is picked again when some of it is unreachable


class CanaryUnreachable(Exception):
    """A canary to analyse cannot be reached; the message says which and why."""


@dataclass(frozen=True)
class Analyzed:
    """What ``analyze`` found; unpacks as ``(verdict, reasons, measurements)``."""

    verdict: ev.Verdict
    reasons: list[str]
    measurements: list[ev.Measurement]
    canaries: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)  # per host probed

    def __iter__(self) -> Iterator[Any]:
        # ``verdict, reasons, measurements = await engine.analyze()``, as the canary phase's.
        return iter((self.verdict, self.reasons, self.measurements))


def choose_canaries(env: Environment, canaries: Sequence[str] | None) -> list[str]:
    if not canaries and not env.default_canaries():
        raise PlanError(
            f"{env.path.name} has no canary section, so no default canaries: "
            "name some with --canary"
        )
    return make_plan(env, canaries).canaries


async def analyze(
    ctx: Context, canaries: Sequence[str] | None = None, duration: float | None = None
) -> Analyzed:
    """Watch ``canaries`` against a baseline for ``duration`` (default the file's); judge."""
    env = ctx.env
    chosen = choose_canaries(env, canaries)
    if duration is not None and duration <= 0:
        raise PlanError(f"the analysis must last some time, got {duration:g}s")
    cfg = env.canary.analysis
    before = [r for r in cfg.rules if r.compare_to == "before"]
    run_cfg = replace(
        cfg,
        rules=tuple(r for r in cfg.rules if r.compare_to != "before"),
        warmup=0.0,
        before=0.0,
        duration=cfg.duration if duration is None else duration,
    )

    def say(level: str, message: str) -> None:
        ctx.bus.emit(ev.Notice(level=level, message=message, deployment=None))

    versions = await _discover(ctx, chosen)
    down = [h for h in chosen if ctx.state.host_states.get(h) is ev.HostState.UNREACHABLE]
    if down:
        raise CanaryUnreachable(
            listed(
                [f"canary {h} is unreachable: {ctx.state.details.get(h, '')}" for h in down],
                3,
                "; ",
            )
        )
    baseline, lost = await _baseline(ctx, chosen, versions)
    if lost:
        why = ctx.state.details.get(lost[0], "")
        say("warning", f"left out of the baseline, unreachable: {listed(lost, 8)} ({why})")
    _describe(say, chosen, baseline, versions)
    if not cfg.rules:
        say("warning", "the file has no analysis rules: only the health checks are judged")
    for rule in before:
        say("info", f"rule {rule.name} (compare_to: before): {NOT_MEASURABLE}; left out")
    interval = cfg.interval or env.health.interval
    short = too_few_intervals(run_cfg.rules, run_cfg.duration, interval)
    if short is not None:
        say("warning", short)
    prober = Prober(ctx, cfg.rules)
    run = AnalysisRun(run_cfg, chosen, baseline, started=time.time(), interval=interval)
    ctx.state.watched = set(chosen) | set(baseline)
    try:
        verdict, reasons, measurements = await watch(ctx, prober, run, interval, None)
    finally:
        ctx.state.watched = set()
    measurements = measurements + [
        ev.Measurement(
            rule=rule.name,
            host=host,
            value=None,
            limit="compare_to: before",
            passed=None,
            status="not measurable",
            reference="before",
            note=NOT_MEASURABLE,
        )
        for rule in before
        for host in chosen
    ]
    findings: dict[str, list[Finding]] = {}
    for host in run.hosts:
        sample = prober.last.get(host)
        if sample is None or sample.ok is None:
            continue  # unreachable at the last probe: said by its samples, not a rule's fault
        why = why_no_page(env.health.metrics, sample.detail)
        findings[host] = diagnose(cfg.rules, prober.pages.get(host), why)
    return Analyzed(verdict, reasons, measurements, chosen, baseline, versions, findings)


async def _discover(ctx: Context, names: Sequence[str]) -> dict[str, str | None]:
    return await each_host(names, lambda name: discover_one(ctx, name))


async def _baseline(
    ctx: Context, canaries: list[str], versions: dict[str, str | None]
) -> tuple[list[str], list[str]]:
    """A baseline sample of reachable hosts, asked only (not the whole fleet) what they run;
    and the hosts picked for it that could not be reached (others picked in their place)."""
    baseline: list[str] = []
    for _ in range(_BASELINE_PICKS):
        baseline = choose_baseline(ctx, canaries, None)  # nothing deployed: hosts as they are
        unknown = [h for h in baseline if h not in versions]
        if not unknown:
            break
        versions.update(await _discover(ctx, unknown))
    states = ctx.state.host_states
    lost = [h for h in versions if h not in canaries and states.get(h) is ev.HostState.UNREACHABLE]
    return [h for h in baseline if h not in lost], lost


def _describe(
    say: Callable[[str, str], None],
    canaries: list[str],
    baseline: list[str],
    versions: dict[str, str | None],
) -> None:
    """Say what is compared with what: versions on each side, a mixed baseline."""
    if not baseline:
        say("warning", "no baseline host: rules relative to the baseline have no reference")
        return
    counts = Counter(versions.get(h) or "(no version)" for h in baseline)
    if len(counts) > 1:
        mixed = ", ".join(f"{v} on {n}" for v, n in counts.most_common())
        say("warning", f"the baseline runs several versions: {mixed}")
    base = {versions.get(h) for h in baseline}
    for host in canaries:
        mine = versions.get(host)
        if len(base) == 1 and mine in base:
            say("info", f"canary {host} runs the baseline's version ({mine or 'none'})")
        else:
            say("info", f"canary {host} runs {mine or '(no version)'}")
