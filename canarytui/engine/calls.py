"""Running the engine's operator calls: one at a time, supervised, interruptible.

A call's work runs in its own task: a bug in it halts the deployment (journaled as an
internal error, locks kept for a rollback) instead of vanishing; an operator's rollback
cancels it and goes on with its locks; Ctrl-C or a UI quit stops it and leaves the
deployment open (its locks freed, except a rollback's).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import traceback
from collections.abc import Coroutine, Sequence
from typing import Any

from canarytui import events as ev
from canarytui.config import VersionError
from canarytui.engine import analyze as analysis
from canarytui.engine import locks, takeover
from canarytui.engine.bus import Bus, Context, RolloutState
from canarytui.engine.holding import LockKeeper
from canarytui.engine.hosts import may_hold_release
from canarytui.engine.lockerrors import TakenOver
from canarytui.engine.locks import LockHeld
from canarytui.engine.plan import PlanError
from canarytui.engine.promotion import Promotion
from canarytui.engine.rollback import MovedOn
from canarytui.engine.start import StartRefused
from canarytui.engine.supervise import HostWorkFailed
from canarytui.journal import DeploymentRecord, JournalError, WayOut, way_out
from canarytui.textsafe import listed

# States a host stops in when an internal error halts the work it was doing.
_STOPPED = {
    ev.HostState.DEPLOYING: ev.HostState.FAILED,
    ev.HostState.ROLLING_BACK: ev.HostState.ROLLBACK_FAILED,
}


# How the journal names a signal that stops a call (Ctrl-C is the operator's: "interrupted").
_SIGNAL_CAUSES = {
    signal.SIGTERM: "SIGTERM (kill)",
    signal.SIGHUP: "SIGHUP (its terminal closed)",
}


def signal_cause(signum: int) -> str | None:
    """``stopped_by`` for a call stopped by ``signum`` (None: none to name)."""
    return _SIGNAL_CAUSES.get(signal.Signals(signum))


# Why the analysis of an open deployment cannot run again (its canary phase ended).
NOT_AGAIN = "only a canary phase stopped before its verdict is analysed again"


class ActionRefused(Exception):
    """An operator action that is not valid now; the message says why and what to do."""


class CallRunner:
    """The part of ``Engine`` that runs its calls; ``Engine`` provides the attributes."""

    ctx: Context
    state: RolloutState
    bus: Bus
    locks: LockKeeper
    promotion: Promotion
    _task: asyncio.Task[ev.Outcome] | None
    # An operator's rollback stopping the running call: "asked", then "kept" once the
    # stopped call has left its locks to it (freed and taken again, they would leave the
    # hosts unlocked for the seconds it takes at a thousand hosts).
    _superseded: str | None = None
    # What is stopping the running call when it is not the operator's Ctrl-C or quit (a
    # signal: "SIGHUP (its terminal closed)"), set by the process before it cancels the
    # call, and said in the journal: a post-mortem reads why the deployment was left open.
    stopped_by: str | None = None

    def driven_elsewhere(self, record: DeploymentRecord) -> str | None:
        """Why this process cannot act on the open deployment ``record``: another process
        of this machine drives it now (a UI, a CLI run); None when none does."""
        return locks.driven_elsewhere(self.locks.local_path(), record, self.ctx.machine)

    def nobody_drives(self, record: DeploymentRecord) -> bool:
        """No process drives the open deployment ``record`` now (``locks.nobody_drives``)."""
        return locks.nobody_drives(self.locks.local_path(), record, self.ctx.machine)

    def cannot_continue(self, record: DeploymentRecord) -> str | None:
        """Why ``record`` cannot be continued (promoted, resumed, rolled back) with this
        file: hosts it planned that the file no longer lists cannot be reached, locked or
        rolled back. None when every one is still there."""
        env = self.ctx.env
        listed_now = set(env.host_names)
        planned = [*record.canaries, *(h for wave in record.plan for h in wave)]
        gone = [h for h in planned if h not in listed_now]
        if not gone:
            return None
        them = "it" if len(gone) == 1 else "them"
        return (
            f"deployment #{record.id} of {record.version} planned {listed(gone, 8)}, which "
            f"{env.path} no longer lists: put {them} back in the file to go on with it"
        )

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

    def _hold_refused(self) -> str | None:
        """Why a hold (``Engine.hold``) is refused now, or None."""
        phase = self.state.phase
        # Busy awaiting promotion: a promote is starting (its locks taken again): held too.
        starting = self.busy and phase is ev.Phase.AWAITING_PROMOTION
        if not starting and (not self.busy or phase is not ev.Phase.PROMOTING):
            waits = "; between waves it waits for you anyway"
            return f"nothing to hold: the deployment is {ev.phase_doing(phase)}" + (
                waits if phase is ev.Phase.AWAITING_PROMOTION else ""
            )
        if self.promotion.hold_requested:
            return "already held: it stops after the wave in flight"
        if self.promotion.last_wave_in_flight():
            return (
                f"nothing to hold: wave {self.state.wave} is the last, and the rollout ends "
                "with it (r rolls it back)"
            )
        return None

    async def inspect_locks(self) -> dict[str, takeover.HostLock]:
        """What every host's lock says now (for status on any machine); changes nothing."""
        found = await takeover.inspect(self.ctx)
        env = self.ctx.env
        record = self.ctx.journal.open_deployment(env.name, env.app)
        note = takeover.taken_note(found, record.token) if record is not None else None
        if record is not None and note is not None and not self.busy:
            self.state.adopt(record, self.ctx.journal)
            self._record_taken_over(note)
        return found

    def promote_refused(self, record: DeploymentRecord) -> str | None:
        """Why ``promote`` refuses the open deployment ``record`` as the journal has it
        (its phase, its verdict); None when it may go on. Nothing is asked of a host."""
        phase = ev.Phase(record.phase)
        if record.way_out is WayOut.ROLL_BACK_AGAIN:
            why = "was stopped" if phase is ev.Phase.ROLLING_BACK else "failed on a host"
            return (
                f"deployment #{record.id} is rolling back (its rollback {why}): "
                "roll it back again to finish it"
            )
        if record.way_out is WayOut.NO_VERDICT:  # promote alone runs its analysis again
            return (
                f"deployment #{record.id} is {record.phase_doing}: no host failed in a wave, "
                "nothing to retry or skip; promote alone analyses its canaries again"
            )
        if phase not in (ev.Phase.AWAITING_PROMOTION, ev.Phase.HALTED, ev.Phase.PROMOTING):
            return (
                f"deployment #{record.id} is {record.phase_doing}: there is nothing to promote "
                "until the canary has a verdict"
            )
        if record.verdict == ev.Verdict.FAIL.value:
            return f"deployment #{record.id}: the canary failed; roll it back"
        return None

    def way_out_now(self) -> WayOut | None:
        """``way_out`` of the deployment in hand as this process has it (its phase, its
        verdict, its hosts), without reading the journal: a screen asks at each repaint.
        None when no deployment is in hand."""
        d = self.state.deployment
        if d is None:
            return None
        live = self.state.last_verdict
        # This process's verdict, else the journal's when the deployment was taken up.
        verdict = live.verdict.value if live is not None and live.deployment == d.id else d.verdict
        begun = any(s in ev.ROLLBACK_BEGUN for s in self.state.host_states.values())
        return way_out(self.state.phase, d.kind, verdict, begun, bool(d.canaries))

    def _adopt(self, record: DeploymentRecord) -> None:
        """Take ``record`` up to continue it, or refuse before anything is started (or
        recorded): another process of this machine drives it, or the file changed."""
        elsewhere = self.driven_elsewhere(record) if record.is_open else None
        said = elsewhere or self.cannot_continue(record)
        if said is not None:
            raise ActionRefused(f"{said} (nothing was changed)")
        self.state.adopt(record, self.ctx.journal)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def finishing(self) -> bool:
        """The running call's deployment is over (closed in the journal): only its hooks
        and the release of its locks are left."""
        return self.busy and self._over()

    def _over(self) -> bool:
        d = self.state.deployment
        if d is None or not self.state.phase.is_final:
            return False  # a deployment starting, or one that runs
        try:
            record = self.ctx.journal.deployment(d.id)  # a rollback of it reopens it first
        except JournalError:
            return False  # unknown: taken as running (a quit asks, a stop frees the locks)
        return record is not None and not record.is_open

    def emit(self, event: ev.Event) -> None:
        self.bus.emit(event)

    def _record_taken_over(self, note: dict[str, Any]) -> str:
        return takeover.record_taken_over(self.ctx, note)

    # Running a call ------------------------------------------------------------------

    async def _run(self, coro: Coroutine[Any, Any, ev.Outcome]) -> ev.Outcome:
        if self.busy:
            coro.close()
            raise ActionRefused("the engine is busy with another action")
        self.promotion.release_hold()  # a hold is asked of the call that runs, or starts
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
        except (StartRefused, takeover.NothingToTakeOver, MovedOn) as exc:
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

    async def _stop_for_rollback(self) -> None:
        """Stop the running call for an operator's rollback, which keeps its locks."""
        assert self._task is not None
        running = self.state.deployment
        self._superseded = "asked"
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # The rollback was stopped too (Ctrl-C, a quit) before it began: the
                # stopped call's locks are freed as its own stop frees them (by the call
                # itself if it has not stopped yet: the flag is reset below).
                if self._superseded == "kept":
                    await self._interrupted()
                raise
        except Exception:  # how the stopped work ended is its own caller's to see
            pass
        finally:
            self._superseded = None
        if running is None or self.state.deployment is None:
            raise ActionRefused("the deployment was stopped before it changed anything")

    async def _interrupted(self) -> None:
        """Cancelled (Ctrl-C, UI quit): the deployment stays open; the locks are freed,
        except a rollback's: a fleet half rolled back stays locked until it is finished."""
        d = self.state.deployment
        if d is None:
            return
        self.state.watched = set()
        if self._superseded == "asked":  # the rollback that stopped it goes on from here
            self._superseded = "kept"
            return
        release = True
        cause = f"stopped by {self.stopped_by}" if self.stopped_by else "interrupted"
        if self._over():
            # Only its hooks and the release of its locks were left: nothing stays open.
            said = (
                "info",
                f"{cause} while deployment #{d.id} finished ({self.state.phase.value}): "
                "it is over; its locks are released now",
            )
        elif self.state.phase is ev.Phase.ROLLING_BACK:
            release = False
            # Hosts still to put back whose lock this run had not taken again: unlocked,
            # a colleague's take-over would not see them (it finds a deployment by locks).
            state, held = self.state, self.locks.holding  # (a lock cut off in flight: unsure)
            unheld = [
                h
                for h in d.planned_hosts
                if h not in held
                and state.host_states.get(h) is not ev.HostState.ROLLED_BACK
                and may_hold_release(state.host_states.get(h, ""), state.previous.get(h))
            ]
            but = f" but {listed(unheld, 8)}, not (surely) locked again" if unheld else ""
            said = (
                "warning",
                f"{cause} while rolling back: deployment #{d.id} stays open and its "
                f"hosts stay locked{but}; roll it back again (from here) to finish",
            )
        else:
            # A release put back (rollback --to) is finished by promoting it, and undone by
            # rolling it back: "promote or roll it back" reads as the opposite.
            phase = self.state.phase
            resting = phase in (ev.Phase.HALTED, ev.Phase.AWAITING_PROMOTION)
            during = f"{'while' if resting else 'during'} {phase.value}"
            later = (
                f"promote finishes putting {d.version} back"
                if d.kind == "rollback"
                else f"{self.way_out_now()} later"
            )
            told = None
            with contextlib.suppress(Exception):  # (the journal's, as status says it)
                told = self.ctx.journal.last_traffic(d.id)
            users = (
                f"; the load balancer still sends {told['percent']} % of the users to "
                f"{told.get('version') or d.version}"
                if told and told.get("ok") and told.get("percent")
                else ""
            )
            said = (
                "warning",
                f"{cause} {during}: deployment #{d.id} stays open ({later}){users}",
            )
        with contextlib.suppress(Exception):
            self.bus.notice(*said)
        if release:
            task = asyncio.ensure_future(self.locks.release(d.token))
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
