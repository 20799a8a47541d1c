"""The pure parts of the judge: selectors, pages, counter increases, quantiles, the tests
behind a failure, verdicts; and wave plans. Pages come from the real ``prometheus_client``
library (an app instrumented with it) and from node_exporter-style fixtures."""

from __future__ import annotations

import itertools
import math
import random
import re
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from canarytui.config import Analysis, Change, Rule, WaveSpec, canaries_by_percent
from canarytui.config.selector import SelectorError, parse_selector
from canarytui.engine import pick_baseline, plan_waves
from canarytui.events import HealthSample, Verdict
from canarytui.metrics import analysis as an
from canarytui.metrics import stats
from canarytui.metrics.measure import per_interval, rule_value, window
from canarytui.metrics.page import parse_page, picks
from canarytui.metrics.series import HostSeries

ERRORS = Rule(
    name="error-ratio",
    metric='http_requests_total{code=~"5.."}',
    per="http_requests_total",
    max=0.05,
    max_vs_baseline=2.0,
)
P99 = Rule(
    name="p99",
    metric='http_request_duration_seconds{route!="/health"}',
    quantile=0.99,
    max=0.5,
)
TRAFFIC = Rule(name="traffic", metric='http_requests_total{route!="/health"}', min_vs_baseline=0.5)
SHIFT = Rule(
    name="latency-shift",
    metric='http_request_duration_seconds{route!="/health"}',
    quantile=0.5,
    compare="mann-whitney",
    max_increase=Change(20, True),
    confidence=0.98,
)


class App:
    """A web app instrumented with prometheus_client, as real services are."""

    def __init__(self, error_ratio: float, slow: float = 1.0, seed: int = 1) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "Requests.", ["method", "route", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Latency.", ["route"], registry=self.registry
        )
        Gauge("process_open_fds", "fds", registry=self.registry).set(12)
        self.error_ratio = error_ratio
        self.slow = slow
        self.rng = random.Random(seed)

    def serve(self, n: int) -> None:
        for _ in range(n):
            route = self.rng.choice(["/", "/api/cart", "/api/checkout", "/health"])
            failed = route != "/health" and self.rng.random() < self.error_ratio
            code = "500" if failed else "200"
            self.requests.labels("GET", route, code).inc()
            base = 0.002 if route == "/health" else 0.05
            self.latency.labels(route).observe(self.rng.expovariate(1 / (base * self.slow)))

    def page(self) -> str:
        return generate_latest(self.registry).decode()


def probe_series(
    app: App, rules: tuple[Rule, ...], rounds: int, per_round: int, host: str = "h"
) -> HostSeries:
    s = HostSeries()
    wanted = picks(rules)
    for i in range(rounds):
        app.serve(per_round)  # a running app: it has served before the first probe too
        page = parse_page(app.page(), wanted)
        s.add(HealthSample(host=host, ok=True, latency=0.01, metrics=page.readings, at=float(i)))
    return s


# -- selectors and pages ---------------------------------------------------------------------


def test_selectors_parse_and_match() -> None:
    sel = parse_selector('http_requests_total{code=~"5..", route!="/health", x!~"a|b",m="GET"}')
    assert sel.name == "http_requests_total" and len(sel.matchers) == 4
    assert sel.matches({"code": "503", "route": "/", "m": "GET"})
    assert not sel.matches({"code": "503", "route": "/health", "m": "GET"})
    assert not sel.matches({"code": "200", "route": "/", "m": "GET"})
    assert not sel.matches({"code": "500", "x": "a", "m": "GET"})
    assert parse_selector("up").matchers == ()
    assert str(parse_selector('a{b="c"}')) == 'a{b="c"}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a metric name"),
        ("5xx", "a metric name"),
        ("a{b=c}", "a quoted value"),
        ('a{b=="c"}', "a quoted value"),
        ('a{b~"c"}', "one of = != =~ !~"),
        ('a{b="c"', "',' or '}'"),
        ('a{b="c}', "is not closed"),
        ('a{b=~"("}', "bad regular expression"),
        ('a{b="c"} x', "the end of the selector"),
    ],
)
def test_bad_selectors_say_where(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message.replace("(", r"\(").replace("~", "~")):
        parse_selector(text)


