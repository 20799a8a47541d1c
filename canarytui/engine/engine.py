"""The operator API of one environment's engine: deploy, promote, pause, roll back.

Operator actions are calls; what the engine decides goes out as typed events, each
written to the journal before any subscriber sees it. Every call runs from one rest
point to the next (awaiting promotion, between waves, halted, finished), so the same
engine serves the headless CLI (one call per process) and the UI (one call per key
press), and a later process can continue a deployment from the journal. The phases
themselves live in ``canary``, ``promotion`` and ``rollback``; per-host work in ``hosts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from typing import Any

from canarytui import events as ev
from canarytui.config import Environment, VersionError, render
from canarytui.engine.bus import Bus, Context, RolloutState, Subscriber
from canarytui.engine.canary import CanaryPhase
from canarytui.engine.holding import LockKeeper, first_line
from canarytui.engine.hosts import HostWork
from canarytui.engine.locks import LockHeld
from canarytui.engine.plan import Plan, PlanError, make_plan
from canarytui.engine.promotion import Promotion
from canarytui.engine.rollback import Rollback
from canarytui.engine.supervise import HostWorkFailed, each_host
from canarytui.journal import DeploymentRecord, Journal, local_user, machine_name
from canarytui.ssh import Fleet, SshError

# States a host stops in when an internal error halts the work it was doing.
_STOPPED = {
    ev.HostState.DEPLOYING: ev.HostState.FAILED,
    ev.HostState.ROLLING_BACK: ev.HostState.ROLLBACK_FAILED,
}


class ActionRefused(Exception):
    """An operator action that is not valid now; the message says why and what to do."""


class Engine:
    """One environment's rollout engine. Knows nothing about how it is shown."""

    def __init__(
        self,
        env: Environment,
        journal: Journal,
        *,
        fleet: Fleet | None = None,
        user: str | None = None,
    ) -> None:
        self.env = env
        self.journal = journal
        self.fleet = fleet or Fleet(env)
        self.user = user or local_user()
        self.machine = machine_name()
        self.state = RolloutState(host_states={h: ev.HostState.UNKNOWN for h in env.host_names})
        self.bus = Bus(journal, self.state, self.user)
        ctx = Context(env, journal, self.fleet, self.bus, self.machine)
        self.locks = LockKeeper(ctx)
        self.hosts = HostWork(ctx, self.locks)
        self.canary = CanaryPhase(ctx, self.hosts)
        self.rollbacks = Rollback(ctx, self.locks, self.hosts)
        self.promotion = Promotion(ctx, self.locks, self.hosts, self.rollbacks)
        self._task: asyncio.Task[ev.Outcome] | None = None

    # What the engine knows (the state lives on the bus) -------------------------------

    @property
    def deployment(self) -> DeploymentRecord | None:
        return self.state.deployment

    @property
    def phase(self) -> ev.Phase:
        return self.state.phase

    @property
    def host_states(self) -> dict[str, ev.HostState]:
        return self.state.host_states

    @property
    def versions(self) -> dict[str, str | None]:
        return self.state.versions

    @property
    def previous(self) -> dict[str, str | None]:
        return self.state.previous

    @property
    def details(self) -> dict[str, str]:
        return self.state.details

    @property
    def last_verdict(self) -> ev.VerdictReached | None:
        return self.state.last_verdict

    @property
    def watched(self) -> set[str]:
        """Hosts probed at ``health.interval`` right now (canaries, baseline, the wave)."""
        return self.state.watched

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        return self.bus.subscribe(subscriber)

    def emit(self, event: ev.Event) -> None:
        self.bus.emit(event)

    def open_deployment(self) -> DeploymentRecord | None:
        return self.journal.open_deployment(self.env.name, self.env.app)

    def load_open(self) -> DeploymentRecord | None:
        """Adopt the journal's open deployment (left by the CLI or a killed process)."""
        record = self.open_deployment()
        if record is not None:
            self.state.adopt(record, self.journal)
        return record

    async def discover(self, names: Iterable[str] | None = None) -> dict[str, str | None]:
        """Ask hosts which version they run (``deploy.current``); unreachable ones are marked."""
        targets = list(names) if names is not None else self.env.host_names
        return await each_host(targets, self._discover_one)

    async def _discover_one(self, name: str) -> str | None:
        command = render(self.env.deploy.current, self.env.placeholders(name))
        try:
            result = await self.fleet.run(name, command)
        except SshError as exc:
            self.emit(ev.HostUpdate(host=name, state=ev.HostState.UNREACHABLE, detail=str(exc)))
            return None
        version = first_line(result.stdout) if result.ok else None
        state = self.state.host_states.get(name, ev.HostState.UNKNOWN)
        d = self.state.deployment
        in_deployment = (
            d is not None
            and d.is_open
            and (name in d.canaries or any(name in wave for wave in d.plan))
        )
        if state in (ev.HostState.UNKNOWN, ev.HostState.UNREACHABLE) and not in_deployment:
            state = ev.HostState.IDLE
        self.emit(
            ev.HostUpdate(
                host=name,
                state=state,
                version=version,
                detail="" if result.ok else result.output.strip()[-200:],
            )
        )
        return version

    async def tail(self, name: str) -> AsyncIterator[str]:
        """The host's live log lines (the file's ``logs`` command)."""
        if not self.env.logs:
            return
        command = render(self.env.logs, self.env.placeholders(name))
        async for line in self.fleet.stream(name, command):
            yield line

    # Operator calls -------------------------------------------------------------

    async def deploy(
        self,
        version: str,
        *,
        canaries: Sequence[str] | None = None,
        canary_percent: float | None = None,
        auto_promote: bool = False,
    ) -> ev.Outcome:
        """Lock, deploy the canaries, analyse; promote too if asked and the canary passed."""
        self.env.validate_version(version)
        plan = make_plan(self.env, canaries, canary_percent)
        open_one = self.open_deployment()
        if open_one is not None:
            raise ActionRefused(
                f"deployment #{open_one.id} of {open_one.version} is still open "
                f"({open_one.phase_label}): promote or roll it back first"
            )
        return await self._run(self._deploy(version, plan, auto_promote))

    async def promote(self, *, all_waves: bool = True) -> ev.Outcome:
        """Continue the open deployment to the next wave (or through every wave)."""
        record = self._require_open("promote")
        phase = ev.Phase(record.phase)
        if phase not in (ev.Phase.AWAITING_PROMOTION, ev.Phase.HALTED, ev.Phase.PROMOTING):
            raise ActionRefused(
                f"deployment #{record.id} is {record.phase_label}: there is nothing to promote "
                "until the canary has a verdict"
                + ("; roll it back" if phase in (ev.Phase.CANARY, ev.Phase.ANALYSIS) else "")
            )
        if record.verdict == ev.Verdict.FAIL.value:
            raise ActionRefused(f"deployment #{record.id}: the canary failed; roll it back")
        return await self._run(self._promote(all_waves))

    async def rollback(self) -> ev.Outcome:
        """Roll back the open (or last) deployment everywhere it went; stops what runs."""
        if self.busy:
            assert self._task is not None
            running = self.state.deployment
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            if running is None or self.state.deployment is None:
                raise ActionRefused("the deployment was stopped before it changed anything")
        record = self.open_deployment() or self.journal.last_deployment(self.env.name, self.env.app)
        if record is None:
            raise ActionRefused("nothing to roll back: this environment has no deployment")
        if record.phase == ev.Phase.ROLLED_BACK.value or (
            not record.is_open and record.outcome != ev.Outcome.COMPLETE.value
        ):
            raise ActionRefused(
                f"nothing to roll back: deployment #{record.id} of {record.version} is "
                f"already {record.outcome or record.phase_label}"
            )
        self.state.adopt(record, self.journal)
        return await self._run(self.rollbacks.run(ev.Outcome.ROLLED_BACK, decided=True))

    def pause(self) -> None:
        """Stop promoting after the wave in flight (the deployment stays open)."""
        if self.state.phase is not ev.Phase.PROMOTING:
            raise ActionRefused(f"nothing to pause: the deployment is {self.state.phase.value}")
        self.promotion.pause_requested = True
        self.bus.decision("pause", "after the wave in flight")

    # Running a call ------------------------------------------------------------------

    async def _run(self, coro: Coroutine[Any, Any, ev.Outcome]) -> ev.Outcome:
        if self.busy:
            coro.close()
            raise ActionRefused("the engine is busy with another action")
        task = asyncio.ensure_future(self._supervised(coro))
        self._task = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # Our caller was cancelled (Ctrl-C, UI quit): stop the work, leave it open.
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                raise
            # The work itself was stopped: an operator's rollback took over.
            return ev.Outcome.ABORTED

    async def _supervised(self, coro: Coroutine[Any, Any, ev.Outcome]) -> ev.Outcome:
        """The call's work; a bug in it halts the deployment instead of vanishing."""
        try:
            return await coro
        except (ActionRefused, LockHeld, PlanError, VersionError):
            raise
        except Exception as exc:
            if self.state.deployment is None or not self.state.deployment.is_open:
                raise
            self._internal_error(exc)
            return ev.Outcome.ERROR

    def _internal_error(self, exc: Exception) -> None:
        """Journal the error, mark what was stopped, halt; the locks stay for a rollback."""
        d = self.state.deployment
        assert d is not None
        cause = exc.error if isinstance(exc, HostWorkFailed) else exc
        host = exc.host if isinstance(exc, HostWorkFailed) else None
        message = f"{type(cause).__name__}: {cause}"
        self.emit(
            ev.InternalError(
                message=message,
                host=host,
                traceback="".join(traceback.format_exception(cause))[-8000:],
                deployment=d.id,
            )
        )
        for name, state in list(self.state.host_states.items()):
            if state in _STOPPED:
                self.bus.host(name, _STOPPED[state], detail="stopped: internal error")
        self.state.watched = set()
        self.bus.phase(ev.Phase.HALTED)
        where = f" (in {host}'s work)" if host else ""
        self.bus.notice(
            "error",
            f"internal error{where}: {message}. Deployment #{d.id} is halted and keeps "
            "its locks: roll it back (or promote) when you have looked",
        )

    def _require_open(self, action: str) -> DeploymentRecord:
        record = self.open_deployment()
        if record is None:
            raise ActionRefused(f"nothing to {action}: no deployment is open")
        self.state.adopt(record, self.journal)
        return record

    # The rollout ----------------------------------------------------------------------

    async def _deploy(self, version: str, plan: Plan, auto_promote: bool) -> ev.Outcome:
        await self._start(version, plan)
        try:
            verdict = await self.canary.run()
            if verdict is ev.Verdict.FAIL:
                return await self.rollbacks.run(ev.Outcome.CANARY_FAILED, decided=False)
            self.bus.phase(ev.Phase.AWAITING_PROMOTION, wave=0)
            if verdict is ev.Verdict.INCONCLUSIVE:
                self.bus.notice(
                    "warning",
                    "analysis inconclusive: the deployment stays open; promote or roll back",
                )
                return ev.Outcome.INCONCLUSIVE
            if auto_promote:
                return await self.promotion.run(all_waves=True, decided=False)
            return ev.Outcome.CANARY_PASSED
        except asyncio.CancelledError:
            await self._interrupted()
            raise

    async def _start(self, version: str, plan: Plan) -> None:
        """A new deployment: its number, the locks (with discovery), its first events."""
        token = uuid.uuid4().hex
        # The deployment gets its number first, so every lock can say whose it is; it is
        # discarded again if the locks cannot be had (nothing happened then).
        d = self.journal.create_deployment(
            token=token,
            env=self.env.name,
            app=self.env.app,
            env_path=str(self.env.path),
            version=version,
            canaries=plan.canaries,
            plan=plan.waves,
            previous={},
            user=self.user,
            machine=self.machine,
        )
        self.state.deployment = None
        try:
            found = await self.locks.take(self.locks.owner(token, d, version), plan.hosts, True)
            unreachable = [c for c in plan.canaries if isinstance(found.get(c), SshError)]
            if unreachable:
                errors = "; ".join(str(found[c]) for c in unreachable)
                raise ActionRefused(f"canary unreachable, nothing was changed: {errors}")
        except BaseException:
            await asyncio.shield(self.locks.release(token))
            self.journal.discard(d)
            raise
        previous = {h: (v if not isinstance(v, SshError) else None) for h, v in found.items()}
        self.journal.set_previous_many(d, previous)
        record = self.journal.deployment(d)
        assert record is not None
        self.state.deployment = record
        self.state.previous.clear()
        self.state.previous.update(previous)
        self.promotion.pause_requested = False
        self.emit(
            ev.DeploymentStarted(
                version=version,
                canaries=plan.canaries,
                waves=plan.waves,
                previous=previous,
                user=self.user,
                deployment=d,
            )
        )
        self.bus.decision("deploy", f"{version} to canaries {', '.join(plan.canaries)}")
        for name, v in found.items():
            if isinstance(v, SshError):
                self.bus.host(name, ev.HostState.UNREACHABLE, detail=str(v))
            else:
                self.bus.host(name, ev.HostState.PENDING, version=v)

    async def _promote(self, all_waves: bool) -> ev.Outcome:
        try:
            return await self.promotion.run(all_waves, decided=True)
        except asyncio.CancelledError:
            await self._interrupted()
            raise

    async def _interrupted(self) -> None:
        """Cancelled (Ctrl-C, UI quit): the deployment stays open; the locks are freed."""
        d = self.state.deployment
        if d is None:
            return
        self.state.watched = set()
        with contextlib.suppress(Exception):
            self.bus.notice(
                "warning",
                f"interrupted during {self.state.phase.value}: deployment "
                f"#{d.id} stays open (promote or roll it back later)",
            )
        release = asyncio.ensure_future(self.locks.release(d.token))
        with contextlib.suppress(Exception):
            await asyncio.shield(release)
