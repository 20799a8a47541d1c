"""Whether this machine has lost the fleet, rather than the release some hosts.

A wave's hosts cut off mid-steps (their connections lost, their commands past their
timeout) look like a release that breaks its hosts. When hosts outside them do not answer
either (ones the release reached earlier and that answered then), the loss is this
machine's (its network, a VPN that reconnected, a laptop that slept): rolling back into it
would only fail on every host, and the cut-off hosts say nothing of the release. Hosts that
answer, or none to ask, leave the failures counted as they are. A rollback the network
stopped on every host says so, rather than "fix the host(s)".
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from canarytui import events as ev
from canarytui.engine.bus import LOST_ERRORS, Context
from canarytui.engine.hosts import FAILED_STATES
from canarytui.ssh import SshError
from canarytui.textsafe import listed

ASKED = 3  # hosts asked at most, at once
# A host in one of these is not asked (its silence would say nothing of this machine; a
# host that could not be asked is unreachable, whatever kind of failure ``refused`` says).
DOWN = FAILED_STATES | {ev.HostState.ROLLBACK_FAILED}


def witnesses(ctx: Context, lost: Collection[str]) -> list[str]:
    """Up to ``ASKED`` hosts to ask, none of ``lost``: those on the release first (the
    canaries, then the waves in order: they answered it), then the others of the file
    (not one known to be down: its silence would say nothing of this machine)."""
    d = ctx.state.deployment
    planned = [*d.canaries, *(h for w in d.plan for h in w)] if d is not None else []
    states = ctx.state.host_states
    left_out = set(lost)  # (sets: a wave of thousands may have failed)
    deployed = [h for h in planned if states.get(h) is ev.HostState.DEPLOYED and h not in left_out]
    left_out.update(deployed)
    others = [h for h in ctx.env.host_names if h not in left_out and states.get(h) not in DOWN]
    return [*deployed, *others][:ASKED]


async def fleet_lost(ctx: Context, asked: Sequence[str]) -> bool:
    """Whether every host of ``asked`` (at least one) fails to answer a no-op command
    for the network's reasons: connections refused or lost, commands past the probe's
    timeout. Asked at once; each within its connect timeout plus the health timeout."""
    if not asked:
        return False

    async def silent(name: str) -> bool:
        try:
            await ctx.fleet.run(name, ":", ctx.env.health.timeout)
        except LOST_ERRORS:
            return True
        except SshError:
            return False  # it answered, if only to refuse
        return False

    return all(await asyncio.gather(*(silent(h) for h in asked)))


class FleetLost(Exception):
    """The canaries cut off with the fleet, before a verdict: the phase is to run again."""


async def lost_from_here(ctx: Context, failed: Sequence[str]) -> list[str]:
    """The hosts asked, when the network stopped every one of ``failed`` (the state's
    ``net_lost``) and none of those asked answers either (the fleet is lost from here);
    else none."""
    if not failed or any(h not in ctx.state.net_lost for h in failed):
        return []
    asked = witnesses(ctx, failed)
    return asked if await fleet_lost(ctx, asked) else []


def lost_said(
    cut_off: Sequence[str], asked: Sequence[str], wave: int | None, asking: bool = False
) -> str:
    """What the deployment says when it stops for a fleet lost from here: in a wave, or
    (``wave`` None) in its canary phase, before a verdict; ``asking``: the wave's question
    (``on_failure: ask``) waits for its answer."""
    where = f"in wave {wave}" if wave is not None else "in the canary phase"
    then = (
        "retry them (the question waits)"
        if asking
        else "promote deploys the cut-off hosts again and goes on"
        if wave is not None
        else "promote deploys the canaries again and analyses them"
    )
    return (
        f"{listed(cut_off, 8)} cut off {where} (connections refused or lost, commands "
        f"past their timeout), and none of {listed(asked, 3)}, asked now, answers either: this "
        "machine has lost the fleet (its network?), which says nothing of the release. "
        "Nothing is rolled back into it: the deployment stays open; once the hosts answer, "
        f"{then}, or roll it back"
    )


async def rollback_said(ctx: Context, broken: Sequence[str]) -> str:
    """What to do after a rollback that failed on ``broken``: fix them; or, when the
    network stopped every one and no other host answers either (or none is left to ask:
    it only says so), wait for the fleet from here."""
    if any(h not in ctx.state.net_lost for h in broken):
        return "fix the host(s) and roll back again"
    asked = witnesses(ctx, broken)
    if asked and not await fleet_lost(ctx, asked):
        return "fix the host(s) and roll back again"
    who = (
        f"none of {listed(asked, 3)}, asked now, answers either"
        if asked
        else "the network cut every one of them off, and no other host is left to ask"
    )
    return (
        f"{who}: this machine has lost the fleet (its network?); roll it back again once "
        "the hosts answer"
    )
