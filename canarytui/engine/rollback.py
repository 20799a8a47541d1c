"""Rolling a deployment back: every host it may have reached goes back to its own previous."""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping

from canarytui import events as ev
from canarytui.engine import outage, takeover
from canarytui.engine.bus import Context
from canarytui.engine.holding import LockKeeper
from canarytui.engine.hooks import HookFailed, fire
from canarytui.engine.hosts import TOUCHED_STATES, HostWork, may_hold_release
from canarytui.journal import DeploymentRecord, HostRecord
from canarytui.textsafe import listed


def rolled_back_by(
    record: DeploymentRecord, hosts: Mapping[str, HostRecord]
) -> dict[str, str | None]:
    """What a rollback of ``record`` would put back, as its journal's ``hosts`` say: each
    host it may have reached (in the plan's order), with the version it ran before."""
    return {
        h: hosts[h].previous
        for h in record.planned_hosts
        if h in hosts and may_hold_release(hosts[h].state, hosts[h].previous)
    }


def nothing_to_roll_back(record: DeploymentRecord | None) -> str | None:
    """Why a rollback of ``record`` (the open or last deployment) is refused: there is none
    in this journal, it is rolled back already, or ended without reaching the rest (its
    canary failed); None if not."""
    if record is None:
        return (
            "nothing to roll back: this journal has no deployment of this environment "
            "(another machine's: canarytui status shows it, rollback --take-over)"
        )
    if record.phase == ev.Phase.ROLLED_BACK.value or (
        not record.is_open and record.outcome != ev.Outcome.COMPLETE.value
    ):
        how = _ENDED.get(record.outcome or "", f"ended {record.outcome or record.phase_label}")
        return f"nothing to roll back: deployment #{record.id} of {record.version} {how}"
    if record.kind == "rollback":
        # The way out of a bad release, undone by reflex, would put that release back
        # (halted or stopped mid-way too: promote finishes it).
        did = "is putting" if record.is_open else "put"
        rest = "promote finishes putting it back; " if record.is_open else ""
        return (
            f"deployment #{record.id} {did} {record.version} back (rollback --to): rolling it "
            "back would put back the release it escaped, everywhere and without a canary; "
            f"{rest}a release goes forward with its canary (deploy), or in waves (rollback "
            "--to VERSION)"
        )
    return None


_ENDED = {
    ev.Outcome.ROLLED_BACK.value: "is rolled back already",
    ev.Outcome.CANARY_FAILED.value: "was rolled back when its canary failed",
    ev.Outcome.PROMOTION_ROLLED_BACK.value: "was rolled back when its promotion failed",
    ev.Outcome.ABORTED.value: "was stopped and rolled back",
}


class MovedOn(Exception):
    """A finished deployment was not rolled back: its hosts run a later release now."""


