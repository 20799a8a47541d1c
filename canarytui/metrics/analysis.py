"""Canary analysis: each rule judged on each canary -> measurements, and the verdict.

Each canary is judged on its own (one bad server must be caught among good ones); the
reference is the baseline hosts pooled, or the canary's own ``before`` samples. A failure
must be beyond doubt at the rule's confidence: an error ratio or a latency limit is tested
on the counts behind it (a handful of errors is not a failure), a statistical rule by its
test. A rule without data, or whose value is over a limit without that certainty, has no
verdict of its own: the analysis is then inconclusive (never a pass) unless the rule is
``optional``; ``must_have_data`` makes missing data a failure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from canarytui.config import Analysis, Rule
from canarytui.events import HealthSample, Measurement, Verdict
from canarytui.metrics import stats
from canarytui.metrics.measure import Window, kind, per_interval, pooled, window
from canarytui.metrics.series import HostSeries, above

MIN_INTERVALS = 5  # per-interval values needed on each side of a statistical comparison
# Early looks at a running analysis must be surer than the final one (they are many).
EARLY_STRICTNESS = 10.0

Samples = Sequence[HealthSample]


@dataclass(frozen=True)
class Reference:
    """What a canary is compared with: the baseline hosts, or its own samples before."""

    name: str  # "baseline" | "before"
    hosts: Sequence[Samples]


def too_few_intervals(rules: Sequence[Rule], duration: float, interval: float) -> str | None:
    """Why the statistical rules among ``rules`` can never be judged in ``duration`` (fewer
    per-interval values than a comparison needs: every verdict inconclusive), or None."""
    intervals = int(duration / interval + 1e-9)
    statistical = [r.name for r in rules if r.statistical]
    if intervals >= MIN_INTERVALS or not statistical:
        return None
    return (
        f"{duration:g}s is {intervals} interval(s) of {interval:g}s: statistical rules "
        f"({', '.join(statistical)}) need {MIN_INTERVALS} on each side (watch at least "
        f"{MIN_INTERVALS * interval:g}s)"
    )


def needs_baseline(rule: Rule) -> bool:
    """A rule judged against the baseline hosts (not the canary's own values before)."""
    against = rule.max_vs_baseline, rule.min_vs_baseline, rule.compare
    return rule.compare_to == "baseline" and any(x is not None for x in against)


def compared_with_baseline(rules: Sequence[Rule]) -> list[str]:
    """The rules (not optional) that a verdict cannot judge without baseline hosts."""
    return [r.name for r in rules if not r.optional and needs_baseline(r)]


def no_baseline(analysis: Analysis) -> str | None:
    """Why every verdict would be inconclusive for want of baseline hosts (``baseline: 0``
    with rules compared with them), or None."""
    compared = compared_with_baseline(analysis.rules)
    if analysis.baseline > 0 or not compared:
        return None
    return (
        f"canary.analysis.baseline is 0, and {', '.join(compared[:4])}"
        f"{' and more' if len(compared) > 4 else ''} compare(s) the canaries with baseline hosts"
    )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _confidence(rule: Rule, final: bool) -> float:
    if final:
        return rule.confidence
    return 1 - (1 - rule.confidence) / EARLY_STRICTNESS


def judge(
    rule: Rule,
    host: str,
    canary: Samples,
    reference: Reference,
    *,
    final: bool = True,
) -> Measurement:
    """One rule on one canary. ``final``: the window is over (else: only sure failures)."""
    conf = _confidence(rule, final)
    if rule.statistical:
        return _compare(rule, host, canary, reference, conf, final)
    mine = window(rule, canary)
    base = pooled(rule, reference.hosts) if reference.hosts else Window(None)
    checks = _limits(rule, base, conf)
    limit = " and ".join(text for text, _, _ in checks) or "none"
    common: dict[str, Any] = {
        "rule": rule.name,
        "host": host,
        "value": mine.value,
        "baseline": base.value,
        "limit": limit + (", data required" if rule.must_have_data else ""),
        "reference": reference.name,
        "recent": _recent(rule, canary),
        "band": _band(rule, reference),
    }
    if mine.value is None:
        status = _missing_status(rule, final)
        note = _missing(rule, mine)
        return Measurement(
            **common, passed=False if status == "fail" else None, status=status, note=note
        )
    statuses = []
    for text, bound, upper in checks:
        if bound is None:
            statuses.append(("no data", "no baseline value to compare with"))
            continue
        if not final and not upper and mine.counter and kind(rule) == "plain" and "x" not in text:
            # An absolute floor on a counter's increase: the window is still filling.
            if mine.value < bound:
                statuses.append(("undecided", "below the floor so far; the window is not over"))
                continue
        statuses.append(_check(rule, mine, bound, upper, conf))
    if any(s == "fail" for s, _ in statuses):
        note = next(n for s, n in statuses if s == "fail")
        return Measurement(**common, passed=False, status="fail", note=note)
    pending = [(s, n) for s, n in statuses if s != "pass"]
    if pending:
        status, note = pending[0]
        return Measurement(**common, passed=None, status=status, note=note)
    return Measurement(**common, passed=True, status="pass")


def _limits(rule: Rule, base: Window, conf: float) -> list[tuple[str, float | None, bool]]:
    """(text, bound, is an upper limit) for each limit the rule has.

    A limit relative to the baseline gives the baseline the benefit of its own doubt: the
    top of its interval for a ceiling, the bottom for a floor (a baseline with no error in
    a few hundred requests does not make one canary error a failure).
    """
    out: list[tuple[str, float | None, bool]] = []
    if rule.max is not None:
        out.append((f"<= {rule.max:g}", rule.max, True))
    for factor, upper, sign in (
        (rule.max_vs_baseline, True, "<="),
        (rule.min_vs_baseline, False, ">="),
    ):
        if factor is None:
            continue
        reference = _reference(rule, base, conf, upper)
        bound, shown = None, ""
        if reference is not None:
            bound = factor * reference
            shown = f" ({_fmt(bound)})"
            if base.value is not None and _fmt(reference) != _fmt(base.value):
                # Not the factor times the baseline's value shown beside it: say which end
                # of the baseline's range it was taken from.
                end = "high" if upper else "low"
                shown = f" ({_fmt(bound)} = {factor:g} x {_fmt(reference)}, its {end} end)"
        out.append((f"{sign} {factor:g}x baseline{shown}", bound, upper))
        if upper and rule.max is not None:
            out.insert(0, out.pop(0))
    if rule.min is not None:
        out.append((f">= {rule.min:g}", rule.min, False))
    return out


def _reference(rule: Rule, base: Window, conf: float, upper: bool) -> float | None:
    if base.value is None:
        return None
    match kind(rule):
        case "ratio":
            low, high = stats.wilson(base.events or 0.0, base.trials or 0.0, conf)
            return high if upper else low
        case "plain" if base.counter and base.events is not None and base.hosts:
            low, high = stats.poisson(base.events, conf)
            return (high if upper else low) / base.hosts
        case _:
            return base.value


def _check(rule: Rule, mine: Window, bound: float, upper: bool, conf: float) -> tuple[str, str]:
    """pass, fail (beyond doubt at ``conf``) or undecided, for one limit."""
    assert mine.value is not None
    beyond = mine.value > bound if upper else mine.value < bound
    if not beyond:
        return "pass", ""
    sure = _beyond_doubt(rule, mine, bound, upper, conf)
    if sure:
        return "fail", ""
    return (
        "undecided",
        f"{'over' if upper else 'under'} the limit, but not beyond doubt at {conf:g}",
    )


def _beyond_doubt(rule: Rule, mine: Window, bound: float, upper: bool, conf: float) -> bool:
    match kind(rule):
        case "ratio":
            low, high = stats.wilson(mine.events or 0.0, mine.trials or 0.0, conf)
            return low > bound if upper else high < bound
        case "quantile":
            assert rule.quantile is not None and mine.buckets is not None
            total = mine.trials or 0.0
            # The q-quantile is above the bound iff more than (1 - q) of the observations
            # are: test that share.
            share_above = above(bound, mine.buckets)
            low, high = stats.wilson(share_above, total, conf)
            tail = 1 - rule.quantile
            return low > tail if upper else high < tail
        case _:
            if not mine.counter:
                return True  # a gauge's latest value is what it is
            low, high = stats.poisson(mine.value or 0.0, conf)
            return low > bound if upper else high < bound


def _missing_status(rule: Rule, final: bool) -> str:
    """No data: a failure for a rule that requires data, but only once the window is over
    (the first looks of a running analysis have too few samples to have any)."""
    if not rule.must_have_data:
        return "no data"
    return "fail" if final else "undecided"


def _compare(
    rule: Rule, host: str, canary: Samples, reference: Reference, conf: float, final: bool
) -> Measurement:
    """Mann-Whitney on per-interval values: a shift beyond the tolerance, with confidence."""
    mine = per_interval(rule, canary)
    theirs = [v for samples in reference.hosts for v in per_interval(rule, samples)]
    tolerance = " and ".join(
        f"{'+' if up else '-'}{change} vs {reference.name}"
        for change, up in ((rule.max_increase, True), (rule.max_decrease, False))
        if change is not None
    )
    # The values shown are those the test compares (the medians of the per-interval
    # values), so the effect is their difference: the window's own quantile could differ
    # in sign from it.
    common: dict[str, Any] = {
        "rule": rule.name,
        "host": host,
        "value": stats.median(mine) if mine else window(rule, canary).value,
        "baseline": stats.median(theirs)
        if theirs
        else (pooled(rule, reference.hosts).value if reference.hosts else None),
        "limit": f"shift within {tolerance} (Mann-Whitney, {rule.confidence:g})",
        "reference": reference.name,
        "recent": mine[-1] if mine else None,
        "band": _band(rule, reference),
    }
    if len(mine) < MIN_INTERVALS or len(theirs) < MIN_INTERVALS:
        status = _missing_status(rule, final)
        return Measurement(
            **common,
            passed=False if status == "fail" else None,
            status=status,
            note=f"{len(mine)} interval values on the canary, {len(theirs)} "
            + ("on the baseline" if reference.name == "baseline" else "from before")
            + f": {MIN_INTERVALS} needed on each side",
        )
    relative = any(c is not None and c.percent for c in (rule.max_increase, rule.max_decrease))
    common["relative"] = relative
    effect = stats.shift(mine, theirs, relative)
    worst_p = 1.0
    outside = False
    for change, up in ((rule.max_increase, True), (rule.max_decrease, False)):
        if change is None:
            continue
        shifted = [change.bound(v, up) for v in theirs]
        if up:
            p = stats.mann_whitney_greater(mine, shifted)
            outside = outside or stats.shift(mine, shifted, False) > 0
        else:
            p = stats.mann_whitney_greater(shifted, mine)
            outside = outside or stats.shift(mine, shifted, False) < 0
        worst_p = min(worst_p, p)
    confidence = 1 - worst_p
    effect_value = effect if math.isfinite(effect) else None
    if confidence >= conf:
        return Measurement(
            **common, passed=False, status="fail", effect=effect_value, confidence=confidence
        )
    if outside:
        return Measurement(
            **common,
            passed=None,
            status="undecided",
            effect=effect_value,
            confidence=confidence,
            note=f"shift beyond the tolerance, but not beyond doubt at {conf:g}",
        )
    return Measurement(
        **common, passed=True, status="pass", effect=effect_value, confidence=confidence
    )


def _recent(rule: Rule, canary: Samples) -> float | None:
    return window(rule, list(canary[-2:]), min_count=1).value if len(canary) >= 2 else None


def _band(rule: Rule, reference: Reference) -> list[float] | None:
    values = [
        v
        for samples in reference.hosts
        if len(samples) >= 2
        and (v := window(rule, list(samples[-2:]), min_count=1).value) is not None
    ]
    return [min(values), max(values)] if values else None


def _missing(rule: Rule, mine: Window) -> str:
    if mine.trials is not None and mine.trials < rule.min_count:
        return f"{mine.trials:g} observed, {rule.min_count} needed (min_count)"
    return "no series matched, or fewer than two samples"


def measure(
    analysis: Analysis,
    canaries: Mapping[str, HostSeries],
    baseline: Mapping[str, HostSeries],
    *,
    start: float | None = None,
    before: Mapping[str, HostSeries] | None = None,
    final: bool = True,
    behind: Mapping[str, str] | None = None,
    unanswered: Mapping[str, int] | None = None,
) -> list[Measurement]:
    """Every canary's health budget and every rule, over the window since ``start``.

    ``behind``: canaries whose data stops short of now (why, for each): their rules are
    not judged (the baseline's data goes on, so a comparison would measure the silence,
    not the release) and wait, undecided, for them to answer. ``unanswered``: how many of
    each canary's failed checks got no answer at all."""
    out: list[Measurement] = []
    for host, s in canaries.items():
        silent = (unanswered or {}).get(host, 0)
        out.append(
            Measurement(
                rule="failed-checks",
                host=host,
                value=float(s.failed_checks),
                limit=f"<= {analysis.max_failed_checks}",
                passed=s.failed_checks <= analysis.max_failed_checks,
                note=f"{silent} got no answer" if silent else "",
            )
        )
    base = Reference("baseline", [s.window(start) for s in baseline.values()])
    late = behind or {}
    for rule in analysis.rules:
        for host, s in canaries.items():
            reference = base
            if rule.compare_to == "before":
                own = before.get(host) if before else None
                reference = Reference("before", [own.window()] if own else [])
            judged = judge(rule, host, s.window(start), reference, final=final)
            if host in late and judged.state in ("pass", "fail"):
                judged = replace(judged, passed=None, status="undecided", note=late[host])
            out.append(judged)
    return out


def verdict(
    measurements: Sequence[Measurement],
    rules: Sequence[Rule],
    canaries: Mapping[str, HostSeries],
    behind: Mapping[str, str] | None = None,
) -> tuple[Verdict, list[str]]:
    """fail (any failure), pass (every rule passed with data), else inconclusive: a canary
    ``behind`` (it stopped answering) is never a pass, whatever it said before."""
    failed = [m for m in measurements if m.state == "fail"]
    if failed:
        return Verdict.FAIL, [m.describe() for m in failed]
    silent = [h for h, s in canaries.items() if s.checks == 0]
    if silent:
        return Verdict.INCONCLUSIVE, [f"{h}: no health check completed" for h in silent]
    if behind:
        return Verdict.INCONCLUSIVE, [
            f"{h}: {why}; what it said before is not judged" for h, why in behind.items()
        ]
    optional = {r.name for r in rules if r.optional}
    open_ = [
        m
        for m in measurements
        if m.state != "pass" and not (m.rule in optional and m.state == "no data")
    ]
    if open_:
        return Verdict.INCONCLUSIVE, [m.describe() for m in open_]
    return Verdict.PASS, [m.describe() for m in measurements]


def early_failure(measurements: Sequence[Measurement]) -> bool:
    """A rule (or the health budget) failed beyond doubt while the analysis runs."""
    return any(m.state == "fail" for m in measurements)
