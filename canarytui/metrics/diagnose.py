"""Diagnostics: which rules' selectors match no series on a host's page, and why (no silent pass).

A rule whose metric is not on the page at all measures nothing: the analysis could only be
inconclusive, so that is a *problem*. A selector whose metric exists but matches none of
its series is legitimately zero for an error count (no 5xx yet), so that is a *warning*,
unless a matcher needs a label that no series of the metric has: that selector can never
match (a typo), and a rule reading it would pass on a zero forever, so that is a problem.
Names and labels are suggested closest first. Pure: pages in, findings out.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from canarytui.config import Rule
from canarytui.config.selector import Selector
from canarytui.metrics.page import Page, reading_key

PROBLEM = "problem"
WARNING = "warning"
NO_METRICS = "health.metrics is not set"
SUGGESTED = 4  # names suggested at most
_SIBLINGS = ("_bucket", "_sum", "_created")  # a histogram's other series: shown as its _count


@dataclass(frozen=True)
class Finding:
    """One thing wrong with some rules' selectors on one host's page."""

    rules: tuple[str, ...]
    level: str  # PROBLEM | WARNING
    message: str

    def __str__(self) -> str:
        which = "rule" if len(self.rules) == 1 else "rules"
        return f"{which} {', '.join(self.rules)}: {self.message}"


def diagnose(rules: Sequence[Rule], page: Page | None, no_page: str = NO_METRICS) -> list[Finding]:
    """Every rule whose ``metric`` or ``per`` matches no series on ``page``, saying which.

    ``page`` None: the host gave no page (``no_page`` says why); every rule is a problem.
    """
    if not rules:
        return []
    if page is None:
        return [Finding(tuple(r.name for r in rules), PROBLEM, f"no metrics page ({no_page})")]
    out: list[Finding] = []
    for rule in rules:
        sides: list[tuple[str, Selector, str]] = [("metric", rule.selector, reading_key(rule))]
        if rule.per_selector is not None:
            sides.append(("per", rule.per_selector, reading_key(rule, per=True)))
        for field, selector, key in sides:
            buckets = rule.quantile is not None and field == "metric"
            found = _one(field, selector, key, buckets, page)
            if found is not None:
                level, message = found
                out.append(Finding((rule.name,), level, message))
    return out


def why_no_page(metrics: str | None, detail: str) -> str:
    """Why a reachable host gave no page: no metrics command, or what the probe said of it
    (of the command, or of the Prometheus server the metrics come from)."""
    said = [part for part in detail.split("; ") if part.startswith("metrics")]
    if not metrics and not said:
        return NO_METRICS
    return "; ".join(said) or detail or "the metrics command gave no page"


def _one(
    field: str, selector: Selector, key: str, quantile: bool, page: Page
) -> tuple[str, str] | None:
    readings = page.readings.get(key)
    if readings:
        return None
    name = selector.name
    if readings is None:
        return PROBLEM, _missing(field, name, quantile, page)
    labels = _labels_of(name, page)
    matchers = "{" + ",".join(str(m) for m in selector.matchers) + "}"
    # A label a series lacks has the empty value: a matcher that needs a value there can
    # never match a series of this metric, whatever traffic comes.
    absent = [m.label for m in selector.matchers if m.label not in labels and not m.matches({})]
    have = _closest(absent, labels) if absent else sorted(labels)
    has = f"its series have labels {', '.join(have)}" if have else "its series have no labels"
    if absent:
        lacking = ", ".join(dict.fromkeys(absent))
        return PROBLEM, (
            f"{field} {name} exists but no series matches {matchers} (none has the label "
            f"{lacking}): {has}"
        )
    return WARNING, (
        f"{field} {selector} matches no series now: zero until one appears — check the "
        f"labels: {has}"
    )


def _missing(field: str, name: str, quantile: bool, page: Page) -> str:
    """The metric is not on the page as the rule reads it: say so, and what is there."""
    head = f"{field} {name} is not on the page"
    if quantile:
        stems = {n.removesuffix("_bucket") for n in page.names if n.endswith("_bucket")}
        if name in page.names or name.removesuffix("_bucket") in stems:
            stem = name.removesuffix("_bucket")
            if stem in stems and stem != name:
                return f"{head} as a histogram: a quantile rule names the histogram ({stem})"
            return f"{head} as a histogram (no {name}_bucket series): a quantile needs one"
        candidates = stems
        kind = "histograms"
    else:
        candidates = _shown_names(page.names)
        kind = "names"
    if not page.names:
        return f"{head}: the page has no metrics at all"
    close = _closest([name], candidates, limit=SUGGESTED, prefix=True)
    if not close:
        return f"{head}; no similar {kind} among its {len(page.names)} names"
    return f"{head}; closest {kind}: {', '.join(close)}"


def _shown_names(names: Iterable[str]) -> set[str]:
    """The page's sample names as a rule would pick them: a histogram or summary once (its
    ``_count``), without the ``_created`` series next to a counter's ``_total``."""
    names = set(names)
    out = set()
    for n in names:
        stem = next((n.removesuffix(s) for s in _SIBLINGS if n.endswith(s)), None)
        if stem is not None and ({f"{stem}_count", f"{stem}_total"} & names):
            continue
        out.add(n)
    return out


def _labels_of(name: str, page: Page) -> set[str]:
    out: set[str] = set()
    for sample in (name, f"{name}_total", f"{name}_count", f"{name}_bucket"):
        out |= page.labels.get(sample, set())
    return out


def _closest(
    wanted: Sequence[str], candidates: Iterable[str], limit: int | None = None, prefix: bool = False
) -> list[str]:
    """``candidates`` ordered by closeness to any of ``wanted`` (difflib's close matches
    first); with ``limit``, only the close ones and those sharing a leading word."""
    pool = sorted(set(candidates))
    if not pool:
        return []
    close: list[str] = []
    for word in wanted:
        for match in difflib.get_close_matches(word, pool, n=len(pool), cutoff=0.6):
            if match not in close:
                close.append(match)

    def score(c: str) -> float:
        return max(difflib.SequenceMatcher(None, w, c).ratio() for w in wanted)

    rest = sorted((c for c in pool if c not in close), key=lambda c: (-score(c), c))
    if limit is None:
        return close + rest
    if prefix:
        heads = {w.split("_", 1)[0] + "_" for w in wanted if "_" in w}
        rest = [c for c in rest if any(c.startswith(h) for h in heads)]
    else:
        rest = []
    return (close + rest)[:limit]


def group(
    findings: Mapping[str, Sequence[Finding]],
) -> list[tuple[Finding, list[str]]]:
    """The same finding on many hosts, once with its hosts; problems first."""
    hosts: dict[Finding, list[str]] = {}
    for host, found in findings.items():
        for finding in found:
            hosts.setdefault(finding, []).append(host)
    return sorted(hosts.items(), key=lambda item: item[0].level != PROBLEM)


def hosts_text(hosts: Sequence[str], total: int | None = None, shown: int = 4) -> str:
    """``web-01, web-02`` or ``6 hosts: web-01, web-02, web-03, web-04 and 2 more``."""
    if total is not None and len(hosts) == total and total > 1:
        return f"all {total} hosts"
    names = ", ".join(hosts[:shown])
    if len(hosts) > shown:
        return f"{len(hosts)} hosts: {names} and {len(hosts) - shown} more"
    return names
