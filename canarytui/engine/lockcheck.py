"""Before a held host is changed, its lock checked still the deployment's, in the same
round trip as the change: taken again when this process did not take it (``ensure``),
else checked, by the function the lock's own script defined in the host's kept shell
(``lockscripts.CHECK_CALL``). A colleague may have taken the deployment over meanwhile."""

from __future__ import annotations

from canarytui.engine import locks, lockscripts
from canarytui.engine.holding import LockKeeper
from canarytui.engine.lockerrors import LockRefused
from canarytui.ssh import OwnScript, SshError


def check(keeper: LockKeeper, name: str, changing: bool = True) -> OwnScript | None:
    """What a host's next script runs first: its lock taken again if unchecked
    (``ensure``); else, if it changes the host, checked still ours (a colleague may have
    taken it over meanwhile). Either fails the script unless the lock is ours."""
    d, again = keeper.ctx.state.deployment, name in keeper.unchecked
    if d is None or not (again or (changing and name in keeper.holding)):
        return None
    shell = keeper.shells.get(name)
    # (a shell opened again since, its session lost: the check's whole text again)
    if not again and shell is not None and shell.alive:
        if keeper.checks.get(name) == (shell, shell.opened):
            return lockscripts.CHECK_CALL
    owner, env = keeper.owner(d.token, d.id, d.version), keeper.ctx.env
    return lockscripts.acquire_command(
        env.app, env.name, owner, rewrite=again, taking=keeper.taking
    )


class Unchecked(LockRefused):
    """The short check reached a session that does not know it (the host's shell was lost
    and opened again by that very script): nothing ran; the caller checks again whole."""


def checked(
    keeper: LockKeeper, name: str, stdout: str, status: int | None = None
) -> LockRefused | None:
    """A host's check replied (``status``: its exit status): None if the lock is the
    deployment's, else why the host must be left as it is (a take-over's note is kept in
    ``keeper.taken``), or ``Unchecked``: the short check was unknown in its session."""
    reply = lockscripts.parse_reply(stdout)
    if status == 127 and not any(reply.has(mark) for mark in lockscripts.MARKS):
        keeper.checks.pop(name, None)  # (the next check: its whole text)
        return Unchecked("not checked: its session did not know the check")
    if reply.has("LOCKED"):
        keeper.unchecked.discard(name)
        return None
    if reply.has("TAKEN"):
        keeper.taken = keeper.taken or reply.owner("TAKEN")
        return LockRefused("left as it is: another machine rolled it back", taken=True)
    if reply.has("HELD"):
        keeper.unchecked.discard(name)
        keeper.holding.discard(name)
        owner = locks.describe_owner(reply.owner())
        return LockRefused(f"not changed: its lock is held by {owner}")
    if reply.has("UNLOCKABLE"):
        return LockRefused(f"not changed: {lockscripts.why_unlockable(reply)}")
    return LockRefused("not changed: its reply to the lock check could not be read")


async def still_ours(keeper: LockKeeper, name: str) -> None:
    """Before users are moved (a wave's traffic hook): one host's lock checked, so that a
    take-over found there stops the action first (``TakenOver``), the balancer untold."""
    d, script = keeper.ctx.state.deployment, check(keeper, name)
    if d is None or script is None:
        return
    try:
        result = await keeper.ctx.fleet.run(name, script, shell=keeper.shells.get(name))
    except SshError:
        return  # (unreachable: its wave says so)
    refused = checked(keeper, name, result.stdout, result.exit_status)
    if isinstance(refused, Unchecked) and script == lockscripts.CHECK_CALL:
        await still_ours(keeper, name)  # (once: its whole text now)
    elif refused is not None and refused.taken:
        await keeper.stop_if_taken(d.token)
