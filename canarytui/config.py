"""The environment file: YAML -> typed model, with one clear message per problem.

Every problem is reported as ``FILE:LINE: key.path: problem`` and nothing else in the
program runs until the file is clean, so a bad file never touches a host.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DEFAULT_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
PLACEHOLDERS = frozenset({"version", "previous", "host", "address", "app", "env"})
# `{name}` is a placeholder unless it follows `$` (then it is the shell's `${name}`).
_PLACEHOLDER_RE = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class EnvFileError(Exception):
    """The environment file is unusable; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class VersionError(ValueError):
    """A version refused before any host is touched."""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class SshDefaults:
    user: str | None = None
    port: int | None = None  # None: ~/.ssh/config's Port, else 22
    identity_files: tuple[str, ...] = ()
    known_hosts: str = "~/.ssh/known_hosts"
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    max_parallel: int = 50


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str | None
    port: int | None
    roles: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}" if self.port else self.address

    def matches(self, text: str) -> bool:
        """Does a filter string match this host's name, a role or a label?"""
        needle = text.lower()
        if needle in self.name.lower() or needle in self.address.lower():
            return True
        if any(needle in role.lower() for role in self.roles):
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

    def rollback_steps(self) -> tuple[tuple[Step, ...], bool]:
        """The steps that roll a host back, and whether ``{version}`` must be the previous one.

        Without a ``rollback`` list, the deploy steps are run again with ``{version}`` set
        to the version the host ran before.
        """
        if self.rollback is not None:
            return self.rollback, False
        return self.steps, True


@dataclass(frozen=True)
class Health:
    check: str
    metrics: str | None = None
    interval: float = 2.0
    timeout: float = 5.0


@dataclass(frozen=True)
class Rule:
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


@dataclass(frozen=True)
class Analysis:
    duration: float = 300.0
    max_failed_checks: int = 2
    baseline: int = 10
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Canary:
    hosts: tuple[str, ...] = ()
    percent: float | None = None
    analysis: Analysis = Analysis()


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
    on_failure: str = "rollback"


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
    canary: Canary = Canary()
    promote: Promote = Promote()
    version_pattern: str = DEFAULT_VERSION_PATTERN

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self.hosts]

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

    def validate_version(self, version: str) -> str:
        # The whole version must match: `$` alone would let a trailing newline through.
        if not re.fullmatch(self.version_pattern, version):
            raise VersionError(
                f"version {version!r} does not match version_pattern "
                f"{self.version_pattern!r}; nothing was touched"
            )
        return version

    def default_canaries(self) -> list[str]:
        if self.canary.hosts:
            return list(self.canary.hosts)
        if self.canary.percent is not None:
            return canaries_by_percent(self.host_names, self.canary.percent)
        return self.host_names[:1]


def canaries_by_percent(names: list[str], percent: float) -> list[str]:
    """A share of the fleet as canaries: at least one host, never the whole fleet if avoidable."""
    count = max(1, math.ceil(len(names) * percent / 100.0))
    if count >= len(names) and len(names) > 1:
        count = len(names) - 1
    return names[:count]


# --------------------------------------------------------------------- placeholders


def placeholders_in(template: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders; every value is shell-quoted, whatever it holds."""

    def sub(match: re.Match[str]) -> str:
        return shlex.quote(str(values[match.group(1)]))

    return _PLACEHOLDER_RE.sub(sub, template)


def parse_duration(text: str) -> float:
    """``500ms`` / ``2s`` / ``5m`` / ``1h`` -> seconds."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: write e.g. 500ms, 2s, 5m")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


# --------------------------------------------------------------------------- loader


class _Missing:
    pass


_MISSING = _Missing()
_constructor = yaml.constructor.SafeConstructor()


