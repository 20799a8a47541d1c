"""Typed events: what the engine tells its consumers (journal, UI, headless CLI).

Events flow one way. Each has a ``kind`` (its JSON name) and serialises to a flat dict,
which is what the journal stores and what ``--json`` prints, one per line;
``readback.event_from_dict`` reads such a dict back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from canarytui.plaindata import json_default, plain


class Phase(StrEnum):
    IDLE = "idle"
    CANARY = "canary"
    ANALYSIS = "analysis"
    AWAITING_PROMOTION = "awaiting promotion"
    PROMOTING = "promoting"
    COMPLETE = "complete"
    ROLLING_BACK = "rolling back"
    ROLLED_BACK = "rolled back"
    HALTED = "halted"

    @property
    def is_final(self) -> bool:
        return self in (Phase.COMPLETE, Phase.ROLLED_BACK)


def phase_label(
    phase: Phase, wave: int | None = None, waves: int = 0, stopped: bool = False
) -> str:
    """The phase as the header shows it: ``promoting wave 2/3``; ``stopped``: no process
    drives the deployment, which was in the midst of something (``, stopped``)."""
    label = phase.value
    if phase is Phase.PROMOTING and wave is not None and waves:
        label = f"promoting wave {wave}/{waves}"
    return f"{label}, stopped" if stopped and phase in _MOVING else label


# Phases a deployment goes on from by itself (it rests in the others, waiting for an operator).
_MOVING = {Phase.CANARY, Phase.ANALYSIS, Phase.PROMOTING, Phase.ROLLING_BACK}


# A phase said after "the deployment is ...", where its label is not a state in words.
_DOING = {Phase.CANARY: "deploying to its canaries", Phase.ANALYSIS: "in its analysis"}


def phase_doing(phase: Phase, wave: int | None = None, waves: int = 0) -> str:
    """What a deployment in ``phase`` is, in words: ``in its analysis``, ``halted``."""
    return _DOING.get(phase) or phase_label(phase, wave, waves)


def stopped_in(phase: Phase) -> str:
    """How a deployment that no process drives came to rest in ``phase``, after "it":
    ``halted``, ``stopped in its analysis``."""
    return "halted" if phase is Phase.HALTED else f"stopped {phase_doing(phase)}"


class HostState(StrEnum):
    UNKNOWN = "unknown"  # not reached yet
    IDLE = "idle"  # running its stable version, not part of a deployment step
    PENDING = "pending"  # planned into a wave, not started
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"  # on the candidate and healthy after it
    FAILED = "failed"  # a step, hook or post-deploy check failed
    UNREACHABLE = "unreachable"  # connect failed or timed out, or a command hung
    ROLLING_BACK = "rolling back"
    ROLLED_BACK = "rolled back"
    ROLLBACK_FAILED = "rollback failed"
    SKIPPED = "skipped"  # failed during promotion, then left as it is by an operator


# A host of a deployment in one of these: its rollback has begun (it may only be rolled
# back again, never promoted).
ROLLBACK_BEGUN = frozenset(
    {HostState.ROLLING_BACK, HostState.ROLLED_BACK, HostState.ROLLBACK_FAILED}
)

# A host an open deployment was changing when the process driving it stopped, said so: not
# in flight any more (a promote deploys it again, a rollback restores it).
CUT_OFF = {HostState.DEPLOYING: "deploy cut off", HostState.ROLLING_BACK: "rollback cut off"}


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Outcome(StrEnum):
    """How a call on the engine ended; it maps onto the CLI's exit status."""

    CANARY_PASSED = "canary passed"  # open, awaiting promotion (exit 0)
    PAUSED = "paused"  # open between waves (exit 0)
    COMPLETE = "complete"  # exit 0
    CANARY_FAILED = "canary failed"  # rolled back (exit 3)
    INCONCLUSIVE = "inconclusive"  # open, the operator decides (exit 1)
    HALTED = "halted"  # promotion stopped, open (exit 4)
    PROMOTION_ROLLED_BACK = "promotion rolled back"  # exit 4
    ROLLED_BACK = "rolled back"  # an operator's rollback finished (exit 0)
    ABORTED = "aborted"  # stopped by an operator's rollback
    ERROR = "error"  # exit 1


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    # Journaled events are stored before any consumer sees them.
    journaled: ClassVar[bool] = True

    deployment: int | None = field(default=None, kw_only=True)
    at: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **plain(self)}

    def to_json(self) -> str:
        """One line of JSON: what the journal stores and ``--json`` prints (made once: an
        event is frozen, and both ask for it)."""
        text = self.__dict__.get("_json")
        if text is None:
            text = json.dumps(self.to_dict(), default=json_default)
            object.__setattr__(self, "_json", text)
        return text


