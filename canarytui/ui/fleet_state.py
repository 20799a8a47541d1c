"""What the screen shows, kept from engine events: plain Python, no widgets.

The engine owns host states, versions and the phase (``engine.host_states`` ...); this keeps
what only the UI needs, from the fleet screen's handlers (``apply``, ``add_samples``): health
history per host, each host's last step, the operator's canary picks, the filter
(``host_filter``), a deployment being started, the rollout's progress (analysis, verdict).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable

from canarytui import events as ev
from canarytui.engine import Engine
from canarytui.engine.bus import HeldBy
from canarytui.engine.waiting import LOCKS_WAITED
from canarytui.journal import DeploymentRecord, JournalError
from canarytui.metrics.measure import rule_value
from canarytui.readback import event_from_dict
from canarytui.ui.analysis_log import AnalysisLog
from canarytui.ui.host_filter import VERSION_KEY, HostFilter, version_matches
from canarytui.ui.host_views import HostViews
from canarytui.ui.waves import WaveProgress, wave_progress


def left_note(held: HeldBy) -> str:
    """What the UI adds to a lock this journal's own deployment (or refused start) left."""
    said = " (left by this journal: the next deployment frees it; canarytui unlock breaks it now)"
    return said if held.left_here else ""


class TileKind:
    """What colour a tile gets: a host state, with health folded in when at rest."""

    HEALTHY = "healthy"
    DEPLOYED = "deployed"
    FAILING = "failing"
    DEPLOYING = "deploying"
    PENDING = "pending"
    ROLLED_BACK = "rolled-back"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"

    ALL = (HEALTHY, DEPLOYED, FAILING, DEPLOYING, PENDING, ROLLED_BACK, UNREACHABLE, UNKNOWN)


# Seconds after which a host's last probe is shown by its age (at least 3 health intervals):
# a host not watched is probed only now and then (``monitor``).
OLD_AFTER = 10.0
# What the filter can match that changes with a host: its state, its tile's colour.
_STATE_WORDS = (*(s.value for s in ev.HostState), *TileKind.ALL, "locked", "maintenance")


def _changing(needle: str) -> bool:
    """Whether the filter's text can match what changes with a host (``HostFilter``)."""
    return (
        needle == "canary"
        or needle.startswith(VERSION_KEY)
        or any(needle in word for word in _STATE_WORDS)
    )


