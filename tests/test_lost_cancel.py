"""A stop asked at the moment a connection is made is not lost: Python 3.11's
``asyncio.wait_for`` (which asyncssh's ``connect`` uses for its timeout) returns a
connection that came in at the same moment as the cancel, and drops the cancel. canarytui
asks again: the command is not run, and a loop that retries after errors (a log stream of
a host that is down) ends when stopped, instead of keeping the program from exiting.

Demo hosts over real SSH; the cancel is timed from the client's own ``auth_completed``
callback, so the race happens the same way on every run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.journal import Journal
from canarytui.monitor import Monitor
from canarytui.ssh import Fleet, Unreachable
from canarytui.ssh.library import client_type


def cancel_when_logged_in(monkeypatch: pytest.MonkeyPatch, task: list[asyncio.Task[Any]]) -> None:
    """Cancel ``task[0]`` from the client's login callback: the cancel comes in the step
    after the one that completes the connection, the moment 3.11's ``wait_for`` drops it."""
    original = client_type().auth_completed

    def auth_completed(self: Any) -> None:
        original(self)
        if task:
            asyncio.get_running_loop().call_soon(task.pop().cancel)

    monkeypatch.setattr(client_type(), "auth_completed", auth_completed)


async def test_a_command_cancelled_as_its_host_logs_in_is_not_run(
    demo: DemoFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = demo.host_names[0]
    fleet = Fleet(load_env(demo.env_path))
    target: list[asyncio.Task[Any]] = []
    cancel_when_logged_in(monkeypatch, target)
    marker = demo.root / "ran"
    try:
        running = asyncio.ensure_future(fleet.run(name, f"touch {marker}"))
        target.append(running)
        with pytest.raises(asyncio.CancelledError):  # not a TimeoutError
            async with asyncio.timeout(15):
                await running
        assert not target, "the login callback never ran"
        # The host is still usable, and the cancelled command never ran there.
        assert (await fleet.run(name, "echo ok")).stdout == "ok\n"
        assert not marker.exists()
    finally:
        await fleet.close()


async def test_a_log_stream_stopped_as_it_logs_in_ends(
    demo: DemoFleet, state_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor's log stream of a host, stopped as its connection logs in: it ends, and
    streams no line (before, it streamed on until the test gave up)."""
    name = demo.host_names[0]
    engine = Engine(load_env(demo.env_path), Journal(state_dir))
    monitor = Monitor(engine, initial_discovery=False)
    lines: list[str] = []
    engine.subscribe(lambda e: lines.append(e.line) if isinstance(e, ev.LogLine) else None)
    target: list[asyncio.Task[Any]] = []
    cancel_when_logged_in(monkeypatch, target)
    try:
        tail = asyncio.ensure_future(monitor._tail(name))
        target.append(tail)
        with pytest.raises(asyncio.CancelledError):  # not a TimeoutError
            async with asyncio.timeout(15):
                await tail
        assert not target, "the login callback never ran"
        assert lines == []
    finally:
        await engine.fleet.close()
        engine.journal.close()


def dropping_tail(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``engine.tail`` as a host that is down, whose first failure comes in at the moment
    its reader is stopped, through 3.11's ``wait_for`` (which then drops the stop): the
    reader sees the failure, not the stop. Returns the count of tries."""
    tries: list[int] = []
    host = engine.env.hosts[0]

    async def tail(name: str) -> Any:
        tries.append(1)
        reader = asyncio.current_task()
        assert reader is not None

        async def refused() -> None:
            if len(tries) == 1:
                asyncio.get_running_loop().call_soon(reader.cancel)
            raise Unreachable(host, "unreachable: connection refused")

        await asyncio.wait_for(refused(), 30)
        yield ""  # (an async generator, as the real one)

    monkeypatch.setattr(engine, "tail", tail)
    return tries


async def test_the_monitors_log_stream_loop_ends_when_its_stop_was_dropped(
    demo: DemoFleet, state_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(load_env(demo.env_path), Journal(state_dir))
    tries = dropping_tail(engine, monkeypatch)
    monitor = Monitor(engine, initial_discovery=False)
    try:
        with pytest.raises(asyncio.CancelledError):  # not a TimeoutError
            async with asyncio.timeout(10):
                await asyncio.ensure_future(monitor._tail(demo.host_names[0]))
        assert tries == [1]  # not tried again after the stop
    finally:
        engine.journal.close()


async def test_the_logs_commands_loop_ends_when_its_stop_was_dropped(
    demo: DemoFleet, state_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from canarytui.cli import logs

    env = load_env(demo.env_path)
    journal = Journal(state_dir)

    def engine(env: Any, journal: Any) -> Engine:
        made = Engine(env, journal)
        dropping_tail(made, monkeypatch)
        return made

    monkeypatch.setattr("canarytui.engine.Engine", engine)
    try:
        with pytest.raises(asyncio.CancelledError):  # not a TimeoutError
            async with asyncio.timeout(10):
                await logs._read(env, journal, [demo.host_names[0]], None, follow=True)
    finally:
        journal.close()
