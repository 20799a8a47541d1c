"""Prometheus series selectors as rules write them: ``name{label="v",code=~"5..",x!~"a|b"}``.

Part of the file's language (like durations and placeholders), so it is parsed, with the
position of each mistake, before anything runs. ``=`` and ``!=`` compare a label's value,
``=~`` and ``!~`` match it against a regular expression anchored at both ends (as
Prometheus does); a label a series does not have has the empty value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
MAX_SELECTOR = 1000


class SelectorError(ValueError):
    """A selector that cannot be read; the message says where and why."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


@dataclass(frozen=True)
class Selector:
    """A metric name and the label matchers a series must satisfy."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        return f"{self.name}{{{','.join(str(m) for m in self.matchers)}}}"


def parse_selector(text: str) -> Selector:
    """``name{matchers}`` -> Selector; raises SelectorError saying where it went wrong."""
    if len(text) > MAX_SELECTOR:
        raise SelectorError(f"longer than {MAX_SELECTOR} characters")
    reader = _Reader(text.strip())
    name = reader.take(_NAME)
    if name is None:
        raise SelectorError(reader.error("a metric name (letters, digits, _ and :)"))
    matchers: list[Matcher] = []
    if reader.peek("{"):
        reader.pos += 1
        while True:
            reader.skip_space()
            if reader.peek("}"):
                reader.pos += 1
                break
            matchers.append(reader.matcher())
            reader.skip_space()
            if reader.peek(","):
                reader.pos += 1
                continue
            if reader.peek("}"):
                reader.pos += 1
                break
            raise SelectorError(reader.error("',' or '}'"))
    reader.skip_space()
    if reader.pos != len(reader.text):
        raise SelectorError(reader.error("the end of the selector"))
    return Selector(name, tuple(matchers))


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, wanted: str) -> str:
        if self.pos >= len(self.text):
            return f"expected {wanted} at the end"
        return f"expected {wanted} at character {self.pos + 1} ({self.text[self.pos]!r})"

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def take(self, pattern: re.Pattern[str]) -> str | None:
        match = pattern.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def matcher(self) -> Matcher:
        label = self.take(_LABEL)
        if label is None:
            raise SelectorError(self.error("a label name"))
        self.skip_space()
        op = next((o for o in _OPS if self.peek(o)), None)
        if op is None:
            raise SelectorError(self.error("one of = != =~ !~"))
        self.pos += len(op)
        self.skip_space()
        value = self.quoted()
        if op in ("=~", "!~"):
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise SelectorError(
                    f"label {label}: bad regular expression {value!r}: {exc}"
                ) from None
            return Matcher(label, op, value, regex)
        return Matcher(label, op, value)

    def quoted(self) -> str:
        quote = self.text[self.pos] if self.pos < len(self.text) else ""
        if quote not in ('"', "'"):
            raise SelectorError(self.error("a quoted value"))
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                self.pos += 2
                continue
            out.append(char)
            self.pos += 1
        raise SelectorError(f"the value opened with {quote} at character {self.pos} is not closed")