def test_a_prometheus_client_page_gives_the_selected_series() -> None:
    app = App(error_ratio=0.5)
    app.serve(400)
    page = parse_page(app.page(), picks((ERRORS, P99)))
    errors = page.readings['values:http_requests_total{code=~"5.."}']
    assert errors and all('code="500"' in key for key in errors)
    assert all(key.startswith("c:http_requests_total{") for key in errors)
    buckets = page.readings['buckets:http_request_duration_seconds{route!="/health"}']
    assert buckets and not any("/health" in key for key in buckets)
    assert any(key.startswith("inf|") for key in buckets)
    assert {"http_requests_total", "process_open_fds"} <= page.names
    assert {"method", "route", "code"} <= page.labels["http_requests_total"]


def test_node_exporter_style_page_and_garbage() -> None:
    text = (
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
        "# TYPE node_cpu_seconds_total counter\n"
        'node_cpu_seconds_total{cpu="0",mode="idle"} 1000.5\n'
        'node_cpu_seconds_total{cpu="0",mode="user"} 20.25\n'
        'node_cpu_seconds_total{cpu="1",mode="idle"} 990\n'
        "# TYPE node_load1 gauge\nnode_load1 0.42\n"
        '# TYPE odd histogram\nodd_bucket{le="foo"} 1\nodd_bucket{le="+Inf"} 2\nodd_count 2\n'
    )
    busy = Rule(name="cpu", metric='node_cpu_seconds_total{mode!="idle"}', max=1e9)
    load = Rule(name="load", metric="node_load1", max=4)
    odd = Rule(name="odd", metric="odd", quantile=0.5, max=1)
    page = parse_page(text, picks((busy, load, odd)))
    assert sum(page.readings['values:node_cpu_seconds_total{mode!="idle"}'].values()) == 20.25
    assert page.readings["values:node_load1"] == {"g:node_load1{}": 0.42}
    assert list(page.readings["buckets:odd"]) == ["inf|odd_bucket{}"]
    with pytest.raises(ValueError, match="not Prometheus text"):
        parse_page("this is { not prometheus", [])


# -- increases and quantiles -----------------------------------------------------------------


def test_counters_survive_restarts_and_new_series_start_from_zero() -> None:
    rule = Rule(name="r", metric="x_total", max=1e9)
    key = "values:x_total"

    def sample(values: dict[str, float], at: float) -> HealthSample:
        return HealthSample(host="h", ok=True, latency=0, metrics={key: values}, at=at)

    pages = [
        {'c:x_total{code="200"}': 100.0},
        {'c:x_total{code="200"}': 200.0, 'c:x_total{code="500"}': 3.0},  # 500 appears: +3
        {'c:x_total{code="200"}': 10.0, 'c:x_total{code="500"}': 1.0},  # restart: +10, +1
        {'c:x_total{code="200"}': 100.0, 'c:x_total{code="500"}': 1.0},  # +90
    ]
    s = [sample(p, float(i)) for i, p in enumerate(pages)]
    assert window(rule, s).value == 100 + 3 + 10 + 1 + 90


def test_ratio_quantile_and_traffic_on_real_pages() -> None:
    bad = probe_series(App(error_ratio=0.2, slow=3.0, seed=2), (ERRORS, P99, TRAFFIC), 3, 3000)
    good = probe_series(App(error_ratio=0.01, seed=3), (ERRORS, P99, TRAFFIC), 3, 3000)
    assert rule_value(ERRORS, [bad]) == pytest.approx(0.2 * 0.75, abs=0.03)
    assert rule_value(ERRORS, [good]) == pytest.approx(0.01 * 0.75, abs=0.01)
    # p99 without the fast health route; histogram_quantile of an exponential(0.05)
    assert 0.15 < rule_value(P99, [good]) < 0.35 and rule_value(P99, [bad]) > 0.5
    assert rule_value(TRAFFIC, [good]) == pytest.approx(6000 * 0.75, rel=0.1)


def test_few_observations_are_no_data() -> None:
    few = probe_series(App(error_ratio=0.5), (ERRORS,), 2, 20)
    assert rule_value(ERRORS, [few]) is None
    m = an.judge(ERRORS, "c", few.window(), an.Reference("baseline", []))
    assert m.state == "no data" and "min_count" in m.note


# -- judging ----------------------------------------------------------------------------------


