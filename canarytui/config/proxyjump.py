"""``proxy_jump`` values: ``[user@]host[:port]``, comma-separated for more hops, or ``none``.

The same syntax as OpenSSH's ``ProxyJump`` and ``ssh -J`` (without ``ssh://`` URIs), read
from the environment file (``ssh.proxy_jump`` and per host) and from ``~/.ssh/config``.
"""

from __future__ import annotations

import re

from yaml.nodes import Node

from canarytui.config.limits import shown
from canarytui.config.model import JumpHop
from canarytui.config.reader import NodeReader

MAX_HOPS = 8
_USER = r"[A-Za-z0-9_][A-Za-z0-9._@$-]{0,63}"
_NAME = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,252}"
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
_HOP = re.compile(rf"(?:(?P<user>{_USER})@)?(?P<host>{_NAME}|{_IPV6})(?::(?P<port>[0-9]{{1,5}}))?")
SYNTAX = "[user@]host[:port], comma-separated for more hops (or none)"


def parse_proxy_jump(text: str) -> tuple[JumpHop, ...]:
    """The hops of a ``proxy_jump`` value, in order; ``none``: (). Raises ValueError."""
    if text.strip().lower() == "none":
        return ()
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > MAX_HOPS:
        raise ValueError(f"at most {MAX_HOPS} hops, got {len(parts)}")
    hops = []
    for part in parts:
        if not part:
            raise ValueError(f"an empty hop in {shown(text)}: expected {SYNTAX}")
        match = _HOP.fullmatch(part)
        if match is None:
            raise ValueError(f"{shown(part)} is not a hop: expected {SYNTAX}")
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"{shown(part)}: the port must be between 1 and 65535, got {port}")
        hops.append(JumpHop(match["host"].strip("[]"), match["user"], port))
    return tuple(hops)


def read_proxy_jump(r: NodeReader, node: Node | None, path: str) -> tuple[JumpHop, ...] | None:
    """A ``proxy_jump`` key's hops; None when it is absent or bad (the problem recorded)."""
    text = r.string(node, path, None)
    if text is None:
        return None
    try:
        return parse_proxy_jump(text)
    except ValueError as exc:
        r.problem(node, path, str(exc))
        return None
