"""What the operator is told: engine events and operator outcomes as notification text.

Pure functions, no app needed: the fleet screen calls them and hands the ``Announcement``
to ``notify``. None means there is nothing to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.notifications import SeverityLevel

from canarytui import events as ev
from canarytui.journal import DeploymentRecord, WayOut

if TYPE_CHECKING:
    from canarytui.engine.bus import RolloutState

_NOTICE_SEVERITY: dict[str, SeverityLevel] = {
    "info": "information",
    "warning": "warning",
    "error": "error",
}
_OUTCOME_SEVERITY: dict[ev.Outcome, SeverityLevel] = {
    ev.Outcome.CANARY_PASSED: "information",
    ev.Outcome.PAUSED: "information",
    ev.Outcome.COMPLETE: "information",
    ev.Outcome.ROLLED_BACK: "information",
    ev.Outcome.CANARY_FAILED: "error",
    ev.Outcome.HALTED: "error",
    ev.Outcome.PROMOTION_ROLLED_BACK: "error",
    ev.Outcome.INCONCLUSIVE: "warning",
    ev.Outcome.ABORTED: "warning",
    ev.Outcome.ERROR: "error",
}


@dataclass(frozen=True)
class Announcement:
    """One notification, as ``notify(message, title=..., severity=..., timeout=...)`` takes it."""

    message: str
    title: str
    timeout: float
    severity: SeverityLevel = "information"


def for_event(event: ev.Event, *, live: bool = True) -> Announcement | None:
    """An engine notice or a canary verdict; other events say nothing. ``live``: the keys
    that act on it are offered (a replay's are refused: it only says what happened)."""
    match event:
        case ev.Notice(level=level, message=text):
            return Announcement(
                text, "engine", timeout=10, severity=_NOTICE_SEVERITY.get(level, "information")
            )
        case ev.VerdictReached(verdict=verdict, reasons=reasons, deployment=d):
            # Whose: a toast outlives its deployment when the next starts at once.
            of = f"#{d} " if d is not None else ""
            if verdict is ev.Verdict.PASS:
                keys = ": p promotes, r rolls back" if live else ""
                return Announcement(f"{of}canary verdict: PASS{keys}", "analysis", timeout=10)
            detail = "; ".join(reasons[:2])
            return Announcement(
                f"{of}canary verdict: {verdict.value.upper()}: {detail}",
                "analysis",
                timeout=12,
                severity="error" if verdict is ev.Verdict.FAIL else "warning",
            )
    return None


# What is left to do with an open deployment (``ev.WayOut``), said with the keys that do it.
_KEYS = {
    WayOut.ROLL_BACK_AGAIN: "its rollback did not finish: r rolls back again to finish it",
    WayOut.NO_VERDICT: "the canary has no verdict: p analyses it again, r rolls back",
    WayOut.CANARY_FAILED: "its canary failed: r rolls back",
    WayOut.FINISH_PUTTING_BACK: "p finishes putting {version} back",
    WayOut.PROMOTE_OR_ROLL_BACK: "p promotes, r rolls back",
}


def for_open(record: DeploymentRecord, why_not: str | None) -> Announcement:
    """The open deployment the screen found on start, and what its keys do with it;
    ``why_not``: why this process cannot act on it (another drives it, the file changed)."""
    keys = _KEYS[record.way_out].format(version=record.version)
    return Announcement(
        why_not
        or f"deployment #{record.id} of {record.version} is open ({record.phase_label}): {keys}",
        "open deployment",
        timeout=15,
        severity="warning",
    )


def for_refusal(action: str, error: str) -> Announcement:
    """An operator call the engine refused or that failed: ``error`` says why."""
    return Announcement(error, f"{action} refused", timeout=12, severity="error")


def for_outcome(
    action: str,
    outcome: ev.Outcome,
    *,
    version: str,
    wave: int | None,
    waves: int,
    short_of: str | None = None,
) -> Announcement:
    """How an operator call ended; ``version``, ``wave`` and ``waves`` are the deployment's.
    ``short_of``: a completed deployment that did not reach every host of the fleet (its
    summary: how many, and why), said instead of "on every host"."""
    severity = _OUTCOME_SEVERITY.get(outcome, "information")
    if outcome is ev.Outcome.COMPLETE and short_of is not None:
        return Announcement(f"complete: {short_of}", "rollout", timeout=12, severity="warning")
    return Announcement(
        _outcome_text(action, outcome, version, wave, waves),
        "rollout",
        timeout=8,
        severity=severity,
    )


def _outcome_text(
    action: str, outcome: ev.Outcome, version: str, wave: int | None, waves: int
) -> str:
    match outcome:
        case ev.Outcome.CANARY_PASSED:
            return f"{version}: canary passed; p promotes the first wave"
        case ev.Outcome.PAUSED:
            where = f"wave {wave}/{waves}" if wave else "the wave"
            return f"{version}: {where} done; p promotes the next"
        case ev.Outcome.COMPLETE:
            return f"{version}: on every host"
        case ev.Outcome.CANARY_FAILED:
            return f"{version}: canary failed and was rolled back"
        case ev.Outcome.ABORTED:
            return f"{action} stopped by a roll back"
        case ev.Outcome.ERROR:
            return (
                f"{action} stopped by an error (said before this): the deployment stays open, "
                "halted; the rollout panel says where it is"
            )
    return f"{action}: {outcome.value}"


def short_of(state: RolloutState) -> str | None:
    """A completed deployment's summary when it left some host of the fleet on another
    version (failed within ``max_failures``, unreachable, limited to some hosts, not in its
    plan); None when every host runs its version."""
    d = state.deployment
    if d is None or d.outcome != ev.Outcome.COMPLETE.value:
        return None
    everywhere = all(
        s is ev.HostState.DEPLOYED and state.versions.get(h) == d.version
        for h, s in state.host_states.items()
    )
    return None if everywhere else d.summary or f"{d.version} not on every host"
