"""What a dry run finds, as data: the plan, each host, each command.

``DryRun.as_dict()`` is the object ``canarytui deploy ... --dry-run --json`` prints:

- ``env``, ``app``, ``file``, ``version``, ``auto_promote``: what would go where.
- ``canary_phase``: false when the file has no ``canary`` section, or with ``--no-canary``
  (straight to the waves).
- ``scope``: ``--hosts`` as given when the deployment is limited to some hosts (null: every
  host of the file); ``fleet``: how many hosts the file has; ``others``: limited, how many
  of the other hosts run each version (``"unknown"``: unreachable, or no version reported).
- ``canaries``: host names; ``baseline``: the baseline sample the analysis would watch.
- ``analysis``: null without a canary phase, else ``before``, ``warmup``, ``duration``,
  ``interval`` (seconds), ``max_failed_checks``, ``baseline`` (hosts asked for),
  ``early_fail`` and ``rules`` (one line each).
- ``after_canary``: ``"stop"`` (a passing canary waits for ``promote``) or ``"promote"``.
- ``waves``: ``{"wave", "hosts", "percent", "pause_after"}`` each: ``percent`` is the share
  of the fleet on the new version once the wave is done, ``pause_after`` ``"manual"``,
  ``"none"``, a duration (``"30s"``), or null after the last wave.
- ``promote``: ``{"waves", "max_failures", "pause", "on_failure"}`` as the file says.
- ``traffic``: ``{"phase", "where", "command"}`` each, rendered (empty without ``traffic``).
- ``sample_host``, ``sample_previous``: the host the commands are rendered for (the first
  canary, else the first host of the first wave) and its version now (``{previous}``).
- ``commands``: ``{"phase", "step", "command"}`` each, in the order they would run;
  ``phase`` is ``current``, ``deploy``, ``health``, ``metrics``, ``rollback``,
  ``releases`` or ``logs``.
- ``hosts``: ``{"host", "address", "version", "reachable", "refused", "detail", "role",
  "baseline", "lock"}`` for each host of the deployment (limited: those it is limited to):
  ``refused`` why an unreachable host could not be used (``unreachable``, ``host key
  refused``, ``login refused``, ...); ``role`` ``canary`` or ``wave N``; ``lock`` who holds
  the host's lock.
- ``open_deployment``: this journal's open deployment of the environment, or null.
- ``refusals``: why the real deployment would be refused now (empty: it would start);
  ``notes``: what it would do on the way (unreachable hosts, stale locks released).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class HostView:
    host: str
    address: str
    version: str | None
    reachable: bool
    detail: str
    role: str
    baseline: bool = False
    refused: str | None = None
    lock: str | None = None


@dataclass
class WaveView:
    wave: int
    hosts: list[str]
    percent: int
    pause_after: str | None


@dataclass
class CommandView:
    phase: str
    step: str
    command: str


@dataclass
class TrafficView:
    phase: str
    where: str
    command: str


@dataclass
class DryRun:
    """The whole plan of one deployment, as data (printed by ``cli.dryrun``)."""

    env: str
    app: str
    file: str
    version: str
    auto_promote: bool
    canary_phase: bool
    canaries: list[str]
    baseline: list[str]
    analysis: dict[str, Any] | None
    after_canary: str
    waves: list[WaveView]
    promote: dict[str, Any]
    sample_host: str
    sample_previous: str | None
    traffic: list[TrafficView] = field(default_factory=list)
    commands: list[CommandView] = field(default_factory=list)
    hosts: list[HostView] = field(default_factory=list)
    scope: str | None = None
    fleet: int = 0
    others: dict[str, int] = field(default_factory=dict)
    open_deployment: str | None = None
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
