"""Locks a deployment of this journal left on hosts it could not reach as it freed them
(a finished deployment's, or a start's refused before it opened): the next deployment
from the journal frees them as it locks, instead of being refused by its own past."""

from __future__ import annotations

from collections.abc import Iterable

from canarytui import events as ev
from canarytui.engine import locks, lockscripts
from canarytui.engine.bus import Context
from canarytui.journal import DeploymentRecord, UnopenedStart
from canarytui.ssh import CommandResult, OwnScript, Script
from canarytui.textsafe import listed

Left = DeploymentRecord | UnopenedStart


async def lock_freeing_left(
    ctx: Context, name: str, command: str, shell: Script | None = None
) -> tuple[CommandResult, lockscripts.Reply, Left | None]:
    """A lock command on a host, with its reply. Held by a lock a deployment of this
    journal left there (``locks.left_behind``), the host is freed of it (only if it still
    names that deployment) and the command run again: that deployment is returned too."""
    result = await ctx.fleet.run(name, command, shell=shell)
    reply = lockscripts.parse_reply(result.stdout)
    left = locks.left_behind(ctx.journal, reply.owner()) if reply.has("HELD") else None
    if left is not None:
        free = lockscripts.release_command(ctx.env.app, ctx.env.name, left.token)
        again = f"{free}; {command}"
        result = await ctx.fleet.run(
            name, OwnScript(again) if isinstance(command, OwnScript) else again, shell=shell
        )
        reply = lockscripts.parse_reply(result.stdout)
    return result, reply, left


def say_freed(ctx: Context, freed: Iterable[tuple[Left, str]]) -> list[str]:
    """Say which hosts were freed of whose lock: a finished deployment's in its record. A
    refused start's has none: said in the deployment being started once it is open (in
    its record then); returned, for the caller to say then (``ctx.state`` has none open
    yet as its locks are taken); said at once when one is open."""
    by: dict[tuple[int, bool], list[str]] = {}
    for left, name in freed:
        by.setdefault((left.id, isinstance(left, UnopenedStart)), []).append(name)
    later: list[str] = []
    for (number, refused), names in sorted(by.items()):
        on = listed(sorted(names), 8)
        if refused:
            said = f"released the lock a start refused earlier (#{number}, never opened)"
            said += f" left on {on} (unreachable then)"
            if ctx.state.deployment_id is None:
                later.append(said)
            else:
                ctx.bus.notice("info", said)
        else:
            said = f"released the lock deployment #{number} left on {on}"
            said += " (unreachable when it ended)"
            ctx.bus.emit(ev.Notice(level="info", message=said, deployment=number))
    return later
