"""Deploy locks: one local (in the state dir), one on every target host.

A lock belongs to a deployment (its token), not to a process: a later process that
continues the same deployment from the same journal takes it over. Anyone else is
refused with who holds it and since when. Remote locks are atomic ``mkdir``s with an
``owner`` file inside, so a cancelled run can be told apart and broken deliberately.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REMOTE_DIR = "~/.canarytui"


class LockHeld(Exception):
    """Somebody else's deployment holds the lock."""

    def __init__(self, where: str, owner: dict[str, Any]) -> None:
        self.where = where
        self.owner = owner
        super().__init__(f"{where}: locked by {describe_owner(owner)}")


def describe_owner(owner: dict[str, Any]) -> str:
    since = owner.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown time"
    who = f"{owner.get('user', '?')}@{owner.get('machine', '?')}"
    what = f"deployment #{owner.get('deployment', '?')}"
    if owner.get("version"):
        what += f" of {owner['version']}"
    if owner.get("pid"):
        what += f", pid {owner['pid']}"
    return f"{who} ({what}) since {when}"


@dataclass(frozen=True)
class Owner:
    token: str
    deployment: int
    version: str
    user: str
    machine: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "deployment": self.deployment,
            "version": self.version,
            "user": self.user,
            "machine": self.machine,
            "since": time.time(),
            "pid": os.getpid(),
        }


# ------------------------------------------------------------------------ local


def local_lock_path(state_dir: Path, env: str, app: str) -> Path:
    return state_dir / "locks" / f"{env}.{app}.lock"


def read_local(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"user": "?", "machine": "?", "note": f"unreadable lock file {path}"}


def acquire_local(path: Path, owner: Owner) -> None:
    """Create the lock file atomically, or take it over if our deployment owns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(owner.as_dict())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        held = read_local(path) or {}
        if held.get("token") != owner.token:
            raise LockHeld(f"local lock {path}", held) from None
        pid = held.get("pid")
        if pid and pid != os.getpid() and held.get("machine") == owner.machine and _alive(int(pid)):
            raise LockHeld(
                f"local lock {path} (another process is driving this deployment)", held
            ) from None
        tmp = path.with_suffix(".tmp")
        tmp.write_text(data)
        os.replace(tmp, path)
        return
    with os.fdopen(fd, "w") as f:
        f.write(data)


def release_local(path: Path, token: str) -> None:
    held = read_local(path)
    if held is not None and held.get("token") == token:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def break_local(path: Path) -> dict[str, Any] | None:
    held = read_local(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return held


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----------------------------------------------------------------------- remote


def _remote_dir(app: str, env: str) -> str:
    # The home-relative prefix stays unquoted so `~` expands; the name is quoted.
    return f"{REMOTE_DIR}/{shlex.quote(f'lock.{env}.{app}')}"


def acquire_command(app: str, env: str, owner: Owner, then: str | None = None) -> str:
    """Take the host's lock atomically; print ``LOCKED`` or ``HELD`` and the owner.

    ``then`` (e.g. the version discovery command) runs after a successful take, so a
    deployment's first contact with a host is one round trip. The script keeps to shell
    builtins where it can: on a fleet, every process it starts is paid per host.
    """
    d = _remote_dir(app, env)
    owner_json = shlex.quote(json.dumps(owner.as_dict()))
    ours = _is_ours(d, owner.token)
    script = (
        f"if mkdir {d} 2>/dev/null || {{ mkdir -p {REMOTE_DIR} && mkdir {d} 2>/dev/null; }}"
        f" || {ours}; then printf '%s\\n' {owner_json} > {d}/owner && echo LOCKED"
    )
    if then:
        script += f" && {{ {then}\n}}"
    script += f"; else echo HELD; cat {d}/owner 2>/dev/null; fi"
    return script


def _is_ours(d: str, token: str) -> str:
    """True when the lock's owner file names this deployment's token."""
    return (
        f'{{ IFS= read -r o < {d}/owner && case "$o" in *{shlex.quote(token)}*) true;;'
        " *) false;; esac; } 2>/dev/null"
    )


def parse_acquire(stdout: str) -> tuple[bool, dict[str, Any], str]:
    """-> (taken, owner if held, the rest of the output after the marker)."""
    head, _, rest = stdout.partition("\n")
    if head.strip() == "LOCKED":
        return True, {}, rest
    try:
        owner = dict(json.loads(rest.strip() or "{}"))
    except ValueError:
        owner = {"note": "unreadable owner file"}
    return False, owner, ""


def release_command(app: str, env: str, token: str) -> str:
    d = _remote_dir(app, env)
    return f"if {_is_ours(d, token)}; then rm -rf {d}; fi; true"


def break_command(app: str, env: str) -> str:
    d = _remote_dir(app, env)
    return f"if [ -d {d} ]; then echo HELD; cat {d}/owner 2>/dev/null; rm -rf {d}; fi; true"