def judge_all(
    rules: tuple[Rule, ...], canary: App, base: list[App], rounds: int = 6, per: int = 600
) -> tuple[Verdict, list[str], list]:  # type: ignore[type-arg]
    cfg = Analysis(rules=rules, max_failed_checks=1)
    c = {"c": probe_series(canary, rules, rounds, per, "c")}
    b = {f"b{i}": probe_series(a, rules, rounds, per, f"b{i}") for i, a in enumerate(base)}
    ms = an.measure(cfg, c, b)
    verdict, reasons = an.verdict(ms, rules, c)
    return verdict, reasons, ms


def baseline(n: int = 4) -> list[App]:
    return [App(error_ratio=0.01, seed=10 + i) for i in range(n)]


def test_a_bad_release_fails_with_its_values_and_a_good_one_passes() -> None:
    verdict, reasons, _ = judge_all((ERRORS, P99, TRAFFIC), App(0.2, seed=4), baseline())
    assert verdict is Verdict.FAIL
    assert any(r.startswith("c: error-ratio = 0.1") and "(baseline 0.00" in r for r in reasons)
    verdict, reasons, ms = judge_all((ERRORS, P99, TRAFFIC), App(0.01, seed=5), baseline())
    assert verdict is Verdict.PASS, reasons
    assert {m.rule for m in ms} == {"failed-checks", "error-ratio", "p99", "traffic"}


def test_a_limit_against_the_baseline_says_which_end_of_it_it_took() -> None:
    """A floor or ceiling against the baseline is the factor times an end of the
    baseline's range, not times the value shown beside it: the limit says so, and its
    figures are the bound's own (the traffic rule's 0.5x of a baseline of 89 was shown as
    "(32.85)", which reads as a miscalculation)."""
    ceiling = Rule(name="e", metric=ERRORS.metric, per=ERRORS.per, max_vs_baseline=3.0)
    _, _, ms = judge_all((TRAFFIC, ceiling), App(0.01, seed=5), baseline(2), rounds=3, per=60)
    for m, end in ((ms[1], "low"), (ms[2], "high")):
        assert m.baseline is not None
        found = re.search(r"\(([\d.e-]+) = ([\d.]+) x ([\d.e-]+), its (\w+) end\)", m.limit)
        assert found, m.limit
        bound, factor, reference, said = found.groups()
        assert said == end
        assert float(bound) == pytest.approx(float(factor) * float(reference), rel=1e-3)
        assert float(reference) != pytest.approx(m.baseline, rel=1e-3)
        assert (float(reference) < m.baseline) == (end == "low")
    # A quantile's bound is the factor times the baseline's value itself: said plainly.
    p99 = Rule(name="p", metric=P99.metric, quantile=0.99, max_vs_baseline=2.0)
    _, _, ms = judge_all((p99,), App(0.01, seed=5), baseline(2))
    assert ms[-1].baseline is not None
    assert ms[-1].limit == f"<= 2x baseline ({2 * ms[-1].baseline:.4g})"


def test_a_handful_of_errors_is_not_beyond_doubt() -> None:
    """Twice the baseline on a few errors is noise: undecided, never a failure."""
    rule = Rule(name="r", metric=ERRORS.metric, per=ERRORS.per, max_vs_baseline=2.0, min_count=10)
    _, _, ms = judge_all((rule,), App(0.04, seed=6), [App(0.01, seed=7)], rounds=2, per=60)
    m = ms[-1]
    assert m.value is not None and m.baseline is not None and m.value > 2 * m.baseline
    assert m.state != "fail"
    # Over an absolute ceiling on few requests: no verdict of its own, not a failure.
    ceiling = Rule(name="c", metric=ERRORS.metric, per=ERRORS.per, max=0.02, min_count=10)
    _, _, ms = judge_all((ceiling,), App(0.06, seed=3), [], rounds=2, per=150)
    m = ms[-1]
    assert m.value is not None and m.value > 0.02
    assert m.state == "undecided" and "not beyond doubt" in m.note


