"""``group_vars/`` and ``host_vars/`` beside an inventory: Ansible's variable files, read too.

For a group (or host) ``NAME`` the first of ``NAME``, ``NAME.yml``, ``NAME.yaml`` and
``NAME.json`` that exists is read; a folder of that name, every file in it (and its
folders), in name order, hidden files and ``~`` backups left out. Each is a YAML mapping of
variables; a vault-encrypted file holds only secrets and is skipped. As in Ansible, these
variables win over the inventory file's for the same group (or host).
"""

from __future__ import annotations

import os

from yaml.nodes import MappingNode

from canarytui.config.inventory_graph import Entry, Group, Inventory, Var
from canarytui.config.inventory_yaml import read_vars
from canarytui.config.model import EnvFileError
from canarytui.config.reader import kind
from canarytui.config.source import compose, read_file

EXTENSIONS = ("", ".yml", ".yaml", ".json")
MAX_FILES = 1_000
MAX_BYTES = 32 * 1024 * 1024  # read from variable files in all


def read_var_dirs(inv: Inventory, inventory: str) -> None:
    """The variables of ``group_vars/`` and ``host_vars/`` next to the inventory file."""
    base = os.path.dirname(inventory) or "."
    budget = [MAX_FILES, MAX_BYTES]
    targets: tuple[tuple[str, dict[str, Group] | dict[str, Entry]], ...] = (
        ("group_vars", inv.groups),
        ("host_vars", inv.hosts),
    )
    for folder, owners in targets:
        where = os.path.join(base, folder)
        try:
            names = set(os.listdir(where)) if os.path.isdir(where) else set()
        except OSError as exc:
            inv.problem(1, folder, f"cannot read {where}: {exc.strerror or exc}")
            continue
        for name, owner in owners.items():
            found = next((name + e for e in EXTENSIONS if name + e in names), None)
            if found is None:
                continue
            for path in _files(os.path.join(where, found)):
                values = _read(inv, path, budget)
                if values is None:
                    return
                owner.dir_vars.update(values)


def _files(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    out: list[str] = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        ext = os.path.splitext(name)[1]
        if name.startswith(".") or name.endswith("~"):
            continue
        if os.path.isdir(full) and not ext:
            out += _files(full)
        elif os.path.isfile(full) and ext in EXTENSIONS:
            out.append(full)
        if len(out) > MAX_FILES:
            break
    return out


def _read(inv: Inventory, path: str, budget: list[int]) -> dict[str, Var] | None:
    """One file's variables ({} when it has none); None once the budget is spent."""
    budget[0] -= 1
    if budget[0] < 0:
        inv.problem(1, "(variables)", f"more than {MAX_FILES} group_vars and host_vars files")
        return None
    sub = Inventory(path, inv.problem_sink)
    try:
        text = read_file(path)
        budget[1] -= len(text)
        if budget[1] < 0:
            inv.problem(1, "(variables)", f"more than {MAX_BYTES} bytes of variable files")
            return None
        if text.lstrip().startswith("$ANSIBLE_VAULT"):
            return {}  # encrypted: secrets only
        root = compose(text, path)
    except EnvFileError as exc:
        sub.extend(exc.problems)
        return {}
    if root is not None and not isinstance(root, MappingNode):
        sub.problem(
            root.start_mark.line + 1, "(top level)", f"expected a mapping, got {kind(root)}"
        )
        return {}
    return read_vars(sub, root, "") if root is not None else {}
