"""Textual messages carrying engine events to the widgets.

Events sent in one go (a wave's host updates, a discovery round) travel together in one
``EngineEvents`` message, posted at once. Health samples and log lines can come by the
thousand per second: the bridge batches them every ~100 ms into one message each, so a
busy fleet costs one screen update per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from canarytui import events as ev


@dataclass
class EngineEvents(Message, bubble=False):
    """Engine events in the order sent (each in the journal already if journaled).
    ``followed``: recorded by another process that drives the deployment (``Follower``),
    so the keys they would offer may be that process's to press."""

    events: list[ev.Event]
    followed: bool = False


@dataclass
class HealthBatch(Message, bubble=False):
    """Health samples gathered over the last batch interval, oldest first."""

    samples: list[ev.HealthSample]


@dataclass
class LogBatch(Message, bubble=False):
    """Log lines gathered over the last batch interval; ``dropped`` were shed under load."""

    lines: list[ev.LogLine]
    dropped: int = 0


@dataclass
class OperatorResult(Message, bubble=False):
    """How an operator call (deploy, promote, roll back) ended, from its worker."""

    action: str
    outcome: ev.Outcome | None = None
    error: str | None = None


class AnalysisChanged(Message, bubble=False):
    """The fleet state's analysis (or the phase) changed: an open analysis view redraws.
    Several pending ones are one redraw."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AnalysisChanged)