def test_slow_release_caught_by_p99_and_the_statistical_rule() -> None:
    verdict, reasons, ms = judge_all((P99, SHIFT), App(0.01, slow=1.5, seed=8), baseline())
    assert verdict is Verdict.FAIL
    shift = next(m for m in ms if m.rule == "latency-shift")
    assert shift.state == "fail" and shift.effect is not None and shift.effect > 0.2
    assert shift.confidence is not None and shift.confidence >= 0.98
    assert "effect +" in shift.describe() and "confidence" in shift.describe()
    verdict, reasons, ms = judge_all((SHIFT,), App(0.01, seed=9), baseline())
    assert verdict is Verdict.PASS, reasons


def test_a_shift_is_said_as_its_limit_is_written_and_agrees_with_its_values() -> None:
    """A shift limited to +20 % said "effect +2.25" beside "within +20%" (read as 2.25 %),
    where the table said +225%; and its value and baseline (the window's quantiles) could
    differ in sign from the effect (the medians of the per-interval values). The values
    shown are the test's own, their relative difference the effect, said in percent."""
    for seed, slow in ((8, 1.5), (9, 1.0), (21, 0.8), (22, 1.02)):
        _, _, ms = judge_all((SHIFT,), App(0.01, slow=slow, seed=seed), baseline())
        m = ms[-1]
        assert m.rule == "latency-shift" and m.relative
        assert m.value is not None and m.baseline is not None and m.effect is not None
        assert m.effect == pytest.approx((m.value - m.baseline) / m.baseline)
        assert m.effect_text == f"{m.effect * 100:+.3g}%"
        assert f"effect {m.effect_text}" in m.describe()
    absolute = replace(SHIFT, max_increase=Change(0.01, False))
    _, _, ms = judge_all((absolute,), App(0.01, slow=1.5, seed=8), baseline())
    m = ms[-1]
    assert not m.relative and m.effect is not None and m.effect_text == f"{m.effect:+.3g}"
    assert m.value is not None and m.baseline is not None
    assert m.effect == pytest.approx(m.value - m.baseline)


def test_a_floor_not_yet_beyond_doubt_is_said_to_be_under_it() -> None:
    """A value under a floor, not beyond doubt, was said "over the limit"."""
    floor = Rule(name="traffic", metric=TRAFFIC.metric, min=10_000)
    _, _, ms = judge_all((floor,), App(0.01, seed=5), [], rounds=3, per=60)
    m = ms[-1]
    assert m.value is not None and m.value < 10_000
    assert m.state in ("fail", "undecided")
    if m.state == "undecided":
        assert m.note.startswith("under the limit, but not beyond doubt")
    floor_ratio = Rule(name="ok", metric=ERRORS.metric, per=ERRORS.per, min=0.02, min_count=10)
    _, _, ms = judge_all((floor_ratio,), App(0.015, seed=3), [], rounds=2, per=150)
    m = ms[-1]
    assert m.state == "undecided" and m.note.startswith("under the limit, but not beyond doubt")


def test_compare_to_before() -> None:
    rule = replace(SHIFT, compare_to="before")
    app = App(0.01, seed=11)
    before = probe_series(app, (rule,), 8, 400, "c")
    app.slow = 2.0
    after = probe_series(app, (rule,), 8, 400, "c")
    cfg = Analysis(rules=(rule,), before=30)
    ms = an.measure(cfg, {"c": after}, {}, before={"c": before})
    assert ms[-1].state == "fail" and ms[-1].reference == "before"


def test_no_silent_pass() -> None:
    missing = Rule(name="missing", metric="http_errors_total", per="http_requests_total", max=0.05)
    verdict, reasons, _ = judge_all((ERRORS, missing), App(0.01, seed=12), baseline())
    assert verdict is Verdict.INCONCLUSIVE
    assert any("missing" in r and "no data" in r for r in reasons)
    optional = replace(missing, optional=True)
    verdict, _, _ = judge_all((ERRORS, optional), App(0.01, seed=12), baseline())
    assert verdict is Verdict.PASS
    required = replace(missing, must_have_data=True)
    verdict, reasons, _ = judge_all((ERRORS, required), App(0.01, seed=12), baseline())
    assert verdict is Verdict.FAIL and "data required" in reasons[0]


def test_zero_errors_are_zero_not_missing() -> None:
    """No 5xx series yet (labelled counters appear on first use): a ratio of 0, a pass."""
    verdict, reasons, ms = judge_all((ERRORS,), App(0.0, seed=13), baseline())
    assert verdict is Verdict.PASS, reasons
    assert next(m for m in ms if m.rule == "error-ratio").value == 0


