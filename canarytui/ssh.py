"""SSH: one persistent asyncssh connection per host, reused for every command.

Version discovery, locks, hooks, steps, health checks, metrics and log streams all go
through the same connection. Host keys are always verified against ``known_hosts``;
there is no switch to turn that off. Concurrency is bounded by ``ssh.max_parallel``,
and every connect and every command has a timeout, so a dead or hung host is marked
within its timeout and never holds up the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncssh

from canarytui.config import Environment, Host

OUTPUT_LIMIT = 16_000  # characters of a command's output kept (the tail)
KEEPALIVE_INTERVAL = 15.0
# asyncssh's own ciphers, AES-GCM first: it runs in hardware, where asyncssh's
# chacha20-poly1305 costs controller CPU on every packet (a fleet fan-out feels it).
CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]


class SshError(Exception):
    """A host could not be used; the message names the host."""

    def __init__(self, host: Host, message: str) -> None:
        super().__init__(f"{host.name} ({host.endpoint}): {message}")
        self.host = host


class Unreachable(SshError):
    """The host refused, timed out or dropped the connection."""


class HostKeyRefused(SshError):
    """The host's key is unknown or changed: the connection is refused, never accepted."""


class AuthRefused(SshError):
    """The host refused every key offered."""


class CommandLost(Unreachable):
    """The connection went away while a command ran: it may have had an effect."""


class CommandTimeout(SshError):
    """A command did not finish within its timeout; the connection is dropped."""


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def output(self) -> str:
        """stdout then stderr, the tail kept."""
        text = self.stdout
        if self.stderr:
            text = f"{text}{'' if not text or text.endswith(chr(10)) else chr(10)}{self.stderr}"
        return text[-OUTPUT_LIMIT:]


class Fleet:
    """The SSH side of an environment: a connection per host, opened on first use."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._hosts = {h.name: h for h in env.hosts}
        self._connections: dict[str, tuple[asyncssh.SSHClientConnection, _Client]] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(env.ssh.max_parallel)
        self.known_hosts = env.resolve_path(env.ssh.known_hosts)
        # Parsed once for the fleet: asyncssh would re-read the file on every connect,
        # which grows with fleet size squared.
        self._known_hosts: asyncssh.SSHKnownHosts | None = None
        self.identity_files = [str(env.resolve_path(p)) for p in env.ssh.identity_files]
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
            conn = await self._connect(host, client)
            self._connections[name] = (conn, client)
            return conn

    async def _connect(self, host: Host, client: _Client) -> asyncssh.SSHClientConnection:
        options: dict[str, object] = {
            "known_hosts": self._trusted_keys(host),
            "encryption_algs": CIPHERS,
            "connect_timeout": self.env.ssh.connect_timeout,
            "login_timeout": self.env.ssh.connect_timeout,
            "keepalive_interval": KEEPALIVE_INTERVAL,
            "keepalive_count_max": 3,
            "client_factory": lambda: client,
        }
        # What the file leaves out, ~/.ssh/config (then the defaults) decides.
        if host.port:
            options["port"] = host.port
        if host.user:
            options["username"] = host.user
        if self.identity_files:
            options["client_keys"] = self.identity_files
        timeout = self.env.ssh.connect_timeout
        try:
            # asyncssh bounds the handshake itself; the outer wait is a backstop.
            conn = await asyncio.wait_for(
                asyncssh.connect(host.address, **options),
                timeout + 1.0,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyRefused(
                host,
                f"host key not verifiable against {self.known_hosts}: the host is unknown "
                f"or its key changed ({exc.reason}). Check the key out of band and update "
                "known_hosts; canarytui never accepts an unverified key.",
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise AuthRefused(
                host, f"login refused for user {host.user or '(default)'}: {exc.reason}"
            ) from None
        except (TimeoutError, asyncssh.misc.ConnectionLost) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else "connection lost"
            raise Unreachable(host, f"unreachable: {reason} after {timeout:g}s") from None
        except asyncssh.DisconnectError as exc:
            raise Unreachable(host, f"unreachable: {exc.reason}") from None
        except OSError as exc:
            raise Unreachable(host, f"unreachable: {exc.strerror or exc}") from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise AuthRefused(host, f"cannot use identity file: {exc}") from None
        self.connects += 1
        return conn

    def _trusted_keys(self, host: Host) -> asyncssh.SSHKnownHosts:
        if self._known_hosts is None:
            if not self.known_hosts.is_file():
                raise HostKeyRefused(
                    host,
                    f"host key cannot be verified: known_hosts file {self.known_hosts} not "
                    "found (host keys are always checked)",
                )
            try:
                self._known_hosts = asyncssh.read_known_hosts(str(self.known_hosts))
            except (OSError, ValueError) as exc:
                raise HostKeyRefused(
                    host, f"host key cannot be verified: {self.known_hosts} unreadable: {exc}"
                ) from None
        return self._known_hosts

    def drop(self, name: str) -> None:
        """Forget a host's connection (after a hang or loss); the next use reconnects."""
        known = self._connections.pop(name, None)
        if known is not None:
            known[0].abort()

    async def close(self) -> None:
        conns = [conn for conn, _ in self._connections.values()]
        self._connections.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            try:
                await asyncio.wait_for(conn.wait_closed(), 2.0)
            except (TimeoutError, OSError, asyncssh.Error):
                pass

    # Commands -----------------------------------------------------------------------

    async def run(self, name: str, command: str, timeout: float | None = None) -> CommandResult:
        """Run one command on a host over its connection.

        A non-zero exit is a result, not an error. Connecting problems raise
        ``SshError``; a command past its timeout raises ``CommandTimeout`` and the
        connection is dropped (a hung host must not keep a slot).
        """
        host = self._hosts[name]
        limit = timeout if timeout is not None else self.env.ssh.command_timeout
        async with self._slots:
            conn = await self.connection(name)
            started = time.monotonic()
            try:
                proc = await asyncio.wait_for(
                    conn.run(command, check=False, encoding="utf-8", errors="replace"), limit
                )
            except TimeoutError:
                self.drop(name)
                raise CommandTimeout(host, f"command timed out after {limit:g}s") from None
            except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError) as exc:
                self.drop(name)
                raise CommandLost(host, f"connection lost during a command: {exc}") from None
        status = proc.exit_status
        if status is None or status < 0:
            # Killed by a signal, or the channel closed without a status.
            status = 255
        return CommandResult(
            exit_status=status,
            stdout=_text(proc.stdout),
            stderr=_text(proc.stderr),
            duration=time.monotonic() - started,
        )

    async def stream(self, name: str, command: str) -> AsyncIterator[str]:
        """Lines a long-running command prints (a log tail); closed when the caller stops.

        Streams do not take a ``max_parallel`` slot: they last as long as they are watched.
        """
        host = self._hosts[name]
        conn = await self.connection(name)
        try:
            proc = await conn.create_process(command, encoding="utf-8", errors="replace")
        except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError) as exc:
            self.drop(name)
            raise Unreachable(host, f"connection lost: {exc}") from None
        try:
            async for line in proc.stdout:
                yield line.rstrip("\n")
        except (asyncssh.DisconnectError, OSError) as exc:
            raise Unreachable(host, f"log stream lost: {exc}") from None
        finally:
            proc.close()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value)[-OUTPUT_LIMIT:]


class _Client(asyncssh.SSHClient):
    """Knows when its connection is gone, so the next command reconnects."""

    def __init__(self) -> None:
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
