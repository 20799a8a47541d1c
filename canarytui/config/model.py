"""The typed model of an environment file: frozen dataclasses, their errors and defaults.

Everything here is plain data with a few lookups; the YAML reading lives in
``canarytui.config.reader``, ``sections`` and ``canary``, the top level in ``loader``.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from canarytui.config.selector import Selector, parse_selector

if TYPE_CHECKING:
    from canarytui.config.notify import Notify

DEFAULT_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
VERSION_SAID = 60  # characters of a refused version said back
# What an environment, app or host name may hold.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class EnvFileError(Exception):
    """The environment file is unusable; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class VersionError(ValueError):
    """A version refused before any host is touched."""


@dataclass(frozen=True)
class JumpHop:
    """One hop of ``proxy_jump`` (``[user@]host[:port]``); unset parts: ~/.ssh/config's."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        host = f"{host}:{self.port}" if self.port else host
        return f"{self.user}@{host}" if self.user else host


@dataclass(frozen=True)
class SshDefaults:
    user: str | None = None
    port: int | None = None  # None: ~/.ssh/config's Port, else 22
    identity_files: tuple[str, ...] = ()
    known_hosts: str | None = None  # None: the files OpenSSH reads (ssh.trust)
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    max_parallel: int = 50
    # The bastions every host is reached through, in order; None: ~/.ssh/config's
    # ProxyJump; (): none (``proxy_jump: none``).
    proxy_jump: tuple[JumpHop, ...] | None = None


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str | None
    port: int | None
    roles: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    proxy_jump: tuple[JumpHop, ...] | None = None  # None: ssh.proxy_jump's (see SshDefaults)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}" if self.port else self.address

    def matches(self, text: str) -> bool:
        """Does a filter string match this host's name, a role or a label?"""
        needle = text.lower()
        if needle in self.name.lower() or needle in self.address.lower():
            return True
        if any(needle in role.lower() or needle in f"role={role}".lower() for role in self.roles):
            return True
        return any(needle in f"{k}={v}".lower() for k, v in self.labels.items())


@dataclass(frozen=True)
class Step:
    name: str
    run: str


@dataclass(frozen=True)
class Hooks:
    before_host: str | None = None
    after_host: str | None = None


@dataclass(frozen=True)
class Deploy:
    current: str
    steps: tuple[Step, ...]
    rollback: tuple[Step, ...] | None = None
    hooks: Hooks = Hooks()
    releases: str | None = None  # prints the versions a host can switch to, one a line

    def rollback_steps(self) -> tuple[tuple[Step, ...], bool]:
        """The steps that roll a host back, and whether ``{version}`` must be the previous one.

        Without a ``rollback`` list, the deploy steps are run again with ``{version}`` set
        to the version the host ran before.
        """
        if self.rollback is not None:
            return self.rollback, False
        return self.steps, True


# What ``health.prometheus.instance`` may hold: the host's name, address and SSH port.
INSTANCE_PLACEHOLDERS = frozenset({"host", "address", "port"})


@dataclass(frozen=True)
class Prometheus:
    """``health.prometheus``: a server asked for the hosts' series (instead of ``metrics``)."""

    url: str  # http(s)://host:port[/prefix]; user:password@ is sent as basic auth, never shown
    instance: str  # the ``instance`` label of one host's series: {host} {address} {port}


@dataclass(frozen=True)
class Health:
    check: str
    metrics: str | None = None
    interval: float = 2.0
    timeout: float = 5.0
    prometheus: Prometheus | None = None  # the metrics from a Prometheus server


@dataclass(frozen=True)
class Change:
    """A change a statistical rule tolerates: absolute, or a share of the reference (%)."""

    value: float
    percent: bool

    def bound(self, reference: float, up: bool = True) -> float:
        """The reference moved by this change (up or down)."""
        delta = abs(reference) * self.value / 100.0 if self.percent else self.value
        return reference + delta if up else reference - delta

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}"


@dataclass(frozen=True)
class Rule:
    """One rule of the analysis, over a series selector (``metric``, ``per``)."""

    name: str
    metric: str
    per: str | None = None
    max: float | None = None
    max_vs_baseline: float | None = None
    quantile: float | None = None
    must_have_data: bool = False
    # A ratio needs this many in its denominator, a quantile this many observations;
    # fewer is "no data" rather than a noisy value that could fail a good release.
    min_count: int = 100
    min: float | None = None
    min_vs_baseline: float | None = None
    optional: bool = False  # no data: ignored, instead of an inconclusive verdict
    compare: str | None = None  # "mann-whitney": per-interval values, canary vs reference
    compare_to: str = "baseline"  # baseline | before
    max_increase: Change | None = None
    max_decrease: Change | None = None
    # How sure a test must be before it calls a failure (thresholds on ratios and
    # quantiles are tested too: a handful of errors is not "beyond doubt").
    confidence: float = 0.99

    @functools.cached_property
    def selector(self) -> Selector:
        return parse_selector(self.metric)

    @functools.cached_property
    def per_selector(self) -> Selector | None:
        return parse_selector(self.per) if self.per else None

    @property
    def statistical(self) -> bool:
        return self.compare is not None


