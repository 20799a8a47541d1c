"""The fleet over SSH: one persistent connection per host, reused for every command.

Version discovery, locks, hooks, steps, health checks, metrics and log streams all go
through the same connection; one nothing has used for ``IDLE_CLOSE`` seconds is closed (the
next use reopens it), so what an open environment costs follows what is watched, not the
size of the fleet. Concurrency is bounded by ``ssh.max_parallel``; every
connect and every command has a timeout, so a dead or hung host is marked within its
timeout and never holds up the others. A command that times out, or whose caller gives
up on it, is stopped on the host (its whole process group) before that host is used again.
A deployment keeps a shell on each host it locked (``shell``): its scripts go down that one
session instead of opening one each (``run_steps(shell=...)``). A host that caps sessions
per connection gets spare connections (``sessions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Container,
    Iterable,
    Iterator,
    Sequence,
)
from typing import TYPE_CHECKING, Any

from canarytui.config import Environment, Host
from canarytui.openfiles import ensure_open_files, needed
from canarytui.ssh.connect import Connector
from canarytui.ssh.errors import (
    CommandLost,
    CommandResult,
    CommandTimeout,
    ShellRefused,
    Unreachable,
)
from canarytui.ssh.jobs import Job, NoStartMark, Script, discard
from canarytui.ssh.library import client_type, connection_errors, lost_how, ssh_errors
from canarytui.ssh.remote import LineSplitter, Marker, how_stopped, kill_script
from canarytui.ssh.sessions import Spares, closed

if TYPE_CHECKING:
    import asyncssh

OUTPUT_LIMIT = 64 * 1024  # bytes of each stream of a command kept (the tail)
LINE_LIMIT = 8 * 1024  # bytes of one streamed log line kept
STOP_TIMEOUT = 5.0  # to stop a timed-out command on its host
CLOSE_TIMEOUT = 5.0
IDLE_CLOSE = 30.0  # seconds unused before a connection is closed
_SWEEP_EVERY = 5.0
_CHUNK = 64 * 1024


class Fleet:
    """The SSH side of an environment: a connection per host, opened on first use."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._hosts = {h.name: h for h in env.hosts}
        # A deployment holds a connection to each of its hosts at once: room for them all
        # (the soft limit lifted, within the hard one), read by the engine before it starts.
        self.open_files = ensure_open_files(needed(len(env.hosts)))
        self._connector = Connector(env)
        self._connections: dict[str, tuple[asyncssh.SSHClientConnection, Any]] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(env.ssh.max_parallel)
        self._stopping: dict[str, asyncio.Task[str]] = {}
        self.marker = Marker()
        self.connects = 0  # connections opened, for tests and benches
        self._busy: dict[str, int] = {}  # commands and streams in flight, per host
        self._used: dict[str, float] = {}  # when each open connection was last used
        self._swept = time.monotonic()
        # Never closed for idleness: an open deployment's hosts (its later waves' too).
        self.pinned: Container[str] = frozenset()
        self._kept_until: dict[str, float] = {}  # ``keep_open``: not idle before then
        self._dropped: dict[str, str] = {}  # why a host's last connection was dropped
        self._spares = Spares(self._open)  # hosts that cap sessions per connection

    def host(self, name: str) -> Host:
        return self._hosts[name]

    # Connections ----------------------------------------------------------------

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        lock = self._connecting.setdefault(name, asyncio.Lock())
        async with lock:
            known = self._connections.get(name)
            if known is not None and not known[1].closed:
                return known[0]
            conn = await self._open(name)
            self._dropped.pop(name, None)
            self._connections[name] = (conn, conn.get_owner())
            return conn

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def _open(self, name: str) -> asyncssh.SSHClientConnection:
        """A new connection to the host (its own, or a spare)."""
        conn = await self._connector.connect(self._hosts[name], client_type()())
        self.connects += 1
        return conn

    async def _session(
        self, name: str, text: str
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[bytes]]:
        """A session running ``text`` on the host (on a spare when it caps sessions)."""
        conn = await self.connection(name)
        return await self._spares.session(self._hosts[name], conn, text)

    @contextlib.contextmanager
    def _use(self, name: str) -> Iterator[None]:
        """A command or stream on ``name`` is in flight: its connection is not idle."""
        self._sweep()
        self._busy[name] = self._busy.get(name, 0) + 1
        try:
            yield
        finally:
            self._busy[name] -= 1
            if not self._busy[name]:
                del self._busy[name]
            self._used[name] = time.monotonic()

    def keep_open(self, names: Iterable[str], seconds: float) -> None:
        """Keep these hosts' open connections for ``seconds`` even unused (then the idle
        rule applies): a rollback in the minutes after a release needs no handshakes."""
        until = time.monotonic() + seconds
        for name in names:
            if name in self._connections:
                self._kept_until[name] = until

    def _sweep(self) -> None:
        """Close the connections nothing has used for ``IDLE_CLOSE`` seconds."""
        now = time.monotonic()
        if now - self._swept < _SWEEP_EVERY:
            return
        self._swept = now
        idle = [n for n, t in self._used.items() if now - t > IDLE_CLOSE]
        for name in idle:
            if name in self._busy or name in self._stopping or name in self.pinned:
                continue
            if self._kept_until.get(name, 0.0) > now:
                continue
            self._kept_until.pop(name, None)
            del self._used[name]
            known = self._connections.pop(name, None)
            if known is not None:
                known[0].close()
            self._spares.close(name)

    def drop(self, name: str, why: str | None = None) -> None:
        """Forget a host's connection (after a hang or loss); the next use reconnects.
        ``why`` is told to what was still running on it (``_lost``)."""
        known = self._connections.pop(name, None)
        self._spares.close(name, abort=True)
        if known is not None:
            known[0].abort()
            if why is not None:
                self._dropped[name] = why

    async def close(self) -> None:
        """Finish stopping abandoned commands (bounded), then close every connection."""
        stopping = list(self._stopping.values())
        if stopping:
            await asyncio.wait(stopping, timeout=CLOSE_TIMEOUT)
        conns = [conn for conn, _ in self._connections.values()]
        self._connections.clear()
        for conn in conns:
            conn.close()
        conns += self._spares.close_all()
        for conn in conns:
            try:
                async with asyncio.timeout(2.0):
                    await conn.wait_closed()
            except ssh_errors():
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
        shell: Script | None = None,
        keep: bool = True,
    ) -> CommandResult:
        """Run one command on a host over its connection; keep the last ``limit`` bytes.

        A non-zero exit is a result, not an error. Connecting problems raise
        ``SshError``; a command past its timeout is stopped on the host and raises
        ``CommandTimeout``. With ``shell`` (see ``run_steps``) it runs there.
        """
        if shell is not None:
            results: list[CommandResult] = []
            await self.run_steps(
                name, [(command, timeout)], lambda _i, r: results.append(r), shell=shell, keep=keep
            )
            return results[0]
        host = self._hosts[name]
        seconds = timeout if timeout is not None else self.env.ssh.command_timeout
        await self._settle(name)
        with self._use(name), self._lost(host):
            return await self._run(host, name, command, seconds, limit)

    async def _run(
        self, host: Host, name: str, command: str, seconds: float, limit: int
    ) -> CommandResult:
        async with self._slots:
            await self.connection(name)  # within its connect_timeout, not the command's
            started = time.monotonic()
            job = Job(self.marker, limit)
            try:
                async with asyncio.timeout(seconds):
                    await job.run(functools.partial(self._session, name), command)
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
        return CommandResult(
            exit_status=job.exit_status,
            stdout=job.stdout.text(),
            stderr=job.stderr.text(),
            duration=time.monotonic() - started,
            cut=job.stdout.cut + job.stderr.cut,
        )

    def shell(self) -> Script:
        """A host's kept shell for ``run_steps(shell=...)``: opened on its first use."""
        return Script(self.marker, OUTPUT_LIMIT)

    async def run_steps(
        self,
        name: str,
        steps: Sequence[tuple[str, float | None]],
        done: Callable[[int, CommandResult], None],
        *,
        limit: int = OUTPUT_LIMIT,
        shell: Script | None = None,
        keep: bool = True,
        started: Callable[[], None] | None = None,
        settled: Callable[[], None] | None = None,
        each: bool = False,
    ) -> None:
        """Run several (command, timeout) on a host as one script: one round trip.

        ``done(index, result)`` is called as each command ends, in order; the script stops
        after the first that fails (with ``each``: not, see ``Script``). ``settled()`` follows
        each run of ``done`` calls (those that ended in one read). Each command keeps
        its own timeout, counted from the end of the one before: past it, the script's whole
        process group is stopped on the host and ``CommandTimeout`` is raised (the steps
        before it were reported).
        With ``shell`` (``Fleet.shell``), the script goes down that kept shell while it
        lives (no new session) and the shell stays for the next ones (unless not
        ``keep``); one that ended is opened again with these commands. ``started()`` is
        called once the host has its ``max_parallel`` slot, before anything is sent.
        """
        host = self._hosts[name]
        await self._settle(name)
        default = self.env.ssh.command_timeout
        commands = [c for c, _ in steps]
        timeouts = [default if t is None else t for _, t in steps]
        job = shell if shell is not None else Script(self.marker, limit, each)
        keep = keep and shell is not None
        with self._use(name), self._lost(host):
            async with job.turn:
                async with self._slots:
                    if started is not None:
                        started()
                    try:
                        if self._kept(name, job):
                            job.send(commands, keep)
                        else:
                            await job.open(functools.partial(self._session, name), commands, keep)
                        await job.steps(timeouts, done, settled)
                    except TimeoutError:
                        job.close()
                        seconds = timeouts[len(job.reported)]
                        stopped = await self._stop(name, job.pgid)
                        raise CommandTimeout(
                            host, f"command timed out after {seconds:g}s; {stopped}"
                        ) from None
                    except connection_errors():
                        raise
                    except BaseException:
                        # The caller gave up (cancelled), or reporting a step failed: the
                        # steps left must not go on on the host.
                        job.close()
                        self._stop_later(name, job.pgid, job.finished)
                        raise
                if not keep:  # the session's end is no work on the host: no slot
                    try:
                        await job.end()
                    except BaseException:
                        job.close()
                        raise

    @contextlib.contextmanager
    def _lost(self, host: Host) -> Iterator[None]:
        """A connection lost during a command: the next use reconnects. A login shell that
        ran none of it (``NoStartMark``): the host refuses canarytui's commands."""
        try:
            yield
        except NoStartMark as exc:
            raise ShellRefused(host, str(exc)) from None
        except connection_errors() as exc:
            why = self._dropped.get(host.name)
            self.drop(host.name)
            said = "connection lost during a command" + lost_how(exc)
            raise CommandLost(host, said + (f" (dropped: {why})" if why else "")) from None

    def _kept(self, name: str, job: Script) -> bool:
        """``job``'s shell is there, on the host's connection as it is now."""
        known, conn = self._connections.get(name), job.conn
        if not job.alive or known is None or conn is None or closed(conn):
            return False
        return known[0] is conn or self._spares.holds(name, conn)

    async def stream(self, name: str, command: str) -> AsyncIterator[str]:
        """Lines a long-running command prints (a log tail); stopped when the caller stops.

        Streams do not take a ``max_parallel`` slot: they last as long as they are watched.
        """
        host = self._hosts[name]
        await self._settle(name)
        with self._use(name):
            async with contextlib.aclosing(self._stream(host, name, command)) as lines:
                async for line in lines:
                    yield line

    async def _stream(self, host: Host, name: str, command: str) -> AsyncGenerator[str]:
        try:
            _conn, proc = await self._session(name, self.marker.wrap(command))
        except connection_errors() as exc:
            self.drop(name)
            raise Unreachable(host, "connection lost" + lost_how(exc)) from None
        lines = LineSplitter(self.marker, LINE_LIMIT)
        drain = asyncio.ensure_future(discard(proc.stderr))
        ended = False
        try:
            while data := await proc.stdout.read(_CHUNK):
                for line in lines.feed(data):
                    yield line
            for line in lines.finish():
                yield line
            ended = True
        except connection_errors() as exc:
            raise Unreachable(host, "log stream lost" + lost_how(exc)) from None
        finally:
            drain.cancel()
            proc.close()
            self._stop_later(name, lines.pgid, ended)

    # Stopping what was left running -------------------------------------------------

    async def _stop(self, name: str, pgid: int | None) -> str:
        """Kill a command's process group on its host; says what happened."""
        if pgid is None:
            self.drop(name, "the host stopped answering: a command timed out, not stoppable")
            return "its process id never came back, so the connection was dropped"
        known = self._connections.get(name)
        if known is None or known[1].closed:
            return f"the connection was lost before process group {pgid} could be stopped"
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                done = await (await self._session(name, kill_script(pgid)))[1].wait()
        except ssh_errors():
            self.drop(name, "it did not answer the stop of a command that timed out")
            return f"the host did not answer the stop of process group {pgid}; connection dropped"
        return f"stopped on the host (process group {pgid} {how_stopped(done.stdout)})"

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
