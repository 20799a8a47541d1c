"""The demo fleet's cost grows with what is watched: a host's app lives second by second
while a session is open on it or one started lately; otherwise it does no work, and the
next command serves it the time since in one go, so readers see the same counters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from test_demo_fleet import connect, eventually, requests, run, samples

from canarytui.demo import DemoFleet, hosts

Tick = Callable[[float], None]


def count_ticks(fleet: DemoFleet) -> dict[str, int]:
    """How often each host's app has ticked from now on."""
    ticks = dict.fromkeys(fleet.host_names, 0)
    for name in fleet.host_names:
        app = fleet._host(name).app

        def counting(dt: float, name: str = name, original: Tick = app.tick) -> None:
            ticks[name] += 1
            original(dt)

        app.tick = counting  # type: ignore[method-assign]
    return ticks


async def test_an_app_nobody_watches_does_no_work_until_a_command_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosts, "WATCHED_FOR", 0.5)
    async with DemoFleet(hosts=2, root=tmp_path / "fleet", tick=0.05, traffic=10) as fleet:
        ticks = count_ticks(fleet)
        watched, idle = fleet._host("web-01"), fleet._host("web-02")
        async with connect(fleet, "web-01") as tailing, connect(fleet, "web-02") as conn:
            # web-01 has a log tail open: it lives. web-02 has nothing: it waits.
            tail = await tailing.create_process("exec tail -n 1 -F log/app.log")
            await eventually(lambda: ticks["web-01"] >= 10, within=10)
            assert ticks["web-02"] == 0 and idle.app.counters.served == 0

            # A command on web-02 is served the time since, before it reads anything.
            page = samples((await run(conn, "cat run/metrics.prom")).stdout)
            assert requests(page) > 0 and idle.app.counters.served > 0
            # Then it lives for WATCHED_FOR, and stops again.
            await eventually(lambda: ticks["web-02"] >= 1, within=10)
            seen = ticks["web-01"]
            await eventually(lambda: ticks["web-01"] >= seen + 20, within=10)
            stopped = ticks["web-02"]
            await eventually(lambda: ticks["web-01"] >= seen + 30, within=10)
            assert ticks["web-02"] == stopped
            later = asyncio.get_running_loop().time() + 100 * hosts.WATCHED_FOR
            assert watched.watched(later)  # whenever its last command was: its tail is open
            tail.close()


async def test_a_release_switched_while_nobody_watched_shows_at_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A switch made on the host's disk directly (not over SSH) is seen by the next
    command, though the app did not tick in between."""
    monkeypatch.setattr(hosts, "WATCHED_FOR", 0.0)
    async with DemoFleet(hosts=1, root=tmp_path / "fleet", tick=0.05) as fleet:
        ticks = count_ticks(fleet)
        sandbox = fleet.sandbox_of("web-01")
        (sandbox / "releases" / "1.4.0-dead").mkdir()
        (sandbox / "releases" / "1.4.0-dead" / "VERSION").write_text("1.4.0-dead\n")
        (sandbox / "current").unlink()
        (sandbox / "current").symlink_to("releases/1.4.0-dead")
        assert ticks["web-01"] == 0  # nothing looked: the app has not seen the switch
        async with connect(fleet, "web-01") as conn:
            health = (await run(conn, "cat run/health")).stdout
        assert health == "fail 1.4.0-dead\n"
