"""``hosts_from``: the fleet from an Ansible inventory (INI or YAML), without Ansible.

``read_inventory`` reads one inventory file into ``Host`` values or raises ``EnvFileError``
with one ``INVENTORY:LINE: where: problem`` line per problem; ``read_hosts_from`` is the
environment file's side: the path relative to the file, the inventory's hosts merged with
those the file lists (a name in both: the file's entry wins, in the inventory's place).
The format: ``.yml``, ``.yaml`` and ``.json`` are YAML, ``.ini`` and ``.cfg`` INI; any other
name is YAML when its first line is a ``name:`` key or ``---``, else INI (Ansible's order).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from yaml.nodes import Node

from canarytui.config.inventory_graph import Inventory
from canarytui.config.inventory_ini import parse_ini
from canarytui.config.inventory_vars import read_var_dirs
from canarytui.config.inventory_yaml import parse_yaml
from canarytui.config.limits import safe_line, shown
from canarytui.config.model import EnvFileError, Host, SshDefaults
from canarytui.config.reader import NodeReader
from canarytui.config.source import read_file

YAML_SUFFIXES = (".yml", ".yaml", ".json")
INI_SUFFIXES = (".ini", ".cfg")
_YAML_START = re.compile(r"---|\{|(\"[^\"]*\"|'[^']*'|[^\s\[\]=#;:'\"]+):(\s|$)")


def read_inventory(
    path: str | os.PathLike[str], ssh: SshDefaults | None = None
) -> tuple[Host, ...]:
    """The hosts of an inventory file, or EnvFileError naming its lines."""
    name = str(path)
    if os.path.isdir(path):
        raise EnvFileError([safe_line(f"{name}:1: (file): a folder: give the inventory file")])
    try:
        text = read_file(path)
    except EnvFileError as exc:  # its words are an environment file's: say "inventory"
        lines = [p.replace("give a YAML file", "give the inventory file") for p in exc.problems]
        raise EnvFileError(lines) from None
    return parse_inventory(text, name, ssh, var_dirs=True)


def parse_inventory(
    text: str, name: str, ssh: SshDefaults | None = None, var_dirs: bool = False
) -> tuple[Host, ...]:
    """An inventory's text (its format from ``name``); with ``var_dirs``, the
    ``group_vars/`` and ``host_vars/`` beside ``name`` too."""
    inv = Inventory(name)
    (parse_yaml if is_yaml(name, text) else parse_ini)(text, inv)
    if var_dirs:
        read_var_dirs(inv, name)
    hosts = inv.resolve(ssh or SshDefaults())
    if inv.failed:
        raise EnvFileError(inv.all_problems())
    if not hosts:
        raise EnvFileError([safe_line(f"{name}:1: (inventory): no hosts in it")])
    return hosts


def is_yaml(name: str, text: str) -> bool:
    """Is the inventory YAML (else INI)? By its name's suffix, else by its first line."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in YAML_SUFFIXES or suffix in INI_SUFFIXES:
        return suffix in YAML_SUFFIXES
    for line in text.split("\n"):
        line = line.strip()
        if line and line[0] not in "#;":
            return bool(_YAML_START.match(line))
    return False


def read_hosts_from(
    r: NodeReader,
    top: dict[str, Node],
    hosts: tuple[Host, ...],
    ssh: SshDefaults,
    env_path: Path,
) -> tuple[Host, ...]:
    """The fleet: the file's ``hosts`` and those of its ``hosts_from`` inventory, merged."""
    node = top.get("hosts_from")
    if node is None:
        if "hosts" not in top:
            r.problem(None, "hosts", "required (or hosts_from: an Ansible inventory)")
        return hosts
    value = r.string(node, "hosts_from", None)
    if value is None:
        return hosts
    path = env_path.parent / os.path.expanduser(value)
    if not os.path.lexists(path):
        r.problem(node, "hosts_from", f"no such file: {shown(str(path))}")
        return hosts
    if os.path.isdir(path):
        r.problem(node, "hosts_from", f"{shown(str(path))} is a folder: name the inventory file")
        return hosts
    try:
        found = read_inventory(path, ssh)
    except EnvFileError as exc:
        r.problems.extend(exc.problems)
        return hosts
    listed = {h.name: h for h in hosts}
    merged = [listed.pop(h.name, h) for h in found]
    return (*merged, *(h for h in hosts if h.name in listed))
