"""Work on one host: its steps with the hooks around them, the health gate, its rollback.

Every outcome of a host (a step that fails, a host that is lost or hangs) is a host
state, reported as an event; only an error that is not about the host escapes, and the
supervised fan-out (``each_host``) then stops the other hosts' work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from canarytui import events as ev
from canarytui.config import Step, render
from canarytui.engine import lockcheck, lockscripts
from canarytui.engine.bus import Context
from canarytui.engine.holding import LockKeeper
from canarytui.engine.lockerrors import LockRefused
from canarytui.engine.supervise import each_host
from canarytui.ssh import CommandLost, CommandResult, CommandTimeout, SshError

# A host that answers its health check within this many tries after a deploy is healthy.
HEALTH_GATE_TRIES = 3
# A host whose connection drops during its rollback is rolled back again, this many tries in
# all, this long apart (the way out of a bad release is not left to a flaky network).
ROLLBACK_TRIES = 3
ROLLBACK_RETRY_AFTER = 1.0

FAILED_STATES = {ev.HostState.FAILED, ev.HostState.UNREACHABLE}
# States in which the release may have reached the host: those are rolled back.
TOUCHED_STATES = {
    ev.HostState.DEPLOYING,
    ev.HostState.DEPLOYED,
    ev.HostState.FAILED,
    ev.HostState.ROLLING_BACK,
    ev.HostState.ROLLBACK_FAILED,
    ev.HostState.SKIPPED,  # left as it was, but it may hold part of the release
}


def may_hold_release(state: str, previous: str | None) -> bool:
    """Whether a host in ``state`` (a ``HostState``, or its journal's text) may run some of
    the release, and so is rolled back: touched, unless it was skipped without ever being
    locked (down since the start: no ``previous`` known), which never ran any of it."""
    return state in TOUCHED_STATES and not (state == ev.HostState.SKIPPED and not previous)


class NotStarted(Exception):
    """A host's turn came after its wave was stopped: nothing was sent to it."""


class StepsFailed(Exception):
    """An SSH error during a host's steps; ``touched``: some step had ended before it."""

    def __init__(self, error: SshError, touched: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.touched = touched


class HostWork:
    """Deploys and rolls back hosts, one connection each, under the deployment's locks."""

    def __init__(self, ctx: Context, locks: LockKeeper) -> None:
        self.ctx = ctx
        self.locks = locks

    async def deploy_many(
        self, names: Sequence[str], version: str, within: Callable[[int], bool] | None = None
    ) -> dict[str, bool | None]:
        """Deploy to every host at once (``max_parallel`` at a time): True deployed, False
        failed, None not started. ``within(n)``, with ``n`` of these hosts failed so far,
        says whether one more may start; asked as each host's turn comes (its
        ``max_parallel`` slot), so a wave stops changing hosts once its failures are beyond
        the budget: the hosts in flight finish, the others are left as they are."""
        failed = 0

        def go() -> bool:
            return self.locks.untaken() and (within is None or within(failed))

        async def one(name: str) -> bool | None:
            nonlocal failed
            result = await self.deploy(name, version, go)
            failed += result is False
            return result

        # Hosts marked unreachable take the first slots: a connect timeout passes while the
        # others are worked on, and one still down counts before the others change.
        results = await each_host(self.ctx.state.unreachable_first(names), one)
        return {name: results[name] for name in names}

    async def rollback_many(self, names: Sequence[str]) -> dict[str, bool]:
        """Roll every host back at once: True rolled back; False failed, or left as it is
        once a host's lock check found the deployment rolled back by another machine."""
        results = await each_host(self.ctx.state.unreachable_first(names), self.rollback)
        return {name: results[name] for name in names}

    async def deploy(
        self, name: str, version: str, go: Callable[[], bool] | None = None
    ) -> bool | None:
        """Deploy to one host: True deployed, False failed; None: ``go()`` said no when its
        turn came, and nothing was sent to it."""
        ctx = self.ctx
        touched = False
        before = ctx.state.host_states.get(name, ev.HostState.PENDING)
        if go is not None and not go():
            return None
        try:
            # Never change a host without holding its lock (it may have been unreachable
            # when the deployment started, or this process continues another's).
            if name not in self.locks.holding and not await self.locks.late(name):
                return False
            values = ctx.env.placeholders(name, version, ctx.state.previous.get(name))
            # The steps (hooks around them) and a first health probe go as one script
            # down the host's shell: one round trip, no new session. A probe that fails
            # there is not a failure yet: the gate's own tries follow. The host is
            # deploying from when it has its max_parallel slot (journaled before anything
            # is sent); until then it waits as it was.
            plan = self.commands(ctx.env.deploy.steps, values)
            probe = (render(ctx.env.health.check, values), ctx.env.health.timeout)
            ok, healthy = await self.run_steps(
                name, plan, probe=probe, state=ev.HostState.DEPLOYING, go=go
            )
            touched = True
            if not ok or not (healthy or await self.health_gate(name, values)):
                return False
        except NotStarted:
            return None
        except LockRefused as exc:
            return self._refused(name, before, exc, ev.HostState.FAILED)
        except StepsFailed as exc:
            # Lost mid-way, the release may be half there: FAILED gets it rolled back.
            return self._lost(name, exc.error, exc.touched)
        except SshError as exc:
            return self._lost(name, exc, touched)
        ctx.bus.host(name, ev.HostState.DEPLOYED, version=version)
        return True

    def _lost(self, name: str, exc: SshError, touched: bool) -> bool:
        """A host an SSH error stopped: failed if the release may be half there (a step
        had ended; lost or timed out mid-way), else unreachable; False."""
        touched = touched or isinstance(exc, CommandTimeout | CommandLost)
        state = ev.HostState.FAILED if touched else ev.HostState.UNREACHABLE
        self.ctx.bus.lost(name, state, exc)
        return False

    async def rollback(self, name: str) -> bool:
        """Roll one host back to its previous release: True rolled back. A connection
        dropped during its rollback (a flaky network) is tried again, ``ROLLBACK_TRIES``
        times in all: the rollback's steps run again from the start, as an operator's
        "roll back again" would run them; a step that fails or hangs is not."""
        ctx = self.ctx
        previous = ctx.state.previous.get(name)
        if not previous:
            ctx.bus.host(
                name,
                ev.HostState.ROLLBACK_FAILED,
                detail="no previous version known for this host: roll it back by hand",
            )
            return False
        steps, version_is_previous = ctx.env.deploy.rollback_steps()
        d = ctx.state.deployment
        assert d is not None
        values = ctx.env.placeholders(
            name, previous if version_is_previous else d.version, previous
        )
        before = ctx.state.host_states.get(name, ev.HostState.PENDING)
        for attempt in range(1, ROLLBACK_TRIES + 1):
            try:
                if name not in self.locks.holding and not await self.locks.late(
                    name, ev.HostState.ROLLBACK_FAILED
                ):
                    return False
                plan = self.commands(steps, values, "rollback")
                ok, _ = await self.run_steps(
                    name,
                    plan,
                    failed=ev.HostState.ROLLBACK_FAILED,
                    state=ev.HostState.ROLLING_BACK,
                    go=self.locks.untaken,
                )
                if not ok:
                    return False
                break
            except NotStarted:
                return False
            except LockRefused as exc:
                return self._refused(name, before, exc, ev.HostState.ROLLBACK_FAILED) or False
            except (StepsFailed, SshError) as exc:
                error = exc.error if isinstance(exc, StepsFailed) else exc
                if attempt < ROLLBACK_TRIES and isinstance(error, CommandLost):
                    if name in self.locks.holding:  # its lock checked again, in the same trip
                        self.locks.unchecked.add(name)
                    ctx.bus.notice(
                        "warning",
                        f"{name}: its connection dropped during its rollback: rolling it "
                        f"back again ({attempt + 1} of {ROLLBACK_TRIES} tries) in "
                        f"{ROLLBACK_RETRY_AFTER:g}s",
                        host=name,
                    )
                    await asyncio.sleep(ROLLBACK_RETRY_AFTER)
                    continue
                ctx.bus.lost(name, ev.HostState.ROLLBACK_FAILED, error)
                return False
        ctx.bus.host(name, ev.HostState.ROLLED_BACK, version=previous)
        return True

    def _refused(
        self, name: str, before: ev.HostState, exc: LockRefused, failed: ev.HostState
    ) -> bool | None:
        """A host whose lock check failed: as it was after a take-over (None: not started),
        else ``failed`` (False)."""
        if exc.taken:
            self.ctx.bus.host(name, before, detail=str(exc))
            return None
        self.ctx.bus.host(name, failed, detail=str(exc))
        return False

    def commands(
        self, steps: Iterable[Step], values: dict[str, str], action: str = "deploy"
    ) -> list[tuple[str, str, str]]:
        """(step name, action, rendered command) for a host: hooks around the steps."""
        hooks = self.ctx.env.deploy.hooks
        out: list[tuple[str, str, str]] = []
        if hooks.before_host:
            out.append(("before_host", "hook", render(hooks.before_host, values)))
        for step in steps:
            out.append((step.name, action, render(step.run, values)))
        if hooks.after_host:
            out.append(("after_host", "hook", render(hooks.after_host, values)))
        return out

    async def run_steps(
        self,
        name: str,
        plan: list[tuple[str, str, str]],
        failed: ev.HostState = ev.HostState.FAILED,
        probe: tuple[str, float] | None = None,
        state: ev.HostState | None = None,
        go: Callable[[], bool] | None = None,
    ) -> tuple[bool, bool]:
        """A host's steps as one script (one round trip), each reported as it ends.

        ``state`` (deploying, rolling back) is said of the host once it has its
        ``max_parallel`` slot, before the script is sent; ``go()`` is asked first, and
        False raises ``NotStarted`` there (nothing sent, nothing said).

        Each step keeps the command timeout. A step that fails stops the script (False);
        one that times out is reported, the script's process group is stopped on the
        host, and ``StepsFailed`` is raised (as for any SSH error during the steps).
        ``probe`` (command, timeout) runs after the last step, in the same script; it is
        no step (nothing is reported of it): the second value says whether it passed.
        """
        ctx = self.ctx

        def begin() -> None:
            if go is not None and not go():
                raise NotStarted(name)
            if state is not None:
                ctx.bus.host(name, state)

        check = lockcheck.check(self.locks, name, changing=bool(plan))
        first = 0 if check is None else 1  # the lock taken again first, in the same trip
        if not plan and check is None:
            begin()
            return True, False
        script: list[tuple[str, float | None]] = [(check, None)] if check is not None else []
        script += [(command, None) for _, _, command in plan]
        if probe is not None:
            script.append(probe)
        reported = 0  # steps that ended
        ended_at = time.monotonic()
        ok = True
        passed = False
        checking = check is not None
        refused: LockRefused | None = None
        # What the steps that ended in one read say, journaled together (``settled``): a
        # host whose steps all end at once costs one transaction, not one a step.
        told: list[ev.Event] = []

        def done(i: int, result: CommandResult) -> None:
            nonlocal reported, ended_at, ok, passed, checking, refused
            if checking:
                checking = False
                refused = lockcheck.checked(self.locks, name, result.stdout, result.exit_status)
                return
            i -= first
            if i == len(plan):
                passed = result.ok
                return
            reported, ended_at, ok = i + 1, time.monotonic(), ok and result.ok
            step, action, _ = plan[i]
            told.append(
                self.step_event(
                    name, step, action, result.exit_status, result.output, result.duration
                )
            )
            if not result.ok:
                detail = f"{step} exited {result.exit_status}: " + result.output.strip()[-300:]
                d = ctx.state.deployment_id
                told.append(ev.HostUpdate(host=name, state=failed, detail=detail, deployment=d))

        def settled() -> None:
            if told:
                events = told[:]
                told.clear()
                ctx.bus.emit_many(events)

        try:
            try:
                await ctx.fleet.run_steps(
                    name,
                    script,
                    done,
                    shell=self.locks.shells.get(name),
                    started=begin,
                    settled=settled,
                )
            finally:
                settled()  # none left, unless the steps were stopped in between
        except SshError as exc:
            timed_out = isinstance(exc, CommandTimeout) and not checking
            if timed_out and reported == len(plan):
                return ok, False  # the probe timed out (and was stopped): the gate follows
            if timed_out:
                step, action, _ = plan[reported]
                took = time.monotonic() - ended_at
                ctx.bus.emit(self.step_event(name, step, action, None, str(exc), took))
            raise StepsFailed(exc, touched=reported > 0) from exc
        if isinstance(refused, lockcheck.Unchecked) and check == lockscripts.CHECK_CALL:
            # Nothing ran: checked again, whole, once.
            return await self.run_steps(name, plan, failed, probe, state, go)
        if refused is not None:
            raise refused
        return ok and reported == len(plan), passed

    def step_event(
        self,
        name: str,
        step: str,
        action: str,
        exit_status: int | None,
        output: str,
        duration: float,
    ) -> ev.StepResult:
        return ev.StepResult(
            host=name,
            step=step,
            action=action,
            exit_status=exit_status,
            output=output,
            duration=duration,
            deployment=self.ctx.state.deployment_id,
        )

    async def health_gate(self, name: str, values: dict[str, str]) -> bool:
        """Healthy within a few tries after the deploy, or the host failed."""
        env = self.ctx.env
        command = render(env.health.check, values)
        result = None
        for attempt in range(HEALTH_GATE_TRIES):
            result = await self.ctx.fleet.run(
                name, command, env.health.timeout, shell=self.locks.shells.get(name)
            )
            if result.ok:
                return True
            if attempt + 1 < HEALTH_GATE_TRIES:
                await asyncio.sleep(env.health.interval)
        assert result is not None
        said = result.output.strip()[-200:]
        self.ctx.bus.host(
            name,
            ev.HostState.FAILED,
            # Its steps ran: it runs the release (the grid said the one before meanwhile).
            version=values.get("version"),
            detail=f"unhealthy after deploy: health check exited {result.exit_status} "
            f"{HEALTH_GATE_TRIES} times" + (f": {said}" if said else ""),
        )
        return False
