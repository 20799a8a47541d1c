"""One deployment's canary analysis as the UI keeps it: plain Python, no widgets.

What the analysis view shows: the last measurements (the verdict's once there is one), and
for each rule on each canary the points of every update (the canary's value over the last
interval against the baseline hosts' range over it), bounded. Live, ``FleetState.apply``
feeds it engine events; afterwards it is rebuilt from the journal's events of the
deployment (``analysis_started``, ``analysis``, ``verdict``), which hold the same fields.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from canarytui import events as ev
from canarytui.readback import event_from_dict

POINTS_KEPT = 600  # points per rule and canary: 20 minutes of updates every 2 s
HEALTH_BUDGET = "failed-checks"  # the measurement of failed health checks (not a rule)


@dataclass(frozen=True)
class Point:
    """One update of one rule on one canary."""

    elapsed: float  # seconds since the analysis started
    recent: float | None  # the canary's value over the last interval
    low: float | None = None  # the baseline hosts' range over the same interval
    high: float | None = None


class AnalysisLog:
    """The analysis of deployment ``deployment`` (None: none yet in this session)."""

    def __init__(self, deployment: int | None = None, version: str = "") -> None:
        self.deployment = deployment
        self.version = version
        self.started: ev.AnalysisStarted | None = None
        self.update: ev.AnalysisUpdate | None = None
        self.verdict: ev.VerdictReached | None = None
        self.points: dict[tuple[str, str], deque[Point]] = {}
        self.revision = 0  # changes with every event taken: a view redraws when it moves

    # Queries ----------------------------------------------------------------------

    @property
    def measurements(self) -> list[ev.Measurement]:
        """The verdict's measurements once it is reached, else the last update's."""
        if self.verdict is not None and self.verdict.measurements:
            return list(self.verdict.measurements)
        return list(self.update.measurements) if self.update is not None else []

    @property
    def duration(self) -> float:
        """The analysis window (warm-up included), as the engine announced it."""
        if self.started is not None:
            return self.started.duration
        return self.update.duration if self.update is not None else 0.0

    @property
    def elapsed(self) -> float:
        return self.update.elapsed if self.update is not None else 0.0

    @property
    def empty(self) -> bool:
        return self.started is None and self.update is None and self.verdict is None

    def series(self, rule: str, host: str) -> list[Point]:
        return list(self.points.get((rule, host), ()))

    # Updates ----------------------------------------------------------------------

    def reset(self, deployment: int | None, version: str = "") -> None:
        """A new deployment: nothing measured yet."""
        self.deployment = deployment
        self.version = version
        self.started = None
        self.update = None
        self.verdict = None
        self.points.clear()
        self.revision += 1

    def apply(self, event: ev.Event) -> bool:
        """One engine event; True if it was about the analysis."""
        match event:
            case ev.AnalysisStarted():
                self.started = event
                self.update = None
                self.verdict = None
                self.points.clear()
            case ev.AnalysisUpdate():
                self.update = event
                for m in event.measurements:
                    self._add(event.elapsed, m)
            case ev.VerdictReached():
                self.verdict = event
            case _:
                return False
        self.revision += 1
        return True

    def _add(self, elapsed: float, m: ev.Measurement) -> None:
        low, high = _band(m.band)
        if m.recent is None and low is None:
            return  # nothing to draw (the health budget, a rule without data yet)
        key = (m.rule, m.host)
        points = self.points.get(key)
        if points is None:
            points = self.points[key] = deque(maxlen=POINTS_KEPT)
        points.append(Point(elapsed, m.recent, low, high))

    def load(
        self, deployment: int, version: str, events: Iterable[Mapping[str, Any]]
    ) -> AnalysisLog:
        """The deployment's analysis from its journaled events (``Journal.events``)."""
        self.reset(deployment, version)
        for data in events:
            event = event_from_journal(data, deployment)
            if event is not None:
                self.apply(event)
        return self

    @classmethod
    def from_journal(
        cls, deployment: int, version: str, events: Iterable[Mapping[str, Any]]
    ) -> AnalysisLog:
        return cls().load(deployment, version, events)


def _band(band: list[float] | None) -> tuple[float | None, float | None]:
    if not band or len(band) != 2:
        return None, None
    return float(band[0]), float(band[1])


_ANALYSIS_KINDS = (ev.AnalysisStarted.kind, ev.AnalysisUpdate.kind, ev.VerdictReached.kind)


def event_from_journal(data: Mapping[str, Any], deployment: int) -> ev.Event | None:
    """An analysis event from its journal dict; None for other events and for one this
    version cannot read (the others still show)."""
    if data.get("event") not in _ANALYSIS_KINDS:
        return None
    event = event_from_dict(data)
    return None if event is None else dataclasses.replace(event, deployment=deployment)
