"""Starting a deployment: its number, the locks (with each host's version), its first events."""

from __future__ import annotations

import asyncio
import uuid

from canarytui import events as ev
from canarytui.engine.bus import Context
from canarytui.engine.discovery import discover_one
from canarytui.engine.holding import LockKeeper
from canarytui.engine.lockscripts import Unlockable
from canarytui.engine.plan import Plan, running_said, stops_at
from canarytui.engine.releases import asked_for_releases, list_releases, unlisted
from canarytui.engine.supervise import each_host
from canarytui.engine.waiting import waits_said
from canarytui.openfiles import shortage
from canarytui.ssh import AuthRefused, HostKeyRefused, SshError
from canarytui.textsafe import harmless, listed


class StartRefused(Exception):
    """The deployment cannot start; nothing was changed (the engine turns it into a refusal)."""


async def start_deployment(
    ctx: Context,
    locks: LockKeeper,
    version: str,
    plan: Plan,
    assume_previous: str | None = None,
    kind: str = "deploy",
    unless_running: str | None = None,
    scope: str | None = None,
) -> None:
    """Lock every host of the plan and learn what it runs; the deployment is then open.
    ``scope``: the plan is limited to some of the file's hosts (``deploy --hosts``, as given).

    A canary that cannot be reached, or a reachable host that reports no valid version
    (without ``assume_previous`` to roll it back to), refuses the start: nothing changed.
    ``unless_running``: why to refuse it too when no host runs ``version`` now.
    """
    # Every host's connection stays open until the release: refused now if they cannot be.
    short = shortage(len(plan.hosts), ctx.fleet.open_files)
    if short is not None:
        raise StartRefused(f"{short}; nothing was changed")
    ctx.bus.emit(ev.DeploymentStarting(version=version, hosts=len(plan.hosts), action=kind))
    if scope is not None:
        await others_free(ctx, plan)
    token = uuid.uuid4().hex
    # The deployment gets its number first, so every lock can say whose it is; it is
    # discarded again if the locks cannot be had (nothing happened then).
    d = ctx.journal.create_deployment(
        token=token,
        env=ctx.env.name,
        app=ctx.env.app,
        env_path=str(ctx.env.path),
        version=version,
        canaries=plan.canaries,
        plan=plan.waves,
        previous={},
        user=ctx.user,
        machine=ctx.machine,
        kind=kind,
        scope=scope,
    )
    ctx.state.deployment = None
    ctx.state.previous.clear()
    locks.unreleased.clear()
    try:
        async with waits_said(ctx.bus, locks, plan.hosts):
            found = await locks.take(locks.owner(token, d, version), plan.hosts, True)
        # Reachable, but nothing of the deployment may change it: refused, as a held lock
        # is (an unreachable host may come back during the release; this one would not).
        unlockable = [str(v) for v in found.values() if isinstance(v, Unlockable)]
        if unlockable:
            more = f" (and {len(unlockable) - 3} more)" if len(unlockable) > 3 else ""
            raise StartRefused(
                "; ".join(unlockable[:3]) + more + "; nothing was changed: let the SSH user "
                "write its ~/.canarytui there, or take the host out of the file"
            )
        lost = [e for c in plan.canaries if isinstance(e := found.get(c), SshError)]
        if lost:
            # Which kind of failure: a refused host key is no network fault to chase.
            kinds = " / ".join(dict.fromkeys(e.what for e in lost))
            errors = "; ".join(str(e) for e in lost)
            raise StartRefused(
                f"canary {kinds}, nothing was changed: {errors}; pick other canaries, or fix "
                "it and deploy again"
            )
        # A host that refused us (its key, our login) does not come back during the release
        # as an unreachable one may: a changed key is never a failed host to count on. (A
        # release put back, the way out of a bad one, goes on without it, as before.)
        refused = [
            e for h in plan.hosts if isinstance(e := found.get(h), HostKeyRefused | AuthRefused)
        ]
        if refused and kind == "deploy":
            kinds = " / ".join(dict.fromkeys(e.what for e in refused))
            names = listed([e.host.name for e in refused], 8)
            raise StartRefused(
                f"{names}: {kinds}, nothing was changed: {refused[0]} "
                "(or leave it out of the deployment: --hosts)"
            )
        if unless_running is not None and version not in found.values():
            raise StartRefused(f"{unless_running}; nothing was changed")
        unknown = [h for h in plan.hosts if h in found and found[h] is None]
        if unknown and assume_previous is None:
            shown = listed(unknown, 8)
            raise StartRefused(
                f"{shown} report(s) no valid version (deploy.current printed nothing that "
                f"matches version_pattern), so they could not be rolled back; nothing was "
                "changed: fix deploy.current, or say which version to roll them back to "
                "(--previous VERSION)"
            )
    except BaseException:
        said_freed(ctx, locks)  # (no record to say it in: said only)
        await asyncio.shield(locks.release(token))
        # A host that kept its lock (unreachable): the journal remembers whose it is.
        ctx.journal.discard(d, lock_kept=bool(locks.unreleased))
        raise
    previous: dict[str, str | None] = {}
    for host, found_version in found.items():
        if isinstance(found_version, SshError):
            previous[host] = None
        else:
            previous[host] = found_version or assume_previous
    ctx.journal.set_previous_many(d, previous)
    record = ctx.journal.deployment(d)
    assert record is not None
    ctx.state.deployment = record
    ctx.state.previous.update(previous)
    if scope is not None:  # the others were read as it started (``others_free``): not again
        ctx.state.others_read = d
    ctx.bus.emit(
        ev.DeploymentStarted(
            version=version,
            canaries=plan.canaries,
            waves=plan.waves,
            previous=previous,
            user=ctx.user,
            deployment=d,
        )
    )
    said_freed(ctx, locks)  # in this deployment's record
    if kind == "rollback":
        ctx.bus.decision("rollback", f"to {version} on every host, in waves, no analysis")
    elif plan.canaries:
        ctx.bus.decision("deploy", f"{version} to canaries {listed(plan.canaries, 10)}")
    else:
        # The file has a canary phase and the operator went without it (--no-canary, the
        # UI's filtered hosts with no canary among them): the record says so.
        why = "the file's canary phase skipped" if ctx.env.canary.enabled else "no canary phase"
        ctx.bus.decision("deploy", f"{version} straight to the waves ({why})")
    if scope is not None:
        ctx.bus.decision("limit", f"to {len(plan.hosts)} of {len(ctx.env.hosts)} hosts: {scope}")
    if assume_previous is not None:
        assumed = [h for h, v in found.items() if v is None]
        if assumed:
            ctx.bus.decision(
                "assume previous",
                f"{assume_previous} for {', '.join(assumed)} (no valid version reported)",
            )
        else:  # (said: it was typed for a reason, and is not what any rollback will use)
            unused = f"--previous {assume_previous}: every host reports its version; not used"
            ctx.bus.notice("info", unused)
    ctx.bus.hosts(
        (name, ev.HostState.UNREACHABLE, None, str(v))
        if isinstance(v, SshError)
        else (name, ev.HostState.PENDING, v, "")
        for name, v in found.items()
    )
    # Said before the canary, not after most of the fleet got the release.
    down = [h for h, v in found.items() if isinstance(v, SshError)]
    said = stops_at(plan, down, ctx.env.promote, kind)
    if said is not None:
        ctx.bus.notice("warning", said)
    # In the plan's order (``found`` is in the order the locks came back), as the dry run.
    in_order = {h: found[h] for h in plan.hosts if h in found}
    said_running = running_said(version, in_order, plan.canaries) if kind == "deploy" else None
    if said_running is not None:
        ctx.bus.notice(*said_running)
    reached = [h for h in plan.hosts if not isinstance(found.get(h), SshError)]
    asked, who = asked_for_releases(plan.canaries, reached)
    if kind == "deploy" and ctx.env.deploy.releases and asked:
        # Said before the first host changes: a slip ("1.2" for 1.2.0) is caught there.
        said = unlisted(await list_releases(ctx, asked, locks.shells), version, who)
        if said is not None:
            ctx.bus.notice("warning", f"{said}: deploying it as given")