class _Reader:
    """Walks YAML nodes, turning them into typed values and collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[str] = []

    def problem(self, node: Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.file}:{line}: {path}: {message}")

    # Mappings -------------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        path: str,
        known: set[str],
        required: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, path or "(top level)", f"expected a mapping, got {_kind(node)}")
            return None
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            sub = _join(path, str(key))
            if key is None:
                self.problem(key_node, path or "(top level)", "keys must be plain names")
            elif key in out:
                self.problem(key_node, sub, "duplicate key")
            elif key not in known:
                self.problem(key_node, sub, f"unknown key (known: {', '.join(sorted(known))})")
            else:
                out[key] = value_node
        for key in sorted(required - out.keys()):
            self.problem(node, _join(path, key), "required")
        return out

    # Scalars ---------------------------------------------------------------------

    def value(self, node: Node) -> Any:
        return _constructor.construct_object(node, deep=True)

    def string(self, node: Node | None, path: str, default: Any = _MISSING) -> Any:
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.problem(node, path, f"expected a string, got {_kind(node)}")
            return default
        text = str(node.value)
        if not text.strip():
            self.problem(node, path, "must not be empty")
            return default
        return text

    def integer(
        self,
        node: Node | None,
        path: str,
        default: Any,
        low: int | None = None,
        high: int | None = None,
    ) -> Any:
        if node is None:
            return default
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(node, path, f"expected a whole number, got {_kind(node)}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(node, path, f"must be {bounds}, got {value}")
            return default
        return value

    def number(self, node: Node | None, path: str, default: Any, positive: bool = False) -> Any:
        if node is None:
            return default
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            self.problem(node, path, f"expected a number, got {_kind(node)}")
            return default
        if positive and value <= 0:
            self.problem(node, path, f"must be greater than 0, got {value}")
            return default
        return float(value)

    def boolean(self, node: Node | None, path: str, default: bool) -> bool:
        if node is None:
            return default
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, bool):
            self.problem(node, path, f"expected true or false, got {_kind(node)}")
            return default
        return value

    def duration(self, node: Node | None, path: str, default: float) -> float:
        if node is None:
            return default
        if not isinstance(node, ScalarNode):
            self.problem(node, path, f"expected a duration (500ms, 2s, 5m), got {_kind(node)}")
            return default
        try:
            seconds = parse_duration(str(node.value))
        except ValueError as exc:
            self.problem(node, path, str(exc))
            return default
        if seconds <= 0:
            self.problem(node, path, "must be longer than 0")
            return default
        return seconds

    def command(self, node: Node | None, path: str, default: Any = _MISSING) -> Any:
        text = self.string(node, path, default)
        if isinstance(text, str):
            unknown = placeholders_in(text) - PLACEHOLDERS
            for name in sorted(unknown):
                self.problem(
                    node,
                    path,
                    f"unknown placeholder {{{name}}} (known: "
                    + ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
                    + "; write ${"
                    + name
                    + "} for a shell variable)",
                )
        return text

    def sequence(self, node: Node | None, path: str) -> list[Node] | None:
        if node is None:
            return None
        if not isinstance(node, SequenceNode):
            self.problem(node, path, f"expected a list, got {_kind(node)}")
            return None
        return list(node.value)

    def strings(self, node: Node | None, path: str) -> tuple[str, ...] | None:
        items = self.sequence(node, path)
        if items is None:
            return None
        out = []
        for i, item in enumerate(items):
            text = self.string(item, f"{path}[{i}]", None)
            if text is not None:
                out.append(text)
        return tuple(out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(node: Node | None) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    names = {"null": "nothing", "bool": "true/false", "int": "a number", "float": "a number"}
    return f"{names.get(tag, 'text')} ({node.value!r})" if tag != "null" else "nothing"


# ------------------------------------------------------------------ section readers


def _read_ssh(r: _Reader, node: Node | None) -> SshDefaults:
    d = SshDefaults()
    if node is None:
        return d
    m = r.mapping(
        node,
        "ssh",
        {
            "user",
            "port",
            "identity_files",
            "known_hosts",
            "connect_timeout",
            "command_timeout",
            "max_parallel",
        },
    )
    if m is None:
        return d
    return SshDefaults(
        user=r.string(m.get("user"), "ssh.user", None),
        port=r.integer(m.get("port"), "ssh.port", d.port, 1, 65535),
        identity_files=r.strings(m.get("identity_files"), "ssh.identity_files") or (),
        known_hosts=r.string(m.get("known_hosts"), "ssh.known_hosts", d.known_hosts),
        connect_timeout=r.duration(
            m.get("connect_timeout"), "ssh.connect_timeout", d.connect_timeout
        ),
        command_timeout=r.duration(
            m.get("command_timeout"), "ssh.command_timeout", d.command_timeout
        ),
        max_parallel=r.integer(m.get("max_parallel"), "ssh.max_parallel", d.max_parallel, 1, 10000),
    )


def _read_hosts(r: _Reader, node: Node | None, ssh: SshDefaults) -> tuple[Host, ...]:
    items = r.sequence(node, "hosts")
    if items is None:
        return ()
    if not items:
        r.problem(node, "hosts", "the fleet needs at least one host")
    hosts: list[Host] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"hosts[{i}]"
        m = r.mapping(
            item, path, {"name", "address", "user", "port", "roles", "labels"}, {"name", "address"}
        )
        if m is None:
            continue
        name = r.string(m.get("name"), f"{path}.name", None)
        address = r.string(m.get("address"), f"{path}.address", None)
        if name is not None and not _NAME_RE.match(name):
            r.problem(m["name"], f"{path}.name", f"{name!r}: use letters, digits, '.', '_' and '-'")
            name = None
        if name is not None and name in seen:
            r.problem(
                m["name"],
                f"{path}.name",
                f"duplicate host name {name!r} (first at hosts[{seen[name]}])",
            )
            name = None
        labels: dict[str, str] = {}
        if "labels" in m:
            lm = m["labels"]
            if not isinstance(lm, MappingNode):
                r.problem(lm, f"{path}.labels", f"expected a mapping, got {_kind(lm)}")
            else:
                for k, v in lm.value:
                    key = str(k.value)
                    val = r.string(v, f"{path}.labels.{key}", None)
                    if val is not None:
                        labels[key] = val
        roles = r.strings(m.get("roles"), f"{path}.roles") or ()
        user = r.string(m.get("user"), f"{path}.user", ssh.user)
        port = r.integer(m.get("port"), f"{path}.port", ssh.port, 1, 65535)
        if name is not None:
            seen[name] = i
        if name is not None and address is not None:
            hosts.append(Host(name, address, user, port, roles, labels))
    return tuple(hosts)


def _read_steps(r: _Reader, node: Node | None, path: str) -> tuple[Step, ...] | None:
    items = r.sequence(node, path)
    if items is None:
        return None
    if not items:
        r.problem(node, path, "needs at least one step")
    steps = []
    for i, item in enumerate(items):
        m = r.mapping(item, f"{path}[{i}]", {"name", "run"}, {"name", "run"})
        if m is None:
            continue
        name = r.string(m.get("name"), f"{path}[{i}].name", None)
        run = r.command(m.get("run"), f"{path}[{i}].run", None)
        if name is not None and run is not None:
            steps.append(Step(name, run))
    return tuple(steps)


def _read_deploy(r: _Reader, node: Node | None) -> Deploy | None:
    if node is None:
        return None
    m = r.mapping(node, "deploy", {"current", "steps", "rollback", "hooks"}, {"current", "steps"})
    if m is None:
        return None
    current = r.command(m.get("current"), "deploy.current", None)
    steps = _read_steps(r, m.get("steps"), "deploy.steps")
    rollback = _read_steps(r, m.get("rollback"), "deploy.rollback")
    hooks = Hooks()
    if "hooks" in m:
        hm = r.mapping(m["hooks"], "deploy.hooks", {"before_host", "after_host"})
        if hm is not None:
            hooks = Hooks(
                before_host=r.command(hm.get("before_host"), "deploy.hooks.before_host", None),
                after_host=r.command(hm.get("after_host"), "deploy.hooks.after_host", None),
            )
    if current is None or not steps:
        return None
    return Deploy(current, steps, rollback, hooks)


def _read_health(r: _Reader, node: Node | None) -> Health | None:
    if node is None:
        return None
    m = r.mapping(node, "health", {"check", "metrics", "interval", "timeout"}, {"check"})
    if m is None:
        return None
    d = Health(check="")
    check = r.command(m.get("check"), "health.check", None)
    health = Health(
        check=check or "",
        metrics=r.command(m.get("metrics"), "health.metrics", None),
        interval=r.duration(m.get("interval"), "health.interval", d.interval),
        timeout=r.duration(m.get("timeout"), "health.timeout", d.timeout),
    )
    return health if check else None


def _read_rules(r: _Reader, node: Node | None) -> tuple[Rule, ...]:
    items = r.sequence(node, "canary.analysis.rules") or []
    rules = []
    names: set[str] = set()
    for i, item in enumerate(items):
        path = f"canary.analysis.rules[{i}]"
        m = r.mapping(
            item,
            path,
            {
                "name",
                "metric",
                "per",
                "max",
                "max_vs_baseline",
                "quantile",
                "must_have_data",
                "min_count",
            },
            {"name", "metric"},
        )
        if m is None:
            continue
        name = r.string(m.get("name"), f"{path}.name", None)
        if name in names:
            r.problem(m["name"], f"{path}.name", f"duplicate rule name {name!r}")
        names.add(name)
        metric = r.string(m.get("metric"), f"{path}.metric", None)
        rule_max = r.number(m.get("max"), f"{path}.max", None)
        vs = r.number(m.get("max_vs_baseline"), f"{path}.max_vs_baseline", None, positive=True)
        quantile = r.number(m.get("quantile"), f"{path}.quantile", None)
        if quantile is not None and not 0 < quantile < 1:
            r.problem(m["quantile"], f"{path}.quantile", f"must be between 0 and 1, got {quantile}")
        per = r.string(m.get("per"), f"{path}.per", None)
        if per is not None and quantile is not None:
            r.problem(m["per"], f"{path}.per", "a rule takes either per or quantile, not both")
        if "max" not in m and "max_vs_baseline" not in m:
            r.problem(item, f"{path}.max", "required (or max_vs_baseline): a rule needs a limit")
        if name and metric:
            rules.append(
                Rule(
                    name=name,
                    metric=metric,
                    per=per,
                    max=rule_max,
                    max_vs_baseline=vs,
                    quantile=quantile,
                    must_have_data=r.boolean(
                        m.get("must_have_data"), f"{path}.must_have_data", False
                    ),
                    min_count=r.integer(m.get("min_count"), f"{path}.min_count", 100, 0),
                )
            )
    return tuple(rules)


def _read_canary(r: _Reader, node: Node | None, host_names: set[str]) -> Canary:
    d = Canary()
    if node is None:
        return d
    m = r.mapping(node, "canary", {"hosts", "percent", "analysis"})
    if m is None:
        return d
    hosts = r.strings(m.get("hosts"), "canary.hosts") or ()
    if host_names:
        for i, name in enumerate(hosts):
            if name not in host_names:
                r.problem(m["hosts"].value[i], f"canary.hosts[{i}]", f"{name!r} is not in hosts")
    percent = r.number(m.get("percent"), "canary.percent", None, positive=True)
    if percent is not None and percent > 100:
        r.problem(m["percent"], "canary.percent", f"must be at most 100, got {percent:g}")
    if "hosts" in m and "percent" in m:
        r.problem(m["percent"], "canary.percent", "give either canary.hosts or canary.percent")
    analysis = Analysis()
    if "analysis" in m:
        am = r.mapping(
            m["analysis"], "canary.analysis", {"duration", "max_failed_checks", "baseline", "rules"}
        )
        if am is not None:
            da = Analysis()
            analysis = Analysis(
                duration=r.duration(am.get("duration"), "canary.analysis.duration", da.duration),
                max_failed_checks=r.integer(
                    am.get("max_failed_checks"),
                    "canary.analysis.max_failed_checks",
                    da.max_failed_checks,
                    0,
                ),
                baseline=r.integer(am.get("baseline"), "canary.analysis.baseline", da.baseline, 0),
                rules=_read_rules(r, am.get("rules")),
            )
    return Canary(hosts=hosts, percent=percent, analysis=analysis)


def _read_waves(r: _Reader, node: Node | None) -> tuple[WaveSpec, ...]:
    items = r.sequence(node, "promote.waves")
    if items is None:
        return Promote().waves
    if not items:
        r.problem(node, "promote.waves", "needs at least one wave")
    waves: list[WaveSpec] = []
    for i, item in enumerate(items):
        path = f"promote.waves[{i}]"
        raw = r.value(item) if isinstance(item, ScalarNode) else None
        spec: WaveSpec | None = None
        if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
            spec = WaveSpec(float(raw), False)
        elif isinstance(raw, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*%\s*", raw):
            pct = float(raw.strip().rstrip("%"))
            if 0 < pct <= 100:
                spec = WaveSpec(pct, True)
        if spec is None:
            r.problem(
                item,
                path,
                f"expected a share like 10% (up to 100%) or a host count, got {_kind(item)}",
            )
            continue
        if waves and waves[-1].percent == spec.percent and spec.value <= waves[-1].value:
            r.problem(
                item, path, f"waves are cumulative and must increase: {spec} after {waves[-1]}"
            )
        elif waves and waves[-1].percent and not spec.percent:
            r.problem(item, path, f"a host count ({spec}) cannot follow a share ({waves[-1]})")
        waves.append(spec)
    return tuple(waves)


def _read_promote(r: _Reader, node: Node | None) -> Promote:
    d = Promote()
    if node is None:
        return d
    m = r.mapping(node, "promote", {"waves", "max_failures", "pause", "on_failure"})
    if m is None:
        return d
    pause: float | None = None
    if "pause" in m:
        pn = m["pause"]
        if isinstance(pn, ScalarNode) and pn.value == "manual":
            pause = None
        else:
            pause = r.duration(pn, "promote.pause", 0.0)
    on_failure = r.string(m.get("on_failure"), "promote.on_failure", d.on_failure)
    if on_failure not in ("rollback", "halt"):
        r.problem(
            m["on_failure"], "promote.on_failure", f"expected rollback or halt, got {on_failure!r}"
        )
        on_failure = d.on_failure
    return Promote(
        waves=_read_waves(r, m.get("waves")),
        max_failures=r.integer(m.get("max_failures"), "promote.max_failures", d.max_failures, 0),
        pause=pause,
        on_failure=on_failure,
    )


TOP_KEYS = {
    "name",
    "app",
    "version_pattern",
    "ssh",
    "hosts",
    "deploy",
    "health",
    "logs",
    "canary",
    "promote",
}


def parse_env(text: str, file: str = "<env>", path: Path | None = None) -> Environment:
    """Parse an environment file's text; raise EnvFileError with every problem found."""
    r = _Reader(file)
    try:
        # libyaml's loader when present: a 1,000-host file reads several times faster.
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise EnvFileError([f"{file}:{line}: (yaml): {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise EnvFileError([f"{file}:1: (yaml): {exc}"]) from None
    if root is None:
        raise EnvFileError([f"{file}:1: (top level): the file is empty"])
    m = r.mapping(root, "", TOP_KEYS, {"name", "app", "hosts", "deploy", "health"})
    if m is None:
        raise EnvFileError(r.problems)
    name = r.string(m.get("name"), "name", None)
    app = r.string(m.get("app"), "app", None)
    for key, value in (("name", name), ("app", app)):
        if value is not None and not _NAME_RE.match(value):
            r.problem(m[key], key, f"{value!r}: use letters, digits, '.', '_' and '-'")
    pattern = r.string(m.get("version_pattern"), "version_pattern", DEFAULT_VERSION_PATTERN)
    try:
        re.compile(pattern)
    except re.error as exc:
        r.problem(
            m.get("version_pattern"), "version_pattern", f"not a valid regular expression: {exc}"
        )
    ssh = _read_ssh(r, m.get("ssh"))
    hosts = _read_hosts(r, m.get("hosts"), ssh)
    deploy = _read_deploy(r, m.get("deploy"))
    health = _read_health(r, m.get("health"))
    logs = r.command(m.get("logs"), "logs", None)
    canary = _read_canary(r, m.get("canary"), {h.name for h in hosts})
    promote = _read_promote(r, m.get("promote"))
    if r.problems or name is None or app is None or deploy is None or health is None:
        raise EnvFileError(r.problems or [f"{file}:1: (top level): incomplete environment"])
    return Environment(
        path=(path or Path(file)).resolve(),
        name=name,
        app=app,
        ssh=ssh,
        hosts=hosts,
        deploy=deploy,
        health=health,
        logs=logs,
        canary=canary,
        promote=promote,
        version_pattern=pattern,
    )


def load_env(path: str | os.PathLike[str]) -> Environment:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvFileError([f"{p}:1: (file): no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError([f"{p}:1: (file): cannot read: {exc}"]) from None
    return parse_env(text, file=str(path), path=p)
