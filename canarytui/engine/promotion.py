"""Promotion: the release to the rest of the fleet in waves, within the failure budget.

Between waves the rollout stops for ``pause: manual`` (unless every wave was asked for),
sleeps a timed pause, or stops because an operator held it. A promote goes on from where
the rollout stopped: the hosts of the waves it stopped after that are not on the release
(failed there, within ``max_failures``) are deployed again first, then the next wave
(``upcoming``). A wave with failed hosts is judged by ``on_failure``: beyond
``max_failures`` (or a whole wave failed), ``rollback`` rolls everything back (never a
rollback to a known release: that would put back what it escapes) and ``halt`` stops;
``ask`` stops at the first failed host and asks (retry, skip, roll back, halt), answered
by another call (``Engine.promote(retry=...|skip=...)``). A wave stops starting hosts as
soon as its end would stop the rollout: the hosts in flight finish, the rest are left as
they were, so a release broken everywhere reaches ``max_failures + 1`` hosts, not a wave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Sequence

from canarytui import events as ev
from canarytui.engine import lockcheck, outage
from canarytui.engine.bus import Context
from canarytui.engine.holding import LockKeeper
from canarytui.engine.hooks import HookFailed, fire
from canarytui.engine.hosts import FAILED_STATES, HostWork
from canarytui.engine.plan import failures_said, rollback_kept, stop_said, waves_kept
from canarytui.engine.rollback import Rollback
from canarytui.textsafe import listed

# Hosts that count against max_failures: failed, unreachable, or skipped by an operator.
COUNTED_STATES = FAILED_STATES | {ev.HostState.SKIPPED}
# Hosts a wave no longer works on.
SETTLED_STATES = {ev.HostState.DEPLOYED, ev.HostState.SKIPPED}


class Promotion:
    """Runs the waves of the context's deployment; ``hold()`` stops after the wave in flight."""

    def __init__(
        self, ctx: Context, locks: LockKeeper, hosts: HostWork, rollback: Rollback
    ) -> None:
        self.ctx = ctx
        self.locks = locks
        self.hosts = hosts
        self.rollback = rollback
        self.all_waves = True  # what the last promotion was asked for (resume does it again)
        self._waves_said: int | None = None  # the deployment told its waves differ from the file's
        self._hold = asyncio.Event()

    @property
    def hold_requested(self) -> bool:
        return self._hold.is_set()

    def last_wave_in_flight(self) -> bool:
        """The wave promoting now is the last with hosts to do: a hold would stop nothing."""
        d, at = self.ctx.state.deployment, self.ctx.state.wave
        return d is not None and at is not None and not any(map(self._todo, d.plan[at:]))

    def hold(self) -> None:
        self._hold.set()

    def release_hold(self) -> None:
        self._hold.clear()

    def failed(self) -> list[str]:
        """Hosts of the deployment's waves that failed (or were unreachable) and wait."""
        d = self.ctx.state.deployment
        assert d is not None
        return self.ctx.state.in_states([h for w in d.plan for h in w], FAILED_STATES)

    def passed(self) -> int:
        """The waves the rollout has stopped after, awaiting promotion (0: none yet)."""
        state = self.ctx.state
        return (state.wave or 0) if state.phase is ev.Phase.AWAITING_PROMOTION else 0

    def upcoming(self, all_waves: bool) -> tuple[list[str], list[tuple[int, list[str]]]]:
        """What a promote would do now, as ``run`` does it: the hosts it deploys again
        first (of the waves it stopped after), then the waves it goes into with their hosts
        (the next one, or every one left)."""
        d = self.ctx.state.deployment
        assert d is not None
        passed, again, waves = self.passed(), [], []
        for index, wave in enumerate(d.plan, 1):
            todo = self._todo(wave)
            if index <= passed:
                again += todo
            elif todo:
                waves.append((index, todo))
                if not all_waves:
                    break
        return again, waves

    def stops_at(self, all_waves: bool, down: Collection[str]) -> int | None:
        """The wave where the promote ``upcoming`` describes would stop if the hosts
        ``down`` (unreachable now) still are when their turn comes (beyond ``max_failures``,
        counted as ``run`` counts them), the others going well; None: the budget holds."""
        d = self.ctx.state.deployment
        assert d is not None
        again, waves = self.upcoming(all_waves)
        going = set(again).union(*(hosts for _, hosts in waves))
        states = self.ctx.state.host_states
        for index, _hosts in waves:
            reached = [h for w in d.plan[:index] for h in w]
            counted = sum(
                1 for h in reached if (h in down if h in going else states.get(h) in COUNTED_STATES)
            )
            if counted > self.ctx.env.promote.max_failures:
                return index
        return None

    def _todo(self, wave: Sequence[str]) -> list[str]:
        states = self.ctx.state.host_states
        return [h for h in wave if states.get(h) not in SETTLED_STATES]

    def skippable(self) -> int:
        """How many more hosts may be skipped before max_failures is exceeded."""
        d = self.ctx.state.deployment
        assert d is not None
        skipped = self.ctx.state.in_states([h for w in d.plan for h in w], {ev.HostState.SKIPPED})
        return max(0, self.ctx.env.promote.max_failures - len(skipped))

    def skip_refused(self, deployment: int, names: list[str], failed: list[str]) -> str | None:
        """Why these hosts cannot be skipped (None: they can): only hosts that failed
        during promotion, and no more than ``max_failures`` in all."""
        wrong = [n for n in names if n not in failed]
        if wrong:
            states = self.ctx.state.host_states
            said = ", ".join(f"{n} ({states.get(n, 'not in the file')})" for n in wrong)
            return f"cannot skip {said}: only hosts that failed during promotion can be skipped" + (
                f" (now: {listed(failed, 8)})" if failed else " (none has)"
            )
        if len(set(names)) > self.skippable():
            return (
                f"skipping {listed(names, 8)} would leave more than max_failures "
                f"({self.ctx.env.promote.max_failures}) hosts out of deployment #{deployment}: "
                "retry them or roll back"
            )
        return None

    def skip(self, names: Sequence[str]) -> None:
        """Leave failed hosts as they are and go on without them (checked by the engine)."""
        for name in names:
            self.ctx.bus.host(
                name,
                ev.HostState.SKIPPED,
                detail=f"skipped by {self.ctx.user}: left as it is, excluded from this release",
            )

    async def run(
        self, all_waves: bool, decided: bool, action: str = "promote", pauses: bool = True
    ) -> ev.Outcome:
        """The next wave (or every wave); ``decided``: an operator asked for it;
        ``pauses``: False for a rollback to a known version (no timed pause)."""
        ctx = self.ctx
        state = ctx.state
        d = state.deployment
        assert d is not None
        if decided:
            ctx.bus.decision(action, "through every wave" if all_waves else "next wave")
            await self.locks.ensure()
            self._say_down(all_waves)
            said = waves_kept(d.id, d.plan, ctx.env.promote.waves)
            if said is not None and self._waves_said != d.id:  # once a deployment
                self._waves_said = d.id
                ctx.bus.notice("info", said)
        self.all_waves = all_waves
        promote = ctx.env.promote
        budget = promote.max_failures
        total = len(d.plan)
        passed = self.passed()
        for index, wave in enumerate(d.plan, 1):
            todo = self._todo(wave)
            if not todo:
                continue
            ctx.bus.phase(ev.Phase.PROMOTING, wave=index)
            if ctx.env.traffic.wave_start:  # users move next: a take-over stops it first
                await lockcheck.still_ours(self.locks, todo[0])
            try:
                await fire(ctx, "wave_start", todo, index)
            except HookFailed as exc:
                return self._halt_for_hook(exc, index)
            ctx.bus.emit(ev.WaveStarted(wave=index, waves=total, hosts=todo, deployment=d.id))
            state.watched = set(todo)
            # Counted over the waves reached so far (a host down later counts at its turn).
            reached = [h for w in d.plan[:index] for h in w]
            ok = await self.hosts.deploy_many(todo, d.version, self._within(reached, todo))
            failed = [h for h, good in ok.items() if good is False]
            waiting = [h for h, good in ok.items() if good is None]
            ctx.bus.emit(
                ev.WaveFinished(
                    wave=index,
                    waves=total,
                    succeeded=[h for h in todo if ok[h]],
                    failed=failed,
                    not_started=waiting,
                    deployment=d.id,
                )
            )
            state.watched = set()
            await self.locks.stop_if_taken(d.token)
            asked = state.in_states(reached, FAILED_STATES) if promote.on_failure == "ask" else []
            if asked:
                lost = await outage.lost_from_here(ctx, failed)
                if lost:  # the question waits, as ever: retrying once back is the answer
                    ctx.bus.notice("error", outage.lost_said(failed, lost, index, asking=True))
                return self._ask(index, total, asked, len(waiting))
            counted = state.in_states(reached, COUNTED_STATES)
            # Not one host of the wave took it (Ansible stops when a whole batch fails); one
            # host alone failing is what max_failures tolerates, unless no host runs it.
            whole = bool(failed) and not any(ok[h] for h in todo) and len(counted) <= budget
            whole = whole and (
                len(todo) > 1 or not state.in_states(d.planned_hosts, {ev.HostState.DEPLOYED})
            )
            if len(counted) > budget or whole:
                which = self._by_state(counted)
                said = failures_said(index, whole, counted, budget, which)
                ctx.bus.notice("error", said + _also(len(waiting)))
                lost = await outage.lost_from_here(ctx, failed)
                if lost:
                    ctx.bus.notice("error", outage.lost_said(failed, lost, index))
                elif promote.on_failure == "rollback" and d.kind == "rollback":
                    ctx.bus.notice("error", rollback_kept(d.version))
                elif promote.on_failure == "rollback":
                    limit = "a whole wave" if whole else f"max_failures {budget}"
                    why = f"after {which} ({limit})"
                    outcome = ev.Outcome.PROMOTION_ROLLED_BACK
                    return await self.rollback.run(outcome, decided=False, why=why)
                ctx.bus.phase(ev.Phase.HALTED, wave=index)
                return ev.Outcome.HALTED
            if index == total:
                break
            if index <= passed and not self._hold.is_set():
                continue  # stopped after it already: on to the next wave
            if not await self._between_waves(index, all_waves, pauses):
                ctx.bus.phase(ev.Phase.AWAITING_PROMOTION, wave=index)
                return ev.Outcome.PAUSED
        return await self._complete()

    def _say_down(self, all_waves: bool) -> None:
        """Before a promote: the hosts it goes to whose locks could not be taken again
        (unreachable now), if they are more than ``max_failures`` tolerates, and the wave
        where the rollout would stop if they stay so (the UI asked with it; the command
        line says it here, before anything changes)."""
        d = self.ctx.state.deployment
        assert d is not None
        again, waves = self.upcoming(all_waves)
        going = again + [h for _, hosts in waves for h in hosts]
        down = [h for h in going if h not in self.locks.holding]
        stop = self.stops_at(all_waves, set(down)) if down else None
        if stop is not None:
            states = self.ctx.state.host_states
            earlier = [h for w in d.plan[:stop] for h in w if h not in going]
            counted = sum(1 for h in earlier if states.get(h) in COUNTED_STATES)
            said = stop_said(down, self.ctx.env.promote, stop, len(d.plan), d.kind, counted)
            self.ctx.bus.notice("warning", said)

    def _by_state(self, names: Sequence[str]) -> str:
        """``names`` grouped by their state: "web-05, web-06 unreachable; web-07 failed"."""
        states = self.ctx.state.host_states
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(states[name].value, []).append(name)
        return "; ".join(f"{listed(hosts, 8)} {state}" for state, hosts in groups.items())

    def _within(self, reached: Sequence[str], todo: Sequence[str]) -> Callable[[int], bool]:
        """Whether one more host of the wave may start, given how many of it failed so far:
        not once the wave's end would stop the rollout anyway (beyond ``max_failures``;
        with ``on_failure: ask``, the first failure). The hosts in flight finish."""
        promote = self.ctx.env.promote
        going = set(todo)
        earlier = [h for h in reached if h not in going]  # earlier waves; skipped hosts
        if promote.on_failure == "ask":
            before = len(self.ctx.state.in_states(earlier, FAILED_STATES))
            return lambda failed: before + failed == 0
        before = len(self.ctx.state.in_states(earlier, COUNTED_STATES))
        return lambda failed: before + failed <= promote.max_failures

    async def _between_waves(self, index: int, all_waves: bool, pauses: bool) -> bool:
        """Wait as the file says before the next wave; False: stop here (manual or held)."""
        ctx = self.ctx
        pause = ctx.env.promote.pause if pauses else 0.0
        if self._hold.is_set():
            self._held(index)
            return False
        if pause is None:
            return all_waves
        if pause > 0:
            ctx.bus.notice(
                "info", f"pause {_duration(pause)} before wave {index + 1} (promote.pause)"
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._hold.wait()
            if self._hold.is_set():
                self._held(index)
                return False
        return True

    def _held(self, index: int) -> None:
        who = self.ctx.state.held[0] if self.ctx.state.held else self.ctx.user
        self.ctx.bus.notice(
            "warning", f"held after wave {index} by {who}: resume or promote it when ready"
        )

    def _ask(self, index: int, total: int, failed: list[str], waiting: int) -> ev.Outcome:
        ctx = self.ctx
        d = ctx.state.deployment
        assert d is not None
        recorded = ctx.journal.hosts(d.id)
        failures = []
        for name in failed:
            h = recorded.get(name)
            failures.append(
                ev.HostFailure(
                    host=name,
                    step=(h.last_step if h else None) or "",
                    exit_status=h.exit_status if h else None,
                    output=((h.output if h else None) or "")[-2000:],
                    detail=ctx.state.details.get(name, ""),
                )
            )
        ctx.bus.phase(ev.Phase.HALTED, wave=index)
        ctx.bus.emit(
            ev.FailureQuestion(
                wave=index,
                waves=total,
                failures=failures,
                skippable=self.skippable(),
                waiting=waiting,
                deployment=d.id,
            )
        )
        ctx.bus.notice(
            "error",
            f"{listed(failed, 8)} failed in wave {index} (on_failure: ask){_also(waiting)}: "
            "retry, skip, roll back or leave it halted",
        )
        return ev.Outcome.HALTED

    def _halt_for_hook(self, exc: HookFailed, index: int) -> ev.Outcome:
        self.ctx.bus.phase(ev.Phase.HALTED, wave=index)
        self.ctx.bus.notice(
            "error", f"{exc}; wave {index} was not started: fix it, then promote or roll back"
        )
        return ev.Outcome.HALTED

    async def _complete(self) -> ev.Outcome:
        ctx = self.ctx
        d = ctx.state.deployment
        assert d is not None
        everyone = d.canaries + [h for w in d.plan for h in w]
        done = ctx.state.in_states(everyone, {ev.HostState.DEPLOYED})
        skipped = ctx.state.in_states(everyone, {ev.HostState.SKIPPED})
        summary = f"{d.version} on {len(done)} of {len(everyone)} hosts" + (
            f" ({len(skipped)} skipped: {', '.join(skipped)})" if skipped else ""
        )
        # Hosts added to the file after it started are not in its plan: left as they are.
        planned = set(everyone)
        unplanned = [h for h in ctx.env.host_names if h not in planned]
        if d.scope is not None:
            # Limited to some hosts (``deploy --hosts``): the others were left out on purpose.
            summary += f" (limited to {d.scope}: {len(unplanned)} other(s) left as they are)"
        elif unplanned:
            one = len(unplanned) == 1
            summary += f"; not in its plan: {listed(unplanned, 8)} (added to the file since)"
            ctx.bus.notice(
                "warning",
                f"{listed(unplanned, 8)}: in {ctx.env.path} but not in deployment #{d.id}'s "
                f"plan (added since it started): left on the version "
                f"{'it runs' if one else 'each runs'}; deploy {d.version} again to include "
                f"{'it' if one else 'them'}",
            )
        ctx.bus.phase(ev.Phase.COMPLETE)
        ctx.bus.emit(
            ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary=summary, deployment=d.id)
        )
        try:
            await fire(ctx, "complete", everyone)
        except HookFailed as exc:
            ctx.bus.notice("error", f"{exc} (the release itself is complete)")
        await self.locks.release(d.token)
        return ev.Outcome.COMPLETE


def wave_stopped(waiting: int) -> str:
    """What is said of a wave that stopped before ``waiting`` of its hosts started."""
    return f"the wave stopped there: {waiting} of its hosts not started"


def _also(waiting: int) -> str:
    """What a notice adds when the wave stopped before some of its hosts started."""
    return f"; {wave_stopped(waiting)}" if waiting else ""


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
