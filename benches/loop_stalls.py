"""How long the engine holds its event loop during a real release (the interface shares it).

    python benches/loop_stalls.py --hosts 1000 [--stacks 100]

Starts the demo fleet as its own process (as ``demo_release.py`` does), then runs the
engine in this process, as the interface runs it, for ``deploy 1.1.0 --auto-promote``. A
probe task sleeps 5 ms at a time and records how late it wakes: every late wake-up is a
stretch where nothing else ran (no SSH traffic, no key, no frame). Printed per phase:
the wake-ups, the lateness's median, p90, p99 and max, and its sum; then the cyclic
garbage collector's full collections (each one stops the loop) and their durations.

``--stacks MS`` also writes, for each stall longer than MS milliseconds, the stacks of
every thread to ``loop-stalls.txt`` in the state folder (``faulthandler``), and prints the
innermost canarytui frame of each: where the loop was held. This is how the import of
SciPy at the first statistical test (0.7-1.9 s at 1,000 hosts) was found.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo_release import start_fleet

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.engine import Engine
from canarytui.journal import Journal

TICK = 0.005


async def release(env_path: str, state: str, stacks_ms: float | None, dump: Any) -> None:
    engine = Engine(load_env(env_path), Journal(state))
    phase = ["start"]
    lateness: dict[str, list[float]] = defaultdict(list)
    full: list[tuple[str, float]] = []  # full garbage collections: (phase, seconds)
    began: dict[str, float] = {}

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.PhaseChanged):
            phase[0] = event.phase.value

    def on_gc(stage: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if stage == "start":
            began["t"] = time.perf_counter()
        elif "t" in began:
            full.append((phase[0], time.perf_counter() - began.pop("t")))

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            if dump is not None and stacks_ms:
                faulthandler.dump_traceback_later(stacks_ms / 1000, file=dump)
            asked = loop.time()
            await asyncio.sleep(TICK)
            lateness[phase[0]].append(loop.time() - asked - TICK)

    engine.subscribe(on_event)
    gc.callbacks.append(on_gc)
    watcher = asyncio.create_task(probe())
    started = time.perf_counter()
    try:
        outcome = await engine.deploy("1.1.0", auto_promote=True)
        await engine.fleet.close()
    finally:
        watcher.cancel()
        gc.callbacks.remove(on_gc)
        if dump is not None:
            faulthandler.cancel_dump_traceback_later()
    print(f"deploy 1.1.0 --auto-promote: {outcome.value} in {time.perf_counter() - started:.2f} s")
    print("  phase          wake-ups  late p50    p90     p99     max      sum")
    for name, late in lateness.items():
        late.sort()
        cut = [late[min(len(late) - 1, int(len(late) * q))] * 1000 for q in (0.5, 0.9, 0.99)]
        print(
            f"  {name:<14}{len(late):>8}  {cut[0]:6.1f}  {cut[1]:6.1f}  {cut[2]:6.1f}  "
            f"{late[-1] * 1000:6.1f} ms  {sum(late):5.2f} s"
        )
    if full:
        took = [t for _, t in full]
        print(
            f"  full garbage collections: {len(took)}, median {statistics.median(took) * 1000:.0f}"
            f" ms, longest {max(took) * 1000:.0f} ms ("
            + ", ".join(f"{p} {t * 1000:.0f}" for p, t in full)
            + ")"
        )
    if dump is not None and stacks_ms:
        dump.flush()
        print_stalls(dump.name, stacks_ms)


def print_stalls(path: str, stacks_ms: float) -> None:
    """Where the loop was when each long stall was caught: the main thread's innermost
    canarytui frame (or its innermost frame, if no canarytui frame is on the stack)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    stalls = text.split("Timeout (")[1:]
    print(f"  stalls over {stacks_ms:g} ms: {len(stalls)} (stacks in {path})")
    for stall in stalls:
        main = [t for t in stall.split("\nThread ") if "base_events.py" in t or "runners.py" in t]
        frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', main[0] if main else stall)
        ours = [f for f in frames if "/canarytui/" in f[0]] or frames
        if ours:
            file, line, func = ours[0]
            print(f"    {file.split('/canarytui/')[-1]}:{line} in {func}")


def main(hosts: int, stacks_ms: float | None) -> None:
    state = tempfile.mkdtemp(prefix="canarytui-bench-state-")
    os.environ["CANARYTUI_STATE_DIR"] = state
    fleet, env_path = start_fleet(hosts, dict(os.environ))
    try:
        if stacks_ms:
            with open(os.path.join(state, "loop-stalls.txt"), "w") as dump:
                asyncio.run(release(env_path, state, stacks_ms, dump))
        else:
            asyncio.run(release(env_path, state, None, None))
    finally:
        fleet.send_signal(signal.SIGINT)
        fleet.communicate(timeout=60)
        if not stacks_ms:  # the journal of a bench's release: nothing to keep
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--stacks", type=float, default=None, metavar="MS")
    args = parser.parse_args()
    main(args.hosts, args.stacks)
