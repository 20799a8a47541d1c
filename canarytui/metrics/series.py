"""Per-host time series of health samples (bounded), and what a window of them measures.

A counter is judged by its increase: per series, a drop is a restart (counted from zero)
and a series that appears while the host was already reporting started from zero (labelled
counters are created on first use). A histogram's quantile is Prometheus'
``histogram_quantile`` over the buckets' increases, summed by bound over the selected series.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from canarytui.events import HealthSample

SERIES_LIMIT = 600  # samples kept per host: 20 min at 2 s


@dataclass
class HostSeries:
    """One host's recent samples: health results and the picked series over time."""

    samples: deque[HealthSample] = field(default_factory=lambda: deque(maxlen=SERIES_LIMIT))
    failed_checks: int = 0
    checks: int = 0

    def add(self, sample: HealthSample) -> None:
        self.samples.append(sample)
        self.checks += 1
        if sample.ok is not True:
            self.failed_checks += 1

    def window(self, start: float | None = None) -> list[HealthSample]:
        """The samples since ``start`` (a wall-clock time), all of them without."""
        if start is None:
            return list(self.samples)
        return [s for s in self.samples if s.at >= start]

    def names(self) -> set[str]:
        """Reading keys seen in the window's samples (for "no series matched")."""
        keys: set[str] = set()
        for s in self.samples:
            keys.update(s.metrics)
        return keys


def increases(samples: Sequence[HealthSample], key: str) -> dict[str, float] | None:
    """Each series' increase over the samples; None without two samples carrying the key."""
    points = [s.metrics[key] for s in samples if key in s.metrics]
    if len(points) < 2:
        return None
    out: dict[str, float] = {}
    last: dict[str, float] = {}
    for index, values in enumerate(points):
        for series, value in values.items():
            before = last.get(series)
            if before is None:
                # New while the host was reporting: a counter created on first use.
                out[series] = out.get(series, 0.0) + (value if index > 0 else 0.0)
            else:
                out[series] = out.get(series, 0.0) + (value - before if value >= before else value)
            last[series] = value
    return out


def increase(samples: Sequence[HealthSample], key: str) -> float | None:
    found = increases(samples, key)
    return None if found is None else float(sum(found.values()))


def is_counter(samples: Sequence[HealthSample], key: str) -> bool:
    """Counters are judged by their increase, gauges by their latest value."""
    for s in reversed(samples):
        values = s.metrics.get(key)
        if values:
            return any(series.startswith("c:") or "|" in series for series in values)
    return True


def latest(samples: Sequence[HealthSample], key: str) -> float | None:
    """A gauge: the sum of the selected series in the last sample that had them."""
    for s in reversed(samples):
        if key in s.metrics:
            return float(sum(s.metrics[key].values()))
    return None


def bucket_counts(samples: Sequence[HealthSample], key: str) -> dict[float, float] | None:
    """The buckets' increases over the samples, summed by upper bound."""
    found = increases(samples, key)
    if found is None:
        return None
    counts: dict[float, float] = {}
    for series, inc in found.items():
        bound = float(series.split("|", 1)[0])
        counts[bound] = counts.get(bound, 0.0) + inc
    return counts


def pooled_buckets(groups: Iterable[dict[float, float] | None]) -> dict[float, float] | None:
    total: dict[float, float] = {}
    seen = False
    for counts in groups:
        if counts is None:
            continue
        seen = True
        for bound, count in counts.items():
            total[bound] = total.get(bound, 0.0) + count
    return total if seen else None


def quantile(q: float, counts: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over bucket counts (None without observations)."""
    if math.inf not in counts:
        return None
    bounds = sorted(counts)
    total = counts[math.inf]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = counts[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def above(limit: float, counts: dict[float, float]) -> float:
    """Observations above ``limit`` (interpolated inside its bucket, as quantiles are)."""
    total = counts.get(math.inf, 0.0)
    prev_bound, prev_count = 0.0, 0.0
    for bound in sorted(counts):
        count = counts[bound]
        if limit <= bound:
            if math.isinf(bound):
                return total - prev_count
            share = (limit - prev_bound) / (bound - prev_bound) if bound > prev_bound else 1.0
            return total - (prev_count + (count - prev_count) * max(0.0, min(1.0, share)))
        prev_bound, prev_count = bound, count
    return 0.0


def intervals(samples: Sequence[HealthSample]) -> list[list[HealthSample]]:
    """Consecutive pairs of samples: one per interval, for per-interval values."""
    return [list(samples[i - 1 : i + 1]) for i in range(1, len(samples))]
