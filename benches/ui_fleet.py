"""The UI on a big fleet, headless: first screen, key latency, CPU, memory, log throughput.

    python benches/ui_fleet.py --hosts 1000 [--seconds 30] [--log-hosts 20 --log-rate 250]

No servers: the environment file lists the hosts on 127.0.0.1 and the bench feeds the
engine's events itself (``engine.emit``, as the monitor and the rollout do), the monitor off:

1. time to first screen (process start, imports included, to the first full screen);
2. a health sample and a host update per host per second for ``--seconds``: CPU share of
   one core and peak memory (the operator idle, the fleet busy);
3. 100 key presses on the grid during that load: press to the grid repainted with the
   cursor moved, median and p95; then, still under load, the filter typed (each key to the
   grid repainted with the hosts it leaves), the CPU while it is on, escape; the history
   (``H``) and back (each key to the first frame of the screen it shows);
4. ``--log-hosts`` hosts streaming ``--log-rate`` lines/s each into the log pane: lines
   shown per second, lines shed, CPU.

canarytui's modules are compiled to bytecode first (``compileall``; the bench then starts
again as a process of its own), as an installed copy, or any copy after its first run, has
them: where ``PYTHONDONTWRITEBYTECODE`` is set, every start would compile ~100 modules
again (~0.3 s) and that is not what a user meets. ``--as-is`` measures the copy as it is.

Targets (DESIGN.md, at 5,000 hosts): first screen <= 1.5 s, key p95 <= 50 ms, CPU <= 25 %
of one core, memory <= 300 MB, logs keep up at 5,000 lines/s; the filter and the history
instant (every key to its screen <= 100 ms).
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

SIZE = (160, 50)
FILTER_TEXT = "z1"  # the zone label: a third of the hosts

ENV = """\
name: bench
app: shop
ssh: {{known_hosts: known_hosts}}
hosts:
{hosts}
deploy:
  current: cat current/VERSION
  steps: [{{name: switch, run: 'ln -sfn releases/{{version}} current'}}]
health:
  check: 'true'
  metrics: cat metrics.prom
  interval: 1s
logs: tail -F app.log
canary:
  hosts: [web-0001]
  analysis:
    rules: [{{name: error-ratio, metric: app_requests_failed_total,
              per: app_requests_total, max: 0.05}}]
"""


PACKAGE = Path(__file__).resolve().parent.parent / "canarytui"
_COMPILED = "CANARYTUI_BENCH_COMPILED"


def compile_package() -> None:
    """canarytui's modules as bytecode, as an installed copy has them (quiet, only what
    changed)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PACKAGE)], check=True)


def write_env(folder: Path, hosts: int) -> Path:
    lines = [
        f"  - {{name: web-{i:04d}, address: 127.0.0.1, port: {20000 + i}, "
        f"roles: [{'api' if i % 4 == 0 else 'web'}], labels: {{zone: z{i % 3}}}}}"
        for i in range(1, hosts + 1)
    ]
    path = folder / "bench.yaml"
    path.write_text(ENV.format(hosts="\n".join(lines)), encoding="utf-8")
    return path


