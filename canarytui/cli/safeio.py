"""The command line's output made harmless: what a host printed never drives the terminal.

``safe_output()`` puts a ``SafeWriter`` in front of ``sys.stdout`` and ``sys.stderr`` for
one command. In human mode each write goes through ``textsafe`` (newlines kept): escape
sequences become ``␛``, controls their pictures (``␇``, ``␍``). canarytui itself writes no
escape sequence, so nothing intended is lost. In ``--json`` mode stdout stays exact JSON:
``json.dumps`` escapes every control already; the writer only turns a raw control that
would still get through (DEL, C1, one written by hand) into its ``\\u00XX`` escape, which
reads back as the same string.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from canarytui.textsafe import harmless_block

LINE_LIMIT = 16_000  # characters of one output line (a host's output line, mostly)
_JSON_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


class SafeWriter:
    """A text stream in front of ``stream``: writes made harmless, the rest delegated."""

    def __init__(self, stream: TextIO, *, json_lines: bool = False) -> None:
        self.stream = stream
        self.json_lines = json_lines
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"
        except LookupError:
            utf8 = False
        # A terminal in another encoding gets what it cannot show as \u escapes, not an
        # exception (the placeholders are not ASCII).
        self._encoding = None if utf8 else encoding

    def clean(self, text: str) -> str:
        if self.json_lines:
            cleaned = _JSON_CONTROLS.sub(_json_escape, text)
        else:
            cleaned = harmless_block(text, LINE_LIMIT, None)
        if self._encoding is not None:
            cleaned = cleaned.encode(self._encoding, "backslashreplace").decode(self._encoding)
        return cleaned

    def write(self, text: str) -> int:
        try:
            self.stream.write(self.clean(text))
        except BrokenPipeError:
            self._reader_gone()
        return len(text)

    def _reader_gone(self) -> None:
        """Whoever read this stream went away (``| head -1``): what is still written goes
        nowhere, and the command ends as it would have, with its own exit status (a
        ``check`` piped to ``head`` says 1 only for an unhealthy fleet)."""
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError):  # no descriptor: nothing to redirect
            pass

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self.stream, name)


@contextmanager
def safe_output() -> Iterator[SafeWriter | None]:
    """``sys.stdout`` and ``sys.stderr`` behind ``SafeWriter``s until the block ends;
    yields the stdout writer (None when there is no stdout) to switch it to JSON."""
    out, err = sys.stdout, sys.stderr
    safe_out = SafeWriter(out) if out is not None else None
    if safe_out is not None:
        sys.stdout = safe_out
    if err is not None:
        sys.stderr = SafeWriter(err)
    try:
        yield safe_out
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, SafeWriter):
                try:
                    stream.flush()
                except (OSError, ValueError):  # a closed pipe: nothing more to say
                    pass
        sys.stdout, sys.stderr = out, err
