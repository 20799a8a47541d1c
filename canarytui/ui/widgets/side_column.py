"""The fleet screen's right column: the focused host's panel over the rollout panel.

In a short terminal (80x24), or with the filter bar open under it, the rollout panel (phase,
waves, analysis, verdict) keeps PROGRESS_MIN rows: the host panel gives them up, down to
its border and first lines, address to version (the rest is in the details view, enter).
Refitted whenever the column's own height changes, whatever changed it.
"""

from __future__ import annotations

from textual import events
from textual.containers import Vertical

from canarytui.ui.widgets.host_panel import HostPanel

PROGRESS_MIN = 12  # rows: border, who and phase, the canary, waves, analysis, verdict
HOST_MIN, HOST_MAX = 6, 24  # rows of the host panel: its border and 4 lines, at least
RIGHT_MIN, RIGHT_MAX = 46, 72  # the column's width when the grid needs the room
LEFT_MIN = 60  # the grid and the logs never get narrower than this for the column
# Below 80 columns the grid and logs keep the 34 they have at 80 (a column of tiles), this
LEFT_KEEP, RIGHT_NARROW = 34, 31  # column narrowing for them, down to RIGHT_NARROW


def side_width(width: int, needed: int) -> int:
    """The column's width in a screen ``width`` wide whose grid shows every host in
    ``needed`` columns: what the grid does not need, within the bounds above."""
    base = min(RIGHT_MAX, max(RIGHT_MIN, int(width * 0.35)))
    right = max(base, min(width - max(LEFT_MIN, needed), width // 2))
    return min(right, max(RIGHT_NARROW, width - LEFT_KEEP))


class SideColumn(Vertical):
    """A ``Vertical`` that sets its host panel's ``max-height`` from its own height."""

    def on_resize(self, event: events.Resize) -> None:
        host = self.query_one(HostPanel).styles
        tall = max(HOST_MIN, min(HOST_MAX, event.size.height - PROGRESS_MIN))
        if host.max_height is None or host.max_height.value != tall:
            host.max_height = tall
