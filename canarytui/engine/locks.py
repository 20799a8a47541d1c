"""Deploy locks: who owns one (``Owner``), the local lock file, and refusals that say whose.

A lock belongs to a deployment (its token), not to a process: a later process that
continues the same deployment from the same journal takes it over. Anyone else is
refused with who holds it and since when. The hosts' locks (``lockscripts``) carry the
same owner, plus what a colleague's machine needs to take the deployment over.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canarytui.journal import DeploymentRecord

if TYPE_CHECKING:
    from canarytui.journal import Journal, UnopenedStart

FIELD_LIMIT = 200  # characters of one owner field shown (owners are read from hosts)


class LockHeld(Exception):
    """Somebody else's deployment holds the lock."""

    def __init__(self, where: str, owner: dict[str, Any]) -> None:
        self.where = where
        self.owner = owner
        super().__init__(f"{where}: locked by {describe_owner(owner)}")


def _field(owner: dict[str, Any], key: str, default: str = "?") -> str:
    value = owner.get(key)
    if value is None or value == "":
        return default
    text = str(value)
    return text if len(text) <= FIELD_LIMIT else text[:FIELD_LIMIT] + "…"


def since_of(owner: dict[str, Any]) -> float | None:
    since = owner.get("since")
    if isinstance(since, int | float) and not isinstance(since, bool) and math.isfinite(since):
        return float(since) if 0 < since < 1e11 else None
    return None


def describe_owner(owner: dict[str, Any]) -> str:
    """``user@machine (deployment #N of V, pid P) since WHEN``, whatever the owner holds
    (``user@machine (maintenance: REASON) since WHEN`` for a maintenance lock)."""
    since = since_of(owner)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "unknown time"
    who = f"{_field(owner, 'user')}@{_field(owner, 'machine')}"
    if is_maintenance(owner):
        return f"{who} (maintenance: {_field(owner, 'maintenance')}) since {when}"
    what = f"deployment #{_field(owner, 'deployment')}"
    if owner.get("version"):
        what += f" of {_field(owner, 'version')}"
    if owner.get("pid"):
        what += f", pid {_field(owner, 'pid')}"
    if owner.get("note"):
        what += f", {_field(owner, 'note')}"
    return f"{who} ({what}) since {when}"


