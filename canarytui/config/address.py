"""A host's address as SSH wants it: a DNS name or an IP address alone. A port, a user or
a scheme written into it (``10.0.0.5:2222``, ``deploy@web-01``, ``ssh://web-01``) would
only fail at connect time, as a name nobody knows; the file and the inventory say so where
it is written."""

from __future__ import annotations

import re

from canarytui.config.limits import shown

_WITH_PORT = re.compile(r"\[(?P<v6>[^\[\]]+)\]:(?P<p6>\d+)|(?P<name>[^:]+):(?P<port>\d+)")


def address_problem(
    address: str, keys: tuple[str, str, str] = ("address", "port", "user"), sep: str = ": "
) -> str | None:
    """Why ``address`` is not a host's DNS name or IP address alone, as SSH wants it (a port,
    a user or a scheme written into it fail at connect time as a name nobody knows).
    ``keys``: the names of the address, port and user where it is written, ``sep`` between
    a name and its value (an INI inventory's ``=``)."""
    at, port_key, user_key = keys
    if not address.strip():
        return "empty: the host's DNS name or IP address"
    if any(c.isspace() for c in address):
        return f"{shown(address)} holds a space: the host's DNS name or IP address alone"
    if "://" in address:
        return f"{shown(address)} is a URL: the host's DNS name or IP address alone"
    if "@" in address:
        user, _, rest = address.rpartition("@")
        return (
            f"{shown(address)} holds a user: write {at}{sep}{shown(rest)} "
            f"and {user_key}{sep}{shown(user)}"
        )
    found = _WITH_PORT.fullmatch(address)
    if found:
        host = found["v6"] or found["name"]
        port = found["p6"] or found["port"]
        return (
            f"{shown(address)} holds a port: write {at}{sep}{shown(host)} and {port_key}{sep}{port}"
        )
    return None
