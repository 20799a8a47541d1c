"""A command, or several as one marked script, on an open connection: the output kept
(the tails), the remote process group (to stop it), the exit status of each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import asyncssh

from canarytui.ssh.errors import CommandResult
from canarytui.ssh.remote import Marker, OutputTail, StepTails

CONNECTION_ERRORS = (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError)
_CHUNK = 64 * 1024
HELD_WAIT = 6 * 3600.0  # seconds a held command waits for its word at most


def held_command(command: str) -> str:
    """``command``, run only once the word ``go`` comes on the script's input."""
    return f'IFS= read -r word && [ "$word" = go ] && {{ {command}\n}}'


class Held:
    """A script that ran its steps and now waits, on its host, for the word to run its
    last command (its session kept: no new one is opened for it)."""

    def __init__(
        self,
        job: Script,
        task: asyncio.Future[None],
        result: list[CommandResult],
        slots: asyncio.Semaphore,
    ):
        self.job = job
        self.task = task
        self._result = result
        self._slots = slots  # the fleet's max_parallel: running it is work on its host
        self.waiting = True  # until its word is said

    async def finish(self, go: bool, timeout: float) -> bool:
        """Say ``go`` (run it) or stop; True when it ran and exited 0."""
        async with self._slots:
            proc = self.job.proc
            if self.task.done() or proc is None:
                return False
            try:
                self.waiting = False
                proc.stdin.write(b"go\n" if go else b"stop\n")
                await asyncio.wait_for(asyncio.shield(self.task), timeout)
            except (TimeoutError, *CONNECTION_ERRORS, asyncssh.Error):
                self.job.close()
                return False
        return go and bool(self._result) and self._result[0].ok

    def drop(self) -> None:
        """Stop waiting without a word: the host's shell reads the end of its input."""
        self.waiting = False
        self.job.close()


class Job:
    """One command on one host: its two output streams, its process group, its exit."""

    def __init__(self, marker: Marker, limit: int) -> None:
        self.marker = marker
        self.stdout = OutputTail(marker, limit)
        self.stderr = OutputTail(marker, limit)
        self.exit_status = 255
        self.finished = False
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None

    @property
    def pgid(self) -> int | None:
        return self.stdout.pgid

    async def run(self, conn: asyncssh.SSHClientConnection, command: str) -> None:
        proc = await conn.create_process(self.marker.wrap(command), encoding=None)
        self._proc = proc
        await asyncio.gather(pump(proc.stdout, self.stdout), pump(proc.stderr, self.stderr))
        await proc.wait_closed()
        self.finished = True
        status = proc.exit_status
        # Killed by a signal, or the channel closed without a status: 255, as ssh says.
        self.exit_status = 255 if status is None or status < 0 else status

    def close(self) -> None:
        if self._proc is not None:
            self._proc.close()


class Script:
    """Several commands as one script on one host: each one's output, status and time."""

    def __init__(self, marker: Marker, limit: int) -> None:
        self.marker = marker
        self.stdout = StepTails(marker, limit)
        self.stderr = StepTails(marker, limit)
        self.reported: list[int] = []
        self.finished = False
        self._changed = asyncio.Event()
        self._eof = 0  # streams ended (or their pumps stopped)
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None

    @property
    def pgid(self) -> int | None:
        return self.stdout.pgid

    @property
    def proc(self) -> asyncssh.SSHClientProcess[bytes] | None:
        return self._proc

    async def run(
        self,
        conn: asyncssh.SSHClientConnection,
        commands: list[str],
        timeouts: list[float],
        done: Callable[[int, CommandResult], None],
    ) -> None:
        started = time.monotonic()
        proc = await conn.create_process(self.marker.script(commands), encoding=None)
        self._proc = proc
        pumps = asyncio.gather(
            self.pump(proc.stdout, self.stdout), self.pump(proc.stderr, self.stderr)
        )
        try:
            for i, seconds in enumerate(timeouts):
                await asyncio.wait_for(self._step_ended(i), seconds)
                ended = i < len(self.stdout.ended) and i < len(self.stderr.ended)
                if not ended:  # the shell ended within the step: what it left is its output
                    await pumps
                    await proc.wait_closed()
                    self.finished = True
                out, status = self._part(self.stdout, i, proc.exit_status)
                err = self._part(self.stderr, i, None)[0]
                # Killed by a signal, or no status told: 255, as ssh says.
                status = 255 if status is None or status < 0 else status
                now = time.monotonic()
                self.reported.append(i)
                done(
                    i,
                    CommandResult(status, out.text(), err.text(), now - started, out.cut + err.cut),
                )
                started = now
                if status != 0 or not ended:
                    break
            await pumps
            await proc.wait_closed()
            self.finished = True
        finally:
            if not pumps.done():
                pumps.cancel()
            with contextlib.suppress(BaseException):
                await pumps

    @staticmethod
    def _part(tails: StepTails, i: int, status: int | None) -> tuple[OutputTail, int | None]:
        """Step ``i``'s output and status on one stream (after the end, what is left)."""
        if i < len(tails.ended):
            return tails.ended[i]
        return tails.finish(), status

    async def _step_ended(self, i: int) -> None:
        while not ((i < len(self.stdout.ended) and i < len(self.stderr.ended)) or self._eof == 2):
            self._changed.clear()
            await self._changed.wait()

    async def pump(self, reader: asyncssh.SSHReader[bytes], tails: StepTails) -> None:
        try:
            while data := await reader.read(_CHUNK):
                tails.feed(data)
                self._changed.set()
        finally:
            self._eof += 1
            self._changed.set()

    def close(self) -> None:
        if self._proc is not None:
            self._proc.close()


async def pump(reader: asyncssh.SSHReader[bytes], tail: OutputTail) -> None:
    while data := await reader.read(_CHUNK):
        tail.feed(data)


async def discard(reader: asyncssh.SSHReader[bytes]) -> None:
    with contextlib.suppress(*CONNECTION_ERRORS, asyncssh.Error):
        while await reader.read(_CHUNK):
            pass
