"""Readers of the fleet and rollout sections: ssh, hosts, deploy, health, promote.

Each takes the walker and its section's node (``None`` when the key is absent) and returns
the typed section, its default, or ``None`` when a required section is unusable; every
problem goes to the walker.
"""

from __future__ import annotations

import re

from yaml.nodes import Node, ScalarNode

from canarytui.config.limits import MAX_HOSTS, MAX_NUMBER_CHARS, shown
from canarytui.config.model import (
    NAME_RE,
    Deploy,
    Health,
    Hooks,
    Host,
    Promote,
    SshDefaults,
    Step,
    WaveSpec,
)
from canarytui.config.reader import NodeReader, kind


def read_ssh(r: NodeReader, node: Node | None) -> SshDefaults:
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


def read_hosts(r: NodeReader, node: Node | None, ssh: SshDefaults) -> tuple[Host, ...]:
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
        if name is not None and not NAME_RE.match(name):
            r.problem(
                m["name"], f"{path}.name", f"{shown(name)}: use letters, digits, '.', '_' and '-'"
            )
            name = None
        if name is not None and name in seen:
            r.problem(
                m["name"],
                f"{path}.name",
                f"duplicate host name {shown(name)} (first at hosts[{seen[name]}])",
            )
            name = None
        labels = r.free_mapping(m.get("labels"), f"{path}.labels") or {}
        roles = r.strings(m.get("roles"), f"{path}.roles") or ()
        user = r.string(m.get("user"), f"{path}.user", ssh.user)
        port = r.integer(m.get("port"), f"{path}.port", ssh.port, 1, 65535)
        if name is not None:
            seen[name] = i
        if name is not None and address is not None:
            hosts.append(Host(name, address, user, port, roles, labels))
    return tuple(hosts)


def _read_steps(r: NodeReader, node: Node | None, path: str) -> tuple[Step, ...] | None:
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


def read_deploy(r: NodeReader, node: Node | None) -> Deploy | None:
    if node is None:
        return None
    m = r.mapping(
        node, "deploy", {"current", "releases", "steps", "rollback", "hooks"}, {"current", "steps"}
    )
    if m is None:
        return None
    current = r.command(m.get("current"), "deploy.current", None)
    releases = r.command(m.get("releases"), "deploy.releases", None)
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
    return Deploy(current, steps, rollback, hooks, releases)


def read_health(r: NodeReader, node: Node | None) -> Health | None:
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


def _read_waves(r: NodeReader, node: Node | None) -> tuple[WaveSpec, ...]:
    items = r.sequence(node, "promote.waves")
    if items is None:
        return Promote().waves
    if not items:
        r.problem(node, "promote.waves", "needs at least one wave")
    waves: list[WaveSpec] = []
    for i, item in enumerate(items):
        path = f"promote.waves[{i}]"
        raw = r.plain(item)
        spec: WaveSpec | None = None
        if isinstance(raw, int) and raw > MAX_HOSTS:
            r.problem(item, path, f"a host count must be at most {MAX_HOSTS}, got {raw}")
            continue
        if isinstance(raw, int) and raw > 0:
            spec = WaveSpec(float(raw), False)
        elif (
            isinstance(raw, str)
            and len(raw) <= MAX_NUMBER_CHARS
            and re.fullmatch(r"\s*\d+(\.\d+)?\s*%\s*", raw)
        ):
            pct = float(raw.strip().rstrip("%"))
            if 0 < pct <= 100:
                spec = WaveSpec(pct, True)
        if spec is None:
            r.problem(
                item,
                path,
                f"expected a share like 10% (up to 100%) or a host count, got {kind(item)}",
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


def read_promote(r: NodeReader, node: Node | None) -> Promote:
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
        else:  # 0s: no pause between waves
            pause = r.duration(pn, "promote.pause", 0.0, zero=True)
    on_failure = r.string(m.get("on_failure"), "promote.on_failure", d.on_failure)
    if on_failure not in ("rollback", "halt", "ask"):
        r.problem(
            m["on_failure"],
            "promote.on_failure",
            f"expected rollback, halt or ask, got {shown(on_failure)}",
        )
        on_failure = d.on_failure
    return Promote(
        waves=_read_waves(r, m.get("waves")),
        max_failures=r.integer(
            m.get("max_failures"), "promote.max_failures", d.max_failures, 0, most=MAX_HOSTS
        ),
        pause=pause,
        on_failure=on_failure,
    )
