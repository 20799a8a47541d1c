"""The event bus and the rollout's live state: each event journaled, applied, then handed on.

Every part of the engine speaks through ``Bus.emit``: the journal records the event first,
the state follows it, and only then do the consumers (the UI bridge, the CLI's printer,
tests) see it. A consumer that raises is reported to the others as an error notice (and
in the journal), never silently collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from canarytui import events as ev
from canarytui.config import Environment
from canarytui.journal import DeploymentRecord, Journal
from canarytui.ssh import CommandTimeout, Fleet, SshError, Unreachable

Subscriber = Callable[[ev.Event], None]


@dataclass(frozen=True)
class HeldBy:
    """A host's lock as its owner file says: ``owner`` is host text (shown harmless)."""

    owner: str  # ``locks.describe_owner``: who, which deployment or reason, since when
    maintenance: bool = False  # ``canarytui lock``'s, not a deployment's
    # The same for every host of one deployment (its token), whatever each host's lock
    # says of the process that took it and when (the canary's first, the waves' later);
    # none: the owner's words are the key.
    key: str = ""
    # The owner file's fields as parsed (host text, never shown as is): whose deployment
    # (its token), since when; left out of comparisons.
    fields: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # Left by this journal's own deployment (or refused start): the next one frees it.
    left_here: bool = False

    @property
    def whose(self) -> str:
        return self.key or self.owner


# What says the network is gone, not the host (a host that refuses a login, a key or a
# shell has answered): the hosts ``Bus.lost`` said so of are kept (``net_lost``).
LOST_ERRORS = (Unreachable, CommandTimeout)


@dataclass
class RolloutState:
    """What the engine knows now about the fleet and the deployment it drives."""

    host_states: dict[str, ev.HostState]
    versions: dict[str, str | None] = field(default_factory=dict)
    previous: dict[str, str | None] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)  # the last thing said of each host
    # Why an unreachable host is: its SshError.what ("host key refused"), until it is not.
    refused: dict[str, str] = field(default_factory=dict)
    # Whose lock a host holds, when no deployment of this process is open: another
    # machine's deployment, a maintenance lock (asked with the versions at rest).
    locked_by: dict[str, HeldBy] = field(default_factory=dict)
    phase: ev.Phase = ev.Phase.IDLE
    wave: int | None = None  # the wave the phase is at (promoting, or stopped after it)
    deployment: DeploymentRecord | None = None
    last_verdict: ev.VerdictReached | None = None
    watched: set[str] = field(default_factory=set)  # probed at health.interval right now
    held: tuple[str, float] | None = None  # (who, since when) an operator held the rollout
    question: ev.FailureQuestion | None = None  # on_failure ask: what waits for an answer
    # Hosts the adopted deployment was changing when its process stopped (``ev.CUT_OFF``),
    # until something is said of them again.
    cut_off: set[str] = field(default_factory=set)
    # Hosts the network stopped last (a connection refused or lost, a command past its
    # timeout: ``Bus.lost``), until something else is said of them: is the fleet lost
    # from here (``outage``)?
    net_lost: set[str] = field(default_factory=set)
    stopped: bool = False  # the same deployment, adopted: its phase is where it stopped
    others_read: int | None = None  # the limited deployment whose other hosts were read

    @property
    def deployment_id(self) -> int | None:
        return self.deployment.id if self.deployment else None

    def apply(self, event: ev.Event) -> None:
        match event:
            case ev.HostUpdate(host=host, state=state, version=version, detail=detail):
                self.host_states[host] = state
                self.cut_off.discard(host)
                self.net_lost.discard(host)
                self.details[host] = detail
                if state is not ev.HostState.UNREACHABLE:
                    self.refused.pop(host, None)
                if version is not None:
                    self.versions[host] = version
            case ev.DeploymentStarted():
                self.locked_by.clear()  # the hosts are this deployment's now
            case ev.PhaseChanged(phase=phase, wave=wave):
                self.phase, self.wave, self.stopped = phase, wave, False
                if phase.is_final:
                    self.held = None
                if phase is not ev.Phase.HALTED:
                    self.question = None
            case ev.VerdictReached():
                self.last_verdict = event
            case ev.Decision(action="hold", user=user, at=at):
                self.held = (user, at)
            case ev.Decision(action="resume" | "promote" | "continue" | "rollback"):
                self.held = None
            case ev.FailureQuestion():
                self.question = event

    def adopt(self, record: DeploymentRecord, journal: Journal, stopped: bool = False) -> None:
        """Take the journal's word for a deployment's phase and each of its hosts;
        ``stopped``: no process drives it (its hosts deploying then were cut off)."""
        self.deployment = record
        self.phase, self.wave = ev.Phase(record.phase), record.wave
        self.cut_off, self.stopped = set(), stopped
        for name, h in journal.hosts(record.id).items():
            if name in self.host_states:
                self.host_states[name] = state = ev.HostState(h.state)
                self.versions[name] = h.current
                self.previous[name] = h.previous
                if stopped and state in ev.CUT_OFF:
                    self.cut_off.add(name)

    def in_states(self, names: list[str], states: set[ev.HostState]) -> list[str]:
        return [h for h in names if self.host_states.get(h) in states]

    def unreachable_first(self, names: Iterable[str]) -> list[str]:
        """``names``, those marked unreachable first (otherwise in order): trying one again
        can take the whole connect timeout, which then passes while the others are worked
        on instead of after them (one hung host last in a wave of 400 added 2 s to it)."""
        return sorted(names, key=lambda h: self.host_states.get(h) is not ev.HostState.UNREACHABLE)


