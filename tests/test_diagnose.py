"""Diagnostics of rules whose selectors match nothing on a host (no silent pass), on pages
from the real ``prometheus_client`` library and a node_exporter-style text."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from canarytui.config import Rule
from canarytui.metrics.diagnose import (
    NO_METRICS,
    PROBLEM,
    WARNING,
    Finding,
    diagnose,
    group,
    hosts_text,
    why_no_page,
)
from canarytui.metrics.page import Page, parse_page, picks


class App:
    """A web app instrumented with prometheus_client: labelled series appear on first use."""

    def __init__(self, error_ratio: float, seed: int = 1) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "Requests.", ["method", "route", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Latency.", ["route"], registry=self.registry
        )
        Gauge("http_requests_in_flight", "In flight.", registry=self.registry).set(3)
        Gauge("process_open_fds", "fds", registry=self.registry).set(12)
        self.error_ratio = error_ratio
        self.rng = random.Random(seed)

    def page(self, served: int = 300) -> str:
        for _ in range(served):
            route = self.rng.choice(["/", "/api/cart", "/health"])
            failed = route != "/health" and self.rng.random() < self.error_ratio
            self.requests.labels("GET", route, "500" if failed else "200").inc()
            self.latency.labels(route).observe(self.rng.expovariate(20))
        return generate_latest(self.registry).decode()


NODE = (
    "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
    "# TYPE node_cpu_seconds_total counter\n"
    'node_cpu_seconds_total{cpu="0",mode="idle"} 1000.5\n'
    'node_cpu_seconds_total{cpu="0",mode="user"} 20.25\n'
    'node_cpu_seconds_total{cpu="1",mode="idle"} 990\n'
    "# TYPE node_load1 gauge\nnode_load1 0.42\n"
    "# TYPE node_load5 gauge\nnode_load5 0.40\n"
    "# TYPE node_load15 gauge\nnode_load15 0.38\n"
    "# TYPE node_memory_MemAvailable_bytes gauge\nnode_memory_MemAvailable_bytes 1.2e+09\n"
)


def page_of(text: str, *rules: Rule) -> Page:
    return parse_page(text, picks(rules))


def findings(text: str, *rules: Rule) -> list[Finding]:
    return diagnose(rules, page_of(text, *rules))


def test_every_selector_matching_series_says_nothing() -> None:
    ratio = Rule(
        name="error-ratio",
        metric='http_requests_total{code=~"5.."}',
        per="http_requests_total",
        max=0.05,
    )
    p99 = Rule(name="p99", metric='http_request_duration_seconds{route!="/health"}', quantile=0.99)
    family = Rule(name="family", metric="http_requests", min_vs_baseline=0.5)
    assert findings(App(0.2).page(), ratio, p99, family) == []
    assert diagnose((), None) == []


def test_a_missing_metric_is_a_problem_with_the_closest_names_first() -> None:
    rule = Rule(name="errors", metric="http_errors_total", per="http_requests_total", max=0.05)
    (found,) = findings(App(0.1).page(), rule)
    assert found.level == PROBLEM and found.rules == ("errors",)
    head, _, names = found.message.partition("; closest names: ")
    assert head == "metric http_errors_total is not on the page"
    shown = names.split(", ")
    assert shown[0] == "http_requests_total"
    # Names sharing the prefix come after the close ones; a histogram shows as its _count,
    # and prometheus_client's _created series are not offered.
    assert "http_request_duration_seconds_count" in shown
    assert not any(n.endswith(("_bucket", "_sum", "_created")) for n in shown)
    assert "process_open_fds" not in shown
    assert str(found).startswith("rule errors: metric http_errors_total is not on the page")


def test_a_missing_per_is_named_as_the_per() -> None:
    rule = Rule(name="ratio", metric="http_requests_total", per="http_request_total", max=0.05)
    (found,) = findings(App(0.1).page(), rule)
    assert found.level == PROBLEM
    assert found.message.startswith("per http_request_total is not on the page")
    assert "closest names: http_requests_total" in found.message


def test_a_label_no_series_has_is_a_problem_naming_the_labels_that_exist() -> None:
    rule = Rule(
        name="error-ratio",
        metric='http_requests_total{status=~"5.."}',
        per="http_requests_total",
        max=0.05,
    )
    (found,) = findings(App(0.1).page(), rule)
    assert found.level == PROBLEM
    assert found.message.startswith(
        'metric http_requests_total exists but no series matches {status=~"5.."} '
        "(none has the label status): its series have labels "
    )
    labels = found.message.rsplit("labels ", 1)[1].split(", ")
    assert sorted(labels) == ["code", "method", "route"]


def test_labels_are_suggested_closest_first() -> None:
    rule = Rule(name="slow", metric='http_request_duration_seconds{rout="/"}', quantile=0.99)
    (found,) = findings(App(0.0).page(), rule)
    assert found.level == PROBLEM and "(none has the label rout)" in found.message
    assert found.message.endswith("its series have labels route")
    cpu = Rule(name="cpu", metric='node_cpu_seconds_total{mod="user",cpus="0"}', max=1e9)
    (found,) = findings(NODE, cpu)
    assert "(none has the label mod, cpus)" in found.message
    assert found.message.endswith("its series have labels mode, cpu")


def test_zero_but_present_is_a_warning() -> None:
    """No 5xx yet: a labelled counter's series appear on first use; the ratio is a real 0."""
    rule = Rule(
        name="error-ratio",
        metric='http_requests_total{code=~"5.."}',
        per="http_requests_total",
        max=0.05,
    )
    page = page_of(App(0.0).page(), rule)
    assert page.readings['values:http_requests_total{code=~"5.."}'] == {}
    (found,) = diagnose((rule,), page)
    assert found.level == WARNING
    assert found.message == (
        'metric http_requests_total{code=~"5.."} matches no series now: zero until one '
        "appears — check the labels: its series have labels code, method, route"
    )
    # Once one 5xx has been answered, the same rule matches: nothing to say.
    assert findings(App(0.5).page(), rule) == []