def test_statistical_rule_needs_intervals() -> None:
    _, _, ms = judge_all((SHIFT,), App(0.01, seed=14), baseline(), rounds=3)
    assert ms[-1].state == "no data"
    # Which side lacks values, and how many each needs, said in words.
    assert re.fullmatch(
        r"\d+ interval values on the canary, \d+ on the baseline: 5 needed on each side",
        ms[-1].note,
    ), ms[-1].note


def test_per_interval_values() -> None:
    s = probe_series(App(0.2, seed=15), (ERRORS,), 5, 2000)
    values = per_interval(ERRORS, s.window())
    assert len(values) == 4 and all(0.1 < v < 0.2 for v in values)


def test_failed_checks_budget() -> None:
    s = HostSeries()
    for ok in (False, None, True):
        s.add(HealthSample(host="c", ok=ok, latency=0))
    verdict, reasons = an.verdict(
        an.measure(Analysis(max_failed_checks=1), {"c": s}, {}), (), {"c": s}
    )
    assert verdict is Verdict.FAIL and reasons == ["c: failed-checks = 2, limit <= 1: FAIL"]
    assert (
        an.verdict(an.measure(Analysis(max_failed_checks=2), {"c": s}, {}), (), {"c": s})[0]
        is Verdict.PASS
    )


# -- plans --------------------------------------------------------------------------------------


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


def test_what_a_deployment_says_of_hosts_on_its_release_already() -> None:
    """None run it: nothing said. Some: their steps run again, and the baseline leaves
    them out while hosts on another release can stand in (else the release is compared
    with itself, as when every host reached runs it: a warning). An unreachable host is
    not counted either way."""
    from canarytui.engine import running_said

    down = object()  # what discovery gives for an unreachable host
    assert running_said("2", {"a": "1", "b": "1", "c": None}, ["a"]) is None
    assert running_said("2", {"a": "1", "b": "2", "c": "1"}, ["a"]) == (
        "info",
        "b run(s) 2 already: its steps run again there; the analysis's baseline leaves them out",
    )
    assert running_said("2", {"a": "1", "b": "2", "c": "2", "d": down}, ["a"]) == (
        "info",
        "b, c run(s) 2 already: its steps run again there; no other host to compare "
        "with, the analysis compares 2 with itself",
    )
    assert running_said("2", {"a": "1", "b": "2"}, []) == (
        "info",
        "b run(s) 2 already: its steps run again there",
    )
    assert running_said("2", {"a": "2", "b": "2", "c": down}, ["a"]) == (
        "warning",
        "every host reached runs 2 already: its steps run again, and the analysis "
        "compares 2 with itself",
    )


def test_hosts_down_now_say_which_wave_would_stop_the_rollout() -> None:
    """Down hosts are counted wave by wave against max_failures: the first wave that
    goes over it is named, with every down host of the waves; within it, nothing."""
    from canarytui.config import Promote
    from canarytui.engine.plan import Plan, stops_at

    plan = Plan(["c"], [["a"], ["b", "d"], [f"h{i}" for i in range(20)]])
    budget = Promote(max_failures=1, on_failure="halt")
    assert stops_at(plan, ["d"], budget) is None
    assert stops_at(plan, [], Promote()) is None
    assert stops_at(plan, ["a"], Promote()) == (
        "a unreachable now, more than promote.max_failures (0): if they do not answer by "
        "wave 1/3, the rollout stops there (on_failure: rollback)"
    )
    down = ["d", *(f"h{i}" for i in range(7))]
    said = stops_at(plan, down, budget)
    assert said is not None
    assert said.startswith("d, h0, h1, h2, h3 and 3 more unreachable now")  # one line at scale
    assert "by wave 3/3" in said and "(on_failure: halt)" in said


def test_canary_percent_and_baseline_sample() -> None:
    names = [f"h{i}" for i in range(20)]
    assert canaries_by_percent(names, 10) == ["h0", "h1"]
    assert canaries_by_percent(names, 0.1) == ["h0"]
    assert canaries_by_percent(["a", "b"], 100) == ["a", "b"]  # asked for all: all
    assert canaries_by_percent(["a", "b", "c", "d"], 100) == ["a", "b", "c", "d"]
    assert canaries_by_percent(["a", "b", "c", "d"], 90) == ["a", "b", "c"]
    assert pick_baseline(names, 4) == ["h0", "h5", "h10", "h15"]
    assert pick_baseline(names[:2], 10) == ["h0", "h1"]
    assert pick_baseline(names, 0) == []
    assert list(itertools.islice(names, 0)) == []


