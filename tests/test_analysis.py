"""The pure parts: Prometheus parsing, counter increases, quantiles, verdicts, wave plans."""

from __future__ import annotations

import pytest

from canarytui.config import Analysis, Rule, WaveSpec, canaries_by_percent
from canarytui.engine import pick_baseline, plan_waves
from canarytui.events import HealthSample, Verdict
from canarytui.metrics import analysis as an
from canarytui.metrics.series import HostSeries, parse_metrics

TEXT = """\
# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{{code="200"}} {ok}
app_requests_total{{code="500"}} {failed}
# TYPE app_requests_failed_total counter
app_requests_failed_total {failed}
# TYPE app_request_duration_seconds histogram
app_request_duration_seconds_bucket{{le="0.1"}} {fast}
app_request_duration_seconds_bucket{{le="0.5"}} {mid}
app_request_duration_seconds_bucket{{le="+Inf"}} {total}
app_request_duration_seconds_sum 1.0
app_request_duration_seconds_count {total}
# TYPE app_inflight gauge
app_inflight {inflight}
"""


def series(*points: dict[str, float], ok: list[bool | None] | None = None) -> HostSeries:
    s = HostSeries()
    for i, p in enumerate(points):
        text = TEXT.format(
            ok=p["ok"],
            failed=p["failed"],
            fast=p.get("fast", 0),
            mid=p.get("mid", 0),
            total=p.get("total", 0),
            inflight=p.get("inflight", 0),
        )
        values, types = parse_metrics(text)
        state = ok[i] if ok else True
        s.add(HealthSample(host="h", ok=state, latency=0.01, metrics=values), types)
    return s


def test_parse_sums_labels_and_keeps_buckets() -> None:
    values, types = parse_metrics(
        TEXT.format(ok=90, failed=10, fast=50, mid=90, total=100, inflight=3)
    )
    assert values["app_requests_total"] == 100
    assert values["app_requests_failed_total"] == 10
    assert values["app_request_duration_seconds_bucket@0.5"] == 90
    assert values["app_request_duration_seconds_bucket@+Inf"] == 100
    assert types["app_requests_total"] == "counter" and types["app_inflight"] == "gauge"


def test_parse_keeps_only_wanted_families() -> None:
    values, _ = parse_metrics(
        TEXT.format(ok=1, failed=1, fast=1, mid=1, total=1, inflight=1),
        wanted={"app_requests_total"},
    )
    assert set(values) == {"app_requests_total", "app_requests"}


def test_parse_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_metrics("this is { not prometheus")


def test_counter_increase_survives_a_restart() -> None:
    s = series(
        {"ok": 90, "failed": 10},
        {"ok": 180, "failed": 20},
        {"ok": 9, "failed": 1},
        {"ok": 90, "failed": 10},
    )
    # 100 -> 200 (+100), restart to 10 (+10), -> 100 (+90)
    assert s.increase("app_requests_total") == 200
    assert s.increase("app_requests_failed_total") == 20


def test_ratio_rule_and_baseline() -> None:
    rule = Rule(
        name="error-ratio",
        metric="app_requests_failed_total",
        per="app_requests_total",
        max=0.05,
        max_vs_baseline=2.0,
    )
    bad = series({"ok": 0, "failed": 0}, {"ok": 80, "failed": 20})
    good = series({"ok": 0, "failed": 0}, {"ok": 99, "failed": 1})
    assert an.rule_value(rule, [bad]) == pytest.approx(0.2)
    assert an.rule_value(rule, [good]) == pytest.approx(0.01)
    cfg = Analysis(rules=(rule,), max_failed_checks=1)
    ms = an.measure(cfg, {"c1": bad, "c2": good}, {"b1": good})
    verdict, reasons = an.verdict(ms, cfg.rules, {"c1": bad, "c2": good})
    assert verdict is Verdict.FAIL
    assert len(reasons) == 1 and reasons[0].startswith("c1: error-ratio = 0.2 (baseline 0.01)")


def test_vs_baseline_alone_can_fail() -> None:
    rule = Rule(
        name="r", metric="app_requests_failed_total", per="app_requests_total", max_vs_baseline=2.0
    )
    canary = series({"ok": 0, "failed": 0}, {"ok": 96, "failed": 4})
    base = series({"ok": 0, "failed": 0}, {"ok": 99, "failed": 1})
    m = an.measure(Analysis(rules=(rule,)), {"c": canary}, {"b": base})[-1]
    assert m.passed is False and m.baseline == pytest.approx(0.01)


