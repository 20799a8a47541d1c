"""Bastions: a host's ProxyJump chain, and one shared connection per bastion.

The chain comes from the environment file (a host's ``proxy_jump``, else ``ssh.proxy_jump``)
or else from ``~/.ssh/config``'s ``ProxyJump``; as with OpenSSH, the first bastion is reached
with its own configuration, its own ``ProxyJump`` included. Every host behind a bastion
shares one connection to it, opened once (concurrent hosts wait for the same attempt, and
all of them get its failure) and opened again only after it is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from canarytui.config.model import JumpHop
from canarytui.config.proxyjump import MAX_HOPS, parse_proxy_jump
from canarytui.ssh.errors import SshError, Unreachable
from canarytui.ssh.library import client_type, ssh_errors

if TYPE_CHECKING:
    import asyncssh
    from asyncssh.config import SSHClientConfig

Chain = tuple[JumpHop, ...]
CLOSE_TIMEOUT = 2.0


class ConfigProblem(Exception):
    """``~/.ssh/config`` cannot be used for a host (unparsable, a bad or looping ProxyJump)."""


class JumpFailed(Exception):
    """A bastion could not be reached; ``kind`` is the SshError class to raise per host."""

    def __init__(self, kind: type[SshError], message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def file_stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (None: it is not there)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


_READ: dict[tuple[str, str | None, int | None], tuple[object, SSHClientConfig]] = {}


@functools.cache
def local_user() -> str:
    """This machine's user name as OpenSSH takes it (LOGNAME, USER, ..., else the user
    database): ``%u`` and ``Match localuser`` in ~/.ssh/config, the login when nothing
    names one. Looked up once (a failure is not kept): the user database is a file, which
    cannot be opened once the process's open files run out. Unlike the journal's
    ``local_user``, no stand-in name: a login needs the real one."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no name, and no USER set
        raise ConfigProblem(
            f"cannot tell this machine's user name (uid {os.getuid()} has none, and neither "
            "LOGNAME nor USER is set): set USER"
        ) from None


def ssh_config(host: str, user: str | None = None, port: int | None = None) -> SSHClientConfig:
    """``~/.ssh/config`` as it applies to ``host`` (read as asyncssh reads it to connect);
    read again only when the file changed (a fleet asks for every host, some twice)."""
    path = Path("~", ".ssh", "config").expanduser()
    paths = [path] if os.access(path, os.R_OK) else []
    stamp = (path, file_stamp(str(path))) if paths else None
    known = _READ.get((host, user, port))
    if known is not None and known[0] == stamp:
        return known[1]
    config = _load(path, paths, host, user, port)
    if len(_READ) > 20_000:
        _READ.clear()
    _READ[(host, user, port)] = (stamp, config)
    return config


def _load(
    path: Path, paths: list[Path], host: str, user: str | None, port: int | None
) -> SSHClientConfig:
    from asyncssh.config import SSHClientConfig

    try:
        config = SSHClientConfig.load(
            None,
            paths,
            False,
            False,
            False,
            local_user(),
            user if user else (),
            host,
            port if port else (),
        )
    except (ValueError, OSError) as exc:  # ConfigParseError, IllegalUserName, unreadable
        raise ConfigProblem(f"cannot use {path}: {exc}") from None
    return cast(SSHClientConfig, config)


def config_jumps(host: str, user: str | None = None, port: int | None = None) -> Chain:
    """The hops ``~/.ssh/config``'s ProxyJump gives ``host`` (``()``: none)."""
    value = ssh_config(host, user, port).get("ProxyJump")
    if not value:
        return ()
    try:
        return parse_proxy_jump(str(value))
    except ValueError as exc:
        raise ConfigProblem(f"~/.ssh/config: ProxyJump for {host}: {exc}") from None


def resolve_chain(host: str, user: str | None, port: int | None, explicit: Chain | None) -> Chain:
    """Every bastion on the way to ``host``, the first one reached directly.

    ``explicit`` (from the environment file) replaces the host's ProxyJump from
    ``~/.ssh/config``; either way the first bastion's own ProxyJump is followed.
    """
    hops = explicit if explicit is not None else config_jumps(host, user, port)
    chain = hops
    seen: list[str] = []  # the bastions whose own ProxyJump was followed, in that order
    while chain:
        first = chain[0]
        if first.host in seen:
            path = " -> ".join([*seen, first.host])
            raise ConfigProblem(f"ProxyJump loop: {path}")
        seen.append(first.host)
        before = config_jumps(first.host, first.user, first.port)
        if not before:
            break
        chain = before + chain
        if len(chain) > MAX_HOPS:
            raise ConfigProblem(f"more than {MAX_HOPS} ProxyJump hops to reach {host}")
    return chain


Opener = Callable[
    [Chain, "asyncssh.SSHClientConnection | None", "asyncssh.SSHClient"],
    "Awaitable[asyncssh.SSHClientConnection]",
]


class JumpPool:
    """One connection per bastion (per chain leading to it), shared by the hosts behind it.

    ``opener(chain, via, client)`` connects to the chain's last bastion (through ``via``, the
    connection to the bastion before it, if any) or raises ``JumpFailed``.
    """

    def __init__(self, opener: Opener) -> None:
        self._opener = opener
        self._conns: dict[Chain, tuple[asyncssh.SSHClientConnection, Any]] = {}
        self._pending: dict[Chain, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._generation = 0  # bumped by close(): what was being opened then is not kept
        self.opened = 0  # connections opened to bastions, for tests

    async def through(self, chain: Chain) -> asyncssh.SSHClientConnection:
        """The connection to the last bastion of ``chain``, opening what is missing."""
        conn: asyncssh.SSHClientConnection | None = None
        for depth in range(1, len(chain) + 1):
            conn = await self._get(chain[:depth], conn)
        assert conn is not None
        return conn

    async def _get(
        self, key: Chain, via: asyncssh.SSHClientConnection | None
    ) -> asyncssh.SSHClientConnection:
        known = self._conns.get(key)
        if known is not None and not known[1].closed:
            return known[0]
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._open(key, via))
            self._pending[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        # Shielded: a host that gives up does not cancel the others' wait.
        return await asyncio.shield(task)

    async def _open(
        self, key: Chain, via: asyncssh.SSHClientConnection | None
    ) -> asyncssh.SSHClientConnection:
        generation = self._generation
        client = client_type()()
        conn = await self._opener(key, via, client)
        self.opened += 1
        if generation != self._generation:
            conn.close()
            raise JumpFailed(Unreachable, f"bastion {key[-1]}: closed while connecting")
        self._conns[key] = (conn, conn.get_owner())  # a retried connect has a client of its own
        return conn

    def _done(self, key: Chain, task: asyncio.Task[asyncssh.SSHClientConnection]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter got it already

    async def close(self) -> None:
        """Close every bastion connection, the deepest first (bounded)."""
        self._generation += 1
        for task in list(self._pending.values()):
            task.cancel()
        conns = [c for _, (c, _client) in sorted(self._conns.items(), key=lambda kv: -len(kv[0]))]
        self._conns.clear()
        for conn in conns:
            conn.close()
            with contextlib.suppress(*ssh_errors()):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await conn.wait_closed()
