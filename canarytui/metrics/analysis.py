"""Canary analysis: rules over the metrics -> a verdict with reasons and measured values.

Each canary is judged on its own (one bad server must be caught even among good ones);
the baseline is the non-canary sample taken together. Counters are compared as
increases over the analysis window. A rule with no data is not a failure unless it says
``must_have_data`` (data gaps are common; a gap must not roll back a good release).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from canarytui.config import Analysis, Rule
from canarytui.events import Measurement, Verdict
from canarytui.metrics.series import BUCKET_SEP, HostSeries


def rule_value(rule: Rule, series: Sequence[HostSeries]) -> float | None:
    """The rule's measure over one or more hosts (summed), or None without data."""
    if not series:
        return None
    if rule.quantile is not None:
        return _quantile(rule.quantile, rule.metric, series, rule.min_count)
    if rule.per:
        num = _sum(_increase_or_value(s, rule.metric) for s in series)
        den = _sum(_increase_or_value(s, rule.per) for s in series)
        if num is None or den is None or den <= 0 or den < rule.min_count:
            return None
        return num / den
    values = [_increase_or_value(s, rule.metric) for s in series]
    if series[0].is_counter(rule.metric):
        return _sum(values)
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _increase_or_value(s: HostSeries, key: str) -> float | None:
    return s.increase(key) if s.is_counter(key) else s.latest(key)


def _sum(values: object) -> float | None:
    present = [v for v in values if v is not None]  # type: ignore[attr-defined]
    return float(sum(present)) if present else None


def _quantile(
    q: float, metric: str, series: Sequence[HostSeries], min_count: int = 0
) -> float | None:
    """Prometheus' histogram_quantile over the buckets' increases."""
    buckets: dict[float, float] = {}
    for s in series:
        for key in s.bucket_keys(metric):
            inc = s.increase(key)
            if inc is None:
                continue
            le = float(key.rsplit(BUCKET_SEP, 1)[1])
            buckets[le] = buckets.get(le, 0.0) + inc
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[math.inf]
    if total <= 0 or total < min_count:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def measure(
    analysis: Analysis, canaries: Mapping[str, HostSeries], baseline: Mapping[str, HostSeries]
) -> list[Measurement]:
    """Every canary's health budget and every rule, as they stand now."""
    out: list[Measurement] = []
    for host, s in canaries.items():
        out.append(
            Measurement(
                rule="failed-checks",
                host=host,
                value=float(s.failed_checks),
                limit=f"<= {analysis.max_failed_checks}",
                passed=s.failed_checks <= analysis.max_failed_checks,
            )
        )
    base_values = {r.name: rule_value(r, list(baseline.values())) for r in analysis.rules}
    for rule in analysis.rules:
        base = base_values[rule.name]
        for host, s in canaries.items():
            value = rule_value(rule, [s])
            out.append(_judge(rule, host, value, base))
    return out


def _judge(rule: Rule, host: str, value: float | None, base: float | None) -> Measurement:
    limits = []
    passed: bool | None = True
    if rule.max is not None:
        limits.append(f"<= {rule.max:g}")
    if rule.max_vs_baseline is not None:
        if base is None or base <= 0:
            limits.append(f"<= {rule.max_vs_baseline:g}x baseline (no baseline value, skipped)")
        else:
            limits.append(
                f"<= {rule.max_vs_baseline:g}x baseline ({rule.max_vs_baseline * base:.4g})"
            )
    if value is None:
        passed = False if rule.must_have_data else None
    else:
        if rule.max is not None and value > rule.max:
            passed = False
        if (
            rule.max_vs_baseline is not None
            and base
            and base > 0
            and value > rule.max_vs_baseline * base
        ):
            passed = False
    limit = " and ".join(limits) + (", data required" if rule.must_have_data else "")
    return Measurement(
        rule=rule.name, host=host, value=value, limit=limit, passed=passed, baseline=base
    )


def verdict(
    measurements: Sequence[Measurement], rules: Sequence[Rule], canaries: Mapping[str, HostSeries]
) -> tuple[Verdict, list[str]]:
    failed = [m for m in measurements if m.passed is False]
    if failed:
        return Verdict.FAIL, [m.describe() for m in failed]
    if any(s.checks == 0 for s in canaries.values()):
        silent = [h for h, s in canaries.items() if s.checks == 0]
        return Verdict.INCONCLUSIVE, [f"{h}: no health check completed" for h in silent]
    rule_ms = [m for m in measurements if m.rule != "failed-checks"]
    if rules and rule_ms and all(m.passed is None for m in rule_ms):
        return Verdict.INCONCLUSIVE, [
            "no metrics data for any rule: " + ", ".join(sorted({m.rule for m in rule_ms}))
        ]
    reasons = [m.describe() for m in measurements]
    return Verdict.PASS, reasons
