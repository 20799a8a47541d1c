"""The fleet over SSH: one persistent connection per host, reused for every command.

Version discovery, locks, hooks, steps, health checks, metrics and log streams all go
through the same connection. Concurrency is bounded by ``ssh.max_parallel``; every
connect and every command has a timeout, so a dead or hung host is marked within its
timeout and never holds up the others. A command that times out, or whose caller gives
up on it, is stopped on the host (its whole process group) before that host is used again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence

import asyncssh

from canarytui.config import Environment, Host
from canarytui.ssh.connect import Connector
from canarytui.ssh.errors import CommandLost, CommandResult, CommandTimeout, Unreachable
from canarytui.ssh.remote import LineSplitter, Marker, OutputTail, StepTails, kill_script

OUTPUT_LIMIT = 64 * 1024  # bytes of each stream of a command kept (the tail)
LINE_LIMIT = 8 * 1024  # bytes of one streamed log line kept
STOP_TIMEOUT = 5.0  # to stop a timed-out command on its host
CLOSE_TIMEOUT = 5.0
_CHUNK = 64 * 1024
_CONNECTION_ERRORS = (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError)


class Fleet:
    """The SSH side of an environment: a connection per host, opened on first use."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._hosts = {h.name: h for h in env.hosts}
        self._connector = Connector(env)
        self._connections: dict[str, tuple[asyncssh.SSHClientConnection, _Client]] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(env.ssh.max_parallel)
        self._stopping: dict[str, asyncio.Task[str]] = {}
        self.marker = Marker()
        self.known_hosts = self._connector.known_hosts
        self.connects = 0  # connections opened, for tests and benches

    def host(self, name: str) -> Host:
        return self._hosts[name]

    # Connections ----------------------------------------------------------------

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        host = self._hosts[name]
        lock = self._connecting.setdefault(name, asyncio.Lock())
        async with lock:
            known = self._connections.get(name)
            if known is not None and not known[1].closed:
                return known[0]
            client = _Client()
            conn = await self._connector.connect(host, client)
            self.connects += 1
            self._connections[name] = (conn, client)
            return conn

    def drop(self, name: str) -> None:
        """Forget a host's connection (after a hang or loss); the next use reconnects."""
        known = self._connections.pop(name, None)
        if known is not None:
            known[0].abort()

    async def close(self) -> None:
        """Finish stopping abandoned commands (bounded), then close every connection."""
        stopping = list(self._stopping.values())
        if stopping:
            await asyncio.wait(stopping, timeout=CLOSE_TIMEOUT)
        conns = [conn for conn, _ in self._connections.values()]
        self._connections.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            try:
                await asyncio.wait_for(conn.wait_closed(), 2.0)
            except (TimeoutError, OSError, asyncssh.Error):
                pass
        await self._connector.close()  # the bastions, once nothing goes through them

    # Commands -----------------------------------------------------------------------

    async def run(
        self,
        name: str,
        command: str,
        timeout: float | None = None,
        *,
        limit: int = OUTPUT_LIMIT,
    ) -> CommandResult:
        """Run one command on a host over its connection; keep the last ``limit`` bytes.

        A non-zero exit is a result, not an error. Connecting problems raise
        ``SshError``; a command past its timeout is stopped on the host and raises
        ``CommandTimeout``.
        """
        host = self._hosts[name]
        seconds = timeout if timeout is not None else self.env.ssh.command_timeout
        await self._settle(name)
        async with self._slots:
            conn = await self.connection(name)
            started = time.monotonic()
            job = _Job(self.marker, limit)
            try:
                await asyncio.wait_for(job.run(conn, command), seconds)
            except TimeoutError:
                job.close()
                stopped = await self._stop(name, job.pgid)
                raise CommandTimeout(
                    host, f"command timed out after {seconds:g}s; {stopped}"
                ) from None
            except asyncio.CancelledError:
                job.close()
                self._stop_later(name, job.pgid, job.finished)
                raise
            except _CONNECTION_ERRORS as exc:
                self.drop(name)
                raise CommandLost(host, f"connection lost during a command: {exc}") from None
        return CommandResult(
            exit_status=job.exit_status,
            stdout=job.stdout.text(),
            stderr=job.stderr.text(),
            duration=time.monotonic() - started,
            cut=job.stdout.cut + job.stderr.cut,
        )

    async def run_steps(
        self,
        name: str,
        steps: Sequence[tuple[str, float | None]],
        done: Callable[[int, CommandResult], None],
        *,
        limit: int = OUTPUT_LIMIT,
    ) -> None:
        """Run several (command, timeout) on a host as one script: one round trip.

        ``done(index, result)`` is called as each command ends, in order; the script stops
        after the first that fails. Each command keeps its own timeout, counted from the
        end of the one before: past it, the script's whole process group is stopped on
        the host and ``CommandTimeout`` is raised (the steps before it were reported).
        """
        host = self._hosts[name]
        await self._settle(name)
        async with self._slots:
            conn = await self.connection(name)
            job = _Script(self.marker, limit)
            default = self.env.ssh.command_timeout
            timeouts = [default if t is None else t for _, t in steps]
            try:
                await job.run(conn, [c for c, _ in steps], timeouts, done)
            except TimeoutError:
                job.close()
                seconds = timeouts[len(job.reported)]
                stopped = await self._stop(name, job.pgid)
                raise CommandTimeout(
                    host, f"command timed out after {seconds:g}s; {stopped}"
                ) from None
            except _CONNECTION_ERRORS as exc:
                self.drop(name)
                raise CommandLost(host, f"connection lost during a command: {exc}") from None
            except BaseException:
                # The caller gave up (cancelled), or reporting a step failed: the steps
                # left must not go on on the host.
                job.close()
                self._stop_later(name, job.pgid, job.finished)
                raise

    async def stream(self, name: str, command: str) -> AsyncIterator[str]:
        """Lines a long-running command prints (a log tail); stopped when the caller stops.

        Streams do not take a ``max_parallel`` slot: they last as long as they are watched.
        """
        host = self._hosts[name]
        await self._settle(name)
        conn = await self.connection(name)
        try:
            proc = await conn.create_process(self.marker.wrap(command), encoding=None)
        except _CONNECTION_ERRORS as exc:
            self.drop(name)
            raise Unreachable(host, f"connection lost: {exc}") from None
        lines = LineSplitter(self.marker, LINE_LIMIT)
        drain = asyncio.ensure_future(_discard(proc.stderr))
        ended = False
        try:
            while data := await proc.stdout.read(_CHUNK):
                for line in lines.feed(data):
                    yield line
            for line in lines.finish():
                yield line
            ended = True
        except _CONNECTION_ERRORS as exc:
            raise Unreachable(host, f"log stream lost: {exc}") from None
        finally:
            drain.cancel()
            proc.close()
            self._stop_later(name, lines.pgid, ended)

    # Stopping what was left running -------------------------------------------------

    async def _stop(self, name: str, pgid: int | None) -> str:
        """Kill a command's process group on its host; says what happened."""
        if pgid is None:
            self.drop(name)
            return "its process id never came back, so the connection was dropped"
        known = self._connections.get(name)
        if known is None or known[1].closed:
            return f"the connection was lost before process group {pgid} could be stopped"
        try:
            await asyncio.wait_for(known[0].run(kill_script(pgid), check=False), STOP_TIMEOUT)
        except (TimeoutError, *_CONNECTION_ERRORS, asyncssh.Error):
            self.drop(name)
            return f"the host did not answer the stop of process group {pgid}; connection dropped"
        return f"stopped on the host (process group {pgid} killed)"

    def _stop_later(self, name: str, pgid: int | None, finished: bool) -> None:
        """The caller gave up on a command (cancelled): stop it in the background."""
        if finished or pgid is None or name in self._stopping:
            return
        task = asyncio.ensure_future(self._stop(name, pgid))
        self._stopping[name] = task
        task.add_done_callback(lambda _t: self._stopping.pop(name, None))

    async def _settle(self, name: str) -> None:
        """A host is used again only once what was abandoned there is stopped."""
        pending = self._stopping.get(name)
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)


class _Job:
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
        await asyncio.gather(_pump(proc.stdout, self.stdout), _pump(proc.stderr, self.stderr))
        await proc.wait_closed()
        self.finished = True
        status = proc.exit_status
        # Killed by a signal, or the channel closed without a status: 255, as ssh says.
        self.exit_status = 255 if status is None or status < 0 else status

    def close(self) -> None:
        if self._proc is not None:
            self._proc.close()


class _Script:
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
            self._pump(proc.stdout, self.stdout), self._pump(proc.stderr, self.stderr)
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

    async def _pump(self, reader: asyncssh.SSHReader[bytes], tails: StepTails) -> None:
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


async def _pump(reader: asyncssh.SSHReader[bytes], tail: OutputTail) -> None:
    while data := await reader.read(_CHUNK):
        tail.feed(data)


async def _discard(reader: asyncssh.SSHReader[bytes]) -> None:
    with contextlib.suppress(*_CONNECTION_ERRORS, asyncssh.Error):
        while await reader.read(_CHUNK):
            pass


class _Client(asyncssh.SSHClient):
    """Knows when its connection is gone, so the next command reconnects."""

    def __init__(self) -> None:
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
