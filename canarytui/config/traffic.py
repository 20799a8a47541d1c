"""Reader of the traffic section: commands run when a phase starts (weights, switches)."""

from __future__ import annotations

from yaml.nodes import Node

from canarytui.config.limits import shown
from canarytui.config.model import Host, Traffic
from canarytui.config.reader import NodeReader
from canarytui.config.template import TRAFFIC_PLACEHOLDERS

PHASES = ("canary_start", "wave_start", "complete", "rolled_back")


def read_traffic(r: NodeReader, node: Node | None, hosts: tuple[Host, ...]) -> Traffic:
    if node is None:
        return Traffic()
    m = r.mapping(node, "traffic", {"on", *PHASES})
    if m is None:
        return Traffic()
    on = r.string(m.get("on"), "traffic.on", None)
    roles = {role for h in hosts for role in h.roles}
    if on is not None and hosts and on not in roles:
        known = ", ".join(sorted(roles)) or "none"
        r.problem(m["on"], "traffic.on", f"no host has the role {shown(on)} (roles: {known})")
    commands = {
        phase: r.command(m.get(phase), f"traffic.{phase}", None, TRAFFIC_PLACEHOLDERS)
        for phase in PHASES
    }
    return Traffic(on=on, **commands)
