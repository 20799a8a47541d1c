"""The generic YAML-node walker: typed values out, one ``FILE:LINE: key.path: problem`` each.

Keys are read from the composed nodes, never through ``yaml.safe_load``: YAML 1.1 would
turn a bare ``on:`` key into ``True``. Scalars never go to PyYAML's constructors unchecked:
only the core tags are converted, each conversion bounded and guarded, so a tag
(``!!int abc``, ``!foo``, ``!!python/object``) or a 5,000-digit number is one problem line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Set as AbstractSet
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canarytui.config.limits import (
    MAX_COMMAND,
    MAX_NUMBER_CHARS,
    MAX_PROBLEMS,
    MAX_STRING,
    key_text,
    safe_line,
    shown,
    unsafe_char,
)
from canarytui.config.model import EnvFileError
from canarytui.config.template import PLACEHOLDERS, parse_duration, placeholders_in


class _Missing:
    pass


# The default of a read that has none: the caller sees it when the value is missing or bad.
MISSING = _Missing()
_constructor = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"
NULL, BOOL, INT, FLOAT, STR = (_TAG + t for t in ("null", "bool", "int", "float", "str"))
MERGE = _TAG + "merge"
# The tags a plain scalar can resolve to: any of them reads as text where text is wanted.
_TEXT_TAGS = frozenset(
    {STR, BOOL, INT, FLOAT, MERGE} | {_TAG + t for t in ("timestamp", "value", "yaml")}
)
_DIGITS = re.compile(r"[-+]?[0-9_]+")
# Whatever a guarded conversion of a scalar may raise.
_BAD_VALUE = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


class NodeReader:
    """Walks YAML nodes, turning them into typed values and collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[str] = []

    def problem(self, node: Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(safe_line(f"{self.file}:{line}: {path}: {message}"))

    def error(self) -> EnvFileError:
        """Every problem found, at most ``MAX_PROBLEMS`` of them listed."""
        shown_ = self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            more = len(self.problems) - MAX_PROBLEMS
            shown_.append(safe_line(f"{self.file}:1: (top level): {more} more problems not listed"))
        return EnvFileError(shown_)

    # Mappings -------------------------------------------------------------------

    def mapping(
        self,
        node: Node,
        path: str,
        known: AbstractSet[str],
        required: AbstractSet[str] = frozenset(),
    ) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, path or "(top level)", f"expected a mapping, got {kind(node)}")
            return None
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key is not None and key in known and key not in out:
                out[key] = value_node
                continue
            sub = join(path, key_text(key_node))
            if key is None:
                self.problem(key_node, path or "(top level)", "keys must be plain names")
            elif key_node.tag == MERGE:
                self.problem(key_node, sub, "merge keys (<<) are not supported: write the keys out")
            elif key in out:
                self.problem(key_node, sub, "duplicate key")
            else:
                self.problem(key_node, sub, f"unknown key (known: {', '.join(sorted(known))})")
        for key in sorted(required - out.keys()):
            self.problem(node, join(path, key), "required")
        return out

    def free_mapping(self, node: Node | None, path: str) -> dict[str, str] | None:
        """A mapping of the user's own string keys to strings (labels): every key checked."""
        if node is None:
            return None
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected a mapping, got {kind(node)}")
            return None
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            sub = join(path, key_text(key_node))
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, path, "keys must be plain names")
                continue
            key = self.string(key_node, f"{sub} (the key)", None)
            if key is None:
                continue
            if key in out:
                self.problem(key_node, sub, "duplicate key")
                continue
            value = self.string(value_node, sub, None)
            if value is not None:
                out[key] = value
        return out

    # Scalars ---------------------------------------------------------------------

    def plain(self, node: Node) -> int | str | None:
        """An int-tagged scalar's whole number, a text-like scalar's text, else None."""
        if not isinstance(node, ScalarNode):
            return None
        if node.tag == INT:
            return _to_int(node)
        return str(node.value) if node.tag in _TEXT_TAGS else None

    def string(
        self, node: Node | None, path: str, default: Any = MISSING, limit: int = MAX_STRING
    ) -> Any:
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.tag not in _TEXT_TAGS:
            self.problem(node, path, f"expected a string, got {kind(node)}")
            return default
        text = str(node.value)
        if len(text) > limit:
            self.problem(node, path, f"too long: {len(text)} characters (at most {limit})")
            return default
        if not text.strip():
            self.problem(node, path, "must not be empty")
            return default
        bad = unsafe_char(text)
        if bad is not None:
            self.problem(
                node,
                path,
                f"contains the control character {shown(text[bad])} at character {bad + 1}: "
                "remove it",
            )
            return default
        return text

    def integer(
        self,
        node: Node | None,
        path: str,
        default: Any,
        low: int | None = None,
        high: int | None = None,
        most: int | None = None,
    ) -> Any:
        """A whole number in ``low``..``high`` ("between" in messages) or ``low``..``most``."""
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.tag != INT:
            self.problem(node, path, f"expected a whole number, got {kind(node)}")
            return default
        value = _to_int(node)
        top = high if high is not None else most
        if value is None:
            text = str(node.value)
            if _DIGITS.fullmatch(text) and top is not None:  # all digits, far too many
                bounds = f"between {low} and {high}" if high is not None else f"at most {most}"
                self.problem(node, path, f"must be {bounds}, got {shown(text)}")
            else:
                self.problem(node, path, f"expected a whole number, got {shown(text)}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(node, path, f"must be {bounds}, got {value}")
            return default
        if most is not None and value > most:
            self.problem(node, path, f"must be at most {most}, got {value}")
            return default
        return value

    def number(
        self,
        node: Node | None,
        path: str,
        default: Any,
        positive: bool = False,
        most: float | None = None,
    ) -> Any:
        """A finite number (never ``.inf``, ``.nan`` or ``1e400``), ``> 0`` if ``positive``."""
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.tag not in (INT, FLOAT):
            self.problem(node, path, f"expected a number, got {kind(node)}")
            return default
        raw: int | float | None = None
        text = str(node.value)
        try:
            if node.tag == INT:
                raw = _to_int(node)
            elif len(text) <= MAX_NUMBER_CHARS:
                raw = _constructor.construct_yaml_float(node)
            value = float("nan") if raw is None else float(raw)
        except _BAD_VALUE:
            value = float("nan")
        if not math.isfinite(value):
            self.problem(node, path, f"expected a finite number, got {shown(text)}")
            return default
        if positive and value <= 0:
            self.problem(node, path, f"must be greater than 0, got {raw}")
            return default
        if most is not None and value > most:
            self.problem(node, path, f"must be at most {most:g}, got {raw}")
            return default
        return value

    def boolean(self, node: Node | None, path: str, default: bool) -> bool:
        if node is None:
            return default
        value = None
        if isinstance(node, ScalarNode) and node.tag == BOOL:
            try:
                value = _constructor.construct_yaml_bool(node)
            except _BAD_VALUE:
                value = None
        if not isinstance(value, bool):
            self.problem(node, path, f"expected true or false, got {kind(node)}")
            return default
        return value

    def duration(self, node: Node | None, path: str, default: float, zero: bool = False) -> float:
        """A duration in seconds, at most 7 days; ``0s`` only where ``zero`` allows it."""
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.tag not in _TEXT_TAGS:
            self.problem(node, path, f"expected a duration (500ms, 2s, 5m), got {kind(node)}")
            return default
        try:
            seconds = parse_duration(str(node.value))
        except ValueError as exc:
            self.problem(node, path, str(exc))
            return default
        if seconds <= 0 and not zero:
            self.problem(node, path, "must be longer than 0")
            return default
        return seconds

    def command(
        self,
        node: Node | None,
        path: str,
        default: Any = MISSING,
        known: frozenset[str] = PLACEHOLDERS,
    ) -> Any:
        text = self.string(node, path, default, MAX_COMMAND)
        if isinstance(text, str):
            unknown = placeholders_in(text) - known
            for name in sorted(unknown)[:10]:
                name = name if len(name) <= 40 else name[:40] + "..."
                self.problem(
                    node,
                    path,
                    f"unknown placeholder {{{name}}} (known: "
                    + ", ".join(f"{{{p}}}" for p in sorted(known))
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


def _to_int(node: ScalarNode) -> int | None:
    """An int-tagged scalar's value; None when it is malformed (``!!int abc``) or too long."""
    text = str(node.value)
    if len(text) > MAX_NUMBER_CHARS:
        return None
    if text.isascii() and text.isdigit() and (text[0] != "0" or text == "0"):
        return int(text)  # plain decimal (a port, a count): what YAML's int makes of it
    try:
        value = _constructor.construct_yaml_int(node)
    except _BAD_VALUE:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
    if node.tag == NULL:
        return "nothing"
    if node.tag not in _TEXT_TAGS:
        tag = "!!" + node.tag[len(_TAG) :] if node.tag.startswith(_TAG) else node.tag
        return f"a value tagged {shown(tag, 40)} ({shown(node.value)})"
    names = {BOOL: "true/false", INT: "a number", FLOAT: "a number"}
    return f"{names.get(node.tag, 'text')} ({shown(node.value)})"