def p95(ordered: list[float]) -> float:
    """The nearest-rank 95th percentile of sorted values (of a few: the largest)."""
    return ordered[math.ceil(len(ordered) * 0.95) - 1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Feeding:
    """Feeds engine events from a background task until stopped; counts what it sent."""

    def __init__(self, engine: object) -> None:
        from canarytui import events as ev

        self.ev = ev
        self.engine = engine
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        raise NotImplementedError


class Feeder(_Feeding):
    """Health samples and host updates: every host once a second, spread over the second."""

    def __init__(self, engine: object, names: list[str], ticks_per_second: int = 20) -> None:
        super().__init__(engine)
        self.names = names
        self.ticks = ticks_per_second

    async def _run(self) -> None:
        ev = self.ev
        emit = self.engine.emit  # type: ignore[attr-defined]
        n = len(self.names)
        per_tick = max(1, n // self.ticks)
        cursor = 0
        second = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            for _ in range(per_tick):
                name = self.names[cursor]
                cursor += 1
                if cursor == n:
                    cursor = 0
                    second += 1
                ok = (cursor + second) % 97 != 0
                emit(
                    ev.HealthSample(
                        host=name,
                        ok=ok,
                        latency=0.01 + (cursor % 7) / 1000,
                        metrics={
                            "app_requests_total": 100.0 * second,
                            "app_requests_failed_total": float(second),
                        },
                    )
                )
                state = ev.HostState.IDLE if ok else ev.HostState.FAILED
                emit(ev.HostUpdate(host=name, state=state, version=f"1.{second % 3}.0"))
                self.sent += 2
            next_at += 1.0 / self.ticks
            await asyncio.sleep(max(0.0, next_at - loop.time()))


class LogFeeder(_Feeding):
    """``hosts`` hosts each printing ``rate`` lines a second, in 10 ms bursts."""

    def __init__(self, engine: object, hosts: list[str], rate: int) -> None:
        super().__init__(engine)
        self.hosts = hosts
        self.rate = rate

    async def _run(self) -> None:
        ev = self.ev
        emit = self.engine.emit  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        tick = 0.01
        owed = 0.0
        next_at = loop.time()
        while True:
            owed += self.rate * tick
            count = int(owed)
            owed -= count
            for host in self.hosts:
                for _ in range(count):
                    self.sent += 1
                    emit(
                        ev.LogLine(
                            host=host,
                            line=(
                                f"2026-01-01T00:00:00.000Z INFO  shop[{host}] GET /api/cart 200 "
                                "31ms "
                                f"req={self.sent:08x} \x1b[32mok\x1b[0m"
                            ),
                        )
                    )
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def bench(
    hosts: int,
    seconds: float,
    log_hosts: int,
    log_rate: int,
    log_seconds: float,
    compact: bool = False,
) -> dict[str, float]:
    from textual import events

    from canarytui.config import load_env
    from canarytui.engine import Engine
    from canarytui.journal import Journal
    from canarytui.ui.app import CanaryApp
    from canarytui.ui.widgets.fleet_grid import FleetGrid
    from canarytui.ui.widgets.log_pane import LogPane

    folder = Path(tempfile.mkdtemp(prefix="canarytui-bench-"))
    env = load_env(write_env(folder, hosts))
    journal = Journal(folder / "state")
    engine = Engine(env, journal, user="bench")
    app = CanaryApp(env, journal, engine=engine, monitor=False)
    out: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        out["first_screen_s"] = time.perf_counter() - PROCESS_START
        grid = app.fleet_screen.query_one(FleetGrid)
        if compact:  # as ``z`` picks them: a line a host, four times the tiles in view
            grid.compact = True
            await pilot.pause()

        # Rendering times of the grid, to see when a key press reached the screen: the
        # first line of the grid rendered once the key has had its effect (``done``). Any
        # line: a moved cursor repaints the rows of its two tiles, not the whole grid.
        renders: list[float] = []
        rendered = asyncio.Event()
        done: list[Callable[[], bool]] = []
        render_line = grid.render_line

        def timed_render_line(y: int) -> object:
            if done and done[0]():
                renders.append(time.perf_counter())
                rendered.set()
            return render_line(y)

        grid.render_line = timed_render_line  # type: ignore[method-assign,assignment]

        # Frames of any screen (the history is a screen of its own).
        frames: list[tuple[object, float]] = []
        framed = asyncio.Event()
        display = app._display

        def timed_display(screen: object, renderable: object) -> None:
            if renderable is not None:
                frames.append((screen, time.perf_counter()))
                framed.set()
            display(screen, renderable)  # type: ignore[arg-type]

        app._display = timed_display  # type: ignore[method-assign]

        async def timed_key(
            key: str, effect: Callable[[], bool], character: str | None = None
        ) -> float:
            """Press ``key``; seconds until the grid repainted with ``effect()`` true."""
            renders.clear()
            rendered.clear()
            done[:] = [effect]
            pressed = time.perf_counter()
            app.post_message(events.Key(key, character))
            try:
                await asyncio.wait_for(rendered.wait(), 2.0)
            except TimeoutError:
                renders.append(pressed + 2.0)
            done.clear()
            return renders[0] - pressed

        async def timed_screen(key: str, wanted: Callable[[object], bool]) -> float:
            """Press ``key``; seconds until a frame of the screen ``wanted`` was drawn."""
            frames.clear()
            pressed = time.perf_counter()
            app.post_message(events.Key(key, None))
            deadline = pressed + 2.0
            while time.perf_counter() < deadline:
                framed.clear()
                hit = [t for s, t in frames if wanted(s)]
                if hit:
                    return hit[0] - pressed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(framed.wait(), deadline - time.perf_counter())
            return 2.0

        # 2. The fleet busy, the operator idle.
        feeder = Feeder(engine, env.host_names)
        feeder.start()
        await asyncio.sleep(2.0)  # warm-up: first batches, caches
        cpu0, wall0, sent0 = time.process_time(), time.perf_counter(), feeder.sent
        await asyncio.sleep(seconds)
        cpu1, wall1, sent1 = time.process_time(), time.perf_counter(), feeder.sent
        out["fleet_cpu_share"] = (cpu1 - cpu0) / (wall1 - wall0)
        out["events_per_s"] = (sent1 - sent0) / (wall1 - wall0)

        # 3. Keys during that load: press to the grid's repaint with the cursor moved.
        latencies: list[float] = []
        keys = ["right", "down", "left", "up"]
        for i in range(100):
            before = grid.cursor_host
            latencies.append(
                await timed_key(keys[i % 4], lambda b=before: grid.cursor_host != b)  # type: ignore[misc]
            )
            await asyncio.sleep(0.03)
        latencies.sort()
        out["key_median_ms"] = statistics.median(latencies) * 1000
        out["key_p95_ms"] = p95(latencies) * 1000

        # The filter, still under load: each typed character to the grid repainted with
        # the hosts it leaves; then the CPU while it is on; then escape (all hosts back).
        state = app.fleet_screen.state
        app.post_message(events.Key("slash", "/"))
        await asyncio.sleep(0.3)
        filter_ms: list[float] = []
        typed = ""
        for char in FILTER_TEXT:
            typed += char
            filter_ms.append(
                1000 * await timed_key(char, lambda t=typed: state.filter_text == t, char)  # type: ignore[misc]
            )
            await asyncio.sleep(0.2)
        out["filter_shown"] = float(len(state.shown))
        app.post_message(events.Key("enter", "\r"))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(min(5.0, seconds))
        out["filter_cpu_share"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        filter_ms.append(1000 * await timed_key("escape", lambda: not state.filter_text))
        out["filter_max_ms"] = max(filter_ms)

        # The history (a screen of its own) and back, under load.
        history_ms = [1000 * await timed_screen("H", lambda s: type(s).__name__ == "HistoryScreen")]
        await asyncio.sleep(0.3)
        history_ms.append(1000 * await timed_screen("escape", lambda s: s is app.fleet_screen))
        out["history_max_ms"] = max(history_ms)
        await asyncio.sleep(0.3)
        await feeder.stop()

        # 4. Logs: follow log_hosts hosts (picked as canaries with the keys).
        await pilot.press("home")
        for _ in range(log_hosts):
            await pilot.press("space", "right")
        pane = app.fleet_screen.query_one(LogPane)
        log_feed = LogFeeder(engine, env.host_names[:log_hosts], log_rate)
        log_feed.start()
        await asyncio.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        shown0, sent0, dropped0 = pane.shown_lines, log_feed.sent, pane.dropped_lines
        await asyncio.sleep(log_seconds)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        shown1, sent1, dropped1 = pane.shown_lines, log_feed.sent, pane.dropped_lines
        await log_feed.stop()
        elapsed = wall1 - wall0
        out["log_offered_per_s"] = (sent1 - sent0) / elapsed
        out["log_shown_per_s"] = (shown1 - shown0) / elapsed
        out["log_dropped"] = float(dropped1 - dropped0)
        out["log_cpu_share"] = (cpu1 - cpu0) / elapsed
        out["peak_rss_mb"] = peak_rss_mb()
        await app.close_engine()
    journal.close()
    shutil.rmtree(folder, ignore_errors=True)  # its env file and journal, read
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30.0, help="load window for CPU")
    p.add_argument("--log-hosts", type=int, default=20)
    p.add_argument("--log-rate", type=int, default=250, help="lines/s per host")
    p.add_argument("--log-seconds", type=float, default=10.0)
    p.add_argument("--as-is", action="store_true", help="do not compile canarytui first")
    p.add_argument("--compact", action="store_true", help="compact tiles (z): a line a host")
    args = p.parse_args(argv)
    if not args.as_is and os.environ.get(_COMPILED) != "1":
        compile_package()  # then start again: the first screen counts from a fresh process
        again = sys.argv[1:] if argv is None else argv
        command = [sys.executable, str(Path(__file__).resolve()), *again]
        os.execve(sys.executable, command, {**os.environ, _COMPILED: "1"})
    from canarytui.heap import collect_less

    collect_less()  # as the canarytui process does (cli.main.run)
    r = asyncio.run(
        bench(
            args.hosts, args.seconds, args.log_hosts, args.log_rate, args.log_seconds, args.compact
        )
    )
    total_log = args.log_hosts * args.log_rate
    rows = [
        ("time to first screen (s, imports included)", r["first_screen_s"], 1.5, "<="),
        ("key press -> screen, median (ms)", r["key_median_ms"], None, ""),
        ("key press -> screen, p95 (ms)", r["key_p95_ms"], 50.0, "<="),
        (
            f"filter {FILTER_TEXT!r} typed, cleared: slowest (ms)",
            r["filter_max_ms"],
            100.0,
            "<=",
        ),
        ("  hosts the filter shows", r["filter_shown"], None, ""),
        ("  CPU share of one core, filter on", r["filter_cpu_share"], 0.25, "<="),
        ("history (H) and back: slowest (ms)", r["history_max_ms"], 100.0, "<="),
        (f"CPU share of one core, {args.hosts} hosts at 1 Hz", r["fleet_cpu_share"], 0.25, "<="),
        ("  engine events fed per second", r["events_per_s"], None, ""),
        ("peak memory (MB)", r["peak_rss_mb"], 300.0, "<="),
        (
            f"log lines offered per second ({args.log_hosts} x {args.log_rate})",
            r["log_offered_per_s"],
            None,
            "",
        ),
        ("log lines shown per second", r["log_shown_per_s"], total_log * 0.95, ">="),
        ("log lines shed", r["log_dropped"], 0.0, "<="),
        ("CPU share of one core while logging", r["log_cpu_share"], None, ""),
    ]
    failed = 0
    print(
        f"canarytui UI bench: {args.hosts} hosts, terminal {SIZE[0]}x{SIZE[1]}, "
        f"{'compact' if args.compact else 'full'} tiles, "
        f"python {sys.version.split()[0]}"
    )
    for label, value, target, op in rows:
        verdict = ""
        if target is not None:
            ok = value <= target if op == "<=" else value >= target
            failed += not ok
            verdict = f"{'ok ' if ok else 'MISS'} (target {op} {target:g})"
        print(f"  {label:<50} {value:>10.3f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
