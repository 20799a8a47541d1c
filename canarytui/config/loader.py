"""The top level: an environment file's text or path -> ``Environment``, or every problem.

Every problem is reported as ``FILE:LINE: key.path: problem`` and nothing else in the
program runs until the file is clean, so a bad file never touches a host.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Iterator
from pathlib import Path

from canarytui.config.canary import read_canary
from canarytui.config.inventory import read_hosts_from
from canarytui.config.limits import shown
from canarytui.config.model import DEFAULT_VERSION_PATTERN, NAME_RE, Environment, Host
from canarytui.config.notify import read_notify
from canarytui.config.reader import NodeReader
from canarytui.config.sections import (
    listed_before,
    listed_twice,
    read_deploy,
    read_health,
    read_hosts,
    read_promote,
    read_ssh,
)
from canarytui.config.source import compose, read_file
from canarytui.config.traffic import read_traffic

TOP_KEYS = {
    "name",
    "app",
    "version_pattern",
    "ssh",
    "hosts",
    "hosts_from",
    "deploy",
    "health",
    "logs",
    "canary",
    "promote",
    "traffic",
    "notify",
}


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a file is read. Reading builds a node for every
    value (70,000 for 5,000 hosts) and nothing of it is garbage until the end, so every
    pass the collector makes meanwhile walks them all for nothing: half the time of a big
    file. What is dropped is freed by reference counts as before; the collector resumes after.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def parse_env(text: str, file: str = "<env>", path: Path | None = None) -> Environment:
    """Parse an environment file's text; raise EnvFileError with every problem found."""
    with _collector_paused():
        return _parse_env(text, file, path)


def _parse_env(text: str, file: str, path: Path | None) -> Environment:
    r = NodeReader(file)
    root = compose(text, file)  # bounded, guarded: a bad file is an EnvFileError, never a crash
    if root is None:
        r.problem(None, "(top level)", "the file is empty")
        raise r.error()
    m = r.mapping(root, "", TOP_KEYS, {"name", "app", "deploy", "health"})
    if m is None:
        raise r.error()
    name = r.string(m.get("name"), "name", None)
    app = r.string(m.get("app"), "app", None)
    for key, value in (("name", name), ("app", app)):
        if value is not None and not NAME_RE.match(value):
            r.problem(m[key], key, f"{shown(value)}: use letters, digits, '.', '_' and '-'")
    pattern = r.string(m.get("version_pattern"), "version_pattern", DEFAULT_VERSION_PATTERN, 1000)
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        r.problem(
            m.get("version_pattern"), "version_pattern", f"not a valid regular expression: {exc}"
        )
        pattern = DEFAULT_VERSION_PATTERN
    ssh = read_ssh(r, m.get("ssh"))
    listed = read_hosts(r, m.get("hosts"), ssh)
    hosts = read_hosts_from(r, m, listed, ssh, path or Path(file))  # and/or an inventory
    if hosts is not listed:  # an inventory's hosts: each machine once there too
        written = {h.name for h in listed}
        machines: dict[tuple[object, ...], Host] = {}
        for host in hosts:
            first = listed_before(machines, host)
            if first is not None and not {first.name, host.name} <= written:  # else said
                r.problem(m.get("hosts_from"), "hosts_from", listed_twice(host, first))
    deploy = read_deploy(r, m.get("deploy"))
    health = read_health(r, m.get("health"))
    logs = r.command(m.get("logs"), "logs", None)
    roles = {role for h in hosts for role in h.roles}
    canary = read_canary(r, m.get("canary"), {h.name for h in hosts}, roles)
    promote = read_promote(r, m.get("promote"))
    traffic = read_traffic(r, m.get("traffic"), hosts)
    notify = read_notify(r, m.get("notify"))
    if r.problems or name is None or app is None or deploy is None or health is None:
        if not r.problems:
            r.problem(None, "(top level)", "incomplete environment")
        raise r.error()
    return Environment(
        path=(path or Path(file)).resolve(),
        name=name,
        app=app,
        ssh=ssh,
        hosts=hosts,
        deploy=deploy,
        health=health,
        logs=logs,
        canary=canary,
        promote=promote,
        version_pattern=pattern,
        traffic=traffic,
        notify=notify,
    )


def load_env(path: str | os.PathLike[str]) -> Environment:
    """Read and parse an environment file; only a regular file of sane size is opened."""
    return parse_env(read_file(path), file=str(path), path=Path(path))
