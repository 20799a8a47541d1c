"""The UI on a big fleet in a real terminal (tmux): key latency as the operator sees it.

    python benches/ui_terminal.py [--hosts 1000 5000] [--keys 100] [--seconds 10]
                                  [--profile FOLDER]

For each ``--hosts``, the app runs inside ``tmux -L NAME new -d -s NAME -x 160 -y 50`` with
Textual's real Linux driver, on the environment file and the simulated engine load of
``benches/ui_fleet.py`` (its ``write_env`` and ``Feeder``: a health sample and a host update
per host per second, no servers, the monitor off). The bench then:

1. waits for the first screen and a warm-up, and reads the app process's CPU share of one
   core over ``--seconds`` (from ``/proc``, the operator idle, the fleet busy);
2. sends ``--keys`` arrow keys with ``tmux send-keys`` 150-250 ms apart (right, down,
   left, up: each moves the cursor) and takes, for each, the time from the moment the
   driver read the key's bytes to the moment the first frame drawn with the moved cursor
   was written to the terminal (timed inside the app process by this script's own
   launcher: a subclass of the UI's driver stamps keys as read, and its relay stamps
   frames once its thread has written them);
3. prints median, p95 and max key latency, the CPU share during the keys, the time to the
   first frame on the terminal and the app process's peak RSS; then quits the app with
   ctrl+q and always kills its tmux session.

``--profile FOLDER`` runs the app under cProfile and leaves ``FOLDER/ui-N.prof`` (the app
loop's thread; figures under the profiler are slower than without it).

Targets (DESIGN.md, at 5,000 hosts): key p95 <= 50 ms, CPU <= 25 % of one core,
RSS <= 300 MB, first screen <= 1.5 s. canarytui's modules are compiled to bytecode
before the app starts, as an installed copy has them (see ``benches/ui_fleet.py``).
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_fleet import SIZE, Feeder, compile_package, p95, write_env  # noqa: E402

from canarytui.relay import Relay  # noqa: E402

KEYS = ["Right", "Down", "Left", "Up"]  # as tmux names them; each moves the cursor
ARROWS = {"right", "down", "left", "up"}  # as Textual names them
TICKS = os.sysconf("SC_CLK_TCK")


# Inside tmux: the app, instrumented ------------------------------------------------------


class _Mark(str):
    """Written to the driver after a frame: stamped once the frame is on the terminal."""

    moves: int = 0


class _StampingRelay(Relay):
    """The UI's relay to the terminal, stamping each mark once every byte written before
    it has been written to the terminal by the relay's thread."""

    def __init__(self, out: Any, flushed: list[tuple[int, float]]) -> None:
        super().__init__(out, out.fileno(), name="canarytui-screen")
        self._flushed = flushed
        self._accepted = 0  # bytes given to the relay
        self._sent = 0  # bytes written to the terminal
        self._marks: list[tuple[int, int]] = []  # (bytes before the mark, cursor moves)
        self._stamping = threading.Lock()

    def mark(self, mark: _Mark) -> None:
        with self._stamping:
            self._marks.append((self._accepted, mark.moves))

    def write(self, text: str) -> int:
        with self._stamping:
            self._accepted += len(text.encode(self._encoding, "backslashreplace"))
        return super().write(text)

    def _send(self, data: bytes) -> None:
        super()._send(data)
        now = time.perf_counter()
        with self._stamping:
            self._sent += len(data)
            while self._marks and self._marks[0][0] <= self._sent:
                self._flushed.append((self._marks.pop(0)[1], now))


