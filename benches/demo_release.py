"""The whole canary story at scale, through the real command line.

    python benches/demo_release.py --hosts 500

Starts ``canarytui demo --serve --hosts N`` as its own process, then runs
``canarytui deploy ENV 1.1.0 --auto-promote --json`` against it as a second process, and
prints: time until the fleet's env file path is printed, the deploy's exit status and wall
time, the time spent in each phase (from the events' own timestamps), the hosts on the new
version afterwards, and how long Ctrl-C takes to stop the fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


async def main(hosts: int) -> int:
    state = tempfile.mkdtemp(prefix="canarytui-bench-state-")
    env = dict(os.environ, CANARYTUI_STATE_DIR=state)
    started = time.perf_counter()
    fleet = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarytui",
        "demo",
        "--serve",
        "--hosts",
        str(hosts),
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=PROJECT_ROOT,
    )
    assert fleet.stdout is not None
    env_path = (await asyncio.wait_for(fleet.stdout.readline(), 60)).decode().strip()
    up = time.perf_counter() - started
    print(f"demo --serve --hosts {hosts}: env file printed after {up:.2f} s ({env_path})")
    try:
        t0 = time.perf_counter()
        epoch = time.time()
        deploy = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "canarytui",
            "deploy",
            env_path,
            "1.1.0",
            "--auto-promote",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            env=env,
            cwd=PROJECT_ROOT,
        )
        out, _ = await asyncio.wait_for(deploy.communicate(), 600)
        wall = time.perf_counter() - t0
        events = [json.loads(line) for line in out.decode().splitlines()]
        print(f"deploy 1.1.0 --auto-promote: exit {deploy.returncode} in {wall:.2f} s")
        phases = [(e["at"], e["phase"], e.get("wave")) for e in events if e["event"] == "phase"]
        first = next(e["at"] for e in events if e["event"] == "deployment_started")
        print(f"  start-up, lock + version discovery on {hosts} hosts: {first - epoch:.2f} s")
        for (at, phase, wave), nxt in zip(
            phases, [*phases[1:], (events[-2]["at"], "", None)], strict=True
        ):
            label = f"{phase} {wave}" if wave else phase
            print(f"  {label:<24} {nxt[0] - at:7.2f} s")
        done = sum(1 for e in events if e["event"] == "host" and e["state"] == "deployed")
        print(f"  hosts deployed: {done} of {hosts}")
    finally:
        t1 = time.perf_counter()
        fleet.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(fleet.wait(), 60)
        print(f"Ctrl-C: fleet exited {code} after {time.perf_counter() - t1:.2f} s")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    raise SystemExit(asyncio.run(main(parser.parse_args().hosts)))
