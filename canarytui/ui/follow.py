"""The fleet screen following what another process of this machine drives.

A release started from the command line, or from another UI on the same journal, is
recorded there event by event; ``JournalFollow`` reads them back every
``FOLLOW_INTERVAL`` (``engine.follow.Follower``) and posts them to the screen as the
engine's own, marked ``followed`` so that the keys offered are not promised for a
deployment another process is acting on.
"""

from __future__ import annotations

from typing import Any

from textual.screen import Screen

from canarytui.engine.follow import Follower
from canarytui.journal import JournalError
from canarytui.ui.messages import EngineEvents

FOLLOW_INTERVAL = 0.5  # seconds between two reads of the journal


class JournalFollow:
    """``set_interval(FOLLOW_INTERVAL, JournalFollow(screen, engine.follower()))``."""

    def __init__(self, screen: Screen[Any], follower: Follower) -> None:
        self.screen = screen
        self.follower = follower
        self._failing = False  # said once while the journal cannot be read

    def __call__(self) -> None:
        try:
            events = self.follower.poll()
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
        if events:
            self.screen.post_message(EngineEvents(events, followed=True))
