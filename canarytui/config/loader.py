"""The top level: an environment file's text or path -> ``Environment``, or every problem.

Every problem is reported as ``FILE:LINE: key.path: problem`` and nothing else in the
program runs until the file is clean, so a bad file never touches a host.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from canarytui.config.canary import read_canary
from canarytui.config.model import DEFAULT_VERSION_PATTERN, NAME_RE, EnvFileError, Environment
from canarytui.config.reader import NodeReader
from canarytui.config.sections import read_deploy, read_health, read_hosts, read_promote, read_ssh

TOP_KEYS = {
    "name",
    "app",
    "version_pattern",
    "ssh",
    "hosts",
    "deploy",
    "health",
    "logs",
    "canary",
    "promote",
}


def parse_env(text: str, file: str = "<env>", path: Path | None = None) -> Environment:
    """Parse an environment file's text; raise EnvFileError with every problem found."""
    r = NodeReader(file)
    try:
        # libyaml's loader when present: a 1,000-host file reads several times faster.
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise EnvFileError([f"{file}:{line}: (yaml): {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise EnvFileError([f"{file}:1: (yaml): {exc}"]) from None
    if root is None:
        raise EnvFileError([f"{file}:1: (top level): the file is empty"])
    m = r.mapping(root, "", TOP_KEYS, {"name", "app", "hosts", "deploy", "health"})
    if m is None:
        raise EnvFileError(r.problems)
    name = r.string(m.get("name"), "name", None)
    app = r.string(m.get("app"), "app", None)
    for key, value in (("name", name), ("app", app)):
        if value is not None and not NAME_RE.match(value):
            r.problem(m[key], key, f"{value!r}: use letters, digits, '.', '_' and '-'")
    pattern = r.string(m.get("version_pattern"), "version_pattern", DEFAULT_VERSION_PATTERN)
    try:
        re.compile(pattern)
    except re.error as exc:
        r.problem(
            m.get("version_pattern"), "version_pattern", f"not a valid regular expression: {exc}"
        )
    ssh = read_ssh(r, m.get("ssh"))
    hosts = read_hosts(r, m.get("hosts"), ssh)
    deploy = read_deploy(r, m.get("deploy"))
    health = read_health(r, m.get("health"))
    logs = r.command(m.get("logs"), "logs", None)
    canary = read_canary(r, m.get("canary"), {h.name for h in hosts})
    promote = read_promote(r, m.get("promote"))
    if r.problems or name is None or app is None or deploy is None or health is None:
        raise EnvFileError(r.problems or [f"{file}:1: (top level): incomplete environment"])
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
    )


def load_env(path: str | os.PathLike[str]) -> Environment:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvFileError([f"{p}:1: (file): no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError([f"{p}:1: (file): cannot read: {exc}"]) from None
    return parse_env(text, file=str(path), path=p)
