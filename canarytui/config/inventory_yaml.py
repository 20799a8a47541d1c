"""Ansible's YAML inventory format, read from the composed nodes into an ``Inventory``.

The top level maps group names (``all`` or any) to a group: ``hosts`` (host patterns, each
with its variables or nothing), ``vars`` and ``children`` (groups, nested alike); ``hosts:
name`` alone stands for one host. Scalars are read as written (``on``, ``yes`` or ``0x10``
stay text); ``!vault`` values are secrets (never labels), ``!unsafe`` ones plain text; lists
and mappings as variables are no labels. The YAML is read as bounded as an environment file.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode

from canarytui.config.inventory_graph import CONNECTION_KEYS, PRIORITY_KEY, Group, Inventory, Var
from canarytui.config.limits import key_text
from canarytui.config.model import EnvFileError
from canarytui.config.reader import MERGE, NULL, kind
from canarytui.config.source import compose

GROUP_KEYS = ("children", "hosts", "vars")
_CORE = "tag:yaml.org,2002:"
_TEXT = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "timestamp")) | {"!unsafe"}
_SECRET_TAG = "!vault"


def parse_yaml(text: str, inv: Inventory) -> None:
    """The document into ``inv``; each problem reported where it is."""
    try:
        root = compose(text, inv.file)
    except EnvFileError as exc:
        inv.extend(exc.problems)
        return
    if root is None:
        inv.problem(1, "(top level)", "the file is empty")
        return
    if not isinstance(root, MappingNode):
        inv.problem(
            _line(root), "(top level)", f"expected a mapping of groups (all: ...), got {kind(root)}"
        )
        return
    pairs = _pairs(inv, root, "")
    if any(key == "plugin" for key, _, _ in pairs):
        inv.problem(
            _line(root),
            "plugin",
            "an inventory plugin's configuration, not an inventory: give an INI or YAML "
            "inventory (ansible-inventory -i THIS --list --yaml > hosts.yml writes one)",
        )
        return
    for name, node, line in pairs:
        _group(inv, name, node, line, name, None)


def _group(inv: Inventory, name: str, node: Node, line: int, path: str, parent: str | None) -> None:
    group = inv.group(name, line, path)
    if group is None:
        return
    if parent is not None:
        inv.add_child(parent, name, line)
    if _empty(node):
        return
    if not isinstance(node, MappingNode):
        inv.problem(
            _line(node), path, f"expected a group (hosts, vars, children), got {kind(node)}"
        )
        return
    for key, value, _ in _pairs(inv, node, path):
        sub = f"{path}.{key_text(key)}"
        if key == "hosts":
            _hosts(inv, group, value, sub)
        elif key == "vars":
            inv.set_vars(group, read_vars(inv, value, sub))
        elif key == "children":
            for child, child_node, line in _named(inv, value, sub):
                _group(inv, child, child_node, line, f"{sub}.{key_text(child)}", name)
        else:
            inv.problem(_line(value), sub, f"unknown key (known: {', '.join(GROUP_KEYS)})")


def _hosts(inv: Inventory, group: Group, node: Node, path: str) -> None:
    for pattern, value, line in _named(inv, node, path):
        where = f"{path}.{key_text(pattern)}"
        if not _empty(value) and not isinstance(value, MappingNode):
            inv.problem(_line(value), where, f"expected the host's variables, got {kind(value)}")
            continue
        inv.add_hosts(pattern, group, read_vars(inv, value, where), line, where)


def _named(inv: Inventory, node: Node, path: str) -> list[tuple[str, Node, int]]:
    """A mapping's entries; a lone name (``hosts: web-01``) is one entry with nothing."""
    if _empty(node):
        return []
    if isinstance(node, ScalarNode):
        nothing = ScalarNode(NULL, "", node.start_mark, node.end_mark)
        return [(str(node.value), nothing, _line(node))]
    if not isinstance(node, MappingNode):
        inv.problem(_line(node), path, f"expected a mapping of names, got {kind(node)}")
        return []
    return _pairs(inv, node, path)


def read_vars(inv: Inventory, node: Node, path: str) -> dict[str, Var]:
    """A mapping of variables: each one checked; lists and mappings are no labels."""
    out: dict[str, Var] = {}
    if _empty(node):
        return out
    if not isinstance(node, MappingNode):
        inv.problem(_line(node), path, f"expected a mapping of variables, got {kind(node)}")
        return out
    for key, value, _ in _pairs(inv, node, path):
        where = f"{path}.{key_text(key)}" if path else key_text(key)
        if isinstance(value, ScalarNode) and value.tag in _TEXT:
            var = inv.var(key, str(value.value), _line(value), where)
            if var is not None:
                out[key] = var
        elif isinstance(value, ScalarNode) and value.tag in (NULL, _SECRET_TAG):
            continue  # nothing, or a secret
        elif isinstance(value, ScalarNode) or key in CONNECTION_KEYS or key == PRIORITY_KEY:
            inv.problem(_line(value), where, f"expected a single value, got {kind(value)}")
    return out


def _pairs(inv: Inventory, node: MappingNode, path: str) -> list[tuple[str, Node, int]]:
    """A mapping's keys as text, with their values and lines; each key once."""
    out: dict[str, tuple[str, Node, int]] = {}
    for key_node, value in node.value:
        where = f"{path}.{key_text(key_node)}" if path else key_text(key_node)
        if not isinstance(key_node, ScalarNode) or key_node.tag == NULL:
            inv.problem(_line(key_node), path or "(top level)", "keys must be plain names")
        elif key_node.tag == MERGE:
            inv.problem(_line(key_node), where, "merge keys (<<) are not supported: write it out")
        elif str(key_node.value) in out:
            inv.problem(_line(key_node), where, "duplicate key")
        else:
            out[str(key_node.value)] = (str(key_node.value), value, _line(key_node))
    return list(out.values())


def _empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL


def _line(node: Node) -> int:
    return node.start_mark.line + 1
