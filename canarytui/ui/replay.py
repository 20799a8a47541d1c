"""Replaying a past deployment from the journal: its events, re-sent in order, no host touched.

``load_recording`` reads one deployment's record, hosts and journaled events (decoded by
``readback.event_from_dict``). A ``ReplayEngine`` is an ``Engine`` that drives nothing: its
state starts as the fleet was before the deployment (each host on its previous version)
and follows the replayed events exactly as the live engine's follows its own, and its
subscribers (the fleet screen's bridge) get them the same way; it writes nothing to the
journal, refuses every operator call, and its fleet refuses to connect. ``Replayer``
sends the events with their original spacing divided by the speed, each wait capped at
``MAX_GAP`` seconds of real time (a 5-minute analysis whose updates come every 10 s takes
30 updates x 2 s at 1x, 6 s at 10x); it pauses, resumes, changes speed and steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from canarytui import events as ev
from canarytui.config import Environment
from canarytui.engine import ActionRefused, Engine
from canarytui.journal import DeploymentRecord, HostRecord, Journal
from canarytui.readback import event_from_dict
from canarytui.ssh import Fleet, Unreachable

if TYPE_CHECKING:
    import asyncssh

MAX_GAP = 2.0  # seconds of real time at most between two replayed events
SPEEDS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)  # what + and - step through
DEFAULT_SPEED = 10.0
MIN_SPEED, MAX_SPEED = 0.1, 1000.0
NOTHING_SENT = "nothing is sent to any host while replaying"


class ReplayError(Exception):
    """The deployment cannot be replayed; the message says why."""


@dataclass(frozen=True)
class Recording:
    """One deployment as the journal kept it."""

    record: DeploymentRecord
    hosts: dict[str, HostRecord]
    events: list[ev.Event]

    @property
    def at_start(self) -> DeploymentRecord:
        """The record as the engine held it when the deployment started (open, idle)."""
        return dataclasses.replace(
            self.record,
            phase=ev.Phase.IDLE.value,
            wave=None,
            is_open=True,
            outcome=None,
            verdict=None,
            summary=None,
            finished_at=None,
            updated_at=self.record.started_at,
        )


@dataclass(frozen=True)
class ReplayRequest:
    """What ``canarytui replay`` asks the app for: a recording, its speed, paused or not."""

    recording: Recording
    speed: float = DEFAULT_SPEED
    paused: bool = False


def load_recording(journal: Journal, env: Environment, deployment: int) -> Recording:
    """Deployment ``deployment`` of ``env`` from the journal (JournalError if unreadable)."""
    record = journal.deployment(deployment)
    if record is None or (record.env, record.app) != (env.name, env.app):
        raise ReplayError(f"no deployment #{deployment} of {env.name}/{env.app} in the journal")
    events = [e for e in map(event_from_dict, journal.events(deployment)) if e is not None]
    if not events:
        raise ReplayError(f"deployment #{deployment} has no journaled events: nothing to replay")
    events = [dataclasses.replace(e, deployment=deployment) for e in events]
    return Recording(record, journal.hosts(deployment), events)


def speed_label(speed: float) -> str:
    return f"{speed:g}x"


class NoHostFleet(Fleet):
    """A fleet that refuses to connect: a replay must never reach a host."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.refused = 0  # connection attempts refused (tests: there should be none)

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        self.refused += 1
        raise Unreachable(self.host(name), f"not contacted: {NOTHING_SENT}")


