"""What the fleet screen must repaint after engine data, coalesced to ~10 repaints a second.

A burst of messages costs one update of each part. On the grid, only the rows of the tiles
in view whose host changed are repainted (the other lines stay cached), so an off-screen
host's change costs a set insertion. Key presses do not wait for this: the widgets they
touch refresh themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from textual.screen import Screen

from canarytui.ui.widgets.fleet_grid import FleetGrid
from canarytui.ui.widgets.host_panel import HostPanel
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.status_header import StatusHeader

REPAINT_INTERVAL = 0.1  # seconds between two data-driven repaints at most


class Repaint:
    """The parts of ``screen`` changed since the last repaint, and the timer to repaint."""

    def __init__(self, screen: Screen[None], interval: float = REPAINT_INTERVAL) -> None:
        self.screen = screen
        self.interval = interval
        self._pending = False
        self._last = 0.0
        self._grid = False  # the whole grid (phase, picks, an operator's action)
        self._hosts: set[str] = set()  # hosts whose tiles changed
        self._panel = False
        self._status = False

    def mark(
        self,
        *,
        grid: bool = False,
        hosts: Iterable[str] = (),
        panel: bool = False,
        status: bool = False,
    ) -> None:
        """Note what changed; the repaint follows within ``interval``."""
        self._grid |= grid
        self._hosts.update(hosts)
        self._panel |= panel
        self._status |= status
        if self._pending or not (self._grid or self._hosts or self._panel or self._status):
            return
        self._pending = True
        wait = self.interval - (time.monotonic() - self._last)
        later: Callable[[], None] = self.now
        if wait <= 0:
            self.screen.call_later(later)
        else:
            self.screen.set_timer(wait, later)

    def now(self) -> None:
        """Apply what changed to the widgets now."""
        self._pending = False
        self._last = time.monotonic()
        screen = self.screen
        if screen.is_mounted:
            if self._grid:
                screen.query_one(FleetGrid).refresh()
            elif self._hosts:
                screen.query_one(FleetGrid).refresh_hosts(self._hosts)
            if self._panel:
                screen.query_one(HostPanel).refresh_host()
            if self._status:
                screen.query_one(StatusHeader).redraw()
                screen.query_one(RolloutProgress).redraw()
        self._grid = self._panel = self._status = False
        self._hosts = set()