@dataclass(frozen=True)
class DeploymentStarting(Event):
    """A new deployment's hosts being locked and asked their versions; then Started, or refused."""

    kind: ClassVar[str] = "starting"
    journaled: ClassVar[bool] = False  # nothing is decided yet: it may never open
    version: str
    hosts: int
    action: str  # "deploy", or "rollback" (a known-good version put back)

    @property
    def doing(self) -> str:
        return "putting back" if self.action == "rollback" else "deploying"


@dataclass(frozen=True)
class LocksWaiting(Event):
    """Locks being taken (a start, a later process's promote or rollback) still waiting
    for hosts, said each second: ``7 of 8 answered; waiting 12s for web-05``."""

    kind: ClassVar[str] = "locks_waiting"
    journaled: ClassVar[bool] = False  # nothing is decided yet
    answered: int
    total: int
    waiting: list[str]  # the first few, in the file's order
    more: int  # and how many more
    waited: float  # seconds

    @property
    def said(self) -> str:
        names = ", ".join(self.waiting) + (f" and {self.more} more" if self.more else "")
        return f"{self.answered} of {self.total} answered; waiting {self.waited:.0f}s for {names}"


@dataclass(frozen=True)
class DeploymentStarted(Event):
    kind: ClassVar[str] = "deployment_started"
    version: str
    canaries: list[str]
    waves: list[list[str]]
    previous: dict[str, str | None]
    user: str


@dataclass(frozen=True)
class PhaseChanged(Event):
    kind: ClassVar[str] = "phase"
    phase: Phase
    wave: int | None = None
    waves: int = 0

    @property
    def label(self) -> str:
        return phase_label(self.phase, self.wave, self.waves)


@dataclass(frozen=True)
class HostUpdate(Event):
    """A host's state or version changed (also sent by discovery outside deployments)."""

    kind: ClassVar[str] = "host"
    host: str
    state: HostState
    version: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class StepResult(Event):
    kind: ClassVar[str] = "step"
    host: str
    step: str
    action: str  # "deploy", "rollback", "hook", "lock"
    exit_status: int | None  # None: it did not finish (timeout, connection lost)
    output: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class HealthSample(Event):
    """One probe of one host: its health check, and its metrics if the file has them."""

    kind: ClassVar[str] = "health"
    journaled: ClassVar[bool] = False
    host: str
    ok: bool | None  # None: the host could not be reached
    latency: float
    detail: str = ""
    # What the rules' selectors picked from the metrics page: reading key (``values:SEL``
    # or ``buckets:SEL``) -> {series labels (buckets: ``LE|labels``): value}.
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine(Event):
    kind: ClassVar[str] = "log"
    journaled: ClassVar[bool] = False
    host: str
    line: str


@dataclass(frozen=True)
class AnalysisStarted(Event):
    kind: ClassVar[str] = "analysis_started"
    canaries: list[str]
    baseline: list[str]
    duration: float


