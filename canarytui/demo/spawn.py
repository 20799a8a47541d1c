"""Starting a demo host's shell without stopping the fleet's event loop.

Starting a process suspends the thread that starts it until the child has exec'd (Python
spawns with ``vfork``): on a busy machine that is milliseconds, and the demo fleet is one
event loop serving every host's SSH. asyncio starts its subprocesses on the loop's own
thread, so at 1,000 hosts the fleet stood still for ~2.7 ms a session, and the connections
waiting on it left the machine's cores idle (a sixth of them, all through a deployment's
locking of every host). Here the start happens in a thread of its own (it waits for the
exec without the GIL) and the loop takes the child's pipes afterwards; the child's exit is
seen through a pidfd, as Python 3.12's asyncio does.

Where there is no pidfd (a kernel before 5.3, not Linux), asyncio's own subprocesses are
used: the loop then waits for each start, as it did before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

# Starts overlap a little (two exec at once on a two-core machine); more threads only
# take turns for the same cores.
_STARTERS = 2
_LIMIT = 2**16  # a pipe's read buffer, as asyncio.subprocess has it


class Child(Protocol):
    """What a session needs of its shell: asyncio.subprocess.Process has it too."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    async def wait(self) -> int: ...


def pidfds_work() -> bool:
    """Whether this kernel hands out pidfds (Linux 5.3 and later, not in every sandbox)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


_PIDFDS = pidfds_work()


async def spawn(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Child:
    """``argv`` in ``cwd`` with ``env`` and piped stdin, stdout and stderr, in a process
    group of its own (so everything it starts can be killed at once, and Ctrl-C in the
    fleet's terminal does not reach it). Raises ``OSError`` if it cannot start."""
    if not _PIDFDS:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            process_group=0,
        )
    loop = asyncio.get_running_loop()
    starting = _starter().submit(_start, list(argv), cwd, dict(env))
    started = asyncio.wrap_future(starting)
    try:
        popen, pidfd = await asyncio.shield(started)
    except asyncio.CancelledError:
        # The session went while its shell was starting. Not begun yet: it never will be.
        # Begun: it completes in its thread, and what it started must not outlive the
        # session, even if the loop is gone by then (the fleet stopping), so the clean-up
        # hangs on the start itself, not on the loop.
        started.add_done_callback(_seen)
        if not starting.cancel():
            starting.add_done_callback(_discard)
        raise
    child = _PidfdChild(popen, pidfd, loop)
    try:
        await child.attach()
    except BaseException:
        child.abandon()
        raise
    return child


@functools.cache  # made by the event loop's thread, at its first start (no race to make it)
def _starter() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_STARTERS, thread_name_prefix="demo-spawn")


def _start(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """In a starter thread: the process, and a pidfd for it (taken before anyone can reap
    it: only its ``Popen`` waits for it, and only once the pidfd says it ended)."""
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        process_group=0,
    )
    try:
        return popen, os.pidfd_open(popen.pid)
    except OSError:
        kill_group(popen)
        _reap(popen)
        raise


def _seen(started: asyncio.Future[Any]) -> None:
    """Nobody awaits a start whose session went: its failure is seen here, not logged."""
    if not started.cancelled():
        started.exception()


def _discard(starting: Future[tuple[subprocess.Popen[bytes], int]]) -> None:
    """A start whose session went: what it started is killed and reaped. Called in the
    starter thread as the start completes, or on the loop's if it already had."""
    if starting.cancelled() or starting.exception() is not None:
        return
    popen, pidfd = starting.result()
    os.close(pidfd)
    _kill_and_reap(popen)


def _kill_and_reap(popen: subprocess.Popen[bytes]) -> None:
    """Kill the process's group now; reap it in a starter thread (reaping waits), or here
    when there is none any more (the interpreter is exiting)."""
    kill_group(popen)
    try:
        _starter().submit(_reap, popen)
    except RuntimeError:
        _reap(popen)


def kill_group(proc: Child | subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _reap(popen: subprocess.Popen[bytes]) -> None:
    popen.wait()
    for pipe in (popen.stdin, popen.stdout, popen.stderr):
        if pipe is not None:
            pipe.close()


class _PidfdChild:
    """A started process whose pipes and exit the event loop watches."""

    def __init__(
        self, popen: subprocess.Popen[bytes], pidfd: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._popen = popen
        self._pidfd: int | None = pidfd  # None once closed
        self._loop = loop
        self._exited: asyncio.Future[int] = loop.create_future()
        self._transports: list[asyncio.BaseTransport] = []
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    async def attach(self) -> None:
        """The loop takes the pipes and watches the pidfd."""
        loop = self._loop
        assert self._pidfd is not None
        loop.add_reader(self._pidfd, self._check_exit)
        popen = self._popen
        assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
        self.stdout = await self._reader(popen.stdout)
        self.stderr = await self._reader(popen.stderr)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop=loop), popen.stdin
        )
        self._transports.append(transport)
        self.stdin = asyncio.StreamWriter(transport, protocol, None, loop)

    async def _reader(self, pipe: object) -> asyncio.StreamReader:
        reader = asyncio.StreamReader(limit=_LIMIT, loop=self._loop)
        transport, _ = await self._loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=self._loop), pipe
        )
        self._transports.append(transport)
        return reader

    def _check_exit(self) -> None:
        # Readable once the process ended; poll() reaps it and sets its returncode.
        code = self._popen.poll()
        if code is None:
            return
        self._close_pidfd()
        if not self._exited.done():
            self._exited.set_result(code)

    def _close_pidfd(self) -> None:
        if self._pidfd is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None

    async def wait(self) -> int:
        """Its exit status (negative: the signal that ended it), once it ended."""
        return await asyncio.shield(self._exited)

    def abandon(self) -> None:
        """Set-up failed after the start: kill it, reap it, let go of everything."""
        self._close_pidfd()
        for transport in self._transports:
            transport.close()
        _kill_and_reap(self._popen)
