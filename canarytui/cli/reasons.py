"""Why hosts could not be used, said once however many hosts it holds for: a fleet of 200
whose known_hosts file is missing has one reason, not 200 copies of a long message."""

from __future__ import annotations

from collections.abc import Mapping

from canarytui.config import Environment
from canarytui.ssh import without_host
from canarytui.textsafe import listed

SHORT = 60  # characters of a reason said again on every host's row ("connection refused")


def own_reason(env: Environment, name: str, detail: str, kind: str = "") -> tuple[str, str]:
    """A host's error split into where it was reached and why (``reason_of``)."""
    return reason_of(name, env.host(name).endpoint, detail, kind)


def reason_of(name: str, endpoint: str, detail: str, kind: str = "") -> tuple[str, str]:
    """A host's error split into where it was reached (``endpoint``, or its name when the
    message does not start as an ``SshError`` does) and why, without the two, nor its
    ``kind`` where the message starts with it (``unreachable: connection refused``)."""
    where = name
    if detail != (rest := without_host((name, endpoint), detail)):
        where, detail = endpoint, rest
    if kind and detail.lower().startswith(f"{kind.lower()}: "):
        detail = detail[len(kind) + 2 :]
    return where, detail


def as_earlier(
    env: Environment, details: Mapping[str, tuple[str, str]]
) -> dict[str, tuple[str, str]]:
    """Each host's row (``details``: host -> (kind, error)): where it was reached and its
    reason, or ``as HOST`` after the first host (in ``details``' order) that gave the same
    reason, if it is longer than ``SHORT`` characters."""
    first: dict[str, str] = {}
    rows = {}
    for name, (kind, detail) in details.items():
        where, why = own_reason(env, name, detail, kind)
        seen = first.setdefault(why, name)
        rows[name] = (where, why if seen == name or len(why) <= SHORT else f"as {seen}")
    return rows


def grouped(env: Environment, details: Mapping[str, tuple[str, str]]) -> list[str]:
    """One line per reason (``details``: host -> (kind, error)): the hosts it holds for,
    in order, then the kind and the reason, said once."""
    hosts: dict[tuple[str, str], list[str]] = {}
    for name, (kind, detail) in details.items():
        hosts.setdefault((kind, own_reason(env, name, detail, kind)[1]), []).append(name)
    return [f"{listed(names, 5)}: {kind}: {why}" for (kind, why), names in hosts.items()]