def test_histogram_quantile_from_bucket_increases() -> None:
    rule = Rule(name="p50", metric="app_request_duration_seconds", quantile=0.5, max=1.0)
    s = series(
        {"ok": 0, "failed": 0, "fast": 0, "mid": 0, "total": 0},
        {"ok": 0, "failed": 0, "fast": 20, "mid": 80, "total": 100},
    )
    # rank 50 lies in (0.1, 0.5]: 0.1 + 0.4 * (50 - 20) / (80 - 20) = 0.3
    assert an.rule_value(rule, [s]) == pytest.approx(0.3)


def test_no_data_is_not_a_failure_unless_required() -> None:
    lax = Rule(name="r", metric="missing_total", max=1.0)
    strict = Rule(name="s", metric="missing_total", max=1.0, must_have_data=True)
    s = series({"ok": 1, "failed": 0}, {"ok": 2, "failed": 0})
    ms = an.measure(Analysis(rules=(lax,)), {"c": s}, {})
    assert ms[-1].passed is None
    assert an.verdict(ms, (lax,), {"c": s})[0] is Verdict.INCONCLUSIVE
    ms = an.measure(Analysis(rules=(strict,)), {"c": s}, {})
    verdict, reasons = an.verdict(ms, (strict,), {"c": s})
    assert verdict is Verdict.FAIL and "no data" in reasons[0]


def test_failed_checks_budget() -> None:
    s = series(
        {"ok": 1, "failed": 0},
        {"ok": 2, "failed": 0},
        {"ok": 3, "failed": 0},
        ok=[False, None, True],
    )
    cfg = Analysis(max_failed_checks=1)
    ms = an.measure(cfg, {"c": s}, {})
    verdict, reasons = an.verdict(ms, (), {"c": s})
    assert verdict is Verdict.FAIL and reasons == ["c: failed-checks = 2, limit <= 1: FAIL"]
    cfg = Analysis(max_failed_checks=2)
    assert an.verdict(an.measure(cfg, {"c": s}, {}), (), {"c": s})[0] is Verdict.PASS


def test_waves_are_cumulative_and_cover_everyone() -> None:
    hosts = [f"h{i}" for i in range(11)]
    pct = (WaveSpec(10, True), WaveSpec(50, True), WaveSpec(100, True))
    waves = plan_waves(hosts, pct)
    assert [len(w) for w in waves] == [2, 4, 5]
    assert [h for wave in waves for h in wave] == hosts
    # Counts, and a list that stops short: the last wave takes the rest.
    assert [len(w) for w in plan_waves(hosts, (WaveSpec(1, False), WaveSpec(3, False)))] == [
        1,
        2,
        8,
    ]
    # Waves that would add nobody are dropped.
    assert plan_waves(["a"], pct) == [["a"]]
    assert plan_waves([], pct) == []


def test_canary_percent_and_baseline_sample() -> None:
    names = [f"h{i}" for i in range(20)]
    assert canaries_by_percent(names, 10) == ["h0", "h1"]
    assert canaries_by_percent(names, 0.1) == ["h0"]
    assert canaries_by_percent(["a", "b"], 100) == ["a"]
    assert pick_baseline(names, 4) == ["h0", "h5", "h10", "h15"]
    assert pick_baseline(names[:2], 10) == ["h0", "h1"]
    assert pick_baseline(names, 0) == []


def test_too_few_observations_are_no_data() -> None:
    """A ratio over a handful of requests is noise: below min_count it is not judged."""
    rule = Rule(
        name="r",
        metric="app_requests_failed_total",
        per="app_requests_total",
        max=0.05,
        min_count=100,
    )
    few = series({"ok": 0, "failed": 0}, {"ok": 8, "failed": 2})
    assert an.rule_value(rule, [few]) is None
    q = Rule(name="q", metric="app_request_duration_seconds", quantile=0.99, max=1.0, min_count=100)
    s = series({"ok": 0, "failed": 0, "total": 0}, {"ok": 0, "failed": 0, "mid": 9, "total": 10})
    assert an.rule_value(q, [s]) is None
