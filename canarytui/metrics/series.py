"""Prometheus text parsing and per-host time series of health samples (bounded)."""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from canarytui.config import Rule
from canarytui.events import HealthSample

SERIES_LIMIT = 600  # samples kept per host: 20 min at 2 s
BUCKET_SEP = "@"  # histogram buckets are kept as "<name>_bucket@<le>"


def wanted_metrics(rules: Iterable[Rule]) -> set[str]:
    """The metric families the rules read: only those are kept, to bound memory."""
    names: set[str] = set()
    for rule in rules:
        names.add(rule.metric)
        if rule.per:
            names.add(rule.per)
    return names


def parse_metrics(
    text: str, wanted: set[str] | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """Prometheus text -> (flat values summed over labels, family types).

    Counters are keyed by their sample name (``x_total``) and also by the family name;
    histogram buckets become ``x_bucket@LE`` so a quantile can be computed from them.
    Raises ValueError on text that is not the Prometheus format (whatever the parser
    raised: the text comes from a host).
    """
    try:
        return _parse(text, wanted)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise ValueError(f"not Prometheus text: {type(exc).__name__}: {exc}"[:300]) from None


def _parse(text: str, wanted: set[str] | None) -> tuple[dict[str, float], dict[str, str]]:
    values: dict[str, float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        if wanted is not None and not _family_wanted(family.name, wanted):
            continue
        for sample in family.samples:
            key = sample.name
            if sample.name.endswith("_bucket") and "le" in sample.labels:
                bound = _bound(sample.labels["le"])
                if bound is None:
                    continue  # a bucket without a numeric bound cannot be used
                key = f"{sample.name}{BUCKET_SEP}{bound}"
            value = float(sample.value)
            if math.isnan(value):
                continue
            values[key] = values.get(key, 0.0) + value
            types[key] = family.type
            if family.type == "counter" and sample.name.endswith("_total"):
                # Rules may name a counter with or without its `_total` suffix.
                values[family.name] = values[key]
                types[family.name] = "counter"
    return values, types


def _bound(le: str) -> str | None:
    """The bucket's bound as the host wrote it, if it is a number (``0.5``, ``+Inf``)."""
    try:
        value = float(le)
    except ValueError:
        return None
    return None if math.isnan(value) else le


def _family_wanted(family: str, wanted: set[str]) -> bool:
    return any(w == family or w.startswith(family + "_") for w in wanted)


@dataclass
class HostSeries:
    """One host's recent samples: health results and metric values over time."""

    samples: deque[HealthSample] = field(default_factory=lambda: deque(maxlen=SERIES_LIMIT))
    types: dict[str, str] = field(default_factory=dict)
    failed_checks: int = 0
    checks: int = 0

    def add(self, sample: HealthSample, types: dict[str, str] | None = None) -> None:
        self.samples.append(sample)
        self.checks += 1
        if sample.ok is not True:
            self.failed_checks += 1
        if types:
            self.types.update(types)

    def increase(self, key: str) -> float | None:
        """A counter's increase over the series; a drop is a restart (counted from 0)."""
        points = [s.metrics[key] for s in self.samples if key in s.metrics]
        if len(points) < 2:
            return None
        total = 0.0
        for before, after in itertools.pairwise(points):
            total += after - before if after >= before else after
        return total

    def latest(self, key: str) -> float | None:
        for s in reversed(self.samples):
            if key in s.metrics:
                return s.metrics[key]
        return None

    def bucket_keys(self, metric: str) -> list[str]:
        prefix = f"{metric}_bucket{BUCKET_SEP}"
        keys: set[str] = set()
        for s in self.samples:
            keys.update(k for k in s.metrics if k.startswith(prefix))
        return sorted(keys)

    def is_counter(self, key: str) -> bool:
        kind = self.types.get(key)
        if kind is None:
            return key.endswith(("_total", "_count", "_sum", "_bucket"))
        return kind in ("counter", "histogram", "summary")