class Bus:
    """Events out, in order: journal, state, then every subscriber."""

    def __init__(self, journal: Journal, state: RolloutState, user: str) -> None:
        self.journal = journal
        self.state = state
        self.user = user
        self._subscribers: list[Subscriber] = []
        self._reporting = False
        # The journal ids of the events this process recorded, kept while a follower
        # (``follow.Follower``) asks, so that it tells them from another process's.
        self.recorded: set[int] | None = None

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def emit(self, event: ev.Event) -> None:
        """Journal first, then the state, then the consumers; a failing consumer is reported."""
        self.emit_many((event,))

    def emit_many(self, events: Iterable[ev.Event]) -> None:
        """A burst (every host of a plan at once): all journaled in one transaction first,
        then each applied to the state and handed on, in order."""
        events = list(events)
        ids = self.journal.record_many(events)
        if self.recorded is not None:
            self.recorded.update(ids)
        for event in events:
            self.state.apply(event)
            d = self.state.deployment
            if isinstance(event, ev.DeploymentFinished) and d and event.deployment == d.id:
                # Closed, as the journal has it now: what asks whether it is open (a host
                # found again after it, ``discover_one``) is told it is not.
                self.state.deployment = self.journal.deployment(d.id) or d
            for subscriber in list(self._subscribers):
                try:
                    subscriber(event)
                except Exception as exc:  # a consumer's bug must not stop a deployment
                    self._report(event, exc)

    def _report(self, event: ev.Event, exc: Exception) -> None:
        if self._reporting:
            return  # the report itself failed somewhere: it is in the journal already
        self._reporting = True
        try:
            self.notice(
                "error",
                f"a consumer of the engine's events failed on {event.kind!r}: "
                f"{type(exc).__name__}: {exc}; the rollout goes on",
            )
        finally:
            self._reporting = False

    # What the engine says, with the deployment it belongs to -------------------------

    def phase(self, phase: ev.Phase, wave: int | None = None) -> None:
        d = self.state.deployment
        waves = len(d.plan) if d else 0
        self.emit(
            ev.PhaseChanged(
                phase=phase, wave=wave, waves=waves, deployment=self.state.deployment_id
            )
        )

    def host(
        self, name: str, state: ev.HostState, version: str | None = None, detail: str = ""
    ) -> None:
        self.hosts(((name, state, version, detail),))

    def lost(self, name: str, state: ev.HostState, exc: SshError) -> None:
        """A host an SSH error stopped (``state``: unreachable, failed once it was changed,
        or rollback failed), the error said; an unreachable one's kind kept (``refused``),
        and a host the network stopped (``net_lost``)."""
        if state is ev.HostState.UNREACHABLE:
            self.state.refused[name] = exc.what
        self.host(name, state, detail=str(exc))
        if isinstance(exc, LOST_ERRORS):
            self.state.net_lost.add(name)

    def hosts(self, updates: Iterable[tuple[str, ev.HostState, str | None, str]]) -> None:
        """Hosts' ``(name, state, version, detail)`` as one burst (``emit_many``)."""
        d = self.state.deployment_id
        self.emit_many(
            ev.HostUpdate(host=name, state=state, version=version, detail=detail, deployment=d)
            for name, state, version, detail in updates
        )

    def notice(self, level: str, message: str, host: str | None = None) -> None:
        self.emit(
            ev.Notice(level=level, message=message, host=host, deployment=self.state.deployment_id)
        )

    def decision(self, action: str, detail: str = "") -> None:
        self.emit(
            ev.Decision(
                action=action, user=self.user, detail=detail, deployment=self.state.deployment_id
            )
        )


@dataclass
class Context:
    """What every part of the engine works with: the file, the journal, SSH and the bus."""

    env: Environment
    journal: Journal
    fleet: Fleet
    bus: Bus
    machine: str

    @property
    def state(self) -> RolloutState:
        return self.bus.state

    @property
    def user(self) -> str:
        return self.bus.user
