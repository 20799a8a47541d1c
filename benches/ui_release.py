"""The UI during a real release on a big demo fleet, in a real terminal (tmux): what the
operator's keys feel like while the engine works in the same event loop.

    python benches/ui_release.py [--hosts 1000] [--version 1.1.0] [--own-core] [--slow MS]

Starts the demo fleet as its own process (as ``demo_release.py`` does: ``canarytui demo
--serve``, or ``python -m canarytui.demo`` above 500 hosts), then the UI on its env file
inside ``tmux -L NAME new -d -x 160 -y 50``, as ``canarytui ENV`` runs it (the monitor on,
the UI's own driver), with keys and frames stamped as in ``ui_terminal.py``. Then, as an
operator would: ``d``, the version, Enter, ``y`` to deploy; ``p`` and ``y`` each time the
release awaits a promotion (after the canary's verdict and between waves: the demo file's
``pause: manual``); and all along, an arrow key every 150-250 ms, moving the grid's
cursor. Prints, for each stage of the release (locking and discovery, canary, analysis,
awaiting ``p``, waves, after the end), the keys read and their latency from the driver's
read to the frame with the moved cursor written to the terminal (median, p95, max); the
release's time in each stage, with the share of it the app's main thread (its event loop)
spent on a CPU and runnable but waiting for one (``/proc/PID/task/PID/schedstat``: the
fleet's server and shells share this machine's cores); the fleet screen's layouts (each
re-arranges every widget: ~10 ms on this screen) and the frames written; the app's CPU
share and peak RSS.

``--slow MS`` also prints, to find where a stall comes from, the app's event-loop callbacks
that ran longer than MS (by what they ran: a task's coroutine, a timer's callback, whose
messages were handled; count, total, longest), and which widgets asked for the screen
layouts. The wrapper times every callback, so the other figures of such a run are a
little slower.

Targets: the UI's (DESIGN.md) key p95 <= 50 ms and RSS <= 300 MB, which ``ui_fleet.py``
and ``ui_terminal.py`` measure on a simulated load, here under a real one.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_release import start_fleet
from ui_fleet import SIZE, compile_package
from ui_fleet import p95 as p95_of
from ui_terminal import (
    KEYS,
    Stamps,
    _cpu_seconds,
    _peak_rss_mb,
    _tmux,
    _wait_for,
    end_tmux,
    key_latencies,
    quit_app,
    reporting,
)

TIMEOUT = 600.0  # seconds a release may take before the bench gives up
AFTER = 3.0  # seconds of keys once the release is over


# Inside tmux: the UI, instrumented -------------------------------------------------------


def _ran(handle: asyncio.Handle) -> str:
    """What an event-loop callback ran: a task's coroutine (with a Textual timer's
    callback, or whose messages it handled), else the callback itself."""
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return getattr(callback, "__qualname__", type(callback).__name__)
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", type(coro).__name__)
    frame = getattr(coro, "cr_frame", None)
    owner = frame.f_locals.get("self") if frame is not None else None
    if owner is None:
        return name
    timed = getattr(owner, "_callback", None)  # a Textual timer
    if timed is not None:
        return f"{name}: {getattr(timed, '__qualname__', repr(timed))}"
    return f"{name} ({type(owner).__name__})"


def watch_loop(
    threshold: float, slow: dict[str, list[float]], asked: collections.Counter[str]
) -> None:
    """Every callback of the event loop longer than ``threshold`` s into ``slow`` (what it
    ran -> durations), and each widget that asks for a layout into ``asked``."""
    from textual.widget import Widget

    run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        began = time.perf_counter()
        run(handle)  # type: ignore[arg-type]
        took = time.perf_counter() - began
        if took > threshold:
            slow.setdefault(_ran(handle), []).append(took)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    refresh = Widget.refresh

    def counted(self: Widget, *regions: Any, layout: bool = False, **kwargs: Any) -> Widget:
        if layout:
            asked[type(self).__name__] += 1
        return refresh(self, *regions, layout=layout, **kwargs)

    Widget.refresh = counted  # type: ignore[method-assign]


def run_inside(env_path: Path, out: Path, state: Path, slow_ms: float | None = None) -> int:
    """The UI on the env file, keys and frames stamped, each phase change written to
    ``phases.jsonl`` beside ``out`` as it happens (the bench outside reads it)."""
    from canarytui import events as ev
    from canarytui.config import load_env
    from canarytui.heap import collect_less
    from canarytui.journal import Journal
    from canarytui.ui.app import CanaryApp
    from canarytui.ui.widgets.fleet_grid import FleetGrid

    collect_less()  # as the canarytui process does (cli.main.run)
    stamps = Stamps()
    layouts = [0, 0.0]  # the fleet screen's layouts (re-arranging every widget), seconds
    env = load_env(env_path)
    journal = Journal(state)
    phases = (out.parent / "phases.jsonl").open("a", encoding="utf-8")
    slow: dict[str, list[float]] = {}
    asked: collections.Counter[str] = collections.Counter()
    if slow_ms is not None:
        watch_loop(slow_ms / 1000, slow, asked)

    def note(stage: str) -> None:
        phases.write(json.dumps({"t": time.perf_counter(), "stage": stage}) + "\n")
        phases.flush()

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.DeploymentStarting):
            note("locking")
        elif isinstance(event, ev.PhaseChanged):
            note(event.label)
        elif isinstance(event, ev.DeploymentFinished):
            note("finished")

    class BenchApp(CanaryApp):
        CSS_PATH = Path(sys.modules[CanaryApp.__module__].__file__ or "").parent / "app.tcss"

        def on_ready(self) -> None:
            stamps.watch_grid(self.fleet_screen.query_one(FleetGrid))
            screen = self.fleet_screen
            lay_out = screen._refresh_layout

            def counted(*args: Any, **kwargs: Any) -> None:
                began = time.perf_counter()
                try:
                    lay_out(*args, **kwargs)
                finally:
                    layouts[0] += 1
                    layouts[1] += time.perf_counter() - began

            screen._refresh_layout = counted  # type: ignore[method-assign]
            self.engine.subscribe(on_event)
            (out.parent / "ready").write_text(str(os.getpid()))

        def post_display_hook(self) -> None:
            stamps.frame_done(self._driver)

    app = BenchApp(env, journal)
    app.driver_class = stamps.driver_class()
    try:
        app.run()
    finally:
        journal.close()
        phases.close()
    stamps.dump(out, layouts=layouts)
    if slow_ms is not None:
        found = {"callbacks": slow, "layouts asked": dict(asked)}
        (out.parent / "slow.json").write_text(json.dumps(found), encoding="utf-8")
    return 0


def print_slow(found: dict[str, Any], slow_ms: float) -> None:
    """What ``--slow`` found (the app's ``slow.json``), longest total first."""
    callbacks: dict[str, list[float]] = found["callbacks"]
    print(f"  event-loop callbacks over {slow_ms:g} ms, by what they ran: count, total, longest")
    for name, took in sorted(callbacks.items(), key=lambda kv: -sum(kv[1]))[:15]:
        print(f"    {len(took):5d} {sum(took):7.2f} s {max(took) * 1000:7.1f} ms  {name}")
    asked = sorted(found["layouts asked"].items(), key=lambda kv: -kv[1])[:10]
    print("  layouts asked for, by widget: " + ", ".join(f"{w} {n}" for w, n in asked))


# Outside: the fleet, tmux, the operator --------------------------------------------------


def _screen(session: str) -> str:
    shown = subprocess.run(
        ["tmux", "-L", session, "capture-pane", "-p", "-t", session],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return shown.stdout


def _until_shown(session: str, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in _screen(session):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{text!r} not on the screen after {seconds:g} s")
        time.sleep(0.1)


def _stages(path: Path) -> list[tuple[float, str]]:
    """The release's stages so far, as the app wrote them (a line being written is left
    for the next read)."""
    stages: list[tuple[float, str]] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                break
            stages.append((d["t"], d["stage"]))
    return stages


Sched = tuple[float, int, int]  # (perf_counter, ns on a CPU, ns runnable waiting for one)


def _sched(pid: int) -> Sched:
    """The app's main thread (its event loop) as the kernel's scheduler counts it."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return time.perf_counter(), int(on_cpu), int(waiting)


def operate(session: str, folder: Path, version: str) -> tuple[int, float, float, list[Sched]]:
    """Deploy by keys, promote at each wait, arrows all along; (pid, CPU s, wall s, the
    main thread's scheduler counts at each turn)."""
    pid = int((folder / "ready").read_text())
    sched: list[Sched] = []
    _until_shown(session, "1.0.0", 60)  # a version on the grid: the fleet answers
    time.sleep(1.0)
    _tmux(session, "send-keys", "-t", session, "d")
    _until_shown(session, "Deploy to", 15)
    _tmux(session, "send-keys", "-t", session, "-l", version)
    _tmux(session, "send-keys", "-t", session, "Enter")
    _until_shown(session, f"Deploy {version}?", 15)
    cpu0, wall0 = _cpu_seconds(pid), time.monotonic()
    _tmux(session, "send-keys", "-t", session, "y")
    rng = random.Random(12)
    promoted = 0  # "awaiting promotion" stages answered with p
    deadline, ended = time.monotonic() + TIMEOUT, None
    i = 0
    while ended is None or time.monotonic() < ended + AFTER:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the release did not end within {TIMEOUT:g} s")
        try:
            sched.append(_sched(pid))
        except FileNotFoundError:
            raise RuntimeError(
                f"the app stopped during the release: see {folder / 'error'}"
            ) from None
        stages = _stages(folder / "phases.jsonl")
        waits = sum(stage == "awaiting promotion" for _, stage in stages)
        if ended is None and any(stage == "finished" for _, stage in stages):
            ended = time.monotonic()
        if not stages and time.monotonic() > wall0 + 30:
            raise RuntimeError("the release did not start within 30 s of y")
        if waits > promoted:  # p, and y to the dialog naming the wave
            promoted = waits
            _tmux(session, "send-keys", "-t", session, "p")
            _until_shown(session, "Promote (y)", 15)
            _tmux(session, "send-keys", "-t", session, "y")
        else:
            _tmux(session, "send-keys", "-t", session, KEYS[i % 4])
            i += 1
        time.sleep(rng.uniform(0.15, 0.25))
    return pid, _cpu_seconds(pid) - cpu0, time.monotonic() - wall0, sched


def _stage_of(at: float, stages: list[tuple[float, str]]) -> str:
    k = sum(t <= at for t, _ in stages)
    stage = stages[k - 1][1] if k else "before the release"
    return "after the end" if stage == "finished" else stage


def _loop_shares(sched: list[Sched], stages: list[tuple[float, str]]) -> dict[str, str]:
    """Per stage: the share of its time the app's main thread was on a CPU, and the share
    it was runnable but waiting for one (the machine busy with other processes)."""
    totals: dict[str, list[float]] = {}
    for (t0, run0, wait0), (t1, run1, wait1) in itertools.pairwise(sched):
        total = totals.setdefault(_stage_of(t0, stages), [0.0, 0.0, 0.0])
        total[0] += t1 - t0
        total[1] += (run1 - run0) / 1e9
        total[2] += (wait1 - wait0) / 1e9
    return {
        stage: f"{run / wall:>6.0%} {wait / wall:>6.0%}"
        for stage, (wall, run, wait) in totals.items()
        if wall > 0
    }


def report(data: dict[str, Any], stages: list[tuple[float, str]], sched: list[Sched]) -> list[str]:
    """Key latencies per stage of the release, each stage's time, and how its main
    thread shared the machine."""
    read, flushed = data["keys_read"], data["flushed"]
    latencies = key_latencies(read, flushed)
    starts = [t for t, _ in stages]
    by_stage: dict[str, list[float]] = {}
    before = "before the release"
    for at, latency in zip(read, latencies, strict=True):
        by_stage.setdefault(_stage_of(at, stages), []).append(latency * 1000)
    shares = _loop_shares(sched, stages)
    lines = [
        "  key latency (ms) per stage; the app's main thread on a CPU / runnable waiting",
        f"  {'stage':<26} {'time':>8} {'keys':>5} {'median':>8} {'p95':>8} {'max':>8}"
        f" {'on CPU':>6} {'waits':>6}",
    ]
    names = [before, *dict.fromkeys(s for _, s in stages if s != "finished"), "after the end"]
    spans: dict[str, float] = {}
    for (t, stage), nxt in zip(stages, [*starts[1:], None], strict=True):
        if nxt is not None:
            spans[stage] = spans.get(stage, 0.0) + nxt - t
    for name in names:
        ms = sorted(by_stage.get(name, []))
        span = f"{spans[name]:.2f} s" if name in spans else "-"
        share = shares.get(name, "")
        if not ms:
            lines.append(f"  {name:<26} {span:>8} {0:>5} {'':>26} {share}".rstrip())
            continue
        p95 = p95_of(ms)
        lines.append(
            f"  {name:<26} {span:>8} {len(ms):>5} {statistics.median(ms):>8.1f} "
            f"{p95:>8.1f} {ms[-1]:>8.1f} {share}".rstrip()
        )
    every = sorted(x * 1000 for x in latencies)
    if every:
        p95 = p95_of(every)
        verdict = "ok" if p95 <= 50 else "MISS"
        lines.append(
            f"  all keys: {len(every)}, median {statistics.median(every):.1f} ms, p95 "
            f"{p95:.1f} ms {verdict} (target <= 50), max {every[-1]:.1f} ms"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--version", default="1.1.0")
    p.add_argument(
        "--own-core",
        action="store_true",
        help="the app on a core of its own, the fleet, tmux and this script on the others "
        "(as when the fleet is other machines)",
    )
    p.add_argument(
        "--slow",
        type=float,
        metavar="MS",
        help="also print the app's event-loop callbacks longer than MS, and who asked for layouts",
    )
    p.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    p.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inside is not None:
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        return reporting(
            args.out.parent, lambda: run_inside(args.inside, args.out, args.state, args.slow)
        )
    # Stopped (a timeout's SIGTERM): the fleet, tmux and the folder are cleaned up still.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    width, height = SIZE
    print(f"canarytui UI in tmux {width}x{height} during a release to {args.hosts} demo hosts")
    compile_package()
    own = None
    if args.own_core:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            raise SystemExit("--own-core needs two cores or more")
        own, others = cores[0], set(cores[1:])
        os.sched_setaffinity(0, others)  # the fleet and tmux, started below, inherit it
        print(f"the app on core {own}; the fleet, tmux and this script on {sorted(others)}")
    fleet, env_path = start_fleet(args.hosts, dict(os.environ))
    folder = Path(tempfile.mkdtemp(prefix="canarytui-uirel-"))  # kept if the run fails
    state = folder / "state"
    session = f"canarytui-uirel-{os.getpid()}"
    out = folder / "timings.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--inside", env_path]
    command += ["--out", str(out), "--state", str(state)]
    command += [] if own is None else ["--cpu", str(own)]
    command += [] if args.slow is None else ["--slow", str(args.slow)]
    size = ["-x", str(width), "-y", str(height)]
    try:
        _tmux(session, "new-session", "-d", "-s", session, *size, shlex.join(command))
        if not _wait_for(folder / "ready", 60):
            raise RuntimeError(f"the app did not start: see {folder / 'error'}")
        pid, cpu, wall, sched = operate(session, folder, args.version)
        rss = _peak_rss_mb(pid)
        quit_app(session, out, 60)
    finally:
        end_tmux(session)
        fleet.send_signal(signal.SIGINT)
        fleet.communicate(timeout=60)
    stages = _stages(folder / "phases.jsonl")
    data = json.loads(out.read_text(encoding="utf-8"))
    slow = None if args.slow is None else json.loads((folder / "slow.json").read_text("utf-8"))
    shutil.rmtree(folder, ignore_errors=True)  # read; a failed run keeps it, with its error
    outcome = "finished" if any(s == "finished" for _, s in stages) else "did not finish"
    print(f"release of {args.version}: {outcome}; from y to the end of the keys {wall:.1f} s")
    for line in report(data, stages, sched):
        print(line)
    count, seconds = data["layouts"]
    print(
        f"  screen layouts from the first frame to the end: {count} ({seconds:.2f} s), "
        f"frames written: {len(data['flushed'])}"
    )
    print(f"  app CPU share of one core over the release: {cpu / wall:.3f}")
    verdict = "ok" if rss <= 300 else "MISS"
    print(f"  peak RSS of the app: {rss:.1f} MB {verdict} (target <= 300)")
    if slow is not None:
        print_slow(slow, args.slow)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
