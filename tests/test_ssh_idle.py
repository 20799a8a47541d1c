"""Connections nothing uses are closed after a while (and reopened on the next use), so an
open environment's cost follows what is watched, not the size of the fleet; an open
deployment's hosts keep theirs."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.ssh import Fleet
from canarytui.ssh import fleet as fleet_module


async def test_idle_connections_close_and_reopen(
    demo: DemoFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet_module, "IDLE_CLOSE", 0.3)
    monkeypatch.setattr(fleet_module, "_SWEEP_EVERY", 0.05)
    pool = Fleet(load_env(demo.env_path))
    idle, busy, streaming, locked = demo.host_names[:4]
    pool.pinned = {locked}  # as an open deployment pins the hosts it holds
    try:
        assert (await pool.run(idle, "echo hi")).stdout == "hi\n"
        assert (await pool.run(locked, "true")).ok
        stream = pool.stream(streaming, "echo started; sleep 30")
        assert await asyncio.wait_for(anext(stream), 10) == "started"
        assert pool.open_connections == 3

        # Another host keeps working; the idle one's connection goes, the stream stays.
        async with asyncio.timeout(10):
            while idle in pool._connections:
                assert (await pool.run(busy, "true")).ok
                await asyncio.sleep(0.05)
        assert idle not in pool._connections
        assert streaming in pool._connections and locked in pool._connections
        connects = pool.connects
        assert (await pool.run(idle, "echo again")).stdout == "again\n"
        assert pool.connects == connects + 1  # reopened on use
        with contextlib.suppress(StopAsyncIteration):
            await stream.aclose()
    finally:
        await pool.close()