def test_node_exporter_page() -> None:
    idle = Rule(name="idle", metric='node_cpu_seconds_total{mode="idel"}', max=1e9)
    (found,) = findings(NODE, idle)
    assert found.level == WARNING and "its series have labels cpu, mode" in found.message
    load = Rule(name="load", metric="node_load", max=4)
    (found,) = findings(NODE, load)
    assert found.level == PROBLEM
    close = found.message.split("closest names: ")[1].split(", ")
    assert set(close[:3]) == {"node_load1", "node_load5", "node_load15"}
    far = Rule(name="far", metric="jvm_gc_pause_seconds", max=1)
    (found,) = findings(NODE, far)
    assert found.message.endswith("no similar names among its 5 names")
    (found,) = findings("", far)
    assert found.message.endswith("the page has no metrics at all")


def test_a_quantile_rule_needs_a_histogram() -> None:
    typo = Rule(name="p99", metric="http_request_duration_second", quantile=0.99)
    (found,) = findings(App(0.0).page(), typo)
    assert found.message == (
        "metric http_request_duration_second is not on the page; "
        "closest histograms: http_request_duration_seconds"
    )
    bucket = Rule(name="p99", metric="http_request_duration_seconds_bucket", quantile=0.99)
    (found,) = findings(App(0.0).page(), bucket)
    assert "a quantile rule names the histogram (http_request_duration_seconds)" in found.message
    gauge = Rule(name="p99", metric="node_load1", quantile=0.99)
    (found,) = findings(NODE, gauge)
    assert "(no node_load1_bucket series): a quantile needs one" in found.message


def test_no_page_is_one_problem_for_every_rule() -> None:
    rules = (
        Rule(name="a", metric="x_total", max=1),
        Rule(name="b", metric="y", max=1),
    )
    (found,) = diagnose(rules, None)
    assert found.level == PROBLEM and found.rules == ("a", "b")
    assert str(found) == "rules a, b: no metrics page (health.metrics is not set)"
    assert why_no_page(None, "") == NO_METRICS
    said = why_no_page("curl -fsS localhost/metrics", "health check exited 1: x; metrics exited 7")
    assert said == "metrics exited 7"
    (found,) = diagnose(rules, None, said)
    assert found.message == "no metrics page (metrics exited 7)"


def test_the_same_finding_on_many_hosts_is_grouped_problems_first() -> None:
    missing = Finding(("a",), PROBLEM, "metric x is not on the page")
    zero = Finding(("b",), WARNING, "metric y matches no series now")
    grouped = group({"web-01": [zero, missing], "web-02": [missing], "web-03": [missing]})
    assert grouped == [(missing, ["web-01", "web-02", "web-03"]), (zero, ["web-01"])]
    assert hosts_text(["web-01", "web-02", "web-03"], 3) == "all 3 hosts"
    assert hosts_text(["web-01"], 3) == "web-01"
    six = [f"web-0{i}" for i in range(1, 7)]
    assert hosts_text(six, 12) == "6 hosts: web-01, web-02, web-03, web-04 and 2 more"
