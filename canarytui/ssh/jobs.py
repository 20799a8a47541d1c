"""A command, or several as one marked script, on an open connection: the output kept
(the tails), the remote process group (to stop it), the exit status of each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from canarytui.ssh.errors import CommandResult
from canarytui.ssh.library import ssh_errors
from canarytui.ssh.remote import Marker, OutputTail, StepTails

if TYPE_CHECKING:
    import asyncssh

    # Opens a session running a command on the host: (its connection, its process).
    Opener = Callable[
        [str],
        Awaitable[tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[bytes]]],
    ]


_CHUNK = 64 * 1024
END_GRACE = 2.0  # seconds a finished script's session may take to end before it is let go
SAID_LIMIT = 300  # characters of what a shell printed that are shown when it ran nothing


class NoStartMark(Exception):
    """A command's session ended without the mark its first line prints on each stream:
    the host's login shell did not run it as a POSIX shell would (fish, csh), or something
    else ran instead (a forced command). Nothing the session printed is a reply."""

    def __init__(self, streams: list[str], printed: str) -> None:
        said = printed.strip()[:SAID_LIMIT]
        super().__init__(
            f"its login shell did not run canarytui's command (no start mark on its "
            f"{' or '.join(streams)}): canarytui sends POSIX shell commands, so the SSH "
            "user's login shell must be sh, bash, dash, ksh or zsh (not fish or csh), "
            "and no ForceCommand may run instead" + (f"; it printed: {said!r}" if said else "")
        )


def _unmarked(stdout: OutputTail | StepTails, stderr: OutputTail | StepTails) -> list[str]:
    """The streams whose start mark never came."""
    return [name for name, t in (("stdout", stdout), ("stderr", stderr)) if not t.prelude.found]


def _printed(*parts: tuple[OutputTail | StepTails, str]) -> str:
    """What the streams printed, with what came before a mark (a shell that could not run
    the command may print the command's first line, mark and all, in its complaint)."""
    return "".join(t.prelude.before.decode("utf-8", "replace") + text for t, text in parts)


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

    async def run(self, open_session: Opener, command: str) -> None:
        _conn, proc = await open_session(self.marker.wrap(command))
        self._proc = proc
        await asyncio.gather(pump(proc.stdout, self.stdout), pump(proc.stderr, self.stderr))
        await proc.wait_closed()
        self.finished = True
        status = proc.exit_status
        # Killed by a signal, or the channel closed without a status: 255, as ssh says.
        self.exit_status = 255 if status is None or status < 0 else status
        unmarked = _unmarked(self.stdout, self.stderr)
        if unmarked and status is not None:  # it ended on its own, not ours
            said = _printed((self.stderr, self.stderr.text()), (self.stdout, self.stdout.text()))
            raise NoStartMark(unmarked, said)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.close()


class Script:
    """Commands as one marked script on one host: each one's output, status and time.

    A script asked to ``keep`` its session stays on the host once its commands ended,
    its shell waiting on its input: the next commands are sent down it (``send``), no new
    session. One whose shell ended (closed, lost, stopped) is ``open``ed again.
    With ``each``, every command runs whatever the one before did (a probe: the health
    check, then the metrics), each timed as its end is read here, not on the host's clock
    (which counts in hundredths of a second).
    """

    def __init__(self, marker: Marker, limit: int, each: bool = False) -> None:
        self.marker = marker
        self.limit = limit
        self.each = each
        self.reported: list[int] = []  # steps of the commands in flight that ended
        self.working = False  # commands in flight (a kept shell is otherwise waiting)
        # Commands were sent to the host (or were being sent), even if cut off since: they
        # may have run there, whatever the caller saw of them.
        self.sent = False
        self.opened = 0  # sessions opened for it: what an earlier one's shell defined is gone
        self.turn = asyncio.Lock()  # one set of commands at a time
        self.conn: asyncssh.SSHClientConnection | None = None  # the session's, once open
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None
        self._pumps: asyncio.Future[Any] | None = None
        self._reset()

    def _reset(self) -> None:
        self.stdout = StepTails(self.marker, self.limit)
        self.stderr = StepTails(self.marker, self.limit)
        self.finished = False
        self._changed = asyncio.Event()
        self._eof = 0  # streams ended (or their pumps stopped)

    @property
    def pgid(self) -> int | None:
        return self.stdout.pgid

    @property
    def alive(self) -> bool:
        """Its shell is there (a kept one, between its commands, waits for more)."""
        return self._proc is not None and not self.finished and self._eof == 0

    @property
    def waiting(self) -> bool:
        """A shell with nothing in flight (waiting for more, or ending): its host is not
        worked on."""
        return self._proc is not None and not self.finished and not self.working

    async def open(self, open_session: Opener, commands: list[str], keep: bool) -> None:
        """A new session running ``commands`` (then waiting for more, with ``keep``)."""
        self.close()
        self._reset()
        self.working = True
        text = (
            self.marker.keep(commands) if keep else self.marker.script(commands, stop=not self.each)
        )
        self.sent = True
        self.opened += 1
        self.conn, proc = await open_session(text)
        self._proc = proc
        self._pumps = asyncio.gather(
            self.pump(proc.stdout, self.stdout), self.pump(proc.stderr, self.stderr)
        )
        self._pumps.add_done_callback(_retrieved)

    def send(self, commands: list[str], keep: bool) -> None:
        """Run ``commands`` in the kept shell (``alive``); without ``keep`` it ends after."""
        assert self._proc is not None
        self.working = self.sent = True
        self._proc.stdin.write(self.marker.more(commands, end=not keep))

    async def steps(
        self,
        timeouts: list[float],
        done: Callable[[int, CommandResult], None],
        settled: Callable[[], None] | None = None,
    ) -> None:
        """Report each command as it ends (``done``), stopping at the first that fails
        (unless ``each``).
        ``settled()`` follows each run of ``done`` calls, before the wait for the next
        command or the return: the commands that ended in one read of the host's output
        are told together, so their caller can record them at once."""
        started = time.monotonic()
        self.reported = []
        told = 0  # commands reported and not yet settled

        def settle() -> None:
            nonlocal told
            if told and settled is not None:
                told = 0
                settled()

        try:
            for i, seconds in enumerate(timeouts):
                if not self._has_ended(i):
                    settle()
                async with asyncio.timeout(seconds):
                    await self._step_ended(i)
                ended = self._marked(i)
                if not ended:  # the shell ended within the step: what it left is its output
                    settle()
                    await self._ended()
                proc = self._proc
                assert proc is not None
                if not ended and proc.exit_status is None and proc.exit_signal is None:
                    # Not ended by its shell (that says how): its connection was cut.
                    raise ConnectionResetError("its session was cut, no exit status came")
                unmarked = _unmarked(self.stdout, self.stderr)
                if not ended and unmarked and proc.exit_status is not None:
                    said = _printed(
                        (self.stderr, self.stderr.finish().text()),
                        (self.stdout, self.stdout.finish().text()),
                    )
                    raise NoStartMark(unmarked, said)
                out, status, took = self._part(self.stdout, i, proc.exit_status)
                err = self._part(self.stderr, i, None)[0]
                # Killed by a signal, or no status told: 255, as ssh says.
                status = 255 if status is None or status < 0 else status
                now = time.monotonic()
                self.reported.append(i)
                # The host's clock if its end mark told it, else as read here.
                seconds = now - started if took is None or self.each else took
                told += 1
                done(
                    i,
                    CommandResult(status, out.text(), err.text(), seconds, out.cut + err.cut),
                )
                started = now
                if (status != 0 and not self.each) or not ended:
                    break
            settle()
            # Every mark of these commands came: the next ones count from 0 again.
            self.stdout.ended.clear()
            self.stderr.ended.clear()
        finally:
            self.working = False

    async def end(self) -> None:
        """The end of a session whose last commands were reported (``steps``): within
        ``END_GRACE``; past it, what still holds the session's output (a process a step
        left in the background) is let go, not waited for, nor stopped."""
        if self._proc is not None and not self.finished:
            await self._ended(END_GRACE)

    async def _ended(self, grace: float | None = None) -> None:
        assert self._proc is not None and self._pumps is not None
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._pumps)
            async with asyncio.timeout(grace):
                await self._proc.wait_closed()
        except TimeoutError:
            self.close()
        self.finished = True

    @staticmethod
    def _part(
        tails: StepTails, i: int, status: int | None
    ) -> tuple[OutputTail, int | None, float | None]:
        """Step ``i``'s output, status and time on the host's clock on one stream (after
        the end, what is left, and no time told)."""
        if i < len(tails.ended):
            return tails.ended[i]
        return tails.finish(), status, None

    def _marked(self, i: int) -> bool:
        """Command ``i``'s end marks came on both streams."""
        return i < len(self.stdout.ended) and i < len(self.stderr.ended)

    def _has_ended(self, i: int) -> bool:
        """Command ``i`` ended: its marks came, or the shell itself ended."""
        return self._marked(i) or self._eof == 2

    async def _step_ended(self, i: int) -> None:
        while not self._has_ended(i):
            self._changed.clear()
            await self._changed.wait()

    async def pump(self, reader: asyncssh.SSHReader[bytes], tails: StepTails) -> None:
        try:
            while data := await reader.read(_CHUNK):
                tails.feed(data)
                self._changed.set()
        finally:
            # A session's pumps end after the next one opened (cancelled by ``open``):
            # only the current session's streams count.
            if tails is self.stdout or tails is self.stderr:
                self._eof += 1
                self._changed.set()

    def close(self) -> None:
        """End the session now (a kept shell reads the end of its input and ends)."""
        if self._proc is not None:
            self._proc.close()
        if self._pumps is not None and not self._pumps.done():
            self._pumps.cancel()
        self.working = False


def _retrieved(pumps: asyncio.Future[Any]) -> None:
    """A session's streams ended: an error there is the caller's to raise (or nobody's)."""
    if not pumps.cancelled():
        pumps.exception()


async def pump(reader: asyncssh.SSHReader[bytes], tail: OutputTail) -> None:
    while data := await reader.read(_CHUNK):
        tail.feed(data)


async def discard(reader: asyncssh.SSHReader[bytes]) -> None:
    with contextlib.suppress(*ssh_errors()):
        while await reader.read(_CHUNK):
            pass