class Stamps:
    """What the app inside tmux records: arrow keys as its driver reads them, and frames
    once its relay has written them to the terminal, with the cursor moves each one drew."""

    def __init__(self) -> None:
        self.keys_read: list[float] = []
        self.flushed: list[tuple[int, float]] = []  # (cursor moves drawn, flushed at)
        self.moves = [0, -1]  # [cursor moves so far, moves drawn by the last grid render]

    def driver_class(self) -> type[Any]:
        """The UI's own driver (``ui.driver``), keys stamped as read, frames as written."""
        from textual import events

        from canarytui.ui.driver import RelayedDriver

        keys_read, flushed = self.keys_read, self.flushed

        class StampingDriver(RelayedDriver):
            def open_relay(self) -> Relay:
                return _StampingRelay(self._file, flushed)

            def write(self, data: str) -> None:
                if isinstance(data, _Mark):
                    relay = self._relay or self.open_relay()
                    self._relay = relay
                    assert isinstance(relay, _StampingRelay)
                    relay.mark(data)
                    return
                super().write(data)

            def process_message(self, message: Any) -> None:
                # The input thread, just after the read; ctrl+q (the end) is not counted.
                if isinstance(message, events.Key) and message.key in ARROWS:
                    keys_read.append(time.perf_counter())
                super().process_message(message)

        return StampingDriver

    def watch_grid(self, grid: Any) -> None:
        """Count the grid's cursor moves, and which of them each render draws."""
        render_line, move_cursor_to = grid.render_line, grid.move_cursor_to
        moves = self.moves

        def timed_render_line(y: int) -> Any:
            moves[1] = moves[0]
            return render_line(y)

        def counted_move(name: str | None) -> None:
            before = grid.cursor_host
            move_cursor_to(name)
            moves[0] += grid.cursor_host != before

        grid.render_line = timed_render_line
        grid.move_cursor_to = counted_move

    def frame_done(self, driver: Any) -> None:
        """After each frame (the app's ``post_display_hook``): mark it in the output."""
        if driver is not None:
            mark = _Mark("")
            mark.moves = self.moves[1]
            driver.write(mark)

    def dump(self, out: Path, **extra: Any) -> None:
        stamps = {"start": PROCESS_START, "keys_read": self.keys_read, "flushed": self.flushed}
        out.write_text(json.dumps({**stamps, **extra}), encoding="utf-8")


def key_latencies(read: list[float], flushed: list[list[float]]) -> list[float]:
    """For each key read, the seconds until the first frame that drew its cursor move was
    on the terminal (inf: none did)."""
    latencies: list[float] = []
    for i, at in enumerate(read):
        shown = [t for moves, t in flushed if moves >= i + 1 and t >= at]
        latencies.append((min(shown) - at) if shown else float("inf"))
    return latencies


def run_inside(env_path: Path, out: Path, profile: Path | None) -> int:
    """The app on the real driver, keys and frames stamped; timings written to ``out``."""
    from canarytui.config import load_env
    from canarytui.engine import Engine
    from canarytui.heap import collect_less
    from canarytui.journal import Journal
    from canarytui.ui.app import CanaryApp
    from canarytui.ui.widgets.fleet_grid import FleetGrid

    collect_less()  # as the canarytui process does (cli.main.run)
    stamps = Stamps()
    env = load_env(env_path)
    journal = Journal(env_path.parent / "state")
    engine = Engine(env, journal, user="bench")

    class BenchApp(CanaryApp):
        CSS_PATH = Path(sys.modules[CanaryApp.__module__].__file__ or "").parent / "app.tcss"

        def on_ready(self) -> None:
            stamps.watch_grid(self.fleet_screen.query_one(FleetGrid))
            self.feeder = Feeder(self.engine, env.host_names)
            self.feeder.start()
            (out.parent / "ready").write_text(str(os.getpid()))

        def post_display_hook(self) -> None:
            stamps.frame_done(self._driver)

    app = BenchApp(env, journal, engine=engine, monitor=False)
    app.driver_class = stamps.driver_class()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        app.run()
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        journal.close()
    stamps.dump(out)
    return 0


# Outside: tmux, keys, /proc ---------------------------------------------------------------


def _tmux(socket: str, *args: str, check: bool = True) -> None:
    """tmux on a server of the bench's own (``-L``): started with this environment,
    shared with no one."""
    subprocess.run(["tmux", "-L", socket, *args], check=check, capture_output=True, timeout=10)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def quit_app(session: str, out: Path, seconds: float) -> None:
    """Ctrl-Q to the app, then its timings (``out``) within ``seconds``."""
    _tmux(session, "send-keys", "-t", session, "C-q")
    if not _wait_for(out, seconds):
        raise RuntimeError(f"the app left no timings: see {out.parent / 'error'}")


def end_tmux(session: str) -> None:
    """The bench's tmux server gone, with the socket it leaves behind."""
    _tmux(session, "kill-session", "-t", session, check=False)
    tmux_dir = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    (tmux_dir / session).unlink(missing_ok=True)


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return True
        if (path.parent / "error").exists():
            return False
        time.sleep(0.05)
    return False


