"""Promotion: the release to the rest of the fleet in waves, within the failure budget."""

from __future__ import annotations

import asyncio

from canarytui import events as ev
from canarytui.engine.bus import Context
from canarytui.engine.holding import LockKeeper
from canarytui.engine.hosts import FAILED_STATES, HostWork
from canarytui.engine.rollback import Rollback


class Promotion:
    """Runs the waves of the context's deployment; ``pause_requested`` stops after the next."""

    def __init__(
        self, ctx: Context, locks: LockKeeper, hosts: HostWork, rollback: Rollback
    ) -> None:
        self.ctx = ctx
        self.locks = locks
        self.hosts = hosts
        self.rollback = rollback
        self.pause_requested = False

    async def run(self, all_waves: bool, decided: bool) -> ev.Outcome:
        """The next wave (or every wave); ``decided``: an operator asked for it."""
        ctx = self.ctx
        state = ctx.state
        d = state.deployment
        assert d is not None
        if decided:
            ctx.bus.decision("promote", "through every wave" if all_waves else "next wave")
            await self.locks.ensure()
        self.pause_requested = False
        promote = ctx.env.promote
        failures = 0
        budget = promote.max_failures
        total = len(d.plan)
        for index, wave in enumerate(d.plan, 1):
            todo = [h for h in wave if state.host_states.get(h) != ev.HostState.DEPLOYED]
            if not todo:
                continue
            ctx.bus.phase(ev.Phase.PROMOTING, wave=index)
            ctx.bus.emit(ev.WaveStarted(wave=index, waves=total, hosts=todo, deployment=d.id))
            state.watched = set(todo)
            ok = await self.hosts.deploy_many(todo, d.version)
            failed = [h for h, good in ok.items() if not good]
            # Counted over the waves reached so far: a host down in a later wave
            # counts when its turn comes (it may be back by then).
            failures = sum(len(state.in_states(w, FAILED_STATES)) for w in d.plan[:index])
            ctx.bus.emit(
                ev.WaveFinished(
                    wave=index,
                    waves=total,
                    succeeded=[h for h in todo if ok[h]],
                    failed=failed,
                    deployment=d.id,
                )
            )
            state.watched = set()
            if failures > budget:
                ctx.bus.notice(
                    "error",
                    f"{failures} host(s) failed during promotion "
                    f"(max_failures {budget}): {', '.join(failed)}",
                )
                if promote.on_failure == "rollback":
                    return await self.rollback.run(ev.Outcome.PROMOTION_ROLLED_BACK, decided=False)
                ctx.bus.phase(ev.Phase.HALTED, wave=index)
                return ev.Outcome.HALTED
            if index == total:
                break
            if self.pause_requested or (promote.pause is None and not all_waves):
                ctx.bus.phase(ev.Phase.AWAITING_PROMOTION, wave=index)
                return ev.Outcome.PAUSED
            if promote.pause:
                await asyncio.sleep(promote.pause)
        everyone = len(d.canaries) + sum(map(len, d.plan))
        summary = f"{d.version} on {everyone - failures} of {everyone} hosts"
        ctx.bus.phase(ev.Phase.COMPLETE)
        ctx.bus.emit(
            ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary=summary, deployment=d.id)
        )
        await self.locks.release(d.token)
        return ev.Outcome.COMPLETE