def by_owner(held_by: dict[str, dict[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    """Where each owner holds a lock (a host, or the local lock): one group per owner. A
    deployment locks its hosts over a moment, so their ``since`` differ: the group keeps
    the earliest owner record."""
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for where, owner in held_by.items():
        who = describe_owner({k: v for k, v in owner.items() if k != "since"})
        first, names = groups.setdefault(who, (owner, []))
        since, before = since_of(owner), since_of(first)
        if since is not None and (before is None or since < before):
            groups[who] = (owner, names)
        names.append(where)
    return list(groups.values())


def is_maintenance(owner: dict[str, Any]) -> bool:
    """An operator's maintenance lock (``canarytui lock``), not a deployment's."""
    return isinstance(owner.get("maintenance"), str)


def owner_from_text(text: str) -> dict[str, Any]:
    """An owner file's text -> a dict; anything else is a note saying it was unreadable."""
    try:
        value = json.loads(text.strip() or "{}")
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        return {"note": "unreadable owner file"}
    return value


@dataclass(frozen=True)
class Owner:
    token: str
    deployment: int
    version: str
    user: str
    machine: str

    def as_dict(self, **extra: Any) -> dict[str, Any]:
        return {
            "token": self.token,
            "deployment": self.deployment,
            "version": self.version,
            "user": self.user,
            "machine": self.machine,
            "since": time.time(),
            "pid": os.getpid(),
            **extra,
        }


# ------------------------------------------------------------------------ local


def local_lock_path(state_dir: Path, env: str, app: str) -> Path:
    return state_dir / "locks" / f"{env}.{app}.lock"


def read_local(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return {"note": f"unreadable lock file {path}"}
    return owner_from_text(text)


def acquire_local(path: Path, owner: Owner) -> None:
    """Create the lock file atomically, or take it over if our deployment owns it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    me = _process_identity(os.getpid())
    me.pop("state", None)  # (the lock says which process wrote it: its boot and start)
    data = json.dumps(owner.as_dict(**me))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        held = read_local(path) or {}
        if held.get("token") != owner.token:
            raise LockHeld(f"local lock {path}", held) from None
        if driving_elsewhere(held, owner.machine):
            raise LockHeld(
                f"local lock {path} (another process is driving this deployment)", held
            ) from None
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, path)
        return
    with os.fdopen(fd, "w") as f:
        f.write(data)


def driving_elsewhere(held: dict[str, Any], machine: str) -> bool:
    """The local lock's owner ``held`` is another live process of this ``machine``."""
    pid = held.get("pid")
    return (
        isinstance(pid, int)
        and pid != os.getpid()
        and held.get("machine") == machine
        and _alive(pid, held)
    )


def driver_of(path: Path, record: DeploymentRecord, machine: str) -> dict[str, Any] | None:
    """The local lock's owner when another live process of this machine drives the open
    deployment ``record`` now (a UI, a CLI run); None when no other process does."""
    held = read_local(path)
    if held is None or held.get("token") != record.token or not driving_elsewhere(held, machine):
        return None
    return held


def nobody_drives(path: Path, record: DeploymentRecord, machine: str) -> bool:
    """No process drives the open deployment ``record`` now: it was driven from this
    machine (``machine``), and none of its processes holds it (stopped: Ctrl-C, a crash,
    kill -9). A host it was changing then was cut off, not in flight (``ev.CUT_OFF``)."""
    return record.machine == machine and driver_of(path, record, machine) is None


def driven_elsewhere(path: Path, record: DeploymentRecord, machine: str) -> str | None:
    """What to tell an operator acting on the open deployment ``record`` from a process
    that is not the one driving it now; None when no other process does."""
    held = driver_of(path, record, machine)
    if held is None:
        return None
    pid = held.get("pid")
    return (
        f"deployment #{record.id} of {record.version} is being driven by another canarytui "
        f"on this machine (pid {pid}): follow it or act on it there, or stop it (kill -INT "
        f"{pid}: the deployment stays open) and act on it here"
    )


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


def _alive(pid: int, held: dict[str, Any]) -> bool:
    """``pid`` is the live process that wrote the lock ``held``: not a zombie (killed, not
    yet reaped), and, where ``/proc`` tells (the lock names the boot and the process's
    start), not another process given the same number since, after a crash or a reboot."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    now = _process_identity(pid)
    if not now:
        return True  # no /proc to ask: a live pid is taken as the writer
    if now.get("state") in ("Z", "X"):
        return False
    written = (held.get("boot"), held.get("started"))
    return None in written or written == (now.get("boot"), now.get("started"))


def _process_identity(pid: int) -> dict[str, Any]:
    """What tells a process from another given its number later (``/proc``: this boot's
    id, the process's start in clock ticks since boot) and its state letter; empty where
    there is no ``/proc`` to read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = stat[stat.rindex(")") + 2 :].split()  # after the name, which may hold ")"
        return {"boot": boot, "started": int(fields[19]), "state": fields[0]}
    except (OSError, ValueError, IndexError):
        return {}


def left_behind(journal: Journal, owner: dict[str, Any]) -> DeploymentRecord | UnopenedStart | None:
    """The finished deployment of this journal that wrote ``owner`` (a host's lock it could
    not release: the host was unreachable when it ended), or its start refused before it
    opened (``UnopenedStart``: a host unreachable as the locks taken were freed), if it is
    one: same token, number and machine, written before it ended. Never a lock a
    colleague's take-over wrote."""
    token = owner.get("token")
    if not isinstance(token, str):
        return None
    record = journal.by_token(token)
    if record is None or record.is_open or record.finished_at is None:
        return None
    since = since_of(owner)
    if (
        owner.get("deployment") != record.id
        or owner.get("machine") != record.machine
        or since is None
        or since > record.finished_at
    ):
        return None
    if isinstance(record, DeploymentRecord) and releasing(journal, record):
        return None
    return record


def releasing(journal: Journal, record: DeploymentRecord) -> bool:
    """The finished deployment's process lives and still holds the local lock: it is
    releasing its hosts' locks now (seconds at scale), not leaving them."""
    held = read_local(local_lock_path(journal.state_dir, record.env, record.app))
    return (
        held is not None
        and held.get("token") == record.token
        and driving_elsewhere(held, record.machine)
    )
