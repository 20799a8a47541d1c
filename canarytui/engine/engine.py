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
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from typing import Any

from canarytui import events as ev
from canarytui.config import Environment, VersionError, render
from canarytui.engine import analyze as analysis
from canarytui.engine import takeover
from canarytui.engine.bus import Bus, Context, RolloutState, Subscriber
from canarytui.engine.canary import CanaryPhase
from canarytui.engine.discovery import discover_one
from canarytui.engine.holding import LockKeeper, TakenOver
from canarytui.engine.hosts import HostWork
from canarytui.engine.locks import LockHeld
from canarytui.engine.plan import Plan, PlanError, make_plan
from canarytui.engine.promotion import Promotion
from canarytui.engine.rollback import Rollback
from canarytui.engine.start import StartRefused, start_deployment
from canarytui.engine.supervise import HostWorkFailed, each_host
from canarytui.journal import DeploymentRecord, Journal, JournalError, local_user, machine_name
from canarytui.ssh import Fleet

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
        self.ctx = ctx = Context(env, journal, self.fleet, self.bus, self.machine)
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
        return await each_host(targets, lambda name: discover_one(self.ctx, name))

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
        assume_previous: str | None = None,
    ) -> ev.Outcome:
        """Lock, deploy the canaries, analyse; promote too if asked and the canary passed.

        ``assume_previous``: the version to roll back to on hosts that report none.
        """
        self.env.validate_version(version)
        if assume_previous is not None:
            self.env.validate_version(assume_previous)
        plan = make_plan(self.env, canaries, canary_percent)
        await self.finish_stale_locks()
        open_one = self.open_deployment()
        if open_one is not None:
            raise ActionRefused(
                f"deployment #{open_one.id} of {open_one.version} is still open "
                f"({open_one.phase_label}): promote or roll it back first"
            )
        return await self._run(self._deploy(version, plan, auto_promote, assume_previous))

    async def promote(self, *, all_waves: bool = True) -> ev.Outcome:
        """Continue the open deployment to the next wave (or through every wave)."""
        await self.finish_stale_locks()
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

    async def rollback(self, *, take_over: bool = False) -> ev.Outcome:
        """Roll back the open (or last) deployment everywhere it went; stops what runs.

        ``take_over``: the deployment is another machine's, known from the hosts' locks.
        """
        if take_over:
            return await self._run(self._take_over())
        if self.busy:
            assert self._task is not None
            running = self.state.deployment
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            if running is None or self.state.deployment is None:
                raise ActionRefused("the deployment was stopped before it changed anything")
        await self.finish_stale_locks()
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

    async def analyze(
        self, canaries: Sequence[str] | None = None, duration: float | None = None
    ) -> analysis.Analyzed:
        """The rules now on the running fleet, canaries against a baseline: nothing is
        deployed, locked or journaled. Unpacks as ``(verdict, reasons, measurements)``."""
        if self.busy:
            raise ActionRefused("the engine is busy with another action")
        try:
            return await analysis.analyze(self.ctx, canaries, duration)
        except analysis.CanaryUnreachable as exc:
            raise ActionRefused(str(exc)) from None

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
        except TakenOver as exc:
            raise ActionRefused(self._record_taken_over(exc.note)) from None
        except (StartRefused, takeover.NothingToTakeOver) as exc:
            raise ActionRefused(str(exc)) from None
        except JournalError:
            self.state.watched = set()
            raise  # nothing more may change on a host that the journal cannot record
        except HostWorkFailed as exc:
            if isinstance(exc.error, JournalError):
                self.state.watched = set()
                raise exc.error from None
            if self.state.deployment is None or not self.state.deployment.is_open:
                raise
            self._internal_error(exc)
            return ev.Outcome.ERROR
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

    def _record_taken_over(self, note: dict[str, Any]) -> str:
        return takeover.record_taken_over(self.ctx, note)

    async def finish_stale_locks(self) -> int | None:
        """Release locks a finished deployment of ours left (killed before releasing)."""
        if self.busy:
            return None
        finished = await self.locks.finish_stale()
        if finished is not None:
            self.emit(
                ev.Notice(
                    level="info",
                    message=f"released the locks deployment #{finished} left when it ended",
                )
            )
        return finished

    async def inspect_locks(self) -> dict[str, takeover.HostLock]:
        """What every host's lock says now (for status on any machine); changes nothing."""
        found = await takeover.inspect(self.ctx)
        record = self.open_deployment()
        note = takeover.taken_note(found, record.token) if record is not None else None
        if record is not None and note is not None and not self.busy:
            self.state.adopt(record, self.journal)
            self._record_taken_over(note)
        return found

    async def _take_over(self) -> ev.Outcome:
        await takeover.take_over(self.ctx, self.locks)
        return await self.rollbacks.run(ev.Outcome.ROLLED_BACK, decided=True)

    def _require_open(self, action: str) -> DeploymentRecord:
        record = self.open_deployment()
        if record is None:
            raise ActionRefused(f"nothing to {action}: no deployment is open")
        self.state.adopt(record, self.journal)
        return record

    # The rollout ----------------------------------------------------------------------

    async def _deploy(
        self, version: str, plan: Plan, auto_promote: bool, assume_previous: str | None
    ) -> ev.Outcome:
        await start_deployment(self.ctx, self.locks, version, plan, assume_previous)
        self.promotion.pause_requested = False
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
