"""Which version each host runs: asked with ``deploy.current``, trusted once validated."""

from __future__ import annotations

import dataclasses

from canarytui import events as ev
from canarytui.config import render
from canarytui.engine import lockscripts
from canarytui.engine.bus import Context, HeldBy
from canarytui.engine.locks import describe_owner, is_maintenance, left_behind
from canarytui.engine.reported import reported_version
from canarytui.ssh import CommandResult, SshError

Found = dict[str, str | None]  # each host's version (None: unreachable, or none reported)


async def discover_one(
    ctx: Context, name: str, locks: bool = False, lockable: dict[str, str] | None = None
) -> str | None:
    """One host's version now; an unreachable host is marked, a host at rest shown idle.

    ``locks``: in the same round trip, whose lock the host holds, if any (another
    machine's deployment, a maintenance lock), kept in ``ctx.state.locked_by``: asked of
    a fleet at rest, where no lock is this process's. ``lockable`` (``check``): in the
    same round trip, whether a deployment's lock could be made there; why not is put in
    it under the host's name."""
    try:
        result = await ctx.fleet.run(name, asking(ctx, name, locks, lockable is not None))
    except SshError as exc:
        unanswered(ctx, name, exc)
        return None
    return answered(ctx, name, result, locks, lockable)


# What the open deployment did to a host: a read that gets no answer does not undo it.
_DONE = {
    ev.HostState.DEPLOYED,
    ev.HostState.FAILED,
    ev.HostState.ROLLED_BACK,
    ev.HostState.ROLLBACK_FAILED,
    ev.HostState.SKIPPED,
}


def unanswered(ctx: Context, name: str, exc: SshError) -> None:
    """The host could not be asked: marked (``refused``: what kind of failure), and told.
    A host the open deployment has changed (or failed) keeps that state, said with the
    error: its wave counted it "unreachable" and lost what the release did there (its
    health says it does not answer)."""
    state = ctx.state.host_states.get(name)
    if state in _DONE and _in_open_deployment(ctx, name):
        ctx.bus.emit(ev.HostUpdate(host=name, state=state, detail=str(exc)))
    else:
        ctx.bus.emit(ev.HostUpdate(host=name, state=ev.HostState.UNREACHABLE, detail=str(exc)))
    ctx.state.refused[name] = exc.what


def _in_open_deployment(ctx: Context, name: str) -> bool:
    d = ctx.state.deployment
    return d is not None and d.is_open and name in d.planned_hosts


def asking(ctx: Context, name: str, locks: bool = False, lockable: bool = False) -> str:
    """The command that asks ``name`` its version (and its lock, or whether one could be
    made there), as ``discover_one`` sends it."""
    env = ctx.env
    command = render(env.deploy.current, env.placeholders(name))
    if locks:
        return lockscripts.inspect_command(env.app, env.name, command)
    if lockable:
        return lockscripts.lockable_command(env.app, env.name, command)
    return command


def answered(
    ctx: Context,
    name: str,
    result: CommandResult,
    locks: bool = False,
    lockable: dict[str, str] | None = None,
) -> str | None:
    """What the host said to ``asking``, recorded and told (``HostUpdate``): its version."""
    ctx.state.refused.pop(name, None)
    if locks or lockable is not None:
        reply = lockscripts.parse_reply(result.stdout)
        if lockable is not None and not locks:
            if reply.has("UNLOCKABLE"):
                lockable[name] = lockscripts.why_unlockable(reply, prefix="")
            elif not reply.has("LOCKABLE"):
                lockable[name] = f"its reply could not be read (exit {result.exit_status})"
        if reply.has("HELD"):
            owner = reply.owner("HELD")
            who = describe_owner(owner)
            key = str(owner.get("token") or who)
            left = left_behind(ctx.journal, owner) is not None
            ctx.state.locked_by[name] = HeldBy(who, is_maintenance(owner), key, owner, left)
        else:
            ctx.state.locked_by.pop(name, None)
        said = reply.sections.get("CURRENT", "")
        result = dataclasses.replace(result, stdout=said)  # what deploy.current printed
    version = reported_version(ctx.env, result.stdout) if result.ok else None
    state = ctx.state.host_states.get(name, ev.HostState.UNKNOWN)
    if state in (ev.HostState.UNKNOWN, ev.HostState.UNREACHABLE) and not _in_open_deployment(
        ctx, name
    ):
        state = ev.HostState.IDLE
    ctx.bus.emit(
        ev.HostUpdate(
            host=name,
            state=state,
            version=version,
            detail=_discovery_detail(result.ok, result.stdout, result.output, version),
        )
    )
    return version


def _discovery_detail(ok: bool, stdout: str, output: str, version: str | None) -> str:
    if not ok:
        return output.strip()[-200:]
    if version is None and stdout.strip():
        return f"reports no valid version: {stdout.strip()[:80]!r} does not match version_pattern"
    return ""
