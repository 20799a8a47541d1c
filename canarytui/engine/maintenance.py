"""Maintenance locks: an environment held by an operator, so that every deployment is refused.

A maintenance lock is the hosts' ordinary deploy lock (``~/.canarytui/lock.ENV.APP``, see
``lockscripts``) whose owner says ``maintenance`` with the reason, plus the local lock file
of this machine. The hosts are the shared truth: a deployment takes every host's lock
before it changes anything, so one host held for maintenance refuses a deployment from any
machine or UI with the reason, who and since when (``locks.describe_owner``). The owner
carries no deployment token: nothing can take it over or roll it back; ``unlock`` from
the journal that took it (its local lock names the owner's ``id``) releases it, from
another journal only with ``--force`` (a colleague's is held on purpose).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canarytui.engine import locks, lockscripts
from canarytui.engine.bus import Context
from canarytui.engine.leftlocks import lock_freeing_left
from canarytui.engine.supervise import each_host
from canarytui.ssh import SshError
from canarytui.textsafe import harmless

REASON_LIMIT = 200  # characters of a reason kept


class MaintenanceRefused(Exception):
    """The environment cannot be held now (an open deployment); the message says why."""


@dataclass
class Held:
    """What ``hold`` did: the owner written, the hosts locked, those it could not reach."""

    owner: dict[str, Any]
    locked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def owner_for(reason: str, user: str, machine: str) -> dict[str, Any]:
    """A maintenance lock's owner: the reason (one harmless line), who, since, and an id."""
    return {
        "maintenance": harmless(reason.strip(), REASON_LIMIT),
        "id": uuid.uuid4().hex,
        "user": user,
        "machine": machine,
        "since": time.time(),
    }


async def hold(ctx: Context, reason: str) -> Held:
    """Lock the local file and every host for maintenance.

    Raises ``LockHeld`` (and keeps nothing) when the environment is locked already,
    ``MaintenanceRefused`` when this journal has an open deployment. Unreachable hosts
    are in ``failed``; when no host could be locked, nothing is kept.
    """
    env = ctx.env
    record = ctx.journal.open_deployment(env.name, env.app)
    if record is not None:
        raise MaintenanceRefused(
            f"deployment #{record.id} of {record.version} is open ({record.phase_label}): "
            f"{record.way_out} first"
        )
    owner = owner_for(reason, ctx.user, ctx.machine)
    path = locks.local_lock_path(ctx.journal.state_dir, env.name, env.app)
    _take_local(path, owner)
    held = Held(owner)
    refused: list[locks.LockHeld] = []
    command = lockscripts.hold_command(env.app, env.name, owner)

    async def one(name: str) -> None:
        shell = ctx.fleet.shell()  # (its ``sent`` says whether the command went out)
        try:
            # A lock this journal's finished deployment left (its host unreachable as it
            # ended) is freed first, as its next deployment would.
            result, reply, _ = await lock_freeing_left(ctx, name, command, shell)
        except SshError as exc:
            held.failed[name] = str(exc)
            return
        except asyncio.CancelledError:
            if shell.sent:  # cut off (Ctrl-C) in flight: the lock may be made all the same
                held.locked.append(name)
            raise
        finally:
            shell.close()
        if reply.has("LOCKED"):
            held.locked.append(name)
        elif reply.has("HELD"):
            refused.append(locks.LockHeld(f"host {name}", reply.owner("HELD")))
        elif reply.has("UNLOCKABLE"):
            held.failed[name] = lockscripts.why_unlockable(reply)
        else:
            held.failed[name] = (
                f"its reply to the lock command could not be read (exit {result.exit_status})"
            )

    try:
        await each_host(env.host_names, one)
    except BaseException:
        await _release(ctx, held)
        raise
    if refused or not held.locked:
        await _release(ctx, held)
        if refused:
            raise refused[0]
    held.locked.sort(key=env.host_names.index)
    return held


def _take_local(path: Path, owner: dict[str, Any]) -> None:
    """This machine's lock file, created atomically; somebody's already there refuses."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise locks.LockHeld(f"local lock {path}", locks.read_local(path) or {}) from None
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(owner))


async def _release(ctx: Context, held: Held) -> None:
    """Undo a hold: the hosts' locks it took (by its id), then the local file if it is its."""
    env = ctx.env
    command = lockscripts.release_command(env.app, env.name, held.owner["id"])

    async def one(name: str) -> None:
        with contextlib.suppress(SshError):
            await ctx.fleet.run(name, command, timeout=10.0)

    await each_host(held.locked, one)
    held.locked.clear()
    path = locks.local_lock_path(ctx.journal.state_dir, env.name, env.app)
    local = locks.read_local(path)
    if local is not None and local.get("id") == held.owner["id"]:
        locks.break_local(path)
