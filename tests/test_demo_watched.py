"""The demo fleet's cost grows with what is watched: a host's app lives second by second
while a session on it shows life (it started, was sent input or printed output lately: a
log tail prints what the app logs); otherwise it does no work, and the next command or
input serves it the time since in one go, so readers see the same counters. A session that
only waits (a deployment's kept shell between scripts) keeps no app living."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from test_demo_fleet import connect, eventually, requests, run, samples

from canarytui.demo import DemoFleet, app, hosts

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
    # Log lines on every tick (a tick of 0.05 s would log one in six): the tail's output
    # is what keeps its host living.
    monkeypatch.setattr(app, "_LOG_LINES_PER_SECOND", 40.0)
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
            assert watched.watched(asyncio.get_running_loop().time())  # its tail prints
            tail.close()


async def test_a_kept_shell_keeps_no_app_living_and_its_input_sees_a_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment's kept shell stays open between its scripts, and talks with the
    deployment only: the app sleeps. A release switched meanwhile is taken in before the
    shell reads its next script; the traffic waits for a session that reads the app."""
    monkeypatch.setattr(hosts, "WATCHED_FOR", 0.3)
    async with DemoFleet(hosts=1, root=tmp_path / "fleet", tick=0.05, traffic=10) as fleet:
        ticks = count_ticks(fleet)
        host = fleet._host("web-01")
        async with connect(fleet, "web-01") as conn:
            shell = await conn.create_process('while read -r line; do eval "$line"; done')
            # The session's start wakes the app; with nothing more, it sleeps though open.
            await eventually(lambda: ticks["web-01"] >= 1, within=10)
            await eventually(lambda: not host.watched(asyncio.get_running_loop().time()))
            stopped = ticks["web-01"]
            await asyncio.sleep(0.5)  # ten ticks' time, the shell open and waiting
            assert ticks["web-01"] == stopped and len(host.processes) == 1

            # A switch on the host's disk, then a script and its reply: the app took the
            # release in before the script read its health, and slept on.
            switch_on_disk(fleet.sandbox_of("web-01"), "1.4.0-dead")
            shell.stdin.write("cat run/health\n")
            assert await asyncio.wait_for(shell.stdout.readline(), 10) == "fail 1.4.0-dead\n"
            await asyncio.sleep(0.5)
            assert ticks["web-01"] == stopped
            shell.stdin.write_eof()
            await asyncio.wait_for(shell.wait_closed(), 10)


def switch_on_disk(sandbox: Path, version: str) -> None:
    """A release put in place on the host's disk directly (not over SSH)."""
    (sandbox / "releases" / version).mkdir()
    (sandbox / "releases" / version / "VERSION").write_text(f"{version}\n")
    (sandbox / "current").unlink()
    (sandbox / "current").symlink_to(f"releases/{version}")


async def test_a_release_switched_while_nobody_watched_shows_at_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A switch made on the host's disk directly (not over SSH) is seen by the next
    command, though the app did not tick in between."""
    monkeypatch.setattr(hosts, "WATCHED_FOR", 0.0)
    async with DemoFleet(hosts=1, root=tmp_path / "fleet", tick=0.05) as fleet:
        ticks = count_ticks(fleet)
        switch_on_disk(fleet.sandbox_of("web-01"), "1.4.0-dead")
        assert ticks["web-01"] == 0  # nothing looked: the app has not seen the switch
        async with connect(fleet, "web-01") as conn:
            health = (await run(conn, "cat run/health")).stdout
        assert health == "fail 1.4.0-dead\n"
