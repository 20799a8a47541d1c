"""Bounded memory: a host that prints floods (50 MB of output, a 10 MB line, a 10 MB log line
streamed) leaves the controller's RSS flat. Prints RSS before, at peak, and after.

    python benches/flood.py --megabytes 200

Runs canarytui's SSH layer against one real OpenSSH host (needs root and /usr/sbin/sshd).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sshd_fleet import SshdFleet

from canarytui.config import load_env
from canarytui.ssh import Fleet

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


async def main(megabytes: int) -> None:
    with SshdFleet.start(1) as fleet:
        ssh = Fleet(load_env(fleet.write_env()))
        peak = 0.0
        running = True

        async def sample() -> None:
            nonlocal peak
            while running:
                peak = max(peak, rss_mb())
                await asyncio.sleep(0.01)

        await ssh.run("h01", "true")
        before = rss_mb()
        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        flood = await ssh.run(
            "h01", f"head -c {megabytes}000000 /dev/zero | tr '\\0' x; echo end", timeout=300
        )
        line = await ssh.run("h01", "head -c 10000000 /dev/zero | tr '\\0' y", timeout=60)
        streamed = [
            x async for x in ssh.stream("h01", "head -c 10000000 /dev/zero | tr '\\0' z; echo")
        ]
        elapsed = time.monotonic() - started
        running = False
        await sampler
        await ssh.close()
        print(f"output read: {megabytes} MB + a 10 MB line + a 10 MB streamed line, {elapsed:.1f}s")
        kept = f"{len(flood.stdout)} + {len(line.stdout)} chars, {len(streamed[0])} in the line"
        print(f"  kept: {kept}")
        print(
            f"  controller RSS before {before:.1f} MB, peak {peak:.1f} MB, after {rss_mb():.1f} MB"
        )
        print(f"  growth at peak: {peak - before:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=200)
    asyncio.run(main(parser.parse_args().megabytes))