class ReplayEngine(Engine):
    """An engine that replays: state from the recording's events, nothing driven."""

    def __init__(self, env: Environment, journal: Journal, recording: Recording) -> None:
        super().__init__(env, journal, fleet=NoHostFleet(env), user=recording.record.user)
        self.recording = recording
        self._listeners: list[Callable[[ev.Event], None]] = []
        for name, host in recording.hosts.items():
            if name in self.state.host_states:
                self.state.host_states[name] = ev.HostState.IDLE
                self.state.versions[name] = host.previous

    @property
    def refused(self) -> str:
        return f"replay of #{self.recording.record.id}: {NOTHING_SENT}"

    def subscribe(self, subscriber: Callable[[ev.Event], None]) -> Callable[[], None]:
        self._listeners.append(subscriber)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(subscriber)

        return unsubscribe

    def emit(self, event: ev.Event) -> None:
        """A replayed event: into the state as the live engine's bus does (the journal
        has it already), then to the subscribers."""
        if isinstance(event, ev.DeploymentStarted):
            self.state.deployment = self.recording.at_start
            self.state.previous.clear()
            self.state.previous.update(event.previous)
        self.state.apply(event)
        for listener in list(self._listeners):
            listener(event)

    # What it knows of the journal: the replayed deployment only ------------------------

    def open_deployment(self) -> DeploymentRecord | None:
        return None

    def load_open(self) -> DeploymentRecord | None:
        return None

    # Everything that would reach a host or the journal is refused ----------------------

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise ActionRefused(self.refused)

    async def deploy(self, *args: Any, **kwargs: Any) -> ev.Outcome:
        self._refuse()

    async def promote(self, *args: Any, **kwargs: Any) -> ev.Outcome:
        self._refuse()

    async def rollback(self, *args: Any, **kwargs: Any) -> ev.Outcome:
        self._refuse()

    async def restore(self, *args: Any, **kwargs: Any) -> ev.Outcome:
        self._refuse()

    async def resume(self) -> ev.Outcome | None:
        self._refuse()

    async def analyze(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse()

    async def inspect_locks(self) -> Any:
        self._refuse()

    async def releases(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse()

    def hold(self) -> None:
        self._refuse()

    def leave_halted(self) -> None:
        self._refuse()

    async def finish_stale_locks(self) -> int | None:
        return None

    async def discover(
        self,
        names: Iterable[str] | None = None,
        locks: bool = False,
        lockable: dict[str, str] | None = None,
    ) -> dict[str, str | None]:
        return {}

    async def tail(self, name: str) -> AsyncIterator[str]:
        return
        yield  # an async generator that yields nothing


class Replayer:
    """Sends a recording's events to a ``ReplayEngine`` in time; ``run()`` until the end.

    ``changed`` (if given) is called after every event sent and every change of speed or
    pause, from the loop it runs in.
    """

    def __init__(
        self,
        engine: ReplayEngine,
        speed: float = DEFAULT_SPEED,
        *,
        paused: bool = False,
        changed: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.events: Sequence[ev.Event] = engine.recording.events
        self.speed = speed
        self.paused = paused
        self.position = 0  # events sent so far
        self.changed = changed
        self._wake = asyncio.Event()

    # What the banner says ---------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.position >= len(self.events)

    @property
    def elapsed(self) -> float:
        """Journal seconds from the first event to the last one sent."""
        if not self.position:
            return 0.0
        return self.events[self.position - 1].at - self.events[0].at

    @property
    def duration(self) -> float:
        return self.events[-1].at - self.events[0].at if self.events else 0.0

    # Controls ---------------------------------------------------------------------

    def set_speed(self, speed: float) -> None:
        self.speed = min(MAX_SPEED, max(MIN_SPEED, speed))
        self._changed()

    def faster(self) -> float:
        self.set_speed(next((s for s in SPEEDS if s > self.speed), self.speed))
        return self.speed

    def slower(self) -> float:
        self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), self.speed))
        return self.speed

    def toggle_pause(self) -> bool:
        """Pause or resume; True if paused now."""
        self.paused = not self.paused
        self._changed()
        return self.paused

    def step(self, count: int = 1) -> int:
        """Send the next ``count`` events now (whether paused or not); returns how many."""
        sent = 0
        while sent < count and not self.finished:
            self._send()
            sent += 1
        if sent:
            self._changed()
        return sent

    def _changed(self) -> None:
        self._wake.set()
        if self.changed is not None:
            self.changed()

    # Running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Send every event in time, honouring pauses, speed changes and steps."""
        loop = asyncio.get_running_loop()
        while not self.finished:
            target = self.position
            left = self.events[target].at - self.events[target - 1].at if target else 0.0
            budget = MAX_GAP
            while self.position == target and (self.paused or (left > 1e-6 and budget > 1e-6)):
                self._wake.clear()
                if self.paused:
                    await self._wake.wait()
                    continue
                speed = self.speed
                began = loop.time()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left / speed, budget)):
                        await self._wake.wait()
                spent = loop.time() - began
                left -= spent * speed
                budget -= spent
            if self.position == target:
                self._send()
                if self.changed is not None:
                    self.changed()
        if self.changed is not None:
            self.changed()

    def _send(self) -> None:
        event = self.events[self.position]
        self.position += 1
        self.engine.emit(event)