class Rollback:
    """Rolls the context's deployment back and closes it (or halts where a host refuses)."""

    def __init__(self, ctx: Context, locks: LockKeeper, hosts: HostWork) -> None:
        self.ctx = ctx
        self.locks = locks
        self.hosts = hosts

    async def run(self, outcome: ev.Outcome, decided: bool, why: str = "") -> ev.Outcome:
        """Roll back; ``decided``: an operator asked (recorded, and the locks taken over);
        ``why``: what made the engine roll back, said after the outcome's summary."""
        ctx = self.ctx
        state = ctx.state
        d = state.deployment
        assert d is not None
        if decided:
            # A deployment taken over from another machine's locks has no phase here.
            taken = state.phase is ev.Phase.IDLE and self.locks.takeover_note is not None
            ctx.bus.decision("rollback", "as taken over" if taken else f"from {state.phase.value}")
            finished = not d.is_open
            # A finished one's rollback stopped before any host began (while it locked
            # them again): its locks were freed meanwhile, the fleet may have moved on.
            relocked = finished or (
                state.phase is ev.Phase.ROLLING_BACK
                and not d.rollback_begun
                and self._rolled_back_once_complete(d.id)
            )
            if finished:  # which one, before anything: the last may be hours old
                since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(d.finished_at or 0))
                ctx.bus.notice(
                    "info",
                    f"deployment #{d.id} of {d.version}, complete since {since} (by {d.user} on "
                    f"{d.machine}): rolling it back",
                )
                ctx.journal.reopen(d.id)
            # Said before the locks are taken again (seconds at a thousand hosts, when this
            # process does not hold them): rolling back from the decision on, not "complete".
            ctx.bus.phase(ev.Phase.ROLLING_BACK)
            # An open deployment's hosts are locked each at its turn (``late``): a hung one
            # holds only itself; a finished one's first, as what they run is checked then.
            try:
                found = await self.locks.ensure(set(self._targets()) if relocked else set())
            except Exception as exc:
                if finished:  # refused (a lock held): closed again as it was, unchanged
                    await self._close_again(f"refused: {exc}", d.summary or d.version)
                raise
            if relocked:
                await self._refuse_if_moved_on(found)
        else:
            ctx.bus.phase(ev.Phase.ROLLING_BACK)
        order = d.planned_hosts
        targets = self._targets()
        # Users go back to the stable release first (a rollback is never blocked by it);
        # with the release on every host they would have nowhere to go: told once back.
        # Nothing of the release on any host: there is nothing to tell, unless the
        # balancer was told a share of it (a wave whose hosts were all unreachable).
        everywhere = all(state.versions.get(h) == d.version for h in ctx.env.host_names)
        told = ctx.journal.last_traffic(d.id) or {"phase": "rolled_back", "ok": True}
        if targets and not everywhere:
            await self._tell_traffic(order)
        elif not targets and (told["phase"] != "rolled_back" or not told["ok"]):
            await self._tell_traffic(order)
        elif not targets:
            # (not "no host runs it": other hosts may, from before or outside what it holds)
            said = f"nothing of {d.version} to put back here: the traffic hook is not run"
            ctx.bus.notice("info", said)
        # Hosts the release never reached are simply idle again, in the journal too: now,
        # not once every host is back (a rollback that halts left them "pending", as if
        # the release were still to come to them).
        idle = state.in_states(order, {ev.HostState.PENDING})
        ctx.bus.hosts((name, ev.HostState.IDLE, None, "") for name in idle)
        results = await self.hosts.rollback_many(targets)
        if self.locks.takeover_note is not None and idle:  # (a take-over, this process's)
            late = await self._reached_meanwhile(idle)
            results.update(late)
            targets += list(late)
        await self.locks.stop_if_taken(d.token)
        broken = [h for h in targets if not results[h]]
        if broken:
            then = await outage.rollback_said(ctx, broken)
            said = f"rollback failed on {listed(broken, 8)}: the deployment stays open; {then}"
            ctx.bus.phase(ev.Phase.HALTED)
            ctx.bus.notice("error", said)
            return ev.Outcome.ERROR
        if targets and everywhere:
            await self._tell_traffic(order)
        ctx.bus.phase(ev.Phase.ROLLED_BACK)
        # Every host it rolled back: a rollback halted before has done some of them.
        back = state.in_states(order, {ev.HostState.ROLLED_BACK})
        done = (
            f"{len(back)} host(s) rolled back from {d.version}"
            if back
            else f"{d.version} had reached no host: nothing to put back"
        )
        summary = done + (f" {why}" if why else "")
        ctx.bus.emit(ev.DeploymentFinished(outcome=outcome, summary=summary, deployment=d.id))
        await self.locks.release(d.token)
        return outcome

    async def _reached_meanwhile(self, idle: list[str]) -> dict[str, bool]:
        """A take-over's hosts the release had not reached as it began, asked again once
        the others are back: the first machine, still running, may have changed some
        before it found the take-over's note. Those on the release now are rolled back."""
        d = self.ctx.state.deployment
        assert d is not None
        found, before = await takeover.inspect(self.ctx, idle), self.ctx.state.previous
        # (a host that ran the release before the deployment was not changed by it)
        late = [h for h in idle if found[h].current == d.version != before.get(h)]
        if not late:
            return {}
        self.ctx.bus.notice(
            "warning",
            f"{listed(late, 8)} run(s) {d.version} now, changed by its first machine after "
            "the take-over began: rolled back too",
        )
        changed = "changed by the first machine after the take-over began"
        self.ctx.bus.hosts((h, ev.HostState.FAILED, d.version, changed) for h in late)
        return await self.hosts.rollback_many(late)

    async def _tell_traffic(self, order: list[str]) -> None:
        try:
            await fire(self.ctx, "rolled_back", order)
        except HookFailed as exc:
            self.ctx.bus.notice("error", f"{exc}: the hosts are rolled back anyway")

    def _targets(self) -> list[str]:
        """The hosts the rollback puts back: those the deployment may have reached."""
        d = self.ctx.state.deployment
        assert d is not None
        # (a host skipped that it never locked: "roll it back by hand" was untrue)
        state = self.ctx.state
        return [
            h
            for h in d.planned_hosts
            if may_hold_release(state.host_states.get(h, ""), state.previous.get(h))
        ]

    def _rolled_back_once_complete(self, deployment: int) -> bool:
        """Its rollback was decided once it had completed (reopened for it)."""
        decisions = self.ctx.journal.decisions(deployment)
        complete = f"from {ev.Phase.COMPLETE.value}"  # as ``run`` records the decision
        return any(x["action"] == "rollback" and x["detail"] == complete for x in decisions)

    async def _close_again(self, why: str, summary: str) -> None:
        """A finished deployment's rollback that changed nothing: its locks freed, the
        deployment closed again as it was (complete), the refusal in its decisions."""
        ctx = self.ctx
        d = ctx.state.deployment
        assert d is not None
        await self.locks.release(d.token)
        ctx.bus.decision("not rolled back", why)
        ctx.bus.phase(ev.Phase.COMPLETE)
        ctx.bus.emit(
            ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary=summary, deployment=d.id)
        )

    async def _refuse_if_moved_on(self, found: dict[str, str]) -> None:
        """A finished deployment's hosts run neither its release nor what they ran before
        it: the fleet moved on since (a deployment from another machine's journal), and
        rolling it back would put an older release over a newer one. Then nothing is
        changed: the locks are freed, the deployment is closed again as it was."""
        ctx = self.ctx
        state = ctx.state
        d = state.deployment
        assert d is not None
        touched = set(state.in_states(list(found), TOUCHED_STATES))
        moved = {
            name: version
            for name, version in found.items()
            if name in touched and version not in (d.version, state.previous.get(name))
        }
        if not moved:
            return
        names = sorted(moved)
        hosts = listed(names, 3)
        runs = ", ".join(sorted(set(moved.values()))[:3])
        why = (
            f"{hosts} run{'s' if len(names) == 1 else ''} {runs} now, not {d.version}: the "
            f"fleet moved on since deployment #{d.id} (a deployment from another machine?)"
        )
        await self._close_again(why, f"{d.summary or d.version}; not rolled back later: {why}")
        for name, version in moved.items():  # shown as discovery shows a host at rest
            state_now = state.host_states.get(name, ev.HostState.IDLE)
            ctx.bus.emit(ev.HostUpdate(host=name, state=state_now, version=version))
        path = shlex.quote(str(ctx.env.path))
        raise MovedOn(
            f"not rolled back: {why}. Nothing was changed; to put a release back on every "
            f"host: canarytui rollback {path} --to VERSION (b in the UI's history)"
        )
