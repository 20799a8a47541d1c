"""Readers of the fleet and rollout sections: ssh, hosts, deploy, health, promote.

Each takes the walker and its section's node (``None`` when the key is absent) and returns
the typed section, its default, or ``None`` when a required section is unusable; every
problem goes to the walker.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from yaml.nodes import Node, ScalarNode

from canarytui.config.address import address_problem
from canarytui.config.limits import MAX_HOSTS, MAX_NUMBER_CHARS, shown
from canarytui.config.model import (
    INSTANCE_PLACEHOLDERS,
    NAME_RE,
    Deploy,
    Health,
    Hooks,
    Host,
    Prometheus,
    Promote,
    SshDefaults,
    Step,
    WaveSpec,
)
from canarytui.config.proxyjump import read_proxy_jump
from canarytui.config.reader import NodeReader, kind
from canarytui.config.template import placeholders_in


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
            "proxy_jump",
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
        proxy_jump=read_proxy_jump(r, m.get("proxy_jump"), "ssh.proxy_jump"),
    )


_HOST_KEYS = frozenset({"name", "address", "user", "port", "roles", "labels", "proxy_jump"})
_HOST_REQUIRED = frozenset({"name", "address"})


def read_hosts(r: NodeReader, node: Node | None, ssh: SshDefaults) -> tuple[Host, ...]:
    items = r.sequence(node, "hosts")
    if items is None:
        return ()
    if not items:
        r.problem(node, "hosts", "the fleet needs at least one host")
    hosts: list[Host] = []
    seen: dict[str, int] = {}
    machines: dict[tuple[object, ...], Host] = {}
    for i, item in enumerate(items):
        path = f"hosts[{i}]"
        problems = len(r.problems)
        m = r.mapping(item, path, _HOST_KEYS, _HOST_REQUIRED)
        if m is None:
            continue
        name = r.string(m.get("name"), f"{path}.name", None)
        address = r.string(m.get("address"), f"{path}.address", None)
        if address is not None and (wrong := address_problem(address)) is not None:
            r.problem(m["address"], f"{path}.address", wrong)
            address = None
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
        jump = read_proxy_jump(r, m.get("proxy_jump"), f"{path}.proxy_jump")
        if name is not None:
            seen[name] = i
        if name is not None and address is not None:
            host = Host(name, address, user, port, roles, labels, jump)
            first = listed_before(machines, host)
            if first is not None and len(r.problems) == problems:  # as written, not a guess
                r.problem(m["address"], f"{path}.address", listed_twice(host, first))
            hosts.append(host)
    return tuple(hosts)


def listed_before(machines: dict[tuple[object, ...], Host], host: Host) -> Host | None:
    """The host of ``machines`` (those listed so far, which ``host`` joins) that is the
    machine ``host`` is, if one is: what SSH reaches is the same. Two spellings of one
    address (a DNS name and its IP) are not caught; one address behind two bastions is
    two networks' machines, not one."""
    first = machines.setdefault((host.address.lower(), host.port, host.user, host.proxy_jump), host)
    return None if first is host else first


def listed_twice(host: Host, first: Host) -> str:
    where = f"{host.endpoint}" + (f" as {host.user}" if host.user else "")
    return (
        f"{shown(host.name)} is {where}, as {shown(first.name)} is: one machine listed "
        "twice would be deployed twice at once (list it once)"
    )


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
    m = r.mapping(
        node, "health", {"check", "metrics", "prometheus", "interval", "timeout"}, {"check"}
    )
    if m is None:
        return None
    d = Health(check="")
    check = r.command(m.get("check"), "health.check", None)
    health = Health(
        check=check or "",
        metrics=r.command(m.get("metrics"), "health.metrics", None),
        interval=r.duration(m.get("interval"), "health.interval", d.interval),
        timeout=r.duration(m.get("timeout"), "health.timeout", d.timeout),
        prometheus=_read_prometheus(r, m.get("prometheus")),
    )
    if "metrics" in m and "prometheus" in m:
        r.problem(
            m["prometheus"],
            "health.prometheus",
            "the metrics come from health.metrics or from health.prometheus, not both",
        )
    return health if check else None


def _read_prometheus(r: NodeReader, node: Node | None) -> Prometheus | None:
    """``health.prometheus``: the server's URL and the template of a host's instance label."""
    if node is None:
        return None
    m = r.mapping(node, "health.prometheus", {"url", "instance"}, {"url", "instance"})
    if m is None:
        return None
    url = r.string(m.get("url"), "health.prometheus.url", None)
    why = _url_problem(url) if url is not None else None
    if why is not None:
        r.problem(m["url"], "health.prometheus.url", why)
        url = None
    instance = r.string(m.get("instance"), "health.prometheus.instance", None)
    unknown = sorted(placeholders_in(instance or "") - INSTANCE_PLACEHOLDERS)
    for name in unknown[:10]:
        known = ", ".join(f"{{{p}}}" for p in sorted(INSTANCE_PLACEHOLDERS))
        r.problem(
            m["instance"],
            "health.prometheus.instance",
            f"unknown placeholder {{{name}}} (known: {known})",
        )
    if url is None or instance is None or unknown:
        return None
    return Prometheus(url, instance)


def _url_problem(url: str) -> str | None:
    """What is wrong with a server's base URL (never quoting it: it may hold a password)."""
    if any(c.isspace() for c in url):
        return "a URL has no spaces"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad port or IPv6 address
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "expected an http:// or https:// URL, e.g. http://prometheus.internal:9090"
    if not parts.hostname:
        return "the URL names no host"
    if port == 0:
        return "port 0 is not a server's port"
    if parts.query or parts.fragment:
        return "the server's base URL takes no query or fragment (? or #)"
    return None


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
        if isinstance(raw, int) and not isinstance(raw, bool) and not 0 < raw <= MAX_HOSTS:
            r.problem(item, path, f"a host count must be 1 to {MAX_HOSTS}, got {raw}")
            continue
        if isinstance(raw, int) and raw > 0:
            spec = WaveSpec(float(raw), False)
        elif (
            isinstance(raw, str)
            and len(raw) <= MAX_NUMBER_CHARS
            and re.fullmatch(r"\s*\d+(\.\d+)?\s*%\s*", raw)
        ):
            pct = float(raw.strip().rstrip("%"))
            if not 0 < pct <= 100:
                r.problem(item, path, f"a share must be more than 0% and at most 100%, got {raw}")
                continue
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
