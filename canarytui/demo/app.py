"""The application each demo host runs: metrics, health and a log that follow its release.

It is simulated in the fleet's process (one small step per host per tick) but it talks to
the outside world only through files in the host's sandbox, the way a real service would:
the environment's ``health.check``, ``health.metrics`` and ``logs`` commands read them over
SSH, and the deploy steps drive it through the ``current`` symlink and ``run/restart``.
Its metrics page is what a web app instrumented with ``prometheus_client`` serves on
``/metrics`` (``exposition``), its traffic a small shop's routes (``traffic``).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from canarytui.demo.exposition import Process, page
from canarytui.demo.service import make_fifos
from canarytui.demo.traffic import (
    ENDPOINTS,
    HEALTH_PER_SECOND,
    LATENCY_SIGMA,
    SLOW,
    Balancer,
    Traffic,
)

LOG_LIMIT = 1_000_000  # bytes; past this the log is truncated (tail -F follows that)
STABLE_VERSION = "1.0.0"

_LOG_LINES_PER_SECOND = 3.5
# A read of the metrics page sees the traffic up to that moment, not up to the last tick,
# once the last tick is at least this old: two probes between the same two ticks would
# otherwise read the same counters, a canary that served nothing in between.
_CATCH_UP = 0.05  # seconds

_MB = 1 << 20
_PAGE = 4096
_ERRORS = (
    "upstream timeout (payments)",
    "database connection reset",
    "KeyError: 'sku' in cart.render",
    "503 from inventory service",
)
_WARNINGS = (
    "cache miss ratio 0.31 above 0.25",
    "retrying inventory lookup (attempt 2)",
    "connection pool 80% busy",
    "deprecated header X-Client-Version",
)


@dataclass(frozen=True)
class Release:
    """How the app behaves on one release."""

    description: str
    healthy: bool = True
    # Share of the app's requests (health probes aside) answered 5xx; None: the host's own
    # small base ratio (~1 %).
    error_ratio: float | None = None
    latency_factor: float = 1.0


GOOD = Release("good")
# The releases the demo ships, by name; any other version behaves as good.
RELEASES: dict[str, Release] = {
    "1.0.0": GOOD,
    "1.1.0": GOOD,
    "1.2.0": GOOD,
    "1.3.0-bad": Release("5xx on ~20% of requests", error_ratio=0.20),
    "1.4.0-dead": Release("health check fails", healthy=False, error_ratio=0.90),
    "1.5.0-slow": Release("p99 latency x3", latency_factor=3.0),
}


# The file in each sandbox that lists the releases, as an artifact store's index would.
AVAILABLE = "available-releases"


def release_of(version: str | None) -> Release:
    return RELEASES.get(version or "", GOOD)


def read_version(sandbox: Path) -> str | None:
    """The release the host's ``current`` symlink points at, or None."""
    try:
        return (sandbox / "current" / "VERSION").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def write_atomic(path: Path, text: str) -> None:
    """Readers (``cat`` over SSH) must never see a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def init_sandbox(sandbox: Path, version: str = STABLE_VERSION) -> None:
    """The layout a host starts with: one release, ``current`` pointing at it."""
    release = sandbox / "releases" / version
    # os.makedirs, not Path.mkdir(parents=True): the latter tries the deepest folder first
    # and fails its way up, and each metadata call costs ~0.1-0.2 ms on a journaled disk.
    os.makedirs(release, exist_ok=True)
    (release / "VERSION").write_text(version + "\n", encoding="utf-8")
    os.makedirs(sandbox / "run", exist_ok=True)
    make_fifos(sandbox)
    os.makedirs(sandbox / "log", exist_ok=True)
    # The builds this host can switch to, one a line: what ``deploy.releases`` prints.
    (sandbox / AVAILABLE).write_text("".join(f"{v}\n" for v in RELEASES), encoding="utf-8")
    current = sandbox / "current"
    if not current.is_symlink() and not current.exists():
        current.symlink_to(Path("releases") / version)


class SimulatedApp:
    """One host's app.

    ``tick(dt)`` simulates ``dt`` seconds of traffic: counters in memory, lines appended to
    the log. Files that readers ``cat`` are replaced atomically, and only when someone may
    look: ``sync()`` (the fleet calls it before each command on the host) and every
    ``FLUSH_SECONDS``. Creating and renaming a file costs ~0.4 ms on ext4, which at
    500 hosts a second was most of the fleet's CPU; an append costs ~10 us.
    """

    FLUSH_SECONDS = 30.0

    def __init__(self, host: str, sandbox: Path, seed: int, traffic: float = 1.0) -> None:
        self.host = host
        self.sandbox = sandbox
        self.traffic = traffic
        # The fleet's load balancer, if any: how many of the users this host gets.
        self.balancer: Balancer | None = None
        self._split_seen = 0
        self.rng = random.Random(seed)
        # Each host has its own load and error level, so the fleet is not uniform.
        self.base_rate = self.rng.uniform(42.0, 58.0)
        self.base_error_ratio = self.rng.uniform(0.007, 0.011)
        self.version: str | None = None
        self.base_memory = self.rng.randrange(70 * _MB, 90 * _MB, _PAGE)
        self.started_at = time.time()
        self.counters = Traffic()
        self.cpu_seconds = 0.0
        self.in_flight = 0
        self._health: str | None = None
        self._dirty = True
        self._since_flush = 0.0
        self._served_to = time.monotonic()  # traffic is simulated up to here
        self._credit = 0.0  # seconds served ahead of the next tick (by a read)
        self._link: str | None = None
        self._run = sandbox / "run"
        self._restart_file = str(sandbox / "run" / "restart")
        self._current = str(sandbox / "current")
        self._log_path = str(sandbox / "log" / "app.log")
        try:
            self._log_size = os.stat(self._log_path).st_size
        except OSError:
            self._log_size = 0

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Come up on whatever release ``current`` points at."""
        self._restart(read_version(self.sandbox), reason="started")

    def tick(self, dt: float) -> None:
        if self.poke():
            return
        self._serve(max(0.0, dt - self._credit))
        self._credit = 0.0
        self._served_to = time.monotonic()
        self._since_flush += dt
        if self._since_flush >= self.FLUSH_SECONDS:
            self.sync()

    def poke(self) -> bool:
        """Restart now if the release changed or a restart was asked for; True if it did.

        The host's service manager calls it when a restart is asked (``service``), the
        fleet after every command on the host, the tick for changes made any other way.
        """
        restart_asked = os.path.exists(self._restart_file)
        version = self._current_version()
        if version == self.version and not restart_asked:
            return False
        if restart_asked:
            reason = "restart requested"
        else:
            reason = f"release {version or 'none'} switched in"
        self._restart(version, reason=reason)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._restart_file)
        return True

    def sync(self) -> None:
        """Bring ``run/health`` and ``run/metrics.prom`` up to date (atomically)."""
        now = time.monotonic()
        if self.version is not None and now - self._served_to >= _CATCH_UP:
            # The time since the last tick first (the next tick leaves it out).
            self._serve(now - self._served_to)
            self._credit += now - self._served_to
            self._served_to = now
        self._write_health()
        if self._dirty:
            write_atomic(self._run / "metrics.prom", self.metrics_text())
            self._dirty = False
        self._since_flush = 0.0

    def _current_version(self) -> str | None:
        # readlink is a cheap change detector; the VERSION file is read only on a change.
        try:
            link: str | None = os.readlink(self._current)
        except OSError:
            link = None  # missing, or not a symlink: read the file to be sure
        if link is not None and link == self._link:
            return self.version
        self._link = link
        return read_version(self.sandbox)

    def _restart(self, version: str | None, reason: str) -> None:
        # A restarted process starts its counters from zero, as real ones do; the analysis
        # compares increases, so it must cope with resets.
        self.version = version
        self.started_at = time.time()
        self._served_to = time.monotonic()
        self._credit = 0.0
        self.counters = Traffic()
        self.cpu_seconds = 0.0
        self.in_flight = 0
        self._dirty = True
        shown = version or "no release"
        lines = [self._line("INFO", f"{reason}: starting shop {shown}")]
        if version is None:
            lines.append(self._line("ERROR", "no current release: nothing to run"))
        elif not release_of(version).healthy:
            lines.append(self._line("ERROR", "readiness probe failed: migrations pending"))
        else:
            lines.append(self._line("INFO", "listening on :8000 (metrics on /metrics)"))
        self._append_log(lines)
        # The health file now; the metrics page (all zeros) waits for the next sync: every
        # command on the host syncs first, so no reader sees it stale, and a fleet of 500
        # starts without writing 500 pages nobody has read yet.
        self._write_health()

    # ------------------------------------------------------------------ traffic

    def _serve(self, dt: float) -> None:
        rng = self.rng
        release = release_of(self.version)
        running = self.version is not None
        rate = self.base_rate * self.traffic * rng.uniform(0.85, 1.15) if running else 0.0
        if self.balancer is not None and running:
            weight = self.balancer.weight(self.version)
            rate *= weight
            self._log_split(self.balancer, weight)
        count = int(rate * dt + rng.random())
        probes = int(HEALTH_PER_SECOND * self.traffic * dt + rng.random()) if running else 0
        if release.error_ratio is None:
            error_ratio = self.base_error_ratio * rng.uniform(0.6, 1.4)
        else:
            error_ratio = release.error_ratio * rng.uniform(0.9, 1.1)
        failed, slow = self.counters.serve(
            rng, count, probes, error_ratio, release.latency_factor, release.healthy
        )
        if count or probes:
            # ~0.4 ms of CPU a request, and requests in flight by Little's law.
            self.cpu_seconds += count * 0.0004 + probes * 0.00005
            self.in_flight = int(rate * 0.04 * release.latency_factor + rng.random())
            self._dirty = True
        self._append_log(self._traffic_lines(dt, count, failed, slow))

    def _log_split(self, balancer: Balancer, weight: float) -> None:
        if balancer.generation == self._split_seen:
            return
        self._split_seen = balancer.generation
        said = f"load balancer: {balancer.split.describe()}; this host {weight:.2f}x its fair share"
        self._append_log([self._line("INFO", said)])

    def _traffic_lines(self, dt: float, count: int, failed: int, slow: int) -> list[str]:
        # One timestamp per tick: the lines stand for the last `dt` seconds anyway, and
        # formatting a time per line was a third of the app's cost at 500 hosts.
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        head = f"{stamp}.{int(now % 1 * 1000):03d}Z {{}} shop[{self.host}] "
        info, warn, error = head.format("INFO "), head.format("WARN "), head.format("ERROR")
        rnd = self.rng.random
        lines: list[str] = []
        release = release_of(self.version)
        if self.version is not None and not release.healthy:
            lines.append(f"{error}health check failed: database pool exhausted\n")
        if count:
            for _ in range(int(_LOG_LINES_PER_SECOND * dt + rnd())):
                endpoint = ENDPOINTS[int(rnd() * len(ENDPOINTS))]
                spread = math.exp(LATENCY_SIGMA * (rnd() + rnd() + rnd() - 1.5) * 2)
                ms = endpoint.median * 1000 * release.latency_factor * spread
                code = 404 if endpoint.not_found and rnd() < 0.05 else 200
                lines.append(
                    f"{info}{endpoint.method} {endpoint.route} {code} {ms:.0f}ms "
                    f"req={int(rnd() * 2**32):08x}\n"
                )
        # Failed requests are logged, but a burst is summarised rather than flooding the log.
        logged = min(failed, int(2 * dt + rnd()))
        for _ in range(logged):
            cause = _ERRORS[int(rnd() * len(_ERRORS))]
            lines.append(f"{error}POST /api/checkout 500 {cause} req={int(rnd() * 2**32):08x}\n")
        if failed > logged and rnd() < dt:
            lines.append(f"{error}{failed} requests failed in the last {dt:.1f}s\n")
        if slow:
            lines.append(f"{warn}{slow} requests slower than {SLOW * 1000:.0f}ms\n")
        if rnd() < 0.05 * dt:
            lines.append(f"{warn}{_WARNINGS[int(rnd() * len(_WARNINGS))]}\n")
        return lines

    # ------------------------------------------------------------------- files

    def _line(self, level: str, message: str) -> str:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        return f"{stamp}.{int(now % 1 * 1000):03d}Z {level:<5} shop[{self.host}] {message}\n"

    def _append_log(self, lines: list[str]) -> None:
        if not lines:
            return
        data = "".join(lines).encode()
        flags = os.O_WRONLY | os.O_CREAT
        if self._log_size + len(data) > LOG_LIMIT:
            # Truncate in place (not a new file): `tail -F` reports the truncation and goes on.
            flags |= os.O_TRUNC
            self._log_size = 0
        else:
            flags |= os.O_APPEND
        fd = os.open(self._log_path, flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self._log_size += len(data)

    def _write_health(self) -> None:
        # Readiness names the release it is for, as a /health route that reports its
        # build does: a check right after a switch sees the old process as not ready.
        healthy = self.version is not None and release_of(self.version).healthy
        state = f"{'ok' if healthy else 'fail'} {self.version or '-'}"
        if state != self._health:
            write_atomic(self._run / "health", state + "\n")
            self._health = state

    def metrics_text(self) -> str:
        """The app's metrics page right now (what ``curl localhost:8000/metrics`` would get)."""
        served = self.counters.served
        resident = self.base_memory + min(served, 200_000) // 64 * _PAGE  # a page per 64
        process = Process(
            start_time=round(self.started_at, 2),
            cpu_seconds=round(self.cpu_seconds, 2),
            resident_bytes=resident,
            virtual_bytes=resident + 160 * _MB,
            open_fds=12 + self.in_flight,
        )
        return page(self.counters, process, self.version or "", self.in_flight)