def said_freed(ctx: Context, locks: LockKeeper) -> None:
    """Say the locks of refused starts the locks just taken freed (``say_freed``)."""
    for said in locks.freed_later:
        ctx.bus.notice("info", said)
    locks.freed_later = []


async def others_free(ctx: Context, plan: Plan) -> None:
    """A deployment limited to some hosts starts only if no other deployment (another
    machine's, limited too) and no maintenance holds one of the others: one release at a
    time in an environment, as when every deployment locked every host (two at once would
    tell the load balancer two stories). What the others run is read in the same round trip
    (the traffic hooks' ``{percent}`` is the whole fleet's); nothing is locked there. A lock
    a finished deployment of this journal left (``left_behind``) is no release: left as it is."""
    planned = set(plan.hosts)
    others = [h for h in ctx.env.host_names if h not in planned]
    ctx.bus.notice(
        "info",
        f"reading what the {len(others)} other host(s) run and whose locks they hold "
        f"(one release at a time in {ctx.env.name})",
    )
    await each_host(others, lambda name: discover_one(ctx, name, locks=True))
    by = ctx.state.locked_by
    held = [h for h in others if h in by and not by[h].left_here]
    if held:
        first = ctx.state.locked_by[held[0]]
        how = "held for maintenance by" if first.maintenance else "locked by"
        who = harmless(first.owner, 300)
        raise StartRefused(
            f"{listed(held, 8)}, not in this deployment: {how} {who}; one release "
            f"at a time in {ctx.env.name}, nothing was changed (canarytui status says whose)"
        )
