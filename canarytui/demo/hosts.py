"""One demo host: its state, its SSH listener, the faults it can be in, and its app loop.

The fleet builds the hosts and decides their faults; a host knows how to listen (on a port
of the OS's choice first, then the same one again), go silent, drop its connections and
tick its simulated app. What a command does once a session is open is ``commands``'s job.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from canarytui.demo.app import SimulatedApp
from canarytui.demo.service import Service
from canarytui.demo.spawn import Child

log = logging.getLogger(__name__)

FLAKY_DROP = 0.3  # share of connections and commands a flaky host drops
# Seconds after a session started, or last showed life (printed, or was sent input), that
# a host's app goes on living second by second; past them it sleeps, and its traffic waits
# for the next session, which is served the time since in one go. A log tail prints what
# the app logs each second, so it keeps its host's app living; a deployment's kept shell,
# open for minutes and sent a script now and then, wakes no app.
WATCHED_FOR = 3.0
SLOW_DELAY = 2.0  # seconds every command waits on a slow host
# Cheapest algorithms asyncssh offers, since every handshake and packet costs the one
# process that runs the whole fleet: AES-GCM is one AEAD call per packet where
# chacha20-poly1305 is four (measured: ~15% of the fleet's CPU in a fan-out), and plain
# curve25519 skips the post-quantum ML-KEM share. The server's list decides, since the
# client's preference only orders what both support. OpenSSH clients accept all of these.
_KEX_ALGS = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256"]
_ENCRYPTION_ALGS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"]

# Runs one SSH session on a host: ``run(host, process)``.
CommandRunner = Callable[["DemoHost", asyncssh.SSHServerProcess[bytes]], Awaitable[None]]


@dataclass(eq=False)
class DemoHost:
    """One demo host: its server, sandbox, app, fault state and what runs on it."""

    name: str
    roles: tuple[str, ...]
    zone: str
    sandbox: Path
    key: asyncssh.SSHKey
    app: SimulatedApp
    rng: random.Random
    port: int = 0
    fault: str = "up"
    listener: asyncssh.SSHAcceptor | None = None
    # While hung, a plain TCP listener holds the port: it accepts and never says a word.
    hang_server: asyncio.AbstractServer | None = None
    hang_transports: set[asyncio.BaseTransport] = field(default_factory=set)
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    processes: set[Child] = field(default_factory=set)
    # Set unless the host is hung; commands wait on it before they start.
    answering: asyncio.Event = field(default_factory=asyncio.Event)
    app_task: asyncio.Task[None] | None = None
    commands: int = 0  # SSH sessions (commands) it has received: tests count them
    # When a session last showed life (the loop clock): it started, got input, printed.
    last_seen: float = float("-inf")
    # Set when a session starts: wakes an app that nobody watched (it waits on it, idle).
    looked_at: asyncio.Event = field(default_factory=asyncio.Event)
    connects: int = 0  # SSH connections it has accepted: benches count reconnections

    async def listen(
        self, authorized: asyncssh.SSHAuthorizedKeys | None, run: CommandRunner
    ) -> None:
        """Start the SSH server: on a port of the OS's choice first, then the same one."""
        listener = await bind_retrying(
            lambda: asyncssh.create_server(
                functools.partial(HostServer, self),
                "127.0.0.1",
                self.port,
                server_host_keys=[self.key],
                authorized_client_keys=authorized,
                process_factory=functools.partial(run, self),
                encoding=None,
                line_editor=False,
                allow_scp=False,
                agent_forwarding=False,
                x11_forwarding=False,
                kex_algs=_KEX_ALGS,
                encryption_algs=_ENCRYPTION_ALGS,
                # No GSS (Kerberos) login: left on, every connection's options are made
                # in a thread that looks this machine's name up (socket.getfqdn).
                gss_host=None,
            )
        )
        self.listener = listener
        self.port = listener.get_port()

    async def go_silent(self) -> None:
        """Same port, different listener: the TCP handshake completes, SSH never does."""
        self.close_listeners()
        self.hang_server = await bind_retrying(
            lambda: asyncio.get_running_loop().create_server(
                lambda: Silent(self), "127.0.0.1", self.port
            )
        )

    def close_listeners(self) -> None:
        # Closing a listener frees the port at once; accepted connections are separate.
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.hang_server is not None:
            self.hang_server.close()
            self.hang_server = None
        for transport in list(self.hang_transports):
            transport.abort()  # type: ignore[attr-defined]
        self.hang_transports.clear()

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()

    def looked(self) -> None:
        """A session started: the app lives for ``WATCHED_FOR`` from now, woken if asleep."""
        self.seen()
        self.looked_at.set()

    def seen(self) -> None:
        """A session showed life (printed, or was sent input): a living app lives on for
        ``WATCHED_FOR`` from now; one asleep stays so (a kept shell that talks with the
        deployment reads nothing of the app's) until a session starts."""
        self.last_seen = asyncio.get_running_loop().time()

    def watched(self, now: float) -> bool:
        """Someone may be looking: a session started or showed life within ``WATCHED_FOR``."""
        return now - self.last_seen < WATCHED_FOR

    async def run_app(self, tick: float, first_delay: float) -> None:
        """Tick the simulated app every ``tick`` seconds while it is ``watched``, until
        cancelled; restart it when asked on its control FIFO meanwhile. An app nobody
        watches does no work: the next command's ``sync`` serves the time since in one go,
        so an idle fleet of 500 costs next to nothing, and its readers see the same counters."""
        service = Service(self.sandbox, self.app.poke)
        try:
            service.start()
        except OSError as exc:  # the sandbox is the user's to break; keep going
            log.warning("demo app on %s: no restarts on request: %s", self.name, exc)
        try:
            # Staggered starts spread 500 apps' file writes over the tick, not a burst.
            await asyncio.sleep(first_delay)
            loop = asyncio.get_running_loop()
            last = loop.time()
            while True:
                await asyncio.sleep(tick)
                now = loop.time()
                if not self.watched(now):
                    # Idle until a session starts; ``last`` stays: the tick after serves
                    # what that command's sync did not.
                    self.looked_at.clear()
                    await self.looked_at.wait()
                    continue
                try:
                    self.app.tick(now - last)
                except OSError as exc:  # the sandbox is the user's to break; keep going
                    log.warning("demo app on %s: %s", self.name, exc)
                last = now
        finally:
            service.close()


class HostServer(asyncssh.SSHServer):
    """Per-connection callbacks: keeps track of connections so faults can drop them."""

    def __init__(self, host: DemoHost) -> None:
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._host.connections.add(conn)
        self._host.connects += 1
        if self._host.fault == "flaky" and self._host.rng.random() < FLAKY_DROP:
            # Dropped mid-handshake, as a lossy network would; aborting from inside this
            # callback would tear the connection down before asyncssh has set it up.
            asyncio.get_running_loop().call_soon(conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._host.connections.discard(self._conn)


class Silent(asyncio.Protocol):
    """A hung host's listener: takes the connection, never answers, never reads."""

    def __init__(self, host: DemoHost) -> None:
        self._host = host
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._host.hang_transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._host.hang_transports.discard(self._transport)


async def bind_retrying(bind: Callable[[], Awaitable[Any]], attempts: int = 20) -> Any:
    """Bind, retrying briefly: right after a close the port may still be settling."""
    for attempt in range(attempts):
        try:
            return await bind()
        except OSError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")
