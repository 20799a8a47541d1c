"""One host's metrics page (Prometheus text) -> the series the rules' selectors pick.

Parsing is ``prometheus_client``'s own parser. Only what the rules read is kept: for each
selector, the matching series' values, keyed by name and labels (``c:`` for counters, ``g:``
for gauges). A selector names a sample (``http_requests_total``), a counter's family
(``http_requests``), or a histogram: with a quantile its ``_bucket`` series are taken
(keyed ``LE|name{labels}``), without one its ``_count``. Every name on the page is remembered
(bounded), so a rule that matches nothing can be told which names exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from canarytui.config import Rule
from canarytui.config.selector import Selector

_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_COUNTERS = ("counter", "histogram", "summary", "gaugehistogram")
NAMES_KEPT = 5000  # distinct sample names remembered per page, for "did you mean"
BUCKETS = "buckets"
VALUES = "values"

Readings = dict[str, dict[str, float]]  # reading key -> {series key: value}


@dataclass(frozen=True)
class Pick:
    """What to take from a page for one selector: its buckets, or its values."""

    selector: Selector
    kind: str  # BUCKETS | VALUES

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.selector}"


def picks(rules: Iterable[Rule]) -> list[Pick]:
    """Everything the rules read, once each."""
    out: dict[str, Pick] = {}
    for rule in rules:
        kind = BUCKETS if rule.quantile is not None else VALUES
        for selector in (rule.selector, rule.per_selector):
            if selector is not None:
                pick = Pick(selector, kind if selector is rule.selector else VALUES)
                out.setdefault(pick.key, pick)
    return list(out.values())


def reading_key(rule: Rule, per: bool = False) -> str:
    if per:
        assert rule.per_selector is not None
        return Pick(rule.per_selector, VALUES).key
    return Pick(rule.selector, BUCKETS if rule.quantile is not None else VALUES).key


@dataclass
class Page:
    """The series the picks selected, and the names the page had."""

    readings: Readings = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    labels: dict[str, set[str]] = field(default_factory=dict)  # label names per sample name


def series_key(labels: Mapping[str, str], skip: str | None = None) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != skip)


def series_text(key: str) -> tuple[str, float, str]:
    """A reading's key as the series reads on a metrics page: ``name{labels}``, a bucket's
    ``le`` last, as prometheus_client writes it (no labels: the name alone). Returned as
    (the series without ``le``, the bucket's bound or 0, the text): sorted, a histogram's
    buckets come in their order."""
    series, bound, le = key, 0.0, None
    if key[:2] in ("c:", "g:"):
        series = key[2:]
    elif "|" in key:
        head, series = key.split("|", 1)
        try:
            bound = float(head)
        except ValueError:
            return key, 0.0, key
        le = "+Inf" if math.isinf(bound) else head
    if le is not None and series.endswith("}"):
        shown = f'{series[:-1]}{"" if series.endswith("{}") else ","}le="{le}"}}'
    else:
        shown = series
    return series, bound, shown.removesuffix("{}")


def _sample_names(selector: Selector, kind: str, family_type: str) -> set[str]:
    name = selector.name
    if kind == BUCKETS:
        return {f"{name}_bucket"}
    names = {name}
    if family_type == "counter":
        names.add(f"{name}_total")
    if family_type in ("histogram", "summary", "gaugehistogram"):
        names.add(f"{name}_count")
    return names


def parse_page(text: str, wanted: list[Pick]) -> Page:
    """Raises ValueError on text that is not the Prometheus format (whatever the parser
    raised: the text comes from a host)."""
    try:
        return _parse(text, wanted)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise ValueError(f"not Prometheus text: {type(exc).__name__}: {exc}"[:300]) from None


def _parse(text: str, wanted: list[Pick]) -> Page:
    # Imported on the first page read, not at start: it brings http.server and email with
    # it (~35 ms of an interface's first screen).
    from prometheus_client.parser import text_string_to_metric_families

    page = Page()
    by_name: dict[str, list[Pick]] = {}
    for pick in wanted:
        name = pick.selector.name
        stems = {name} | {name.removesuffix(x) for x in _SUFFIXES if name.endswith(x)}
        for stem in stems:
            by_name.setdefault(stem, []).append(pick)
    for family in text_string_to_metric_families(text):
        relevant = by_name.get(family.name, [])
        counter = family.type in _COUNTERS
        for sample in family.samples:
            if len(page.names) < NAMES_KEPT:
                page.names.add(sample.name)
            value = float(sample.value)
            if math.isnan(value):
                continue
            for pick in relevant:
                if sample.name not in _sample_names(pick.selector, pick.kind, family.type):
                    continue
                counted = counter or sample.name.endswith(_SUFFIXES)
                add_sample(page, pick, sample.name, sample.labels, value, counted)
    return page


def add_sample(
    page: Page, pick: Pick, name: str, labels: Mapping[str, str], value: float, counter: bool
) -> None:
    """One sample into ``pick``'s reading. The series exists on the page (a selector that
    matches none of it is zero, e.g. no 5xx yet), unlike a metric the page does not have at
    all; a bucket without a numeric bound cannot be used."""
    bucket = page.readings.setdefault(pick.key, {})
    seen = page.labels.setdefault(name, set())
    if len(seen) < 100:
        seen.update(k for k in labels if k != "le")
    if pick.kind == BUCKETS:
        bound = _bound(labels.get("le"))
        rest = {k: v for k, v in labels.items() if k != "le"}
        if bound is None or not pick.selector.matches(rest):
            return
        key = f"{bound}|{name}{{{series_key(rest)}}}"
    elif pick.selector.matches(labels):
        key = f"{'c' if counter else 'g'}:{name}{{{series_key(labels)}}}"
    else:
        return
    bucket[key] = bucket.get(key, 0.0) + value


def _bound(le: str | None) -> str | None:
    """The bucket's upper bound, normalised (``0.5``, ``inf``), if it is a number."""
    try:
        value = float(le) if le is not None else math.nan
    except ValueError:
        return None
    return None if math.isnan(value) else repr(value)


def parse_metrics(text: str, wanted: list[Pick] | None = None) -> Page:
    """The page's series for ``wanted`` (default: none, only the names)."""
    return parse_page(text, wanted or [])
