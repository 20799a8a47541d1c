"""``health.prometheus``: the rules' series from a real Prometheus server instead of a page.

The server is Debian's ``prometheus`` started on loopback (tests/prom_server.py), scraping a
small prometheus_client app per host every second; web-01's release doubles its 5xx. Its
readings must be the page parser's, ``analyze`` must give the numbers the metrics command
gives for the same apps, and a server that is down, answers an error or does not know the
host leaves every rule without data, saying why (never a pass). The file's keys are checked
with one clear message per mistake. Without the binary the server's tests skip (CI: fail).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult, edit_env, run_cli
from prom_server import (
    BAD_ERRORS,
    GOOD_ERRORS,
    P99,
    REQUESTS,
    MetricsApp,
    PrometheusServer,
    free_port,
    prometheus_binary,
    running,
    serve,
)

from canarytui.config import EnvFileError, Host, Rule, parse_env
from canarytui.config.model import Prometheus
from canarytui.demo import DemoFleet
from canarytui.metrics import prometheus as prom
from canarytui.metrics.diagnose import diagnose
from canarytui.metrics.page import parse_page, picks

HOSTS = ("web-01", "web-02", "web-03", "web-04")
RULES: list[dict[str, Any]] = [
    {
        "name": "error-ratio",
        "metric": 'http_requests_total{code=~"5..",route!="/health"}',
        "per": 'http_requests_total{route!="/health"}',
        "max": 0.06,
    },
    {
        "name": "p99-latency",
        "metric": 'http_request_duration_seconds{route!="/health"}',
        "quantile": 0.99,
        "max": 2,
    },
    {"name": "traffic", "metric": 'http_requests_total{route!="/health"}', "min_vs_baseline": 0.5},
    {"name": "inflight", "metric": "app_inflight_requests", "max": 100},
    {"name": "observed", "metric": "http_request_duration_seconds", "min": 1},
]


def rules(specs: list[dict[str, Any]] = RULES) -> list[Rule]:
    return [Rule(**spec) for spec in specs]


# The file's keys -------------------------------------------------------------------------

BASE = textwrap.dedent("""\
    name: production
    app: shop
    hosts:
      - name: web-01
        address: 10.0.0.1
    deploy:
      current: cat VERSION
      steps:
        - name: switch
          run: switch {version}
    health:
      check: curl -fsS localhost:8080/health
      prometheus:
        url: http://prometheus.internal:9090
        instance: '{address}:9100'
    """)


def problems(text: str) -> list[str]:
    with pytest.raises(EnvFileError) as exc:
        parse_env(text, file="prod.yaml")
    return exc.value.problems


def test_the_key_is_read() -> None:
    env = parse_env(BASE, file="prod.yaml")
    assert env.health.prometheus == Prometheus("http://prometheus.internal:9090", "{address}:9100")
    assert env.health.metrics is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "http://prometheus.internal:9090",
            "ftp://prometheus.internal",
            "prod.yaml:14: health.prometheus.url: expected an http:// or https:// URL, "
            "e.g. http://prometheus.internal:9090",
        ),
        (
            "http://prometheus.internal:9090",
            "prometheus.internal:9090",
            "prod.yaml:14: health.prometheus.url: expected an http:// or https:// URL",
        ),
        (
            "http://prometheus.internal:9090",
            "http://:9090",
            "prod.yaml:14: health.prometheus.url: the URL names no host",
        ),
        (
            "http://prometheus.internal:9090",
            "http://prometheus.internal:99999",
            "prod.yaml:14: health.prometheus.url: not a URL: Port out of range 0-65535",
        ),
        (
            "http://prometheus.internal:9090",
            "http://prometheus.internal:9090/?x=1",
            "prod.yaml:14: health.prometheus.url: the server's base URL takes no query or "
            "fragment (? or #)",
        ),
        (
            "http://prometheus.internal:9090",
            "'http://prometheus internal'",
            "prod.yaml:14: health.prometheus.url: a URL has no spaces",
        ),
        (
            "'{address}:9100'",
            "'{adress}:9100'",
            "prod.yaml:15: health.prometheus.instance: unknown placeholder {adress} "
            "(known: {address}, {host}, {port})",
        ),
        (
            "'{address}:9100'",
            "'{version}'",
            "prod.yaml:15: health.prometheus.instance: unknown placeholder {version}",
        ),
        (
            "    instance: '{address}:9100'\n",
            "",
            "prod.yaml:14: health.prometheus.instance: required",
        ),
        (
            "    url: http://prometheus.internal:9090\n",
            "",
            "prod.yaml:14: health.prometheus.url: required",
        ),
        (
            "    instance: '{address}:9100'\n",
            "    instance: '{address}:9100'\n    urls: x\n",
            "prod.yaml:16: health.prometheus.urls: unknown key (known: instance, url)",
        ),
        (
            "  prometheus:\n    url: http://prometheus.internal:9090\n"
            "    instance: '{address}:9100'\n",
            "  prometheus: http://prometheus.internal:9090\n",
            "prod.yaml:13: health.prometheus: expected a mapping, got text",
        ),
        (
            "  check: curl -fsS localhost:8080/health\n",
            "  check: curl -fsS localhost:8080/health\n  metrics: curl -fsS x/metrics\n",
            "prod.yaml:15: health.prometheus: the metrics come from health.metrics or from "
            "health.prometheus, not both",
        ),
        (
            "'{address}:9100'",
            "''",
            "prod.yaml:15: health.prometheus.instance: must not be empty",
        ),
    ],
)
def test_bad_keys_get_one_clear_line(old: str, new: str, expected: str) -> None:
    assert old in BASE
    found = problems(BASE.replace(old, new))
    assert any(p.startswith(expected) for p in found), found


def test_a_password_in_the_url_is_never_shown() -> None:
    found = problems(BASE.replace("http://prometheus", "ftp://ops:s3cret@prometheus"))
    assert found and not any("s3cret" in p for p in found), found
    assert prom.shown_url("https://ops:s3cret@prom.example:9090/p") == "https://prom.example:9090/p"


# Pure parts ------------------------------------------------------------------------------


def test_the_instance_template_and_the_query() -> None:
    host = Host("web-01", "10.0.0.1", None, 2222)
    assert prom.instance_of("{address}:9100", host) == "10.0.0.1:9100"
    assert prom.instance_of("{host}.{address}:{port}", host) == "web-01.10.0.0.1:2222"
    assert prom.instance_of("{address}:{port}", Host("a", "h", None, None)) == "h:22"
    query = prom.query_for(picks(rules()), 'odd"name\\')
    assert query == (
        '{__name__=~"app_inflight_requests|app_inflight_requests_count|'
        "app_inflight_requests_total|http_request_duration_seconds|"
        "http_request_duration_seconds_bucket|http_request_duration_seconds_count|"
        "http_request_duration_seconds_total|http_requests_total|http_requests_total_count|"
        'http_requests_total_total|up",instance="odd\\"name\\\\"}'
    )


def test_series_become_the_page_parsers_readings() -> None:
    """The same numbers as series from the server and as a page: the same readings."""
    app = MetricsApp("web-01", BAD_ERRORS)
    try:
        app.pause()
        text = app.page()
    finally:
        app.stop()
    wanted = picks(rules())
    from prometheus_client.parser import text_string_to_metric_families

    # The page's samples as the server answers them: its labels added, values as text.
    answer: dict[str, Any] = {
        "resultType": "vector",
        "result": [
            {
                "metric": dict(s.labels, __name__=s.name, job="app", instance="web-01"),
                "value": [1700000000.5, repr(float(s.value))],
            }
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ],
    }
    series = prom.series_of(answer)
    page = prom.to_page(series, wanted, {"app_inflight_requests": "gauge"})
    expected = parse_page(text, wanted)
    assert page.readings == expected.readings
    assert page.labels == expected.labels
    assert any(k.startswith("g:") for k in page.readings["values:app_inflight_requests"])
    # Unknown to the server's metadata, a plain name is read as a gauge, as untyped on a page.
    assert prom.to_page(series, wanted, {}).readings == expected.readings


# Errors, without a Prometheus server ---------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    return free_port()


async def test_a_server_that_is_down_or_hangs_says_so(closed_port: int) -> None:
    wanted = picks(rules())
    with pytest.raises(prom.PrometheusError, match=r"cannot ask it: .*[Cc]onnection refused"):
        await prom.read(f"http://127.0.0.1:{closed_port}", "web-01", wanted, 2.0)
    with socket.socket() as listener:  # accepts connections (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        began = time.monotonic()
        with pytest.raises(prom.PrometheusError, match=r"no answer within 0\.5s"):
            await prom.read(f"http://127.0.0.1:{port}", "web-01", wanted, 0.5)
        assert time.monotonic() - began < 3


async def test_the_servers_own_words_and_basic_auth() -> None:
    seen: list[str | None] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ.get("HTTP_AUTHORIZATION"))
        if "notjson" in environ.get("PATH_INFO", ""):
            start_response("502 Bad Gateway", [("Content-Type", "text/html")])
            return [b"<html>\x1b[31mproxy error</html>"]
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        body = {"status": "error", "errorType": "unavailable", "error": "too many queries"}
        return [json.dumps(body).encode()]

    server, thread = serve(app)
    try:
        port = server.server_port
        cfg = Prometheus(f"http://ops:s3cret@127.0.0.1:{port}", "{host}")
        page, why = await prom.probe_page(cfg, Host("web-01", "h", None, None), [], 2.0)
        assert page is None
        assert why == (
            f"metrics from Prometheus http://127.0.0.1:{port}: the server answered 503: "
            "unavailable: too many queries"
        )
        assert seen == ["Basic b3BzOnMzY3JldA=="]  # ops:s3cret
        with pytest.raises(prom.PrometheusError) as exc:
            await prom.read(f"http://127.0.0.1:{port}/notjson", "web-01", [], 2.0)
        assert str(exc.value) == (
            "HTTP 502, not an answer of the Prometheus API: <html>␛proxy error</html>"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# Against a real Prometheus server --------------------------------------------------------------


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, MetricsApp]]:
    prometheus_binary()
    made = {h: MetricsApp(h, BAD_ERRORS if h == "web-01" else GOOD_ERRORS) for h in HOSTS}
    try:
        yield made
    finally:
        for app in made.values():
            app.stop()


@pytest.fixture(scope="module")
def server(
    apps: dict[str, MetricsApp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    gone = {"gone": f"127.0.0.1:{free_port()}"}  # a target whose scrapes fail
    for found in running(tmp_path_factory.mktemp("prometheus"), apps.values(), gone):
        found.wait_scraped([*HOSTS, "gone"])
        yield found


async def test_readings_from_the_server_are_the_pages(
    server: PrometheusServer, apps: dict[str, MetricsApp]
) -> None:
    wanted = picks(rules())
    paused = [apps["web-01"], apps["web-02"]]
    for app in paused:
        app.pause()
    try:
        for app in paused:
            expected = parse_page(app.page(), wanted)
            deadline = time.monotonic() + 10
            while True:  # until the server has scraped the paused page
                page = await prom.read(server.url, app.host, wanted, 5.0)
                if page.readings == expected.readings or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert page.readings == expected.readings
            assert page.labels == expected.labels
            kinds = {k[:2] for k in page.readings["values:app_inflight_requests"]}
            assert kinds == {"g:"}  # a gauge, by the server's metadata
    finally:
        for app in paused:
            app.resume()


async def test_a_missing_metric_an_unknown_host_and_a_failed_scrape(
    server: PrometheusServer,
) -> None:
    typo = rules(
        [{"name": "typo", "metric": "http_request_total", "per": "app_inflight", "max": 1}]
    )
    page = await prom.read(server.url, "web-02", picks(typo), 5.0)
    found = [str(f) for f in diagnose(typo, page)]
    assert any("closest names: http_requests_total" in f for f in found), found
    with pytest.raises(prom.PrometheusError) as exc:
        await prom.read(server.url, "web-99", picks(typo), 5.0)
    assert str(exc.value) == (
        'no series has instance="web-99": is the host scraped, and does '
        "health.prometheus.instance give its instance label?"
    )
    with pytest.raises(prom.PrometheusError, match=r'instance="gone" failed \(up is 0\)'):
        await prom.read(server.url, "gone", picks(typo), 5.0)
    with pytest.raises(prom.PrometheusError) as exc:
        await prom.read(server.url + "/nope", "web-02", [], 5.0)
    assert str(exc.value) == "HTTP 404, not an answer of the Prometheus API: 404 page not found"


# The commands, on a demo fleet whose hosts' metrics are the apps' ------------------------------


@pytest.fixture
async def fleet(apps: dict[str, MetricsApp]) -> AsyncIterator[DemoFleet]:
    demo = DemoFleet(hosts=len(HOSTS), analysis_duration=6.0, interval=1.0)
    await asyncio.wait_for(demo.start(), 30)
    try:
        for host in HOSTS:  # where the host's app listens: its metrics command reads it
            (demo.sandbox_of(host) / "appport").write_text(f"{apps[host].port}\n")
        yield demo
    finally:
        await asyncio.wait_for(demo.stop(), 30)


def env_for(
    demo: DemoFleet, dest: Path, source: dict[str, Any], specs: list[dict[str, Any]] = RULES
) -> Path:
    def edit(data: dict[str, Any]) -> None:
        data["health"].pop("metrics")
        data["health"].update(source)
        data["canary"]["analysis"] = {
            "duration": "6s",
            "interval": "1s",
            "baseline": 2,
            "early_fail": False,
            "rules": specs,
        }

    return edit_env(demo.env_path, dest, edit)


COMMAND = {"metrics": 'curl -fsS "http://127.0.0.1:$(cat appport)/metrics"'}


def result(run: CliResult) -> dict[str, Any]:
    assert "Traceback" not in run.out + run.err, run.err
    last: dict[str, Any] = json.loads(run.out.strip().splitlines()[-1])
    assert last["event"] == "result", run.out
    return last


def state(m: dict[str, Any]) -> str:
    return str(m["status"] or {True: "pass", False: "fail", None: "no data"}[m["passed"]])


def values(found: dict[str, Any]) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    return {(m["rule"], m["host"]): (m["value"], m["baseline"]) for m in found["measurements"]}


async def test_analyze_gives_the_metrics_commands_numbers(
    server: PrometheusServer, fleet: DemoFleet, tmp_path: Path
) -> None:
    by_command = env_for(fleet, tmp_path / "command.yaml", COMMAND)
    by_server = env_for(
        fleet, tmp_path / "server.yaml", {"prometheus": {"url": server.url, "instance": "{host}"}}
    )
    args = ("--canary", "web-01,web-02", "--for", "6s", "--json")
    runs = await asyncio.gather(
        run_cli("analyze", str(by_command), *args, state_dir=tmp_path / "a", timeout=90),
        run_cli("analyze", str(by_server), *args, state_dir=tmp_path / "b", timeout=90),
    )
    command, served = (result(r) for r in runs)
    for found, run in zip((command, served), runs, strict=True):
        assert run.code == 3, run.out + run.err  # web-01 doubled its 5xx: the rules fail it
        assert sorted(found["baseline"]) == ["web-03", "web-04"]
        states = {(m["rule"], m["host"]): state(m) for m in found["measurements"]}
        assert states[("error-ratio", "web-01")] == "fail", states
        assert {s for k, s in states.items() if k != ("error-ratio", "web-01")} == {"pass"}
        assert found["diagnostics"] == []
    mine, theirs = values(command), values(served)
    assert mine.keys() == theirs.keys()
    exact = {
        "error-ratio": (BAD_ERRORS / REQUESTS, GOOD_ERRORS / REQUESTS),
        "p99-latency": (P99, P99),
        "inflight": (3.0, 3.0),
    }
    for (rule, host), (value, baseline) in theirs.items():
        if rule in exact:  # the same in any window: exactly the same numbers
            bad, good = exact[rule]
            want = bad if host == "web-01" and rule == "error-ratio" else good
            assert value == pytest.approx(want, rel=1e-9), (rule, host, value)
            assert mine[(rule, host)][0] == pytest.approx(want, rel=1e-9)
            assert baseline == pytest.approx(mine[(rule, host)][1], rel=1e-9)
        elif rule in ("traffic", "observed"):  # counted over the window: a scrape apart at most
            other, other_base = mine[(rule, host)]
            assert value is not None and other is not None
            assert baseline is not None and other_base is not None
            assert math.isclose(value, other, rel_tol=0.25), (rule, host, value, other)
            assert math.isclose(baseline, other_base, rel_tol=0.25)


async def test_check_and_analyze_say_what_the_server_said(
    server: PrometheusServer, fleet: DemoFleet, tmp_path: Path, closed_port: int
) -> None:
    def env(
        name: str, url: str, instance: str = "{host}", specs: list[dict[str, Any]] = RULES
    ) -> str:
        source = {"prometheus": {"url": url, "instance": instance}}
        return str(env_for(fleet, tmp_path / f"{name}.yaml", source, specs))

    down = env("down", f"http://ops:s3cret@127.0.0.1:{closed_port}")
    typo = [*RULES, {"name": "typo", "metric": "http_request_total", "max": 1}]
    runs = await asyncio.gather(
        run_cli("check", env("good", server.url), state_dir=tmp_path / "1"),
        run_cli("check", down, state_dir=tmp_path / "2"),
        run_cli("check", env("unknown", server.url, "{address}:9100"), state_dir=tmp_path / "3"),
        run_cli("check", env("typo", server.url, specs=typo), state_dir=tmp_path / "4"),
        run_cli("analyze", down, "--for", "2s", state_dir=tmp_path / "5", timeout=90),
    )
    good, gone, unknown, misnamed, analyzed = runs
    for run in runs:
        assert "Traceback" not in run.out + run.err
        assert "s3cret" not in run.out + run.err
    assert good.code == 0, good.out + good.err
    assert "every analysis rule's selectors match series on 4 host(s)" in good.out
    said = f"metrics from Prometheus http://127.0.0.1:{closed_port}: cannot ask it: "
    assert gone.code == 1, gone.out
    assert "web-01  " in gone.out and "healthy  " + said in gone.out  # the check is SSH's
    assert (
        "PROBLEM rules error-ratio, p99-latency, traffic, inflight, observed: no metrics page "
        f"({said}"
    ) in gone.out
    assert "onnection refused" in gone.out
    assert unknown.code == 1
    assert 'no series has instance="127.0.0.1:9100"' in unknown.out
    assert misnamed.code == 1
    assert "PROBLEM rule typo: metric http_request_total is not on the page; closest names: " in (
        misnamed.out
    )
    assert "http_requests_total" in misnamed.out
    # The analysis reads nothing: every rule without data, the verdict never a pass.
    assert analyzed.code == 1, analyzed.out + analyzed.err
    assert "== verdict: INCONCLUSIVE" in analyzed.out
    assert analyzed.out.count("NO DATA") == len(RULES)
    assert said in analyzed.out
