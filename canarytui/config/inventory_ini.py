"""Ansible's INI inventory format, read as Ansible reads it, into an ``Inventory``.

Lines before any section are hosts of ``ungrouped``; ``[group]`` lists hosts (``name``,
``name:port``, ranges, then ``key=value`` variables, shell-quoted, ``#`` starting a comment),
``[group:vars]`` one ``key=value`` a line, ``[group:children]`` one group a line (declared
anywhere in the file). Values go through Python's literal syntax as in Ansible, so
``'quoted'`` loses its quotes and ``8080 # note`` is ``8080``; anything else stays as written.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings

from canarytui.config.inventory_graph import Inventory, Var
from canarytui.config.limits import shown

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_WHITESPACE = re.compile(r"[ \t\r\n]+")
MAX_LINE = 16 * 1024
_LITERAL_CHARS = 1000  # longer values are not given to the literal parser


def parse_ini(text: str, inv: Inventory) -> None:
    """Every line into ``inv``; each problem reported where it is."""
    section, state = "ungrouped", "hosts"
    declared = {"all", "ungrouped"}
    vars_at: dict[str, int] = {}  # a [group:vars] section: the line of its first header
    children: list[tuple[str, str, int]] = []  # parent, child, line
    for number, raw in enumerate(text.split("\n"), 1):
        if inv.problem_sink.full:
            break  # enough said: the rest is not read
        line = raw.strip(" \t\r\f\v")
        if not line or line[0] in "#;":
            continue
        if len(line) > MAX_LINE:
            inv.problem(number, f"[{section}]", f"line too long: {len(line)} characters")
            continue
        match = _SECTION.match(line)
        if match:
            name, kind = match.group(1), match.group(2) or "hosts"
            state = "skip"
            where = f"[{name}:{kind}]" if match.group(2) else f"[{name}]"
            if kind not in ("hosts", "vars", "children"):
                inv.problem(number, where, f"unknown section type {kind!r} (known: vars, children)")
            elif inv.group(name, number, where) is not None:
                section, state = name, kind
                if kind == "vars":
                    vars_at.setdefault(name, number)
                else:
                    declared.add(name)
            continue
        if line.startswith("[") and line.endswith("]"):
            inv.problem(
                number,
                shown(line),
                "not a section header: [NAME], [NAME:vars] or [NAME:children], no spaces",
            )
            state = "skip"
        elif state == "hosts":
            _host_line(inv, line, number, section)
        elif state == "vars":
            key, value = _assignment(inv, line, number, f"[{section}:vars]")
            if key is not None:
                var = inv.var(key, value, number, f"[{section}:vars] {key}")
                if var is not None:
                    inv.set_vars(inv.groups[section], {key: var})
        elif state == "children":
            found = _GROUP.match(line)
            if found is None:
                inv.problem(
                    number, f"[{section}:children]", f"expected a group name, got {shown(line)}"
                )
            else:
                children.append((section, found.group(1), number))
    for name, number in vars_at.items():
        if name not in declared:
            inv.problem(
                number,
                f"[{name}:vars]",
                f"no group {name!r} in this file: declare it with [{name}] or [{name}:children]",
            )
    for parent, child, number in children:
        if child not in declared:
            inv.problem(
                number,
                f"[{parent}:children]",
                f"no group {child!r} in this file: declare it with [{child}]",
            )
        else:
            inv.add_child(parent, child, number)


def _host_line(inv: Inventory, line: str, number: int, section: str) -> None:
    where = f"[{section}]"
    tokens = _tokens(inv, line, number, where)
    if not tokens:
        return
    pattern = tokens[0]
    where = f"[{section}] {pattern}" if len(pattern) <= 80 else where
    if pattern == "---":
        inv.problem(number, where, "'---' starts a YAML file: name the inventory .yml or .yaml")
        return
    values: dict[str, Var] = {}
    for token in tokens[1:]:
        if "=" not in token:
            inv.problem(number, where, f"expected key=value after the host, got {shown(token)}")
            continue
        key, value = token.split("=", 1)
        var = inv.var(key, _value(value), number, f"{where}: {key}")
        if var is not None:
            values[key] = var
    inv.add_hosts(pattern, inv.groups[section], values, number, where)


def _tokens(inv: Inventory, line: str, number: int, where: str) -> list[str]:
    """The words of a host line as Ansible's shlex split makes them, the comment dropped."""
    if not any(c in line for c in "'\"\\"):
        return [t for t in _WHITESPACE.split(line.split("#", 1)[0]) if t]
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        inv.problem(number, where, f"{exc} (close the quote)")
        return []


def _assignment(inv: Inventory, line: str, number: int, where: str) -> tuple[str | None, str]:
    if "=" not in line:
        inv.problem(number, where, f"expected key=value, got {shown(line)}")
        return None, ""
    key, value = (part.strip() for part in line.split("=", 1))
    return key, _value(value)


def _value(text: str) -> str:
    """A value as Ansible makes it from the INI text: a Python literal's value, as text."""
    if not text or len(text) > _LITERAL_CHARS:
        return text
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    if isinstance(value, str | int | float):  # bool is an int: True stays True
        return str(value)
    return text
