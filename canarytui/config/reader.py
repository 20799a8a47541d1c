"""The generic YAML-node walker: typed values out, one ``FILE:LINE: key.path: problem`` each.

Keys are read from the composed nodes, never through ``yaml.safe_load``: YAML 1.1 would
turn a bare ``on:`` key into ``True``. Scalars are constructed one at a time, safely.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canarytui.config.template import PLACEHOLDERS, parse_duration, placeholders_in


class _Missing:
    pass


# The default of a read that has none: the caller sees it when the value is missing or bad.
MISSING = _Missing()
_constructor = yaml.constructor.SafeConstructor()


class NodeReader:
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
            self.problem(node, path or "(top level)", f"expected a mapping, got {kind(node)}")
            return None
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            sub = join(path, str(key))
            if key is None:
                self.problem(key_node, path or "(top level)", "keys must be plain names")
            elif key in out:
                self.problem(key_node, sub, "duplicate key")
            elif key not in known:
                self.problem(key_node, sub, f"unknown key (known: {', '.join(sorted(known))})")
            else:
                out[key] = value_node
        for key in sorted(required - out.keys()):
            self.problem(node, join(path, key), "required")
        return out

    # Scalars ---------------------------------------------------------------------

    def value(self, node: Node) -> Any:
        return _constructor.construct_object(node, deep=True)

    def string(self, node: Node | None, path: str, default: Any = MISSING) -> Any:
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.problem(node, path, f"expected a string, got {kind(node)}")
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
            self.problem(node, path, f"expected a whole number, got {kind(node)}")
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
            self.problem(node, path, f"expected a number, got {kind(node)}")
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
            self.problem(node, path, f"expected true or false, got {kind(node)}")
            return default
        return value

    def duration(self, node: Node | None, path: str, default: float) -> float:
        if node is None:
            return default
        if not isinstance(node, ScalarNode):
            self.problem(node, path, f"expected a duration (500ms, 2s, 5m), got {kind(node)}")
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

    def command(self, node: Node | None, path: str, default: Any = MISSING) -> Any:
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
            self.problem(node, path, f"expected a list, got {kind(node)}")
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


def join(path: str, key: str) -> str:
    """``a.b`` + ``c`` -> ``a.b.c``; at the top level just ``c``."""
    return f"{path}.{key}" if path else key


def kind(node: Node | None) -> str:
    """What a node holds, for a message: ``a list``, ``a number ('5')``, ``nothing`` ..."""
    if node is None:
        return "nothing"
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    names = {"null": "nothing", "bool": "true/false", "int": "a number", "float": "a number"}
    return f"{names.get(tag, 'text')} ({node.value!r})" if tag != "null" else "nothing"