def test_early_looks_never_fail_what_the_window_has_not_filled_yet() -> None:
    """must_have_data on a window without data yet, and an absolute floor on a counter's
    increase not reached yet, are undecided while the analysis runs; failures at the end."""
    required = Rule(name="req", metric="http_requests_total", must_have_data=True)
    stat = replace(SHIFT, must_have_data=True)
    cfg = Analysis(rules=(required, stat), max_failed_checks=1)
    one = {"c": probe_series(App(0.01, seed=20), cfg.rules, 1, 300, "c")}
    base = {"b": probe_series(App(0.01, seed=21), cfg.rules, 1, 300, "b")}
    early = {m.rule: m for m in an.measure(cfg, one, base, final=False)}
    assert early["req"].state == "undecided"  # one sample: no increase yet
    assert early["latency-shift"].state == "undecided"
    assert not an.early_failure(list(early.values()))
    final = {m.rule: m for m in an.measure(cfg, one, base)}
    assert final["req"].state == "fail" and final["latency-shift"].state == "fail"

    floor = Rule(name="floor", metric='http_requests_total{route!="/health"}', min=5000)
    cfg = Analysis(rules=(floor,), max_failed_checks=1)
    two = {"c": probe_series(App(0.01, seed=22), cfg.rules, 2, 300, "c")}
    m = {m.rule: m for m in an.measure(cfg, two, {}, final=False)}["floor"]
    assert m.state == "undecided" and "not over" in m.note
    assert {m.rule: m for m in an.measure(cfg, two, {})}["floor"].state == "fail"


def test_a_statistical_analysis_never_imports_scipy() -> None:
    """SciPy's import took ~1 s under a release's load, holding the interpreter's lock in
    long stretches (the interface's loop waited): the test is the project's own, and an
    analysis with a Mann-Whitney rule runs, and judges, without SciPy in the process."""
    code = textwrap.dedent(
        """
        import sys
        from canarytui.config import Analysis, Change, Rule
        from canarytui.metrics import stats
        from canarytui.metrics.run import AnalysisRun
        shift = Rule(name="s", metric="m", quantile=0.5, compare="mann-whitney",
                     max_increase=Change(20, True))
        AnalysisRun(Analysis(rules=(shift,)), ["c"], ["b"], started=0.0)
        assert stats.mann_whitney_greater([3, 4, 5, 6, 7], [1, 2, 3, 4, 5]) < 0.1
        assert not [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr


@settings(max_examples=400, deadline=None)
@given(
    a=st.lists(st.integers(0, 40), min_size=1, max_size=30),
    b=st.lists(st.integers(0, 40), min_size=1, max_size=30),
    scale=st.sampled_from([1.0, 0.1, 7.3]),
)
def test_mann_whitney_gives_scipys_p_values(a: list[int], b: list[int], scale: float) -> None:
    """The reference implementation's p-values, exact (a side of at most 8, no ties) and
    by the normal approximation (ties, or both sides larger), to rounding."""
    from scipy.stats import mannwhitneyu

    x, y = [v * scale for v in a], [v * scale for v in b]
    expected = float(mannwhitneyu(x, y, alternative="greater").pvalue)
    assert stats.mann_whitney_greater(x, y) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_mann_whitney_exact_and_bad_input() -> None:
    # 3 values against 3, no ties, all of a above b: 1 arrangement of 20 reaches U = 9.
    assert stats.mann_whitney_greater([4, 5, 6], [1, 2, 3]) == pytest.approx(1 / 20)
    assert stats.mann_whitney_greater([1, 2, 3], [4, 5, 6]) == 1.0
    assert stats.mann_whitney_greater([2, 2, 2], [2, 2]) == 1.0  # all tied: no shift shows
    with pytest.raises(ValueError):
        stats.mann_whitney_greater([], [1.0])
    with pytest.raises(ValueError):
        stats.mann_whitney_greater([math.nan], [1.0])
