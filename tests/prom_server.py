"""A real Prometheus server on loopback for tests, scraping small prometheus_client apps.

``MetricsApp`` is one "host"'s web app as ``prometheus_client`` instruments it: a counter
``http_requests_total{method,route,code}``, a histogram ``http_request_duration_seconds
{route}`` and a gauge ``app_inflight_requests``, served on ``/metrics`` by its own HTTP
server on 127.0.0.1. Its traffic is a function of time: every tick (``TICKS`` a second)
it serves ``REQUESTS`` requests on ``/api``, ``errors`` of them 5xx, with the same
latencies, and one ``/health`` probe; the ticks due are applied, under one lock, just
before a page is written. So every page is a consistent snapshot, any window's error
ratio is exactly ``errors / REQUESTS`` and its quantiles are the same, whoever reads it
and whenever: the numbers two metrics sources give for one app can be compared exactly.

``PrometheusServer`` runs Debian's ``/usr/bin/prometheus`` with a generated configuration
that scrapes each app every second, its ``instance`` label set to the app's host name.
Without the binary the tests skip, saying why, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import make_wsgi_app

TICKS = 20.0  # ticks a second
REQUESTS = 50  # requests on /api per tick
LATENCIES = (0.02,) * 30 + (0.06,) * 15 + (0.2,) * 4 + (0.9,)  # seconds, one per request
P99 = 0.875  # histogram_quantile(0.99) of LATENCIES in the default buckets
GOOD_ERRORS = 2  # 5xx per tick: 4 %
BAD_ERRORS = 4  # a bad release doubles them: 8 %
STARTUP = 30.0  # seconds Prometheus gets to start
SCRAPE = 1.0  # its scrape interval


def prometheus_binary() -> str:
    """The server's binary; skips the test without it (fails instead when CI is set)."""
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None
    )
    if found is None:
        why = "needs a Prometheus server: /usr/bin/prometheus (Debian's prometheus package)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the Prometheus tests must run: {why}", pytrace=False)
        pytest.skip(why)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(app: Callable[..., Any]) -> tuple[WSGIServer, threading.Thread]:
    """A WSGI app on a free loopback port, served by a thread until ``shutdown``."""
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


class MetricsApp:
    """One host's app: its metrics as prometheus_client serves them, traffic by the clock."""

    def __init__(self, host: str, errors: int = GOOD_ERRORS, inflight: int = 3) -> None:
        self.host = host
        self.errors = errors
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "Requests served", ["method", "route", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Latency", ["route"], registry=self.registry
        )
        Gauge("app_inflight_requests", "In flight", registry=self.registry).set(inflight)
        self._lock = threading.Lock()
        self._elapsed = 0.0  # seconds of traffic before the clock last started
        self._since: float | None = time.monotonic()  # None: paused
        self._done = 0
        self._wsgi = make_wsgi_app(self.registry)
        self._server, self._thread = serve(self._serve)
        self.port: int = self._server.server_port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _catch_up(self) -> None:
        running = time.monotonic() - self._since if self._since is not None else 0.0
        due = int((self._elapsed + running) * TICKS)
        for _ in range(due - self._done):
            api = self.requests.labels("GET", "/api", "200")
            api.inc(REQUESTS - self.errors)
            self.requests.labels("GET", "/api", "500").inc(self.errors)
            self.requests.labels("GET", "/health", "200").inc()
            for seconds in LATENCIES:
                self.latency.labels("/api").observe(seconds)
            self.latency.labels("/health").observe(0.002)
        self._done = max(self._done, due)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._lock:
            self._catch_up()
            return self._wsgi(environ, start_response)

    def page(self) -> str:
        """The page in the Prometheus text format, as ``curl /metrics`` gets it."""
        with self._lock:
            self._catch_up()
            return generate_latest(self.registry).decode()

    def pause(self) -> None:
        """No more traffic: the page stays as it is until ``resume``."""
        with self._lock:
            self._catch_up()
            if self._since is not None:
                self._elapsed += time.monotonic() - self._since
                self._since = None

    def resume(self) -> None:
        with self._lock:
            if self._since is None:
                self._since = time.monotonic()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class PrometheusServer:
    """Debian's prometheus on a free loopback port, scraping ``targets`` every second."""

    def __init__(self, folder: Path, targets: dict[str, str]) -> None:
        self.folder = folder
        self.targets = targets  # instance label -> host:port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "prometheus.log"

    def config(self) -> str:
        lines = [
            "global:",
            f"  scrape_interval: {SCRAPE:g}s",
            f"  scrape_timeout: {SCRAPE:g}s",
            "scrape_configs:",
            "  - job_name: app",
            "    static_configs:",
        ]
        for instance, target in self.targets.items():
            lines += [
                f"      - targets: ['{target}']",
                f"        labels: {{instance: '{instance}'}}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        binary = prometheus_binary()
        config = self.folder / "prometheus.yml"
        config.write_text(self.config())
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait(lambda: self._ready(), STARTUP, "to be ready")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def scrapes(self) -> dict[str, float]:
        """How many times each instance was scraped in the last minute."""
        query = urllib.parse.urlencode({"query": 'count_over_time(up{job="app"}[1m])'})
        data = get_json(f"{self.url}/api/v1/query?{query}")
        return {r["metric"]["instance"]: float(r["value"][1]) for r in data["data"]["result"]}

    def wait_scraped(self, instances: Iterable[str], timeout: float = 20.0) -> None:
        """Until every instance has been scraped twice (a counter needs two samples)."""
        wanted = set(instances)
        self.wait(lambda: all(self.scrapes().get(i, 0) >= 2 for i in wanted), timeout, "scrapes")

    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``done`` until it holds; fail with the server's log after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"prometheus did not get {what} in {timeout:g}s:\n{self.tail()}"
                )
            time.sleep(0.1)

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def running(
    folder: Path, apps: Iterable[MetricsApp], extra: dict[str, str] | None = None
) -> Iterator[PrometheusServer]:
    """A started server scraping ``apps`` (by host name) and ``extra`` targets; stopped after."""
    targets = {app.host: app.target for app in apps} | (extra or {})
    server = PrometheusServer(folder, targets)
    try:
        server.start()
        yield server
    finally:
        server.stop()
