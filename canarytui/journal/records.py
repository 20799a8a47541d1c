"""What the journal returns: a deployment (and what is left to do with it, open) and each
of its hosts, and who and where a user is."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from canarytui import events as ev
from canarytui.textsafe import listed


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def machine_name() -> str:
    return socket.gethostname() or "localhost"


TAKE_OVER = "take over"  # the decision of a deployment taken over from another machine


@dataclass(frozen=True)
class UnopenedStart:
    """A start refused before its deployment opened (its record discarded) while a host
    it had locked could not be reached to free it: that host keeps the lock, which names
    this start's token and number."""

    id: int  # the deployment number its locks carry
    token: str
    machine: str
    finished_at: float  # when it was refused (its locks were written before)
    is_open: bool = False


@dataclass(frozen=True)
class HostRecord:
    host: str
    role: str
    previous: str | None
    current: str | None
    state: str
    last_step: str | None
    exit_status: int | None
    output: str | None
    updated_at: float


@dataclass(frozen=True)
class DeploymentRecord:
    id: int
    token: str
    env: str
    app: str
    env_path: str
    version: str
    phase: str
    wave: int | None
    waves: int
    is_open: bool
    outcome: str | None
    verdict: str | None
    summary: str | None
    canaries: list[str]
    plan: list[list[str]]
    user: str
    machine: str
    started_at: float
    updated_at: float
    finished_at: float | None
    kind: str = "deploy"  # "rollback": a known version put back (rollback --to)
    rollback_begun: bool = False  # a host of it rolling back, rolled back, or failed to
    taken_over: bool = False  # another machine's, taken over here (rollback --take-over)
    scope: str | None = None  # limited to these hosts (deploy --hosts, as given); None: all

    @property
    def planned_hosts(self) -> list[str]:
        """Every host of its plan, canaries first, in the order they are deployed."""
        return self.canaries + [h for wave in self.plan for h in wave]

    def limited(self, fleet: int, lead: str = "") -> str:
        """``3 of 12 hosts`` (after ``lead``) for a deployment limited to some of the
        ``fleet`` hosts of its file (``deploy --hosts``, the UI's filtered deploy); "" for
        one to every host."""
        if self.scope is None:
            return ""
        return f"{lead}{len(self.planned_hosts)} of {fleet} hosts"

    def what_went(self, shown: int) -> str:
        """Its history row's canaries cell: the canaries (``shown`` names, then a count),
        or what it put back; and the hosts it was limited to."""
        if self.kind == "rollback":
            said = f"(rollback to {self.version})"
        elif self.taken_over:  # its canaries were said on the machine that started it
            said = "(taken over)"
        else:
            said = listed(self.canaries, shown) or "(no canary phase)"
        return said + (f" (only {self.scope})" if self.scope is not None else "")

    def ended_short(self, hosts_of: Callable[[int], Mapping[str, HostRecord]]) -> str:
        """`` (11 of 12 hosts)`` after a completed deployment's outcome when its release is
        not on every host of its plan (one failed within max_failures, unreachable); "".
        ``hosts_of``: the journal's hosts of a deployment, asked only of a completed one."""
        if self.outcome != ev.Outcome.COMPLETE.value:
            return ""
        hosts = hosts_of(self.id)
        planned = self.planned_hosts
        done = sum(1 for h in planned if h in hosts and hosts[h].current == self.version)
        return f" ({done} of {len(planned)} hosts)" if done < len(planned) else ""

    @property
    def phase_label(self) -> str:
        return ev.phase_label(ev.Phase(self.phase), self.wave, self.waves)

    @property
    def phase_doing(self) -> str:
        """What it is, after "the deployment is": ``in its analysis``."""
        return ev.phase_doing(ev.Phase(self.phase), self.wave, self.waves)

    @property
    def way_out(self) -> WayOut:
        """What can still be done with it, open: ``promote or roll it back``."""
        phase = ev.Phase(self.phase)
        return way_out(phase, self.kind, self.verdict, self.rollback_begun, bool(self.canaries))


class WayOut(StrEnum):
    """What can still be done with an open deployment (what promote and rollback accept),
    to follow "stays open:"; the UI says it with its keys (``ui.notices``)."""

    ROLL_BACK_AGAIN = "roll it back again"
    NO_VERDICT = "promote analyses its canaries again, or roll it back"
    CANARY_FAILED = "its canary failed: roll it back"
    # Never "or roll it back": that would put back the release it escaped, no canary.
    FINISH_PUTTING_BACK = "promote it to finish putting it back"
    PROMOTE_OR_ROLL_BACK = "promote or roll it back"


def way_out(
    phase: ev.Phase,
    kind: str = "deploy",
    verdict: str | None = None,
    rollback_begun: bool = False,
    canaries: bool = False,
) -> WayOut:
    """What is left to do with a deployment open in ``phase``: promote waits for a verdict
    and refuses a failed one; a rollback --to's (``kind``) is finished by promote. Once its
    rollback has begun (``rollback_begun``: stopped, or failed on a host, which halts it),
    it is only rolled back again: a promote would undo what the operator decided. With
    ``canaries`` and no verdict, it stopped before its analysis ended (its process, a
    failed ``canary_start`` hook, an internal error halted it): promote analyses it again,
    never goes to the waves unjudged."""
    if phase is ev.Phase.ROLLING_BACK or (phase is ev.Phase.HALTED and rollback_begun):
        return WayOut.ROLL_BACK_AGAIN
    halted_unjudged = phase is ev.Phase.HALTED and canaries and verdict is None
    if phase in (ev.Phase.CANARY, ev.Phase.ANALYSIS) or (halted_unjudged and kind == "deploy"):
        return WayOut.NO_VERDICT
    if verdict == ev.Verdict.FAIL.value:
        return WayOut.CANARY_FAILED
    if kind == "rollback":
        return WayOut.FINISH_PUTTING_BACK
    return WayOut.PROMOTE_OR_ROLL_BACK


def deployment_from_row(row: sqlite3.Row) -> DeploymentRecord:
    data = dict(row)
    data["canaries"] = json.loads(data["canaries"])
    data["plan"] = json.loads(data["plan"])
    data["is_open"] = bool(data["is_open"])
    data["rollback_begun"] = bool(data.get("rollback_begun"))
    data["taken_over"] = bool(data.get("taken_over"))
    return DeploymentRecord(**data)
