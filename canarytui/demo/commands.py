"""Runs one SSH session on a demo host: ``/bin/sh -c COMMAND`` in its sandbox, bridged.

The host's fault shows here too: a flaky host drops some sessions, a hung one holds them
until the fault clears, a slow one starts them late. Nothing a command starts outlives its
session: it runs in its own process group, killed whichever way the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import asyncssh

from canarytui.demo.hosts import FLAKY_DROP, SLOW_DELAY, DemoHost
from canarytui.demo.spawn import kill_group, spawn

SANE_PATH = "/usr/local/bin:/usr/bin:/bin"
_CHUNK = 65536


async def run_command(host: DemoHost, process: asyncssh.SSHServerProcess[bytes]) -> None:
    """One SSH session: ``/bin/sh -c COMMAND`` in the sandbox, bridged to the channel."""
    host.commands += 1
    host.looked()
    closed = asyncio.ensure_future(process.wait_closed())
    try:
        if not await _as_faulty(host, process, closed):
            return
        # The command must see the app's files as of now, not as of the last flush (an
        # app nobody watched has not ticked since: a release switched meanwhile shows now).
        host.app.poke()
        host.app.sync()
        await _bridge(host, process, closed)
    finally:
        closed.cancel()


async def _as_faulty(
    host: DemoHost, process: asyncssh.SSHServerProcess[bytes], closed: asyncio.Future[None]
) -> bool:
    """The host's fault, met by a command about to run (a new session, or a kept shell's
    next script): a flaky host drops some (their connection), a hung one holds them until
    the fault clears or the client gives up, a slow one starts them late. False: the
    command is not to run (dropped, or its session closed meanwhile)."""
    if host.fault == "flaky" and host.rng.random() < FLAKY_DROP:
        conn = process.get_extra_info("connection")
        if conn is not None:
            conn.abort()
        return False
    if not host.answering.is_set():
        answering = asyncio.ensure_future(host.answering.wait())
        either: set[asyncio.Future[Any]] = {closed, answering}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        answering.cancel()
    if host.fault == "slow" and not closed.done():
        await asyncio.wait({closed}, timeout=SLOW_DELAY)
    return not closed.done()


async def _bridge(
    host: DemoHost, process: asyncssh.SSHServerProcess[bytes], closed: asyncio.Future[None]
) -> None:
    command = process.command
    argv = ["/bin/sh"] if command is None else ["/bin/sh", "-c", command]
    user = process.get_extra_info("username") or "demo"
    env = {
        "HOME": str(host.sandbox),
        "PATH": SANE_PATH,
        "DEMO_HOST": host.name,
        "USER": user,
        "LOGNAME": user,
        "SHELL": "/bin/sh",
        "LANG": "C.UTF-8",
    }
    try:
        # Its own process group (see ``spawn``). Not a session of its own: Linux schedules
        # each session as a group of its own, and fifty shells at once would each weigh as
        # much as the operator's process.
        proc = await spawn(argv, host.sandbox, env)
    except OSError as exc:
        process.stderr.write(f"demo host {host.name}: cannot start shell: {exc}\n".encode())
        process.exit(127)
        return
    host.processes.add(proc)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    feeder = asyncio.create_task(_feed(host, process, closed, proc.stdin))
    # Exit is reported only after all output went out, as sshd does.
    finished: asyncio.Future[Any] = asyncio.ensure_future(
        asyncio.gather(
            _pump(host, proc.stdout, process.stdout),
            _pump(host, proc.stderr, process.stderr),
            proc.wait(),
        )
    )
    finished.add_done_callback(_outcome_read)
    waiters: set[asyncio.Future[Any]] = {finished, closed}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Whichever way it ended (done, client closed the channel, connection dropped,
        # fleet stopping), nothing the command started may outlive it. Its group id is
        # not reused meanwhile: Linux hands out PIDs in sequence, not lowest-free.
        kill_group(proc)
        feeder.cancel()
        if not finished.done():
            finished.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(5.0):
                await proc.wait()
        host.processes.discard(proc)
    # Whatever the command changed (a new release, a restart request) takes effect
    # before its exit status goes out.
    with contextlib.suppress(OSError):
        host.app.poke()
    completed = finished.done() and not finished.cancelled() and finished.exception() is None
    if completed and not closed.done():
        code = proc.returncode if proc.returncode is not None else 255
        with contextlib.suppress(OSError, asyncssh.Error):
            if code < 0:
                process.exit_with_signal(signal.Signals(-code).name.removeprefix("SIG"))
            else:
                process.exit(code)


def _outcome_read(finished: asyncio.Future[Any]) -> None:
    """The fleet's stop can cancel a session's pumps before the session sees its end;
    that outcome is expected: read here, so asyncio does not report it, with a traceback,
    on the terminal of the fleet being stopped."""
    if not finished.cancelled():
        finished.exception()


async def _feed(
    host: DemoHost,
    process: asyncssh.SSHServerProcess[bytes],
    closed: asyncio.Future[None],
    sink: asyncio.StreamWriter,
) -> None:
    """Client's stdin -> the command's stdin, closing it at the client's EOF.

    Input can be a command (a kept shell's next script): a release switched or a restart
    asked meanwhile takes effect before the shell reads it, as before a session starts.
    Its traffic is left for the next session to serve (a reader of the app's files).
    The host's fault meets that script as it would a new session (``_as_faulty``)."""
    try:
        while data := await process.stdin.read(_CHUNK):
            if not await _as_faulty(host, process, closed):
                return
            host.seen()
            with contextlib.suppress(OSError):  # the sandbox is the user's to break
                host.app.poke()
            sink.write(data)
            await sink.drain()
    except (OSError, asyncssh.Error):
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()


async def _pump(
    host: DemoHost, source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]
) -> None:
    """The command's stdout or stderr -> the channel, with back-pressure. Output is life:
    a log tail that prints keeps its host's app living. A hung host's output stops
    (a session open before it hung says nothing more until it answers again)."""
    try:
        while data := await source.read(_CHUNK):
            if not host.answering.is_set():
                await host.answering.wait()
            host.seen()
            sink.write(data)
            await sink.drain()
    except (OSError, asyncssh.Error):
        # The channel is gone: keep reading so the command never blocks on a full pipe
        # before it is killed.
        while await source.read(_CHUNK):
            pass