def _cpu_share(pid: int, seconds: float) -> float:
    cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)


def measure(hosts: int, keys: int, seconds: float, profile: Path | None) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="canarytui-term-"))
    env_path = write_env(folder, hosts)
    out = folder / "timings.json"
    session = f"canarytui-bench-{os.getpid()}-{hosts}"
    command = [sys.executable, str(Path(__file__).resolve()), "--inside", str(env_path)]
    command += ["--out", str(out)]
    if profile is not None:
        command += ["--profile-file", str(profile / f"ui-{hosts}.prof")]
    width, height = SIZE
    # The driver draws on stderr: errors go to a file of their own (``--inside``).
    shell = shlex.join(command)
    _tmux(session, "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), shell)
    r: dict[str, float] = {}
    try:
        if not _wait_for(folder / "ready", 60):
            raise RuntimeError(f"the app did not start: see {folder / 'error'}")
        pid = int((folder / "ready").read_text())
        time.sleep(3.0)  # warm-up: first batches, caches
        r["idle_cpu_share"] = _cpu_share(pid, seconds)
        rng = random.Random(12)
        cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
        for i in range(keys):
            _tmux(session, "send-keys", "-t", session, KEYS[i % 4])
            time.sleep(rng.uniform(0.15, 0.25))
        time.sleep(0.5)
        r["keys_cpu_share"] = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
        r["peak_rss_mb"] = _peak_rss_mb(pid)
        quit_app(session, out, 30)
    finally:
        end_tmux(session)
    data = json.loads(out.read_text(encoding="utf-8"))
    shutil.rmtree(folder, ignore_errors=True)  # the env file, journal and timings, read
    read, flushed = data["keys_read"], data["flushed"]
    latencies = sorted(key_latencies(read, flushed))
    r["keys_read"] = float(len(read))
    r["key_median_ms"] = statistics.median(latencies) * 1000
    r["key_p95_ms"] = p95(latencies) * 1000
    r["key_max_ms"] = latencies[-1] * 1000
    r["first_frame_s"] = flushed[0][1] - data["start"] if flushed else float("nan")
    return r


def reporting(folder: Path, run: Callable[[], int]) -> int:
    """The app's side in tmux: what it raises is left in ``folder/error`` for the bench
    outside, which waits on that folder (tmux shows it to no one)."""
    try:
        return run()
    except BaseException:
        import traceback

        (folder / "error").write_text(traceback.format_exc())
        raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0, help="idle load window for CPU")
    p.add_argument("--profile", type=Path, help="folder for a cProfile of the app per size")
    p.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inside is not None:
        inside, out, profile = args.inside, args.out, args.profile_file
        return reporting(out.parent, lambda: run_inside(inside, out, profile))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"canarytui UI in tmux {SIZE[0]}x{SIZE[1]}, python {sys.version.split()[0]}", flush=True)
    compile_package()  # once, as an installed copy has them (see benches/ui_fleet.py)
    failed = 0
    for hosts in args.hosts:
        r = measure(hosts, args.keys, args.seconds, args.profile)
        rows = [
            ("first frame on the terminal (s, imports included)", r["first_frame_s"], 1.5),
            (f"keys read by the driver (of {args.keys})", r["keys_read"], None),
            ("key read -> frame flushed, median (ms)", r["key_median_ms"], None),
            ("key read -> frame flushed, p95 (ms)", r["key_p95_ms"], 50.0),
            ("key read -> frame flushed, max (ms)", r["key_max_ms"], None),
            (f"CPU share of one core, {hosts} hosts at 1 Hz, idle", r["idle_cpu_share"], 0.25),
            ("CPU share of one core, during the keys", r["keys_cpu_share"], 0.25),
            ("peak RSS of the app (MB)", r["peak_rss_mb"], 300.0),
        ]
        print(f"{hosts} hosts:")
        for label, value, target in rows:
            verdict = ""
            if target is not None:
                ok = value <= target
                failed += not ok
                verdict = f"{'ok ' if ok else 'MISS'} (target <= {target:g})"
            print(f"  {label:<52} {value:>10.3f}  {verdict}", flush=True)
        if args.profile is not None:
            print(f"  profile: {args.profile / f'ui-{hosts}.prof'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
