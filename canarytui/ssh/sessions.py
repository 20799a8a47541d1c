"""Sessions on hosts whose sshd caps them per connection (``MaxSessions``: OpenSSH's default
is 10, hardened hosts set 1 or 2).

A host being deployed to holds several sessions at once: the deployment's kept shell, a
health probe, a log stream. When the host refuses one more session on a connection that is
still up, the session is opened on a further connection to that host (``SPARES`` at most),
as an ``ssh`` user would open a second one. A refused session is never taken for a lost
connection: that would drop the connection, and the kept shell and streams with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from canarytui.config import Host
from canarytui.ssh.errors import SshError
from canarytui.textsafe import harmless

if TYPE_CHECKING:
    import asyncssh

SPARES = 3  # further connections to one host, beside its own


class SessionRefused(SshError):
    """The host refused a new session on every connection canarytui may open to it."""

    what = "session refused"


def closed(conn: asyncssh.SSHClientConnection) -> bool:
    """The connection is gone (its client saw it lost, or it was closed)."""
    owner = conn.get_owner()
    return bool(getattr(owner, "closed", False)) or conn.is_closed()


class Spares:
    """The further connections of the hosts that refused a session on the ones they had."""

    def __init__(self, connect: Callable[[str], Awaitable[asyncssh.SSHClientConnection]]) -> None:
        self._connect = connect
        self._hosts: dict[str, list[asyncssh.SSHClientConnection]] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    def holds(self, name: str, conn: asyncssh.SSHClientConnection) -> bool:
        return conn in self._hosts.get(name, ())

    async def session(
        self, host: Host, first: asyncssh.SSHClientConnection, text: str
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[bytes]]:
        """A session running ``text`` on ``host``: on ``first`` (its own connection), else
        on a spare. Raises ``ChannelOpenError`` if ``first`` is gone (lost, not refused),
        ``SessionRefused`` once every connection allowed refused it."""
        import asyncssh

        conn, tried, fresh = first, [first], False
        while True:
            try:
                return conn, await conn.create_process(text, encoding=None)
            except asyncssh.ChannelOpenError as exc:
                if closed(conn):
                    raise
                reason = harmless(exc.reason, 200)  # the host's words
            if fresh:  # a connection with no session of ours refused it
                raise SessionRefused(
                    host,
                    f"the host refuses every session ({reason}), even on a new connection: "
                    "its sshd lets this user in but runs no command (MaxSessions 0?)",
                )
            spare, fresh = await self._besides(host.name, tried)
            if spare is None:
                raise SessionRefused(
                    host,
                    f"the host refused a new session ({reason}) on each of {len(tried)} "
                    "connections: its sshd allows fewer sessions than a deployment holds at "
                    "once (MaxSessions; a deployment's shell, a health check, a log stream)",
                )
            conn = spare
            tried.append(spare)

    async def _besides(
        self, name: str, tried: list[asyncssh.SSHClientConnection]
    ) -> tuple[asyncssh.SSHClientConnection | None, bool]:
        """A live spare not yet tried, or a new one (``True``) while there are fewer than
        SPARES; None when there are."""
        async with self._opening.setdefault(name, asyncio.Lock()):
            live = [c for c in self._hosts.get(name, []) if not closed(c)]
            self._hosts[name] = live
            for conn in live:
                if conn not in tried:
                    return conn, False
            if len(live) >= SPARES:
                return None, False
            conn = await self._connect(name)
            # Kept where a close of the host's spares (during the connect) will find it.
            self._hosts.setdefault(name, []).append(conn)
            return conn, True

    def close(self, name: str, abort: bool = False) -> list[asyncssh.SSHClientConnection]:
        """Close a host's spares (``abort``: at once, as after a hang); returns them."""
        conns = self._hosts.pop(name, [])
        for conn in conns:
            if abort:
                conn.abort()
            else:
                conn.close()
        return conns

    def close_all(self) -> list[asyncssh.SSHClientConnection]:
        return [conn for name in list(self._hosts) for conn in self.close(name)]
