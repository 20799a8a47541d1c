"""What a rule measures over a window of samples: one host's, the baseline's pooled, and
the per-interval values the statistical comparison uses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from canarytui.config import Rule
from canarytui.events import HealthSample
from canarytui.metrics.page import reading_key
from canarytui.metrics.series import (
    HostSeries,
    bucket_counts,
    increase,
    intervals,
    is_counter,
    latest,
    pooled_buckets,
    quantile,
)

Samples = Sequence[HealthSample]


@dataclass(frozen=True)
class Window:
    """A rule over a window: its value and what a test needs (None: no data)."""

    value: float | None
    events: float | None = None  # ratio: numerator; quantile: observations
    trials: float | None = None  # ratio: denominator; quantile: observations
    buckets: dict[float, float] | None = None
    counter: bool = True
    hosts: int = 1  # hosts pooled (the baseline)


def kind(rule: Rule) -> str:
    if rule.quantile is not None:
        return "quantile"
    return "ratio" if rule.per else "plain"


def window(rule: Rule, samples: Samples, min_count: int | None = None) -> Window:
    """One host's value of the rule over ``samples``."""
    return pooled(rule, [samples], min_count)


def pooled(rule: Rule, hosts: Iterable[Samples], min_count: int | None = None) -> Window:
    """Several hosts together (the baseline): ratios and histograms pooled, counters
    averaged per host, gauges averaged."""
    need = rule.min_count if min_count is None else min_count
    groups = [list(h) for h in hosts]
    key = reading_key(rule)
    match kind(rule):
        case "quantile":
            assert rule.quantile is not None
            counts = pooled_buckets(bucket_counts(s, key) for s in groups)
            total = counts.get(math.inf) if counts else None
            if counts is None or total is None or total <= 0 or total < need:
                return Window(None, total, total, counts, hosts=len(groups))
            return Window(quantile(rule.quantile, counts), total, total, counts, hosts=len(groups))
        case "ratio":
            per = reading_key(rule, per=True)
            num = _total(increase(s, key) for s in groups)
            den = _total(increase(s, per) for s in groups)
            if num is None or den is None or den <= 0 or den < need:
                return Window(None, num, den, hosts=len(groups))
            return Window(num / den, num, den, hosts=len(groups))
        case _:
            counter = all(is_counter(s, key) for s in groups if s)
            values = [increase(s, key) if counter else latest(s, key) for s in groups]
            present = [v for v in values if v is not None]
            if not present:
                return Window(None, counter=counter, hosts=len(groups))
            mean = sum(present) / len(present)
            return Window(mean, sum(present), None, counter=counter, hosts=len(present))


def _total(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(sum(present)) if present else None


def per_interval(rule: Rule, samples: Samples) -> list[float]:
    """The rule's value in each interval between two samples (for the statistical test)."""
    out = []
    for pair in intervals(samples):
        value = window(rule, pair, min_count=1).value
        if value is not None and math.isfinite(value):
            out.append(value)
    return out


def rule_value(
    rule: Rule, series: Sequence[HostSeries], start: float | None = None
) -> float | None:
    """The rule's measure over one or more hosts' recent samples (key metrics on screen)."""
    windows = [s.window(start) for s in series]
    if len(windows) == 1:
        return window(rule, windows[0]).value
    return pooled(rule, windows).value
