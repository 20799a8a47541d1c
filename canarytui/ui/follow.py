"""The fleet screen following what another process of this machine drives.

A release started from the command line, or from another UI on the same journal, is
recorded there event by event; ``JournalFollow`` reads them back every
``FOLLOW_INTERVAL`` (``engine.follow.Follower``) and posts them to the screen as the
engine's own, marked ``followed`` so that the keys offered are not promised for a
deployment another process is acting on. When that process ends with the deployment
mid-way (killed, or stopped), the screen says so once, with what is left to do: its
analysis would otherwise look as if it were still going.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.screen import Screen

from canarytui import events as ev
from canarytui.engine import Engine, locks
from canarytui.journal import JournalError
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.messages import EngineEvents

FOLLOW_INTERVAL = 0.5  # seconds between two reads of the journal
# Phases a deployment is left in only when what drove it ended before a rest point.
MIDWAY = {ev.Phase.CANARY, ev.Phase.ANALYSIS, ev.Phase.PROMOTING, ev.Phase.ROLLING_BACK}


class JournalFollow:
    """``set_interval(FOLLOW_INTERVAL, JournalFollow(screen, engine, repaint_all, state))``;
    ``repaint_all()`` repaints the whole screen once the deployment is taken up anew, or
    once another process drives it (``state.driven_by``) or no longer does."""

    def __init__(
        self,
        screen: Screen[Any],
        engine: Engine,
        repaint_all: Callable[[], None],
        state: FleetState,
    ) -> None:
        self.screen = screen
        self.state = state
        self.engine = engine
        self.repaint_all = repaint_all
        self.follower = engine.follower()
        self._failing = False  # said once while the journal cannot be read
        self._driver: tuple[int, object] | None = None  # (deployment, pid) driven elsewhere

    def __call__(self) -> None:
        try:
            events = self.follower.poll()
            ended = self._driver_ended()
        except JournalError as exc:
            if not self._failing:
                self._failing = True
                self.screen.notify(
                    f"{exc}; what other processes do is not shown until it can be read again",
                    title="journal",
                    severity="warning",
                    timeout=12,
                    markup=False,
                )
            return
        self._failing = False
        driver = self._driver[1] if self._driver is not None else None
        if self.state.driven_by != driver:  # its keys are offered only where they are taken
            self.state.driven_by = driver
            self.repaint_all()
        if events:
            self.screen.post_message(EngineEvents(events, followed=True))
        if ended is not None:
            # Nobody drives it now: taken up where it stopped (its hosts cut off, the
            # analysis not counting down, the keys that now apply).
            self.engine.load_open()
            self.repaint_all()
            self.screen.notify(
                ended, title="open deployment", severity="warning", timeout=30, markup=False
            )

    def _driver_ended(self) -> str | None:
        """What to say, once, when the process that drove the open deployment is gone and
        left it mid-way; None otherwise (it is still there, or stopped at a rest point)."""
        engine = self.engine
        record = None if engine.busy else engine.open_deployment()
        if record is None:
            self._driver = None
            return None
        held = locks.driver_of(engine.locks.local_path(), record, engine.machine)
        if held is not None:
            self._driver = (record.id, held.get("pid"))
            return None
        driver, self._driver = self._driver, None
        if driver is None or driver[0] != record.id or ev.Phase(record.phase) not in MIDWAY:
            return None
        return (
            f"the canarytui that drove deployment #{record.id} of {record.version} "
            f"(pid {driver[1]}) ended while it was {record.phase_doing}: {record.way_out}"
        )
