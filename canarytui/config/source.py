"""The file and its YAML, trusted in nothing: a regular file of sane size, UTF-8, bounded nesting.

``read_file`` refuses what is not a regular file before opening it (a FIFO or a device would
block or never end), and what is too large. ``compose`` bounds the nesting before libyaml's
composer sees the text (it recurses in C: 60,000 ``[`` crash the interpreter) and the number
of nodes (memory), and refuses aliases of mappings and lists, so nothing downstream walks a
shared or cyclic graph. Cheap upper bounds decide; libyaml's events check when they say no.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from canarytui.config.limits import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_PROBLEMS,
    escape,
    key_text,
    safe_line,
    shown,
)
from canarytui.config.model import EnvFileError

# The default tags, as YAML's resolver gives them (typed, and not looked up per node).
_STR = BaseResolver.DEFAULT_SCALAR_TAG
_SEQ = BaseResolver.DEFAULT_SEQUENCE_TAG
_MAP = BaseResolver.DEFAULT_MAPPING_TAG


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser when present (a 1,000-host file composes several times faster),
    with each tag resolved in as few steps as YAML's rules allow: libyaml's composer asks
    Python for every node (70,000 for 5,000 hosts). A mapping or a list takes its default
    tag, a quoted scalar is a string, and a plain scalar's tag is resolved once: a big file
    repeats the same few words (keys, addresses, roles), and resolving is a regex match
    each time. This loader has no path resolvers of its own (none can be added to it from
    outside), so nothing needs the path to a node."""

    yaml_path_resolvers: dict[Any, Any] = {}
    _resolved: dict[str, str] = {}  # plain scalar -> its tag

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if not implicit[0]:  # quoted (or a block scalar): no implicit type
                return _STR
            if len(value) > 64:
                return str(super().resolve(kind, value, implicit))
            tag = self._resolved.get(value)
            if tag is None:
                if len(self._resolved) > 8192:
                    self._resolved.clear()
                tag = self._resolved[value] = str(super().resolve(kind, value, implicit))
            return tag
        return _MAP if kind is MappingNode else _SEQ

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # no path resolvers: nothing to follow

    def ascend_resolver(self) -> None:
        pass


LOADER = _Loader
_MIB = f"{MAX_FILE_BYTES // (1024 * 1024)} MiB"
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# What YAML counts as a line break (libyaml's marks count these).
_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
# A line's indentation and the block indicators (and properties) that open collections on it;
# comment and blank lines open none. Possessive: no backtracking, linear.
_LEAD = re.compile(r"^(?=[ \t]*[^ \t\n#])(?:[ \t]|[-?:](?=[ \t\n]|$)|[&!][^ \t\n]*)*+", re.M)
# Where an anchor (``&name``) could be: libyaml's anchor names are ``[0-9A-Za-z_-]+`` and
# start a token (after a space, a flow indicator, a line start or the BOM); ``a && b`` or
# ``2>&1`` in a command are no anchors. No anchor, no alias: the graph needs no walk.
_ANCHOR = re.compile(r"(?:^|[\s,\[\]{}:\ufeff])&[0-9A-Za-z_-]", re.M)
_FLOW = re.compile(r"""[\[\]{}'"#!]""")


def _refuse(name: str, line: int, path: str, message: str) -> EnvFileError:
    return EnvFileError([safe_line(f"{name}:{line}: {path}: {message}")])