class FleetState:
    """UI-side state for one engine's fleet."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.env = engine.env
        self.hosts = HostViews(self.env.host_names)
        self.picked: list[str] = []  # canaries the operator chose for the next deploy
        self._defaults = frozenset(self.env.default_canaries())  # the file's, for the filter
        self.filter = HostFilter(self.env.hosts, self._now, _changing)
        self.analysis_log = AnalysisLog()  # the current (or adopted) deployment's analysis
        self.finished: ev.DeploymentFinished | None = None
        self._ended: dict[str, ev.HostState] = {}  # the hosts' as it finished
        self.wave: int | None = None
        self.waves = 0
        self.traffic: ev.TrafficShifted | None = None  # what the last traffic hook said
        self.starting: ev.DeploymentStarting | None = None  # hosts being locked for one
        self.waiting: ev.LocksWaiting | None = None  # the hosts it waits for, if any
        self.last: DeploymentRecord | None = None  # the journal's last, none open at start
        self.driven_by: object = None  # the pid of another process driving the open one
        self.replaying = False  # a past deployment's replay: no live key applies
        # A probe older than this is shown by its age: the host's health now is not known.
        self.old_after = max(OLD_AFTER, 3 * self.env.health.interval)

    # Queries ----------------------------------------------------------------------

    @property
    def deployment(self) -> DeploymentRecord | None:
        return self.engine.deployment

    @property
    def analysis(self) -> ev.AnalysisUpdate | None:
        """The last analysis update of the current deployment."""
        return self.analysis_log.update

    @property
    def verdict(self) -> ev.VerdictReached | None:
        return self.analysis_log.verdict

    @property
    def active(self) -> bool:
        """A deployment is open (running, or waiting for the operator)."""
        return self.deployment is not None and not self.engine.phase.is_final

    def is_canary(self, name: str) -> bool:
        d = self.deployment
        if d is not None and self.active:
            return name in d.canaries
        return name in self.picked

    def canaries_for_deploy(self) -> list[str]:
        picked = set(self.picked)
        if picked:
            return [n for n in self.env.host_names if n in picked]
        return self.env.default_canaries()

    def phase_label(self) -> str:
        if self.starting is not None:
            return "starting"
        return ev.phase_label(self.engine.phase, self.wave, self.waves, self.engine.state.stopped)

    def versions(self) -> tuple[str | None, str | None]:
        """(stable, candidate): what the fleet runs, and the release being rolled out."""
        d = self.deployment
        candidate = d.version if d is not None and self.active else None
        source = self.engine.previous if d is not None and self.active else self.engine.versions
        counted = Counter(source.values())  # counted in C: 5,000 hosts ten times a second
        for unknown in (None, ""):
            counted.pop(unknown, None)
        stable = counted.most_common(1)[0][0] if counted else None
        return stable, candidate

    def locks_held(self) -> list[tuple[str, int, str]]:
        """At rest, the locks other deployments (or maintenance) hold: whose (as the first
        host of each deployment says it), on how many hosts, the most first; and a note
        for one this journal's own deployment (or refused start) left: the next frees it."""
        if self.active:
            return []
        held = self.engine.state.locked_by.values()
        said = {h.whose: h for h in reversed(list(held))}  # the first host's words
        counted = Counter(h.whose for h in held).most_common()
        return [(said[k].owner, n, left_note(said[k])) for k, n in counted]

    def version_counts(self) -> list[tuple[str, int]]:
        """The versions the hosts run (as last read), most hosts first."""
        return Counter(v for v in self.engine.versions.values() if v).most_common()

    @property
    def locks_waiting(self) -> ev.LocksWaiting | None:
        """Which hosts the locks being taken wait for, while they do: the engine's last
        word of them (said each second), if it is that recent and the engine still busy."""
        waiting = self.waiting
        if waiting is None or not self.engine.busy or time.time() - waiting.at > 2.5 * LOCKS_WAITED:
            return None
        return waiting

    def host_state(self, name: str) -> ev.HostState:
        """The engine's state; hosts a finished deployment never reached are at rest."""
        state = self.engine.host_states.get(name, ev.HostState.UNKNOWN)
        if state is ev.HostState.PENDING and not self.active:
            return ev.HostState.IDLE
        return state

    def tile_kind(self, name: str) -> str:
        state = self.host_state(name)
        view = self.hosts[name]
        match state:
            case ev.HostState.UNREACHABLE:
                return TileKind.UNREACHABLE
            case ev.HostState.FAILED | ev.HostState.ROLLBACK_FAILED:
                return TileKind.FAILING
            case ev.HostState.DEPLOYING | ev.HostState.ROLLING_BACK:
                cut = name in self.engine.state.cut_off  # waits for p or r: not in flight
                return TileKind.PENDING if cut else TileKind.DEPLOYING
            case ev.HostState.ROLLED_BACK:
                return TileKind.ROLLED_BACK
            case ev.HostState.PENDING | ev.HostState.SKIPPED:
                return TileKind.PENDING
        if view.probed and view.ok is None:
            return TileKind.UNREACHABLE
        if view.probed and view.ok is False:
            return TileKind.FAILING
        if state is ev.HostState.DEPLOYED:
            return TileKind.DEPLOYED
        if state is ev.HostState.IDLE:
            return TileKind.HEALTHY
        return TileKind.UNKNOWN

    def unreachable(self, name: str) -> bool:
        """Unreachable as far as the grid knows: marked so, or its last probe did not reach
        it (a pending host's tile says pending, and "no reply" beside it)."""
        view = self.hosts[name]
        state = self.host_state(name)
        return state is ev.HostState.UNREACHABLE or (view.probed and view.ok is None)

    def version_text(self, name: str) -> str:
        """The version the host runs as last known; ``?`` after it when its release (or
        rollback) failed part way: it may run something else now (a step had run)."""
        known = self.engine.versions.get(name)
        if known is None:
            return "?"
        unsure = self.host_state(name) in (ev.HostState.FAILED, ev.HostState.ROLLBACK_FAILED)
        return f"{known}?" if unsure else known

    def state_text(self, name: str) -> str:
        """The host's state in words, an unreachable host's refusal if it refused us, a
        host cut off mid-step (``ev.CUT_OFF``) said so, one another deployment (or a
        maintenance lock) holds at rest ``locked``."""
        state = self.host_state(name)
        if name in self.engine.state.cut_off and state in ev.CUT_OFF:
            return ev.CUT_OFF[state]
        held = self.lock_of(name)
        if held is not None and state is not ev.HostState.UNREACHABLE:
            return "maintenance" if held.maintenance else "locked"
        return self.refusal(name) or state.value

    def lock_of(self, name: str) -> HeldBy | None:
        """Whose lock holds the host, when no deployment here is running."""
        return None if self.active else self.engine.state.locked_by.get(name)

    def refusal(self, name: str) -> str | None:
        """How an unreachable host refused us (``host key refused``, ``login refused``):
        not a network fault to chase. None for any other host."""
        if self.host_state(name) is not ev.HostState.UNREACHABLE:
            return None
        why = self.engine.state.refused.get(name, "")
        return why if why.endswith("refused") else None

    @property
    def shown(self) -> list[str]:
        """The hosts the filter shows, in the file's order."""
        return self.filter.shown

    @property
    def filter_text(self) -> str:
        return self.filter.text

    def apply_filter(self, text: str) -> list[str]:
        return self.filter.apply(text)

    def refilter(self, names: Iterable[str]) -> bool:
        """Hosts whose state or version changed, checked again against the filter: True
        if the hosts shown changed."""
        return self.filter.refilter(names)

    def _now(self, name: str, needle: str) -> bool:
        """The part of the filter that changes with the host: its state, ``canary``, or
        ``version=`` and the version it runs, or its first parts (``version_matches``)."""
        if needle.startswith(VERSION_KEY):
            version = self.engine.versions.get(name)
            return version is not None and version_matches(version, needle[len(VERSION_KEY) :])
        if needle in self.state_text(name) or needle in self.tile_kind(name):
            return True
        if needle != "canary" or self.picked or self.active:
            return needle == "canary" and self.is_canary(name)
        return name in self._defaults  # none picked: the canaries ``d`` would take

    def wave_progress(self) -> list[WaveProgress]:
        """Each row of the rollout (the canary, each wave): its hosts by how they are."""
        d = self.deployment
        state = self.engine.state
        if d is None:
            return []
        # Over: how each host ended it, not how it is since (a host it could not reach,
        # back and idle, is still one it failed on).
        ended = self.finished is not None and self.finished.deployment == d.id
        return wave_progress(d, self._ended if ended else state.host_states, state.cut_off)

    def key_metrics(self, name: str) -> list[tuple[str, float | None]]:
        """Each analysis rule measured on this host over its recent samples."""
        series = self.hosts[name].series
        if not series.samples:
            return []
        return [(rule.name, rule_value(rule, [series])) for rule in self.env.canary.analysis.rules]

    def rolled_back(self) -> int:
        return sum(1 for s in self.engine.host_states.values() if s is ev.HostState.ROLLED_BACK)

    # Updates ----------------------------------------------------------------------

    def toggle_pick(self, name: str) -> bool:
        """Toggle a host as canary for the next deployment; True if it is picked now."""
        if name in self.picked:
            self.picked.remove(name)
            return False
        self.picked.append(name)
        return True

    def pick_defaults(self) -> list[str]:
        self.picked = self.env.default_canaries()
        return self.picked

    def apply(self, event: ev.Event) -> None:
        """One engine event (the engine has applied it to its own state already)."""
        match event:  # host updates first: on a big fleet they are nearly all events
            case ev.HostUpdate(host=host, state=ev.HostState.DEPLOYED):
                # It has just passed the health gate: an older failed probe (taken while
                # it restarted) no longer says anything about it.
                view = self.hosts.get(host)
                if view is not None and view.probed and view.ok is not True:
                    view.ok = True
                    view.health_detail = "healthy after deploy (health gate)"
            case ev.HostUpdate(host=host, state=ev.HostState.UNREACHABLE):
                # Nor does an older good probe, once the host stopped answering.
                view = self.hosts.get(host)
                if view is not None and view.probed and view.ok is not None:
                    view.ok = view.latency = None
                    view.health_detail = ""
            case ev.HostUpdate():
                pass
            case ev.DeploymentStarting():
                self.starting, self.waiting = event, None
            case ev.LocksWaiting():
                self.waiting = event
            case ev.DeploymentStarted(canaries=canaries):
                self.starting = self.waiting = None
                self.analysis_log.reset(event.deployment, event.version)
                self.finished = None
                self.traffic = None
                self.wave = None
                self.waves = len(event.waves)
                self.picked = list(canaries)
            case ev.PhaseChanged(phase=phase, wave=wave, waves=waves):
                self.wave, self.waves, self.waiting = wave, waves, None
                if not phase.is_final:  # a finished deployment rolled back is open again
                    self.finished = None
            case ev.StepResult():
                view = self.hosts.get(event.host)
                if view is not None:
                    view.last_step = event.step
                    view.last_action = event.action
                    view.last_exit = event.exit_status
                    view.last_output = event.output
                    view.last_duration = event.duration
                    view.last_of = event.deployment
            case ev.AnalysisStarted() | ev.AnalysisUpdate() | ev.VerdictReached():
                self.analysis_log.apply(event)
            case ev.DeploymentFinished():
                self.finished = event
                self._ended = dict(self.engine.state.host_states)
                self.picked = []
            case ev.TrafficShifted():
                self.traffic = event
            case ev.HealthSample():
                self.add_samples([event])

    def add_samples(self, samples: list[ev.HealthSample]) -> set[str]:
        """Health samples in; returns the hosts they were about."""
        touched: set[str] = set()
        for sample in samples:
            view = self.hosts.get(sample.host)
            if view is None:
                continue
            view.probed = True
            view.ok = sample.ok
            view.latency = sample.latency if sample.ok is not None else None
            view.health_detail = sample.detail
            view.sampled_at = sample.at
            if sample.metrics:
                view.metrics = sample.metrics
                view.series.add(sample)
            view.latencies.append(sample.latency * 1000 if sample.ok else 0.0)
            touched.add(sample.host)
        return touched

    def recall_last(self) -> None:
        """The journal's last deployment, for the panel when none is open (at start, and
        after a start refused: it named the one before those this screen ran)."""
        with contextlib.suppress(JournalError):  # (said where the journal is read next)
            self.last = self.engine.journal.last_deployment(self.env.name, self.env.app)

    def load_from_journal(self, record: DeploymentRecord) -> None:
        """An adopted open deployment: its steps, analysis and verdict from the journal."""
        journal = self.engine.journal
        for name, h in journal.hosts(record.id).items():
            view = self.hosts.get(name)
            if view is not None and h.last_step:
                view.last_step = h.last_step
                view.last_exit = h.exit_status
                view.last_output = h.output or ""
                view.last_of = record.id
        self.wave = record.wave
        self.waves = record.waves
        self.picked = list(record.canaries)
        self.analysis_log.load(record.id, record.version, journal.events(record.id))
        # What the balancer was last told (the header's traffic share: users may still be
        # on the release of a deployment stopped mid-wave).
        told = journal.last_traffic(record.id)
        shift = event_from_dict(told) if told is not None else None
        self.traffic = shift if isinstance(shift, ev.TrafficShifted) else None