@dataclass(frozen=True)
class Analysis:
    duration: float = 300.0
    max_failed_checks: int = 2
    baseline: int = 10
    rules: tuple[Rule, ...] = ()
    before: float = 0.0  # probe the canaries this long before deploying them
    warmup: float = 0.0  # samples of the first seconds after the canary is healthy not judged
    interval: float | None = None  # one judged sample per host per interval (None: health's)
    early_fail: bool = True  # stop as soon as a rule has failed beyond doubt

    @property
    def watched(self) -> float:
        """Seconds the canaries are watched once healthy: the warmup, then the judged part."""
        return self.warmup + self.duration


@dataclass(frozen=True)
class Canary:
    hosts: tuple[str, ...] = ()
    percent: float | None = None
    analysis: Analysis = Analysis()
    role: str | None = None  # the hosts with this role are the default canaries
    # False when the file has no canary section: no canary phase, straight to the waves.
    enabled: bool = True


@dataclass(frozen=True)
class WaveSpec:
    """One entry of ``promote.waves``: a cumulative share (percent) or host count."""

    value: float
    percent: bool

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{self.value:g}"


@dataclass(frozen=True)
class Promote:
    waves: tuple[WaveSpec, ...] = (WaveSpec(100, True),)
    max_failures: int = 0
    pause: float | None = None  # None: manual (wait for the operator)
    on_failure: str = "rollback"  # rollback | halt | ask


@dataclass(frozen=True)
class Traffic:
    """Commands run at phase changes (a load balancer's weights, blue-green switches)."""

    on: str | None = None  # a role: run on those hosts; None: on the operator's machine
    canary_start: str | None = None
    wave_start: str | None = None
    complete: str | None = None
    rolled_back: str | None = None

    @property
    def any(self) -> bool:
        return any((self.canary_start, self.wave_start, self.complete, self.rolled_back))


@dataclass(frozen=True)
class Environment:
    path: Path
    name: str
    app: str
    ssh: SshDefaults
    hosts: tuple[Host, ...]
    deploy: Deploy
    health: Health
    logs: str | None = None
    canary: Canary = Canary(enabled=False)
    promote: Promote = Promote()
    version_pattern: str = DEFAULT_VERSION_PATTERN
    traffic: Traffic = Traffic()
    notify: tuple[Notify, ...] = ()  # webhooks and commands told of events

    @property
    def host_names(self) -> list[str]:
        return list(self._names)  # a copy of the kept tuple: a C-level copy, no pass in Python

    @functools.cached_property
    def _names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)

    @functools.cached_property
    def host_names_set(self) -> frozenset[str]:
        return frozenset(self._hosts_by_name)

    @functools.cached_property
    def _hosts_by_name(self) -> dict[str, Host]:
        return {h.name: h for h in self.hosts}

    def host(self, name: str) -> Host:
        # Looked up on every command and probe: a dict, not a scan of the fleet.
        return self._hosts_by_name[name]

    def resolve_path(self, value: str) -> Path:
        """A path from the file: ``~`` expanded, relative to the file's own folder."""
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    def placeholders(
        self, host: str, version: str = "", previous: str | None = None
    ) -> dict[str, str]:
        """The values of ``{version} {previous} {host} {address} {app} {env}`` for a host."""
        h = self.host(host)
        return {
            "version": version,
            "previous": previous or "",
            "host": h.name,
            "address": h.address,
            "app": self.app,
            "env": self.name,
        }

    def validate_version(self, version: str, option: str = "") -> str:
        """``version`` if it is one (``option``: the command line's option it came from,
        said first: ``--previous``), else ``VersionError``."""
        # The whole version must match: `$` alone would let a trailing newline through.
        if not re.fullmatch(self.version_pattern, version):
            # Bounded, its length said if cut; as typed when printable (a repr doubled a
            # typed backslash), else a repr (no control character reaches a terminal).
            cut = version[:VERSION_SAID] + ("…" if len(version) > VERSION_SAID else "")
            shown = f"'{cut}'" if cut.isprintable() and "'" not in cut else repr(cut)
            long = f" ({len(version)} characters)" if len(version) > VERSION_SAID else ""
            raise VersionError(
                (f"{option}: " if option else "") + f"version {shown}{long} does not match "
                f"version_pattern {self.version_pattern!r}; nothing was touched"
            )
        return version

    def default_canaries(self, among: Sequence[str] | None = None) -> list[str]:
        """The file's canaries among ``among`` (a deployment limited to some hosts; None:
        the whole fleet): its listed hosts or role's that are among them, or its share of
        them. Asked at every repaint of the rollout panel at rest: no pass over the fleet
        where the file lists its canaries."""
        if not self.canary.enabled:
            return []
        inside = None if among is None else set(among)
        if self.canary.hosts:
            return [h for h in self.canary.hosts if inside is None or h in inside]
        if self.canary.role is not None:
            role = self.canary.role
            return [
                h.name
                for h in self.hosts
                if role in h.roles and (inside is None or h.name in inside)
            ]
        names = self.host_names if among is None else list(among)
        if self.canary.percent is not None:
            return canaries_by_percent(names, self.canary.percent) if names else []
        return names[:1]


def canaries_by_percent(names: list[str], percent: float) -> list[str]:
    """A share of the fleet as canaries: at least one host; the whole fleet only at 100 %."""
    count = min(len(names), max(1, math.ceil(len(names) * percent / 100.0)))
    if count >= len(names) and len(names) > 1 and percent < 100:
        count = len(names) - 1
    return names[:count]
