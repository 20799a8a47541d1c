"""The demo app's metrics page: prometheus_client's text format, its labelled series, and the
releases' behaviour as rules read it; the demo's and the sample environments' rules."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from canarytui.config import load_env
from canarytui.config.selector import parse_selector
from canarytui.demo.app import SimulatedApp, init_sandbox
from canarytui.demo.envfile import EnvHost, render_env
from canarytui.demo.exposition import go_float
from canarytui.demo.traffic import BUCKETS, ROUTES

REPO = Path(__file__).resolve().parent.parent
SAMPLE_ENVS = sorted((REPO / "sample_envs").glob("*.yaml"))

Samples = list[tuple[str, dict[str, str], float]]


# ------------------------------------------------------------------------ helpers


def run_app(
    root: Path, version: str, seconds: float = 60.0, seed: int = 3, traffic: float = 10.0
) -> SimulatedApp:
    """An app on ``version`` that has served ``seconds`` of traffic, in quarter-second ticks."""
    sandbox = root / f"{version}-{seed}"
    init_sandbox(sandbox, version)
    app = SimulatedApp("web-01", sandbox, seed=seed, traffic=traffic)
    app.start()
    for _ in range(int(seconds / 0.25)):
        app.tick(0.25)
    return app


def families(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str) -> Samples:
    return [(s.name, s.labels, s.value) for f in families(text).values() for s in f.samples]


def requests(page: Samples, code: str = "", health: bool = False) -> float:
    """http_requests_total summed: the app's (or the probes'), codes starting with ``code``."""
    return sum(
        value
        for name, labels, value in page
        if name == "http_requests_total"
        and (labels["route"] == "/health") == health
        and labels["code"].startswith(code)
    )


def quantile(q: float, page: Samples, with_health: bool = False) -> float:
    """Prometheus' histogram_quantile over the routes' buckets summed by bound."""
    counts: dict[float, float] = {}
    for name, labels, value in page:
        if name == "http_request_duration_seconds_bucket" and (
            with_health or labels["route"] != "/health"
        ):
            bound = float(labels["le"])
            counts[bound] = counts.get(bound, 0.0) + value
    ordered = sorted(counts.items())
    rank = q * ordered[-1][1]
    low_bound, low_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return low_bound
            return low_bound + (bound - low_bound) * (rank - low_count) / (count - low_count)
        low_bound, low_count = bound, count
    raise AssertionError("no bucket holds the quantile")


class Replay:
    """A collector that hands prometheus_client families parsed from a page."""

    def __init__(self, parsed: Iterable[Metric]) -> None:
        self._parsed = list(parsed)

    def collect(self) -> Iterator[Metric]:
        return iter(self._parsed)


def demo_env(tmp_path: Path, analysis_duration: float, interval: float) -> Path:
    path = tmp_path / f"demo-{analysis_duration:g}-{interval:g}.yaml"
    path.write_text(
        render_env(
            [EnvHost(f"web-0{i}", 40_000 + i, ("web",), {"zone": "eu-1"}) for i in (1, 2, 3)],
            identity_file=tmp_path / "id_ed25519",
            known_hosts=tmp_path / "known_hosts",
            analysis_duration=analysis_duration,
            interval=interval,
            canary="web-01",
        )
    )
    return path


# ------------------------------------------------------------------- the format


def test_page_is_exactly_what_prometheus_client_writes(tmp_path: Path) -> None:
    text = run_app(tmp_path, "1.3.0-bad", seconds=5).metrics_text()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Replay(text_string_to_metric_families(text)))  # type: ignore[arg-type]
    # Parsed by prometheus_client and written back by it: not one byte differs.
    assert generate_latest(registry).decode() == text


@pytest.mark.parametrize(
    "value",
    [0, 1, 12, 999_999, 1_000_000, 1_234_567, 85_983_232, 0.005, 0.1, 2.5, 1e-7, 123.456,
     1_796_068_668.34, 4.366527190854419, math.inf, -math.inf],
)  # fmt: skip
def test_numbers_are_written_as_go_writes_them(value: float) -> None:
    assert go_float(value) == floatToGoString(value)


def test_series_and_labels(tmp_path: Path) -> None:
    text = run_app(tmp_path, "1.0.0", seconds=10).metrics_text()
    found = families(text)
    assert {name: f.type for name, f in found.items()} == {
        "process_virtual_memory_bytes": "gauge",
        "process_resident_memory_bytes": "gauge",
        "process_start_time_seconds": "gauge",
        "process_cpu_seconds": "counter",
        "process_open_fds": "gauge",
        "process_max_fds": "gauge",
        "python_info": "gauge",
        "http_requests": "counter",
        "http_request_duration_seconds": "histogram",
        "http_requests_in_flight": "gauge",
        "app_info": "gauge",
    }
    page = samples(text)

    counted = [labels for name, labels, _ in page if name == "http_requests_total"]
    assert all(set(labels) == {"method", "route", "code"} for labels in counted)
    assert (
        {labels["route"] for labels in counted}
        == set(ROUTES)
        == {
            "/",
            "/api/cart",
            "/api/checkout",
            "/api/products",
            "/health",
        }
    )
    assert {labels["method"] for labels in counted} == {"GET", "POST"}
    assert {labels["code"] for labels in counted} == {"200", "404", "500", "503"}
    # Probes are GETs that succeed (503 only on a release that fails its health check);
    # a 404 answers a GET for something that is not there.
    assert {(lb["method"], lb["code"]) for lb in counted if lb["route"] == "/health"} == {
        ("GET", "200"),
        ("GET", "503"),
    }
    assert {lb["method"] for lb in counted if lb["code"] == "404"} == {"GET"}
    # Every series exists from the start, so a 5xx series is there before the first error.
    assert len(counted) == len({tuple(sorted(lb.items())) for lb in counted}) == 19

    bounds = [go_float(b) for b in BUCKETS] + ["+Inf"]
    for route in ROUTES:
        buckets = [
            (labels["le"], value)
            for name, labels, value in page
            if name == "http_request_duration_seconds_bucket" and labels["route"] == route
        ]
        assert [le for le, _ in buckets] == bounds
        values = [value for _, value in buckets]
        assert values == sorted(values) and values[-1] > 0  # cumulative
        (count,) = (
            v
            for n, lb, v in page
            if n == "http_request_duration_seconds_count" and lb == {"route": route}
        )
        (total,) = (
            v
            for n, lb, v in page
            if n == "http_request_duration_seconds_sum" and lb == {"route": route}
        )
        assert count == values[-1]
        # Each request observed once, in its route's histogram.
        routed = sum(v for n, lb, v in page if n == "http_requests_total" and lb["route"] == route)
        assert count == routed
        assert 0.001 * count < total < 0.2 * count

    gauges = {name: (labels, value) for name, labels, value in page if "_bucket" not in name}
    assert gauges["app_info"] == ({"version": "1.0.0"}, 1.0)
    assert 50e6 < gauges["process_resident_memory_bytes"][1] < 200e6
    assert gauges["process_start_time_seconds"][1] > 1.7e9


def test_label_values_are_escaped(tmp_path: Path) -> None:
    odd = 'v1"quoted\\back'
    app = run_app(tmp_path, odd, seconds=1)
    (labels,) = (lb for name, lb, _ in samples(app.metrics_text()) if name == "app_info")
    assert labels == {"version": odd}


# ------------------------------------------------------------------- the releases


@pytest.mark.parametrize("seed", [1, 2])
def test_releases_as_the_rules_see_them(tmp_path: Path, seed: int) -> None:
    pages = {
        version: samples(run_app(tmp_path, version, seed=seed).metrics_text())
        for version in ("1.1.0", "1.3.0-bad", "1.4.0-dead", "1.5.0-slow")
    }
    good, bad, dead, slow = pages.values()
    for page in pages.values():
        assert requests(page) > 20_000
        # 404s: a small steady share of what did not fail, and not errors.
        assert 0.005 < requests(page, "404") / (requests(page) - requests(page, "5")) < 0.03
    ratio = {v: requests(p, "5") / requests(p) for v, p in pages.items()}
    assert 0.004 < ratio["1.1.0"] < 0.02 and 0.004 < ratio["1.5.0-slow"] < 0.02
    assert 0.16 < ratio["1.3.0-bad"] < 0.24
    assert ratio["1.4.0-dead"] > 0.8

    # Probes: numerous, fast (every one under 10 ms), failing only on the dead release.
    for page in (good, bad, slow):
        probes = requests(page, health=True)
        assert probes == requests(page, "200", health=True)
        assert 0.4 < probes / (probes + requests(page)) < 0.55
        (fast,) = (
            v
            for n, lb, v in page
            if n == "http_request_duration_seconds_bucket"
            and lb == {"le": "0.01", "route": "/health"}
        )
        assert fast == probes
    assert requests(dead, "503", health=True) == requests(dead, health=True) > 0

    # p99 of the app's routes: ~0.2 s on a good release, three times that on the slow one.
    assert 0.12 < quantile(0.99, good) < 0.3
    assert 2.5 < quantile(0.99, slow) / quantile(0.99, good) < 3.8
    assert 2.5 < quantile(0.5, slow) / quantile(0.5, good) < 3.5
    assert quantile(0.99, slow) > 0.55  # over the demo rule's max: 0.5
    # Counting the probes would pull both down, visibly: the rules leave /health out.
    for page in (good, slow):
        assert quantile(0.99, page, with_health=True) < 0.85 * quantile(0.99, page)
        assert quantile(0.5, page, with_health=True) < 0.5 * quantile(0.5, page)


def test_dead_release_fails_its_health_file(tmp_path: Path) -> None:
    app = run_app(tmp_path, "1.4.0-dead", seconds=1)
    app.sync()
    assert (app.sandbox / "run" / "health").read_text() == "fail 1.4.0-dead\n"
    assert (app.sandbox / "run" / "metrics.prom").read_text() == app.metrics_text()


def test_traffic_is_deterministic_per_seed(tmp_path: Path) -> None:
    def counters(app: SimulatedApp) -> tuple[object, ...]:
        c = app.counters
        return (c.requests, c.buckets, c.sums, app.in_flight, app.cpu_seconds)

    a = run_app(tmp_path / "a", "1.1.0", seconds=5, seed=11)
    b = run_app(tmp_path / "b", "1.1.0", seconds=5, seed=11)
    c = run_app(tmp_path / "c", "1.1.0", seconds=5, seed=12)
    assert counters(a) == counters(b) != counters(c)


def test_a_restart_starts_the_counters_from_zero(tmp_path: Path) -> None:
    app = run_app(tmp_path, "1.1.0", seconds=2)
    assert requests(samples(app.metrics_text())) > 0
    (app.sandbox / "run" / "restart").touch()
    assert app.poke()
    page = samples(app.metrics_text())
    assert requests(page) == requests(page, health=True) == 0
    assert len([name for name, _, _ in page if name == "http_requests_total"]) == 19


# ------------------------------------------------------------- the environments


def selects(selector_text: str, page: Samples) -> bool:
    """Whether a rule's selector matches a series on the page, as the analysis reads it:
    a counter by its sample name, a histogram by its buckets."""
    selector = parse_selector(selector_text)
    names = {selector.name, selector.name + "_total", selector.name + "_bucket"}
    return any(name in names and selector.matches(labels) for name, labels, _ in page)


def test_demo_env_rules_read_the_series_the_app_writes(tmp_path: Path) -> None:
    env = load_env(demo_env(tmp_path, 15.0, 1.0))
    page = samples(run_app(tmp_path, "1.1.0", seconds=2).metrics_text())
    rules = env.canary.analysis.rules
    assert [r.name for r in rules] == ["error-ratio", "p99-latency", "traffic", "latency-shift"]
    for rule in rules:
        assert selects(rule.metric, page), rule.metric
        assert rule.per is None or selects(rule.per, page), rule.per
        assert "/health" in rule.metric  # every rule leaves the probes out
    assert not selects('http_requests_total{route="/nope"}', page)
    assert not selects("http_request_total", page)


@pytest.mark.parametrize(
    ("analysis_duration", "interval", "warmup", "optional"),
    [
        (15.0, 1.0, 2.0, False),  # `canarytui demo`: 13 judged intervals
        (2.0, 0.25, 0.0, True),  # the tests' fleet: 8, too few to be sure of 5 a side
        (2.0, 0.3, 0.0, True),
        (30.0, 2.0, 2.0, False),
    ],
)
def test_demo_env_fits_its_analysis_to_its_length(
    tmp_path: Path, analysis_duration: float, interval: float, warmup: float, optional: bool
) -> None:
    path = demo_env(tmp_path, analysis_duration, interval)
    analysis = load_env(path).canary.analysis
    assert (analysis.duration, analysis.interval, analysis.warmup) == (
        analysis_duration,
        interval,
        warmup,
    )
    assert {r.name: r.optional for r in analysis.rules} == {
        "error-ratio": False,
        "p99-latency": False,
        "traffic": False,
        "latency-shift": optional,
    }
    text = path.read_text()
    assert ("optional: true" in text) == optional
    # Every key of the analysis comes with a comment saying what it does.
    section = text.split("  analysis:", 1)[1].split("\npromote:", 1)[0]
    for key in ("warmup", "duration", "interval", "max_failed_checks", "baseline", "early_fail"):
        line_no, line = next((i, ln) for i, ln in enumerate(section.splitlines()) if key in ln)
        before = section.splitlines()[line_no - 1]
        assert "#" in line or before.lstrip().startswith("#"), key


@pytest.mark.parametrize("path", SAMPLE_ENVS, ids=[p.name for p in SAMPLE_ENVS])
def test_every_sample_env_loads(path: Path) -> None:
    env = load_env(path)
    assert env.hosts and env.deploy.steps


def test_prometheus_client_sample_reads_such_an_app(tmp_path: Path) -> None:
    """The sample's rules select series on a page shaped like the demo app's."""
    env = load_env(REPO / "sample_envs" / "prometheus-client-app.yaml")
    page = samples(run_app(tmp_path, "1.1.0", seconds=2).metrics_text())
    analysis = env.canary.analysis
    assert [r.name for r in analysis.rules] == [
        "error-ratio",
        "p99-latency",
        "traffic",
        "latency-shift",
    ]
    assert analysis.warmup > 0 and analysis.interval is not None
    for rule in analysis.rules:
        assert selects(rule.metric, page), rule.metric
        assert rule.per is None or selects(rule.per, page), rule.per
    assert env.health.metrics == "curl -fsS --max-time 3 localhost:8000/metrics"
