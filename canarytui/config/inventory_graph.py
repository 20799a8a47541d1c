"""An Ansible inventory as read: groups, children, vars and hosts, resolved into fleet hosts.

The INI and YAML readers fill an :class:`Inventory`; :meth:`Inventory.resolve` turns it into
``Host`` values as Ansible would see them: a host's roles are its groups and their ancestors
(never ``all`` or ``ungrouped``); its variables are the groups' vars, applied from the
shallowest group to the deepest (``ansible_group_priority``, then the name, break ties),
then its own; ``ansible_host`` / ``ansible_user`` / ``ansible_port`` give the address, user
and port, every other variable is a label, except those whose name says they hold a secret.
Every problem is one ``INVENTORY:LINE: where: problem`` line; every size is bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from canarytui.config.address import address_problem
from canarytui.config.inventory_range import RangeError, expand
from canarytui.config.limits import (
    MAX_HOSTS,
    MAX_PROBLEMS,
    MAX_STRING,
    safe_line,
    shown,
    unsafe_char,
)
from canarytui.config.model import NAME_RE, Host, SshDefaults

ADDRESS_KEYS = ("ansible_host", "ansible_ssh_host")
USER_KEYS = ("ansible_user", "ansible_ssh_user")
PORT_KEYS = ("ansible_port", "ansible_ssh_port")
CONNECTION_KEYS = frozenset(ADDRESS_KEYS + USER_KEYS + PORT_KEYS)
PRIORITY_KEY = "ansible_group_priority"
IMPLICIT = ("all", "ungrouped")
# Variables never shown as labels: their names say they hold a secret.
SECRET = re.compile(
    r"pass|secret|token|vault|credential|api_?key|access_?key|private_key(?!_file)", re.I
)
MAX_GROUPS = 5_000
MAX_ROLES = 200  # groups a host is in, with their ancestors
MAX_VARS = 1_000  # variables of one group or host
MAX_LABELS = 2_000_000  # label entries over the whole fleet (hosts in the same groups share)
MAX_NAMES = 10 * MAX_HOSTS  # host names produced by ranges over the whole file
# ``name:port``; a colon only inside a range (``web[1:9]:22``), none elsewhere (IPv6).
_PORT = re.compile(r"(?P<name>(?:[^:\[]|\[[^\]]*\])*):(?P<port>[^:\[\]]*)")


@dataclass(frozen=True)
class Var:
    text: str
    line: int
    where: str


@dataclass
class Group:
    name: str
    line: int
    vars: dict[str, Var] = field(default_factory=dict)
    dir_vars: dict[str, Var] = field(default_factory=dict)  # group_vars/: they win
    children: dict[str, int] = field(default_factory=dict)  # child -> line of the edge
    parents: dict[str, int] = field(default_factory=dict)


@dataclass
class Entry:
    name: str
    line: int
    groups: dict[str, None] = field(default_factory=dict)
    vars: dict[str, Var] = field(default_factory=dict)
    dir_vars: dict[str, Var] = field(default_factory=dict)  # host_vars/: they win


class Problems:
    """The problems of an inventory and its variable files: bounded, each said once."""

    def __init__(self) -> None:
        self.found: list[tuple[int, int, str]] = []  # file number, line, text
        self.files = 0
        self._said: set[str] = set()
        self.full = False  # more problems than are listed: reading may stop

    def add(self, file: int, line: int, text: str) -> None:
        if text in self._said:
            return
        if len(self.found) >= MAX_PROBLEMS:
            self.full = True
            return
        self._said.add(text)
        self.found.append((file, line, text))

    def lines(self, file: str) -> list[str]:
        """Every problem, file by file, in the order of the lines."""
        more = f"{file}:1: (inventory): more problems, not listed"
        listed = [text for _, _, text in sorted(self.found, key=lambda p: p[:2])]
        return listed + ([safe_line(more)] if self.full else [])


class Inventory:
    """What the readers found, and every problem, bounded."""

    def __init__(self, file: str, sink: Problems | None = None) -> None:
        self.file = file
        self.problem_sink = sink or Problems()
        self._number = self.problem_sink.files
        self.problem_sink.files += 1
        self.groups: dict[str, Group] = {name: Group(name, 1) for name in IMPLICIT}
        self.hosts: dict[str, Entry] = {}
        self._names = 0

    def problem(self, line: int, where: str, message: str) -> None:
        text = safe_line(f"{self.file}:{line}: {where}: {message}")
        self.problem_sink.add(self._number, line, text)

    def extend(self, lines: list[str]) -> None:
        """Problems already written out (the YAML reader's), counted as on line 1."""
        for text in lines:
            self.problem_sink.add(self._number, 1, text)

    @property
    def failed(self) -> bool:
        return bool(self.problem_sink.found)

    def all_problems(self) -> list[str]:
        return self.problem_sink.lines(self.file)

    # Building -------------------------------------------------------------------

    def group(self, name: str, line: int, where: str) -> Group | None:
        found = self.groups.get(name)
        if found is not None:
            return found
        problem = _text_problem(name, 255)
        if problem is None and ("\n" in name or "\t" in name):
            problem = "must be on one line, without tabs"
        if problem:
            self.problem(line, where, f"group name {problem}")
            return None
        if len(self.groups) >= MAX_GROUPS + len(IMPLICIT):
            self.problem(line, where, f"more than {MAX_GROUPS} groups")
            return None
        self.groups[name] = group = Group(name, line)
        return group

    def add_child(self, parent: str, child: str, line: int) -> None:
        if parent in self.groups and child in self.groups and child != "all":
            self.groups[parent].children.setdefault(child, line)
            self.groups[child].parents.setdefault(parent, line)

    def expand(self, pattern: str, line: int, where: str) -> list[str]:
        """The host names a pattern stands for (ranges expanded), each a usable name."""
        try:
            names = expand(pattern, MAX_HOSTS) if "[" in pattern or "]" in pattern else [pattern]
        except RangeError as exc:
            self.problem(line, where, str(exc))
            return []
        self._names += len(names)
        if self._names > MAX_NAMES:
            self.problem(line, where, f"ranges give more than {MAX_NAMES} host names in all")
            return []
        good = [n for n in names if NAME_RE.match(n)]
        if len(good) < len(names):
            bad = next(n for n in names if not NAME_RE.match(n))
            self.problem(
                line,
                where,
                f"host name {shown(bad)}: use letters, digits, '.', '_' and '-' (at most 63 "
                "characters); for any other address name the host and set ansible_host",
            )
        return good

    def add_hosts(
        self, pattern: str, group: Group, values: dict[str, Var], line: int, where: str
    ) -> None:
        """A host pattern's hosts (``name:port``, ranges) in the group, with their variables.

        As in Ansible, the port of ``name:port`` is the host's only where it is first listed;
        a different one later is a problem here (Ansible would ignore it without a word)."""
        port = None
        match = _PORT.fullmatch(pattern)
        if match:
            pattern = match.group("name")
            if not match.group("port"):
                self.problem(line, where, "a name ending in ':' needs a port after it (name:2222)")
                return
            port = self.var("ansible_port", match.group("port"), line, f"{where}: (port)")
            if port is None:
                return
        for name in self.expand(pattern, line, where):
            fresh = name not in self.hosts
            entry = self.add_host(name, group, line, where)
            if entry is None:
                return
            known = entry.vars.get("ansible_port")
            if port is not None and fresh:
                entry.vars["ansible_port"] = port
            elif port is not None and (known is None or known.text != port.text):
                self.problem(
                    line,
                    where,
                    f"{name} is first listed at line {entry.line}, where Ansible takes its port "
                    f"from: give the port there, or write ansible_port={port.text}",
                )
            self.set_vars(entry, values)

    def add_host(self, name: str, group: Group, line: int, where: str) -> Entry | None:
        entry = self.hosts.get(name)
        if entry is None:
            if len(self.hosts) >= MAX_HOSTS:
                self.problem(line, where, f"more than {MAX_HOSTS} hosts")
                return None
            self.hosts[name] = entry = Entry(name, line)
        entry.groups.setdefault(group.name, None)
        return entry

    def var(self, key: str, text: str, line: int, where: str) -> Var | None:
        """A variable's value checked once, where it is written; None: not kept."""
        problem = _text_problem(key, 255)
        if problem:
            self.problem(line, where, f"variable name {problem}")
            return None
        if key in PORT_KEYS:
            port = text.strip()
            if not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
                self.problem(line, where, f"expected a port (1 to 65535), got {shown(text)}")
                return None
            return Var(str(int(port)), line, where)
        if key == PRIORITY_KEY:
            if not re.fullmatch(r"-?[0-9]{1,9}", text.strip()):
                self.problem(line, where, f"expected a whole number, got {shown(text)}")
                return None
            return Var(text.strip(), line, where)
        if key not in CONNECTION_KEYS and SECRET.search(key):
            return None  # a secret is never a label
        sep = ": " if str(self.file).endswith((".yml", ".yaml")) else "="
        keys = (key, PORT_KEYS[0], USER_KEYS[0])
        if key in ADDRESS_KEYS and text.strip() and (wrong := address_problem(text, keys, sep)):
            self.problem(line, where, wrong)
            return None
        problem = _text_problem(text, MAX_STRING)
        if problem and (key in CONNECTION_KEYS or problem != "must not be empty"):
            self.problem(line, where, problem)
            return None
        return Var(text, line, where) if text.strip() else None

    def set_vars(self, target: Group | Entry, values: dict[str, Var]) -> None:
        for key, value in values.items():
            old = target.vars.get(key)
            if isinstance(target, Entry) and key in CONNECTION_KEYS and old is not None:
                if old.text != value.text:
                    self.problem(
                        value.line,
                        value.where,
                        f"{shown(value.text)} for {target.name}, but {shown(old.text)} at line "
                        f"{old.line}: a host has one {key}",
                    )
                    continue
            if old is None and len(target.vars) >= MAX_VARS:
                self.problem(value.line, value.where, f"more than {MAX_VARS} variables")
                return
            target.vars[key] = value

    # Resolving ------------------------------------------------------------------

    def resolve(self, ssh: SshDefaults) -> tuple[Host, ...]:
        """The hosts as the fleet sees them; problems found on the way are added."""
        order, depth = self._order()
        ancestors = self._ancestors(order)
        rank = {
            name: (depth.get(name, 1), _priority(self.groups[name]), name) for name in self.groups
        }
        shared: dict[tuple[str, ...], dict[str, Var]] = {}
        budget = MAX_LABELS
        hosts: list[Host] = []
        for entry in self.hosts.values():
            direct = [g for g in entry.groups if g not in IMPLICIT] or list(entry.groups)
            groups: dict[str, None] = dict.fromkeys(direct)
            for g in direct:
                groups.update(ancestors.get(g, {}))
            if len(groups) > MAX_ROLES:
                self.problem(entry.line, entry.name, f"in more than {MAX_ROLES} groups")
                continue
            key = tuple(sorted(groups, key=rank.__getitem__))
            base = shared.get(key)
            if base is None:
                base = {}
                for g in key:
                    base.update(self.groups[g].vars)
                for g in key:  # group_vars/ files win over the inventory file's
                    base.update(self.groups[g].dir_vars)
                shared[key] = base
                budget -= len(base)
            own = {**entry.vars, **entry.dir_vars}
            merged = {**base, **own} if own else base
            budget -= len(own)
            if budget < 0:
                self.problem(1, "(inventory)", f"more than {MAX_LABELS} labels over the fleet")
                return ()
            roles = tuple(g for g in groups if g not in IMPLICIT)
            hosts.append(_host(entry.name, roles, merged, ssh))
        return tuple(hosts)

    def _order(self) -> tuple[list[str], dict[str, int]]:
        """The groups parents first (Kahn), their depth below ``all``; loops are problems."""
        for name, group in self.groups.items():
            if name != "all" and not group.parents:
                self.groups["all"].children.setdefault(name, 1)
                group.parents["all"] = 1
        waiting = {name: len(g.parents) for name, g in self.groups.items()}
        depth = {"all": 0}
        ready = ["all"]
        order: list[str] = []
        while ready:
            name = ready.pop()
            order.append(name)
            for child in self.groups[name].children:
                depth[child] = max(depth.get(child, 0), depth[name] + 1)
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
        looped = set(self.groups) - set(order)
        # What only descends from a loop is not in one: take leaves off, bottom up.
        below = {n: sum(c in looped for c in self.groups[n].children) for n in looped}
        leaves = [n for n, count in below.items() if count == 0]
        while leaves:
            leaf = leaves.pop()
            looped.discard(leaf)
            for parent in self.groups[leaf].parents:
                if parent in looped:
                    below[parent] -= 1
                    if below[parent] == 0:
                        leaves.append(parent)
        if looped:
            line = min(
                self.groups[n].parents[p]
                for n in looped
                for p in self.groups[n].parents
                if p in looped
            )
            names = ", ".join(shown(n) for n in sorted(looped)[:10])
            self.problem(
                line,
                "(children)",
                f"the groups {names} are their own ancestors: children must not loop",
            )
        return order, depth

    def _ancestors(self, order: list[str]) -> dict[str, dict[str, None]]:
        """Each group's ancestors, nearest first, at most MAX_ROLES of them."""
        out: dict[str, dict[str, None]] = {}
        for name in order:
            found: dict[str, None] = {}
            for parent in self.groups[name].parents:
                found.setdefault(parent, None)
                found.update(out.get(parent, {}))
                if len(found) > MAX_ROLES + len(IMPLICIT):
                    break
            out[name] = found
        return out


def _priority(group: Group) -> int:
    var = group.vars.get(PRIORITY_KEY)
    return int(var.text) if var is not None else 1


def _host(name: str, roles: tuple[str, ...], merged: dict[str, Var], ssh: SshDefaults) -> Host:
    def first(keys: tuple[str, ...]) -> str | None:
        return next((merged[k].text for k in keys if k in merged), None)

    port = first(PORT_KEYS)
    labels = {
        k: v.text for k, v in merged.items() if k not in CONNECTION_KEYS and k != PRIORITY_KEY
    }
    return Host(
        name=name,
        address=first(ADDRESS_KEYS) or name,
        user=first(USER_KEYS) or ssh.user,
        port=int(port) if port is not None else ssh.port,
        roles=roles,
        labels=labels,
    )


def _text_problem(text: str, limit: int) -> str | None:
    """Why a name or value cannot be used, or None."""
    if len(text) > limit:
        return f"too long: {len(text)} characters (at most {limit})"
    if not text.strip():
        return "must not be empty"
    bad = unsafe_char(text)
    if bad is not None:
        return f"contains the control character {shown(text[bad])} at character {bad + 1}"
    return None