@dataclass(frozen=True)
class Measurement:
    """One rule (or the health budget) measured on one canary, with how it was judged."""

    rule: str
    host: str
    value: float | None
    limit: str
    passed: bool | None  # None: no data, or not decided yet
    baseline: float | None = None  # the reference's value: the baseline's, or before's
    status: str = ""  # pass | fail | no data | undecided (empty: derived from passed)
    effect: float | None = None  # statistical rules: the shift seen (relative if % limits)
    relative: bool = False  # the effect is a share of the reference's (0.2: +20 %)
    confidence: float | None = None  # how sure the test is of a failure (1 - p)
    recent: float | None = None  # the canary's value over the last interval
    band: list[float] | None = None  # the baseline hosts' range over the last interval
    reference: str = "baseline"  # what "baseline" is: the baseline hosts, or "before"
    note: str = ""  # why: not enough data, which series are missing, ...

    @property
    def state(self) -> str:
        if self.status:
            return self.status
        return {True: "pass", False: "fail", None: "no data"}[self.passed]

    @property
    def effect_text(self) -> str:
        """The effect as its limit is written: +225% (of a shift limited to +20%), +0.0015."""
        e = self.effect
        return "-" if e is None else f"{e * 100:+.3g}%" if self.relative else f"{e:+.3g}"

    def describe(self) -> str:
        shown = "no data" if self.value is None else f"{self.value:.4g}"
        base = "" if self.baseline is None else f" ({self.reference} {self.baseline:.4g})"
        stats = f", effect {self.effect_text}" if self.effect is not None else ""
        stats += f", confidence {self.confidence:.3f}" if self.confidence is not None else ""
        mark = {"pass": "ok", "fail": "FAIL"}.get(self.state, self.state)
        note = f" ({self.note})" if self.note else ""
        return f"{self.host}: {self.rule} = {shown}{base}, limit {self.limit}{stats}: {mark}{note}"


@dataclass(frozen=True)
class AnalysisUpdate(Event):
    """The analysis so far: sent every interval while the canaries are watched."""

    kind: ClassVar[str] = "analysis"
    elapsed: float
    duration: float
    measurements: list[Measurement]


@dataclass(frozen=True)
class VerdictReached(Event):
    kind: ClassVar[str] = "verdict"
    verdict: Verdict
    reasons: list[str]
    measurements: list[Measurement]


@dataclass(frozen=True)
class WaveStarted(Event):
    kind: ClassVar[str] = "wave_started"
    wave: int
    waves: int
    hosts: list[str]


@dataclass(frozen=True)
class WaveFinished(Event):
    kind: ClassVar[str] = "wave_finished"
    wave: int
    waves: int
    succeeded: list[str]
    failed: list[str]
    # Hosts the wave never started: it stopped once its failures were beyond the budget.
    not_started: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HostFailure:
    """What a failed host last did: the step, its exit status and the end of its output."""

    host: str
    step: str
    exit_status: int | None
    output: str
    detail: str = ""

    def output_lines(self, most: int) -> list[str]:
        """The end of its output to show, at most ``most`` lines: none when it only repeats
        ``detail`` (a host lost before any step has that reason recorded as its output)."""
        output = self.output.strip()
        if not output or (not self.step and output == self.detail.strip()):
            return []
        return output.splitlines()[-most:]


@dataclass(frozen=True)
class FailureQuestion(Event):
    """``on_failure: ask``: hosts failed in a wave; the rollout is halted until the
    operator retries them, skips them, rolls everything back, or leaves it halted."""

    kind: ClassVar[str] = "failure_question"
    wave: int
    waves: int
    failures: list[HostFailure]
    skippable: int  # how many more hosts may be skipped within max_failures
    waiting: int = 0  # hosts of the wave not started: it stopped at the first failure


@dataclass(frozen=True)
class TrafficShifted(Event):
    """A traffic hook ran: the phase, its hosts and the share of the fleet on the new version."""

    kind: ClassVar[str] = "traffic"
    phase: str  # canary_start | wave_start | complete | rolled_back
    hosts: list[str]
    percent: int
    ok: bool
    version: str = ""  # the deployment's (a rollback --to's: the one it puts back)


@dataclass(frozen=True)
class Decision(Event):
    """An operator's decision, with who took it."""

    kind: ClassVar[str] = "decision"
    action: str
    user: str
    detail: str = ""


@dataclass(frozen=True)
class Notice(Event):
    kind: ClassVar[str] = "notice"
    level: str  # "info", "warning", "error"
    message: str
    host: str | None = None


@dataclass(frozen=True)
class InternalError(Event):
    """canarytui itself failed (not a host): the deployment is halted, its locks kept."""

    kind: ClassVar[str] = "internal_error"
    message: str
    host: str | None = None  # the host whose work raised it, if any
    traceback: str = ""


@dataclass(frozen=True)
class DeploymentFinished(Event):
    kind: ClassVar[str] = "deployment_finished"
    outcome: Outcome
    summary: str
