"""A health probe's latency is the host's answer, not the controller's queue (demo fleet).

With every ``max_parallel`` slot taken (a deployment's hosts at scale), a probe waits for
one before anything is sent; the grid and the host panel show its latency, and a healthy
host must not read as seconds slow because the controller was busy.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from conftest import edit_env, wait_for

from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.metrics.sources import probe
from canarytui.ssh import Fleet

SLOW = 1.0  # seconds web-02's check holds the only slot


async def test_latency_leaves_out_the_wait_for_a_slot(demo: DemoFleet, tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["ssh"]["max_parallel"] = 1
        # web-02's check says it started, then holds the slot; the others answer at once.
        data["health"]["check"] = f'[ "$DEMO_HOST" != web-02 ] || {{ : > started; sleep {SLOW}; }}'
        data["health"].pop("metrics", None)

    env = load_env(edit_env(demo.env_path, tmp_path / "one-slot.yaml", edit))
    fleet = Fleet(env)
    try:
        # Both connections first, so neither probe below pays for a handshake.
        await fleet.run("web-01", "true")
        await fleet.run("web-02", "true")
        holder = asyncio.ensure_future(probe(fleet, env, "web-02"))
        started = demo.sandbox_of("web-02") / "started"
        await wait_for(started.exists, 10)
        t0 = time.monotonic()
        waited = await asyncio.wait_for(probe(fleet, env, "web-01"), 10)
        wall = time.monotonic() - t0
        slow = await asyncio.wait_for(holder, 10)
    finally:
        await fleet.close()
    assert waited.sample.ok and slow.sample.ok
    assert wall >= SLOW * 0.5  # it did wait for web-02's slot...
    assert waited.sample.latency < SLOW * 0.5  # ...which its latency leaves out
    assert slow.sample.latency >= SLOW  # a slow check is still slow