def read_file(path: str | os.PathLike[str]) -> str:
    """An environment file's text; a path that is not a regular, sane-sized UTF-8 file is refused.

    Nothing is opened until ``stat`` says it is a regular file (symlinks followed), and it is
    opened non-blocking, so a FIFO swapped in meanwhile cannot hang the reader either.
    """
    name = str(Path(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _refuse(name, 1, "(file)", "no such file") from None
    except (OSError, ValueError) as exc:
        raise _refuse(name, 1, "(file)", f"cannot read: {exc}") from None
    _check_stat(name, st)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            _check_stat(name, os.fstat(f.fileno()))
            data = f.read(MAX_FILE_BYTES + 1)
    except EnvFileError:
        raise
    except (OSError, ValueError) as exc:
        raise _refuse(name, 1, "(file)", f"cannot read: {exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(name, 1, "(file)", f"too large: more than {_MIB}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start]
        raise _refuse(
            name,
            line,
            "(file)",
            f"not valid UTF-8 (byte 0x{byte:02x} at column {column}): save the file as UTF-8",
        ) from None


def _check_stat(name: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        what = next((w for test, w in _KINDS if test(st.st_mode)), "something else")
        raise _refuse(name, 1, "(file)", f"not a regular file ({what}): give a YAML file")
    if st.st_size > MAX_FILE_BYTES:
        raise _refuse(name, 1, "(file)", f"too large: {st.st_size} bytes (at most {_MIB})")


def compose(text: str, file: str) -> Node | None:
    """The document's root node, or EnvFileError: never a crash, a hang or a shared subtree."""
    if len(text) > MAX_FILE_BYTES:
        raise _refuse(file, 1, "(file)", f"too large: {len(text)} characters (at most {_MIB})")
    try:
        if nesting_bound(text) > MAX_DEPTH or node_bound(text) > MAX_NODES:
            _check_events(text, file)
        root = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        raise EnvFileError([yaml_problem(exc, text, file)]) from None
    except UnicodeError as exc:  # a lone surrogate in text given as a str
        where = getattr(exc, "start", 0)
        line = len(_BREAKS.findall(text, 0, where)) + 1
        raise _refuse(file, line, "(yaml)", "not valid Unicode text (a lone surrogate)") from None
    except RecursionError:  # the pure-Python composer, should the bound ever be wrong
        raise _refuse(file, 1, "(yaml)", _too_deep()) from None
    if root is not None and _has_anchor(text):  # no anchor, no alias
        _check_graph(root, text, file)
    return root


def _has_anchor(text: str) -> bool:
    """Whether ``_ANCHOR`` occurs in ``text``: tried only where an ``&`` is (the character
    before it, then the name), not at every character of a big file."""
    at = text.find("&")
    while at >= 0:
        if _ANCHOR.match(text, max(at - 1, 0)):
            return True
        at = text.find("&", at + 1)
    return False


def _line(mark: Any) -> int:
    return mark.line + 1 if mark is not None else 1


def _too_deep() -> str:
    return f"mappings and lists nested more than {MAX_DEPTH} deep (an environment file needs 5)"


def nesting_bound(text: str) -> int:
    """A cheap upper bound of the nesting depth; exact enough for any file a person writes.

    Block collections: each level indents, or two levels share a column (a list under a key),
    so the depth is at most about twice the deepest column a collection can start at. Flow
    collections: ``[`` and ``{`` count up and their closers down, until a quote, comment or
    tag is seen inside one (its closers could be text): from there on closers are not trusted.
    """
    if "\r" in text or "\x85" in text or "\u2028" in text or "\u2029" in text:
        text = _BREAKS.sub("\n", text)
    block = 2 * max(map(len, _LEAD.findall(text)), default=0) + 6
    opens = text.count("[") + text.count("{")
    if block > MAX_DEPTH or block + opens <= MAX_DEPTH:
        return block + opens
    depth = deepest = 0
    trusted = True
    for char in _FLOW.findall(text):  # not a match object each: a big file has 30,000
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            if trusted and depth:
                depth -= 1
        elif depth:
            trusted = False
    return block + deepest


def node_bound(text: str) -> int:
    """A cheap upper bound of the nodes composed: each needs a separator before it, or is the
    empty value of a key (``{a, b}``), so at most two per separator."""
    separators = sum(text.count(c) for c in "\n\r\x85\u2028\u2029,[{:-?")
    return 2 * separators + 2


def _check_events(text: str, file: str) -> None:
    """The exact depth and node count from libyaml's events (an iterative parser, no tree),
    stopping as soon as either is past its limit."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                message = f"more than {MAX_NODES} values (a 1,000-host file has about 20,000)"
                raise _refuse(file, _line(event.start_mark), "(yaml)", message)
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _refuse(file, _line(event.start_mark), "(yaml)", _too_deep())
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            depth -= 1


def _check_graph(root: Node, text: str, file: str) -> None:
    """Refuse aliases of mappings and lists (a node reached twice) and excess depth."""
    seen: set[int] = set()
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise EnvFileError(_alias_problems(text, file))
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise _refuse(file, node.start_mark.line + 1, "(yaml)", _too_deep())
        if isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, SequenceNode):
            children = node.value
        else:
            continue
        stack.extend((c, depth + 1) for c in children if isinstance(c, MappingNode | SequenceNode))


def _alias_problems(text: str, file: str) -> list[str]:
    """Each alias of a mapping or list, where it is written and under which key path."""
    problems: list[str] = []
    collections: set[str] = set()  # anchors of mappings and lists
    # One frame per open collection: its path, and the next index (lists) or the key (maps).
    frames: list[list[Any]] = []
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, MappingEndEvent | SequenceEndEvent):
            frames.pop()
            continue
        if not isinstance(event, NodeEvent):
            continue
        path = "(top level)"
        if frames:
            frame = frames[-1]
            if frame[0] == "seq":
                path = f"{frame[1]}[{frame[2]}]"
                frame[2] += 1
            elif frame[2] is None:  # a key
                path = frame[1] or "(top level)"
                frame[2] = key_text(event.value if isinstance(event, ScalarEvent) else None)
            else:
                path = f"{frame[1]}.{frame[2]}" if frame[1] else frame[2]
                frame[2] = None
        if isinstance(event, AliasEvent) and event.anchor in collections:
            if len(problems) == MAX_PROBLEMS:
                problems.append(safe_line(f"{file}:1: (yaml): more such aliases not listed"))
                break
            problems.append(
                safe_line(
                    f"{file}:{_line(event.start_mark)}: {path}: *{event.anchor} is an alias of "
                    "a mapping or list: not supported (only of a single value): write it out"
                )
            )
        elif isinstance(event, MappingStartEvent | SequenceStartEvent):
            if event.anchor is not None:
                collections.add(event.anchor)
            top = "" if path == "(top level)" else path
            frames.append(["map" if isinstance(event, MappingStartEvent) else "seq", top, None])
            if isinstance(event, SequenceStartEvent):
                frames[-1][2] = 0
    return problems or [safe_line(f"{file}:1: (yaml): an alias of a mapping or list")]


def yaml_problem(exc: yaml.YAMLError, text: str, file: str) -> str:
    """One line for a YAML syntax error: where it is, what it is, never a raw character."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = (str(exc.problem or exc).splitlines() or [""])[0]
        if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
            message += " (a tab: indent with spaces)"
        return safe_line(f"{file}:{line}: (yaml): {escape(message) or 'not valid YAML'}")
    if isinstance(exc, yaml.reader.ReaderError):
        index = exc.position
        if LOADER is not yaml.SafeLoader:  # libyaml counts bytes of the UTF-8 text
            prefix = text.encode("utf-8", "surrogatepass")[: exc.position]
            index = len(prefix.decode("utf-8", "ignore"))
        char = text[index] if 0 <= index < len(text) else "?"
        line = len(_BREAKS.findall(text, 0, index)) + 1
        return safe_line(
            f"{file}:{line}: (yaml): the character {shown(char)} is not allowed in YAML "
            "(control characters must be written as escapes in double quotes)"
        )
    first = (str(exc).splitlines() or ["not valid YAML"])[0]
    return safe_line(f"{file}:1: (yaml): {first}")


def _char_at(text: str, line: int, column: int) -> str:
    lines = _BREAKS.split(text, maxsplit=line + 1)
    if line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""
