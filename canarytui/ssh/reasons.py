"""Why a connection failed, in words: the system's, the resolver's, a bastion's (RFC
4254's reason codes), this machine's limit on open files."""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING

from canarytui.openfiles import limits
from canarytui.textsafe import harmless

if TYPE_CHECKING:
    import asyncssh

# Why a bastion did not open the forwarded connection (RFC 4254's reason codes, 5.1:
# SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, _CONNECT_FAILED, _RESOURCE_SHORTAGE).
OPEN_FAILURES = {
    1: "it refuses to forward connections",
    2: "it could not connect to the host",
    4: "it is out of resources",
}


def channel_refusal(exc: asyncssh.ChannelOpenError) -> str:
    why = OPEN_FAILURES.get(exc.code, "it would not forward the connection")
    return f"{why} ({harmless(exc.reason, 200)})" if exc.reason else why


# The resolver's "no such name" (EAI_NODATA: the name, but no address: glibc only).
NAME_UNKNOWN = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def os_reason(exc: OSError) -> str:
    """The system's words for a failed connection ("connection refused"): asyncio's own
    ("Connect call failed ('10.0.0.5', 22)") repeat the address the message already names,
    so hosts refused alike read alike (``check`` says such a reason once). A name the
    resolver could not turn into an address has its own codes, not the system's errors
    (``os.strerror`` of them is "unknown error -2")."""
    if isinstance(exc, socket.gaierror):
        said = harmless(exc.strerror or "", 200).lower() or f"code {exc.errno}"
        if exc.errno in NAME_UNKNOWN:
            return f"no such name ({said}): is the address right?"
        if exc.errno == socket.EAI_AGAIN:
            return f"the name could not be looked up now ({said}): is DNS reachable?"
        return f"the name could not be looked up ({said})"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return harmless(exc.strerror or str(exc)) or type(exc).__name__


def out_of_files(exc: OSError) -> str:
    soft = limits()[0]
    whose = "this machine's" if exc.errno == errno.ENFILE else f"this process's ({soft:,})"
    return (
        f"cannot open a connection: {whose} limit on open files is reached "
        "(ulimit -n): the host was not tried"
    )
