"""The SSH library, imported on first use: what the package needs of it before then.

asyncssh (with cryptography: ~130 of an interface's ~680 modules) is imported when the
first connection opens, not when the package is: an interface shows its first screen
before it pays for it. The rest of the package imports it where it connects.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncssh


@functools.cache
def connection_errors() -> tuple[type[BaseException], ...]:
    """What a command's connection being lost raises."""
    import asyncssh

    return (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError)


def lost_how(exc: BaseException) -> str:
    """What a lost connection's error adds after "connection lost": nothing when it says
    only that (asyncssh's "Connection lost"), else ": " and its words."""
    said = str(exc).strip()
    return "" if said.lower().rstrip(".") in ("", "connection lost") else f": {said}"


@functools.cache
def ssh_errors() -> tuple[type[BaseException], ...]:
    """Anything asyncssh or the network raises (timeouts included), and a host that
    refuses every session canarytui may open (``SessionRefused``)."""
    import asyncssh

    from canarytui.ssh.sessions import SessionRefused

    return (OSError, asyncssh.Error, SessionRefused)


@functools.cache
def client_type() -> type[asyncssh.SSHClient]:
    """A connection's client that knows when its connection is gone (``closed``), so the
    next use opens it again (a host's, a bastion's)."""
    import asyncssh

    class Client(asyncssh.SSHClient):
        def __init__(self) -> None:
            self.closed = False

        def connection_lost(self, exc: Exception | None) -> None:
            self.closed = True

    return Client
