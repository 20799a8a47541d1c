"""A demo host's shell is started off the fleet's event loop (``canarytui.demo.spawn``):
the loop goes on serving every other host while a process starts, the shell's pipes and
exit status work as asyncio's own subprocesses do, and a session that goes while its shell
starts leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_demo_fleet import eventually

from canarytui.demo import spawn as spawn_module
from canarytui.demo.spawn import kill_group, spawn

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture(params=["pidfd", "asyncio"])
def starting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a shell starts: off the loop with a pidfd, and asyncio's where there is none."""
    if request.param == "pidfd" and not spawn_module.pidfds_work():
        pytest.skip("this kernel hands out no pidfds")
    monkeypatch.setattr(spawn_module, "_PIDFDS", request.param == "pidfd")
    return str(request.param)


async def test_a_shell_gets_its_input_gives_its_output_and_its_exit_status(
    tmp_path: Path, starting: str
) -> None:
    child = await spawn(["/bin/sh"], tmp_path, ENV)
    assert child.stdin and child.stdout and child.stderr and child.pid > 0
    child.stdin.write(b'echo "out in $PWD"; echo err >&2; exit 3\n')
    await child.stdin.drain()
    child.stdin.close()
    async with asyncio.timeout(10):
        out, err, code = await asyncio.gather(
            child.stdout.read(), child.stderr.read(), child.wait()
        )
    assert out == f"out in {tmp_path}\n".encode() and err == b"err\n"
    assert code == 3 and child.returncode == 3


async def test_a_shell_killed_with_its_group_reports_the_signal(
    tmp_path: Path, starting: str
) -> None:
    child = await spawn(["/bin/sh", "-c", "sleep 30 & wait"], tmp_path, ENV)
    assert child.stdout is not None
    kill_group(child)
    async with asyncio.timeout(10):
        assert await child.wait() == -signal.SIGKILL
        await child.stdout.read()  # its pipes end with it and its children


@dataclass
class Starts:
    """What the slowed Popen saw: how many starts began, and which thread started what."""

    entered: int = 0
    started: list[tuple[int, subprocess.Popen[bytes]]] = field(default_factory=list)


def slow_popen(monkeypatch: pytest.MonkeyPatch, delay: float | threading.Event) -> Starts:
    """Popen in ``spawn`` made slow (``delay`` seconds, or until the event is set), as a
    start is on a busy machine."""
    starts = Starts()
    real = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        starts.entered += 1
        if isinstance(delay, threading.Event):
            delay.wait(10)
        else:
            time.sleep(delay)
        proc = real(*args, **kwargs)
        starts.started.append((threading.get_ident(), proc))
        return proc

    monkeypatch.setattr(spawn_module.subprocess, "Popen", popen)
    return starts


def needs_pidfds() -> None:
    if not spawn_module.pidfds_work():
        pytest.skip("this kernel hands out no pidfds")


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, Starts]:
    """Starts held in their threads until the event is set (pidfd starts only)."""
    needs_pidfds()
    release = threading.Event()
    return release, slow_popen(monkeypatch, release)


async def held_start_cancelled(tmp_path: Path, starts: Starts) -> None:
    """A session goes while its shell's start is held in its thread."""
    starting = asyncio.create_task(spawn(["/bin/sh", "-c", "exec sleep 30"], tmp_path, ENV))
    await eventually(lambda: starts.entered == 1, within=10)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting


async def started_then_killed(starts: Starts) -> None:
    """The one shell was started, then killed with its group and reaped: no process, no
    zombie."""
    await eventually(lambda: len(starts.started) == 1, within=10)
    proc = starts.started[0][1]
    await eventually(lambda: proc.returncode is not None, within=10)
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


async def test_the_event_loop_runs_on_while_a_shell_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_pidfds()
    starts = slow_popen(monkeypatch, 0.3)
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    try:
        child = await spawn(["/bin/sh", "-c", "exit 0"], tmp_path, ENV)
    finally:
        ticker.cancel()
    async with asyncio.timeout(10):
        assert await child.wait() == 0
    # The start took 0.3 s in another thread; the loop turned all along.
    assert [thread for thread, _ in starts.started] != [threading.get_ident()]
    assert ticks >= 10, ticks


async def test_a_session_gone_while_its_shell_starts_leaves_no_process(
    tmp_path: Path, held: tuple[threading.Event, Starts]
) -> None:
    release, starts = held
    await held_start_cancelled(tmp_path, starts)
    release.set()
    await started_then_killed(starts)


def test_a_shell_whose_start_ends_after_the_fleet_stopped_leaves_no_process(
    tmp_path: Path, held: tuple[threading.Event, Starts]
) -> None:
    """The fleet stops (its loop closes) while a session's shell is still starting: the
    shell, started after, is killed all the same."""
    release, starts = held
    asyncio.run(held_start_cancelled(tmp_path, starts))  # its loop is closed now
    release.set()
    asyncio.run(started_then_killed(starts))


async def test_a_shell_not_yet_starting_when_its_session_goes_is_never_started(
    tmp_path: Path, held: tuple[threading.Event, Starts]
) -> None:
    release, starts = held
    argv = ["/bin/sh", "-c", "exit 0"]
    # Every starter busy with a held start; one more waits for a starter.
    busy = [asyncio.create_task(spawn(argv, tmp_path, ENV)) for _ in range(spawn_module._STARTERS)]
    await eventually(lambda: starts.entered == len(busy), within=10)
    waiting = asyncio.create_task(spawn(argv, tmp_path, ENV))
    await asyncio.sleep(0)  # one turn: it has asked for a starter
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    async with asyncio.timeout(10):
        for child in await asyncio.gather(*busy):
            assert await child.wait() == 0
        # Every starter at once on a task queued after it: what was queued before is done.
        barrier = threading.Barrier(spawn_module._STARTERS)
        pool = spawn_module._starter()
        await asyncio.gather(
            *(asyncio.wrap_future(pool.submit(barrier.wait, 10)) for _ in range(barrier.parties))
        )
    assert starts.entered == len(busy) and len(starts.started) == len(busy)
