"""The operator's rollout actions on the fleet screen: deploy, promote, roll back.

Each action checks what the engine allows, asks (``VersionScreen``, ``ConfirmScreen``),
then starts an async worker. Workers only call the engine and post an ``OperatorResult``;
the screen's handler owns what changes on screen. ``FleetScreen`` inherits these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import work
from textual.screen import Screen

from canarytui import events as ev
from canarytui.engine import ActionRefused, Engine
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.messages import OperatorResult
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.screens.version import VersionScreen


class OperatorActions(Screen[None]):
    """``action_deploy``, ``action_promote``, ``action_rollback`` and their workers."""

    engine: Engine
    state: FleetState

    # Actions (keys d, p, r) -----------------------------------------------------------

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
                f"deployment #{record.id} of {record.version} is still open "
                f"({record.phase_label}): promote (p) or roll back (r) first",
                severity="warning",
                timeout=8,
                markup=False,
            )
            return
        canaries = self.state.canaries_for_deploy()

        def chosen(version: str | None) -> None:
            if version is None:
                return
            question = (
                f"Deploy {version} to {len(canaries)} canary host(s): "
                f"{', '.join(canaries)}?\n\nThe analysis then watches them for "
                f"{self.state.env.canary.analysis.duration:g}s; promotion waits "
                "for you."
            )

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self.run_deploy(version, canaries)

            self.app.push_screen(
                ConfirmScreen(f"Deploy {version}?", question, yes="Deploy"), confirmed
            )

        self.app.push_screen(VersionScreen(self.state.env, canaries), chosen)

    def action_promote(self) -> None:
        if self.engine.busy:
            self.notify(
                "the engine is busy: wait for the current step", severity="warning", markup=False
            )
            return
        record = self.engine.open_deployment()
        if record is None:
            self.notify(
                "nothing to promote: no deployment is open", severity="warning", markup=False
            )
            return
        phase = ev.Phase(record.phase)
        if phase not in (ev.Phase.AWAITING_PROMOTION, ev.Phase.HALTED, ev.Phase.PROMOTING):
            self.notify(
                f"deployment #{record.id} is {record.phase_label}: nothing to promote "
                "until the canary has a verdict",
                severity="warning",
                markup=False,
            )
            return
        waves = record.plan
        nxt = (record.wave or 0) + 1
        pending = next((i for i, w in enumerate(waves, 1) if i >= nxt and w), None)
        count = len(waves[pending - 1]) if pending else 0
        what = f"wave {pending}/{len(waves)} ({count} host(s))" if pending else "the rest"
        self.app.push_screen(
            ConfirmScreen(
                f"Promote {record.version}?", f"Deploy {record.version} to {what}?", yes="Promote"
            ),
            _if_yes(self.run_promote),
        )

    def action_rollback(self) -> None:
        record = self.engine.open_deployment() or self.engine.journal.last_deployment(
            self.state.env.name, self.state.env.app
        )
        if record is None:
            self.notify("nothing to roll back: no deployment yet", severity="warning", markup=False)
            return
        running = " It stops what is running now." if self.engine.busy else ""
        self.app.push_screen(
            ConfirmScreen(
                f"Roll back {record.version}?",
                f"Roll deployment #{record.id} ({record.version}) back on every "
                f"host it reached?{running}",
                yes="Roll back",
                danger=True,
            ),
            _if_yes(self.run_rollback),
        )

    # Workers: they call the engine and report, nothing else -----------------------------

    @work(exclusive=True, group="rollout", exit_on_error=False, description="deploy")
    async def run_deploy(self, version: str, canaries: list[str]) -> None:
        await self._call("deploy", self.engine.deploy(version, canaries=canaries))

    @work(exclusive=True, group="rollout", exit_on_error=False, description="promote")
    async def run_promote(self) -> None:
        await self._call("promote", self.engine.promote(all_waves=False))

    # Its own group: a rollback must not cancel the worker it stops (the engine does that).
    @work(exclusive=True, group="rollback", exit_on_error=False, description="roll back")
    async def run_rollback(self) -> None:
        await self._call("roll back", self.engine.rollback())

    async def _call(self, action: str, call: Awaitable[ev.Outcome]) -> None:
        try:
            outcome = await call
        except ActionRefused as exc:
            self.post_message(OperatorResult(action, error=str(exc)))
        except Exception as exc:  # lock held, bad plan, bad version, SSH trouble
            self.post_message(OperatorResult(action, error=str(exc) or type(exc).__name__))
        else:
            self.post_message(OperatorResult(action, outcome=outcome))


def _if_yes(action: Callable[[], object]) -> Callable[[bool | None], None]:
    """A confirmation's callback: run ``action`` if the answer was yes."""

    def answered(yes: bool | None) -> None:
        if yes:
            action()

    return answered
