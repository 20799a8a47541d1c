"""The operator's rollout actions on the fleet screen: deploy, promote, hold, roll back.

Each action checks what the engine allows, asks (``VersionScreen``, ``ConfirmScreen``),
then starts an async worker. Workers only call the engine and post an ``OperatorResult``;
the screen's handler owns what changes on screen. ``FleetScreen`` inherits these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual import work
from textual.screen import Screen

from canarytui import events as ev
from canarytui.engine import (
    ActionRefused,
    Engine,
    locks,
    nothing_to_roll_back,
)
from canarytui.journal import DeploymentRecord, WayOut
from canarytui.textsafe import listed
from canarytui.ui.deploy_question import (
    catch_up,
    deploy_question,
    limited_to_shown,
    promote_warning,
    restore_question,
    rollback_question,
)
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.journal_guard import journal_guarded
from canarytui.ui.keys_now import KEY_ACTIONS, keys_now
from canarytui.ui.messages import OperatorResult
from canarytui.ui.screens.confirm import ChoiceScreen, ConfirmScreen, Question
from canarytui.ui.screens.failure import FailureScreen
from canarytui.ui.screens.fleet_keys import offered
from canarytui.ui.screens.version import VersionScreen


class OperatorActions(Screen[None]):
    """``action_deploy``, ``action_promote`` (all), ``action_hold``, ``action_rollback``,
    the guided-failure dialog, and their workers."""

    engine: Engine
    state: FleetState
    LIVE: bool

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Whether a key acts now, and so is offered in the footer (``fleet_keys``)."""
        logs_up = self.maximized is not None
        acting = {KEY_ACTIONS[key] for key, _ in keys_now(self.state, words=False)}
        return offered(action, parameters, acting, logs_up, self.LIVE)

    def action_as_key(self, action: str) -> None:
        """A key the footer leaves out now (``fleet_keys``), answering as it always does."""
        getattr(self, f"action_{action}")()

    # Actions (keys d, p, r) -----------------------------------------------------------

    def _watched(self) -> str:
        """How long the analysis watches the canaries, as the rollout panel counts it:
        the warmup (watched, not judged) and the judged duration."""
        analysis = self.state.env.canary.analysis
        total = f"{analysis.watched:g}s"
        if not analysis.warmup:
            return total
        return f"{total} (the first {analysis.warmup:g}s a warmup, not judged)"

    @journal_guarded
    def action_deploy(self) -> None:
        if self.engine.busy:
            self.notify(
                "the engine is busy with another action: wait, or roll back (r)",
                severity="warning",
                markup=False,
            )
            return
        record = self.engine.open_deployment()
        if record is not None:
            self.notify(
                self.engine.driven_elsewhere(record)
                or self.engine.cannot_continue(record)
                or f"deployment #{record.id} of {record.version} is still open "
                f"({record.phase_label}): promote (p) or roll back (r) first",
                severity="warning",
                timeout=8,
                markup=False,
            )
            return
        held = locks.read_local(self.engine.locks.local_path())
        if held is not None and locks.is_maintenance(held):  # from this machine: known here
            self.notify(
                f"held for maintenance by {locks.describe_owner(held)}: deployments are "
                "refused until it is over (canarytui unlock)",
                severity="warning",
                timeout=8,
                markup=False,
            )
            return
        canaries = self.state.canaries_for_deploy()
        only = limited_to_shown(self.state)

        def chosen(version: str | None) -> None:
            if version is None:
                return
            question = deploy_question(self.state, version, canaries, self._watched(), only)
            if (slip := picker.unlisted(version)) is not None:
                question = f"Warning: {slip}\n\n{question}"

            def answered(answer: bool | str | None) -> None:
                if answer is True or answer == "all":
                    self.run_deploy(version, canaries)
                elif answer == "only" and only is not None:
                    self.run_deploy(version, only.canaries, only.hosts)

            if only is None:
                screen: Question[Any] = ConfirmScreen(f"Deploy {version}?", question, yes="Deploy")
            else:
                # Enter: the hosts filtered, with a canary among them; all, a key (a habit's y: no).
                every, canary = len(self.state.env.hosts), bool(only.canaries)
                choices = [("o", f"Only {len(only.hosts)}", "only"), ("a", f"All {every}", "all")]
                screen = ChoiceScreen(
                    f"Deploy {version}?", question, [*choices, ("n", "No", "")], canary
                )
            self.app.push_screen(screen, answered)

        releases = lambda: self.engine.releases(canaries)  # noqa: E731
        prefer = catch_up(self.state, only)
        picker = VersionScreen(self.state.env, canaries, releases=releases, prefer=prefer)
        self.app.push_screen(picker, chosen)

    @journal_guarded
    def action_promote(self, all_waves: bool = False) -> None:
        if self.engine.busy:
            phase, d = self.engine.phase, self.engine.deployment
            said = "the engine is busy: wait for the current step"
            if d is not None and phase in (ev.Phase.CANARY, ev.Phase.ANALYSIS):
                said = f"deployment #{d.id} is {ev.phase_doing(phase)}: p promotes once it passed"
            self.notify(said, severity="warning", markup=False)
            return
        record = self.engine.open_deployment()
        if record is None:
            self.notify(
                "nothing to promote: no deployment is open", severity="warning", markup=False
            )
            return
        if self.refused_before_asking(record):
            return
        if record.way_out is WayOut.NO_VERDICT:  # stopped (halted) before its verdict
            how = ev.stopped_in(ev.Phase(record.phase))
            self.app.push_screen(
                ConfirmScreen(
                    f"Analyse {record.version} again?",
                    f"Deployment #{record.id} {how}, before its canary had a verdict. "
                    f"Deploy {record.version} to those of its canaries "
                    f"({listed(record.canaries, 8)}) that do not run it now, then analyse "
                    f"them all again for {self._watched()}? Promotion waits for you.",
                    yes="Analyse again",
                ),
                _if_yes(
                    lambda: self.run_promote_call("analyse again", self.engine.analyse_again())
                ),
            )
            return
        refused = self.engine.promote_refused(record)  # as the engine would, before asking
        if refused is not None:
            self.notify(refused, severity="warning", markup=False)
            return
        self.engine.load_open()  # its hosts as the journal has them, as promote takes them
        again, waves = self.engine.promotion.upcoming(all_waves)
        if all_waves:
            rest = sum(len(hosts) for _, hosts in waves)
            what = f"every remaining wave ({rest} host(s), no stop between waves)"
        elif waves:
            index, hosts = waves[0]
            what = f"wave {index}/{len(record.plan)} ({len(hosts)} host(s))"
        else:
            what = "no further wave"
        if again:
            what += f", and again to {listed(again, 4)}, which failed in an earlier wave"
        warning = promote_warning(self.state, all_waves, again, waves, len(record.plan))
        self.app.push_screen(
            ConfirmScreen(
                f"Promote {record.version}?",
                f"Deploy {record.version} to {what}?{warning}",
                yes="Promote",
            ),
            _if_yes(lambda: self.run_promote(all_waves)),
        )

    def action_promote_all(self) -> None:
        self.action_promote(all_waves=True)

    @journal_guarded
    def action_hold(self) -> None:
        """``s``: hold the rollout after the wave in flight, or resume a held one."""
        engine = self.engine
        record = engine.open_deployment() if not engine.busy else None
        if record is not None and self.refused_before_asking(record):
            return  # (driven by another process: said as p, r and d say it)
        try:
            if engine.state.held is not None or engine.promotion.hold_requested:
                self._resume()
                return
            engine.hold()
        except ActionRefused as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        self.notify(
            "held: the rollout stops after the wave in flight (s resumes)",
            timeout=5,
            markup=False,
        )

    def ask_failure(self, question: ev.FailureQuestion) -> None:
        """on_failure: ask: the dialog, then the engine call that answers it."""
        d = self.engine.deployment
        version = d.version if d is not None else ""
        undo = d is None or d.kind != "rollback"  # a rollback --to is never undone by reflex

        def answered(choice: str | None) -> None:
            hosts = [f.host for f in question.failures]
            if choice == "retry":
                self.run_promote_call("retry", self.engine.promote(retry=True))
            elif choice == "skip":
                self.run_promote_call("skip", self.engine.promote(skip=hosts))
            elif choice == "rollback":
                self.run_rollback()
            else:
                try:
                    self.engine.leave_halted()
                except ActionRefused as exc:
                    self.notify(str(exc), severity="warning", markup=False)
                    return
                self.notify(
                    f"left halted: {listed(hosts, 8)} failed; p or P goes on (retrying "
                    "them)" + (", r rolls back" if undo else ""),
                    severity="warning",
                    timeout=10,
                    markup=False,
                )

        self.app.push_screen(FailureScreen(question, version, undo), answered)

    @journal_guarded
    def action_rollback(self) -> None:
        record = self.engine.open_deployment() or self.engine.journal.last_deployment(
            self.state.env.name, self.state.env.app
        )
        if record is None:
            self.notify("nothing to roll back: no deployment yet", severity="warning", markup=False)
            return
        if self.refused_before_asking(record):
            return
        # (Busy, the last one may be over while a new one starts: r stops that start.)
        judged = not self.engine.busy or (record.is_open and record.kind == "rollback")
        if judged and (refused := nothing_to_roll_back(record)) is not None:
            self.notify(refused, severity="warning", timeout=8, markup=False)
            return
        running = " It stops what is running now." if self.engine.busy else ""
        # No new wave starts while the operator decides (the dialog would name too few
        # hosts, the header say "complete"): held now, resumed on no.
        held_here = self._held_for_question()
        running += " No new wave starts while you decide." if held_here else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_rollback()
            elif held_here:
                self._resume()

        self.app.push_screen(
            ConfirmScreen(
                f"Roll back {record.version}?",
                rollback_question(self.state, record) + running,
                yes="Roll back",
                danger=True,
            ),
            answered,
        )

    def _held_for_question(self) -> bool:
        """Hold the waves while a rollback is asked; False if there was nothing to hold."""
        try:
            self.engine.hold()
        except ActionRefused:  # not promoting, its last wave, or held already
            return False
        return True

    def _resume(self) -> None:
        """Undo a hold: the waves go on (the engine's ``resume``)."""
        call = self.engine.resume()
        if self.engine.busy:
            self.run_answer("resume", call)
        else:
            self.run_promote_call("resume", call)

    def refused_before_asking(self, record: DeploymentRecord) -> bool:
        """Said and True when the engine would refuse to continue ``record`` after the
        dialog: another process of this machine drives it (another UI, a CLI run: its
        local lock), or the file no longer lists hosts it planned."""
        elsewhere = self.engine.driven_elsewhere(record) if record.is_open else None
        said = elsewhere or self.engine.cannot_continue(record)
        if said is not None:
            self.notify(said, severity="warning", timeout=8, markup=False)
        return said is not None

    @journal_guarded
    def ask_restore(self, version: str) -> None:
        """From history: ``rollback --to VERSION`` on every host, after a confirmation."""
        if self.engine.busy or self.engine.open_deployment() is not None:
            self.notify(
                "a deployment is open: roll it back (r) or finish it first",
                severity="warning",
                markup=False,
            )
            return
        self.app.push_screen(
            ConfirmScreen(
                f"Back to {version}?",
                restore_question(self.engine, version),
                yes="Roll back to it",
                danger=True,
            ),
            _if_yes(lambda: self.run_promote_call("roll back", self.engine.restore(version))),
        )

    # Workers: they call the engine and report, nothing else -----------------------------

    @work(exclusive=True, group="rollout", exit_on_error=False, description="deploy")
    async def run_deploy(
        self, version: str, canaries: list[str], hosts: list[str] | None = None
    ) -> None:
        """``hosts``: only those (the filter's), with ``canaries`` among them (none: no
        canary phase, the waves go straight on)."""
        call = self.engine.deploy(
            version,
            canaries=canaries or None,
            hosts=hosts,
            canary_phase=hosts is None or bool(canaries),
        )
        await self._call("deploy", call)

    @work(exclusive=True, group="rollout", exit_on_error=False, description="promote")
    async def run_promote(self, all_waves: bool = False) -> None:
        await self._call("promote", self.engine.promote(all_waves=all_waves))

    @work(exclusive=True, group="rollout", exit_on_error=False, description="promote")
    async def run_promote_call(self, action: str, call: Awaitable[ev.Outcome | None]) -> None:
        """A promotion started another way: retry, skip, resume."""
        await self._call(action, call)

    # Its own group: it answers the call that runs in the rollout group, never cancels it.
    @work(group="answer", exit_on_error=False, description="resume")
    async def run_answer(self, action: str, call: Awaitable[ev.Outcome | None]) -> None:
        try:
            await call
        except ActionRefused as exc:
            self.post_message(OperatorResult(action, error=str(exc)))

    # Its own group: a rollback must not cancel the worker it stops (the engine does that).
    @work(exclusive=True, group="rollback", exit_on_error=False, description="roll back")
    async def run_rollback(self) -> None:
        await self._call("roll back", self.engine.rollback())

    async def _call(self, action: str, call: Awaitable[ev.Outcome | None]) -> None:
        try:
            outcome = await call
        except ActionRefused as exc:
            self.post_message(OperatorResult(action, error=str(exc)))
        except Exception as exc:  # lock held, bad plan, bad version, SSH trouble
            self.post_message(OperatorResult(action, error=str(exc) or type(exc).__name__))
        else:
            if outcome is not None:
                self.post_message(OperatorResult(action, outcome=outcome))


def _if_yes(action: Callable[[], object]) -> Callable[[bool | None], None]:
    """A confirmation's callback: run ``action`` if the answer was yes."""

    def answered(yes: bool | None) -> None:
        if yes:
            action()

    return answered
