"""The one sanitiser for text from a host or the operator, for every sink of the UI and CLI.

What comes back is plain printable text: every escape sequence (CSI, 8-bit CSI, OSC up to
BEL or ST, DCS/SOS/PM/APC, two-byte and lone ESC, lone C1) becomes one visible ``␛``; any
other control character becomes its Unicode control picture (``␀``, ``␇``, ``␍``, ``␡``
...), tabs are expanded, invalid UTF-8 becomes ``�``; a line longer than its bound is cut
with ``… (+N chars)`` and a block with too many lines keeps its last ones under
``… (+N lines)``. The result is idempotent and never longer than its bounds.

Markup is not this module's business: the output may contain ``[/]`` as typed, and each
sink shows it literally (``markup=False``, ``Content``/``Text`` objects). Nothing here
imports from canarytui, textual or rich: the CLI uses it too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_LINE = 2000  # characters a line keeps (mark included)
MAX_LINES = 200  # lines a block keeps (mark included)
TAB_SIZE = 4
ESCAPE_MARK = "␛"  # a whole escape sequence, or a lone C1 control
INVALID_MARK = "�"  # undecodable bytes (Python's replacement character)
CUT_MARK = "…"

# One escape sequence, introduced by ESC or by its 8-bit (C1) form. An unterminated
# string sequence runs to the end of the line, as a terminal would swallow it.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI ... final byte (colours, cursor moves)
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"  # OSC ... BEL or ST
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c\n]*(?:\x1b\\|\x9c)?"  # DCS SOS PM APC
    r"|\x1b[ -/]*[0-~]?"  # two-byte and nF sequences, a lone ESC
    r"|[\x80-\x9f]"  # any other C1 control: the 8-bit form of ESC + a byte
)
_NEEDS_ESCAPE_PASS = re.compile(r"[\x1b\x80-\x9f]")

# Every remaining control as a picture: C0 -> U+2400 + code, DEL -> ␡, C1 -> ␛ (the
# escape pass has taken it already). A block splits on ``\n`` first, so in a line it is ␊.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_PICTURES[0x7F] = "\u2421"
_PICTURES.update({code: ESCAPE_MARK for code in range(0x80, 0xA0)})
_LINE_TABLE = str.maketrans(_PICTURES)


def _as_text(text: str | bytes) -> str:
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8", "replace")
    return text


def harmless(text: str | bytes, limit: int | None = MAX_LINE) -> str:
    """One line, printable: escapes as ``␛``, controls (newlines too) as pictures, cut to
    ``limit`` characters (None: no bound)."""
    line = _as_text(text)
    # The hot path (log lines by the thousand): plain printable text is returned as is.
    if line.isprintable() and (limit is None or len(line) <= limit):
        return line
    return _clean(line, limit)


def harmless_block(
    text: str | bytes, limit: int | None = MAX_LINE, max_lines: int | None = MAX_LINES
) -> str:
    """Several lines: each as ``harmless`` (``\\r\\n`` is a newline, a lone ``\\r`` a picture);
    past ``max_lines`` the last lines are kept under ``… (+N lines)``. No trailing newline
    is added or removed."""
    block = _as_text(text)
    if "\r\n" in block:
        block = block.replace("\r\n", "\n")
    end = "\n" if block.endswith("\n") else ""
    lines = (block[:-1] if end else block).split("\n")
    if max_lines is not None and len(lines) > max_lines:
        keep = max(0, max_lines - 1)
        hidden = len(lines) - keep
        lines = [f"{CUT_MARK} (+{hidden} lines)"] + (lines[-keep:] if keep else [])
    return "\n".join(harmless(line, limit) for line in lines) + end


def _clean(line: str, limit: int | None) -> str:
    if limit is not None and len(line) > 8 * limit:
        # Bound the work on a huge line: what is past 8x the bound can never be shown
        # (escapes collapse, tabs expand at most TAB_SIZE-fold).
        dropped = len(line) - 8 * limit
        line = line[: 8 * limit]
    else:
        dropped = 0
    if _NEEDS_ESCAPE_PASS.search(line):
        line = _ESCAPE.sub(ESCAPE_MARK, line)
    if "\t" in line:
        line = line.expandtabs(TAB_SIZE)
    line = line.translate(_LINE_TABLE)
    if limit is not None and (dropped or len(line) > limit):
        line = _cut(line, limit, dropped)
    return line


def _cut(line: str, limit: int, dropped: int) -> str:
    """``line`` cut so that it and its mark fit in ``limit`` characters."""
    total = len(line) + dropped
    keep = max(0, limit - len(f"{CUT_MARK} (+{total} chars)"))
    mark = f"{CUT_MARK} (+{total - min(keep, len(line))} chars)"
    if len(mark) > limit:  # a bound too small for any mark
        return line[:limit]
    return line[:keep] + mark


def listed(names: Sequence[str], most: int = 5, sep: str = ", ") -> str:
    """At most ``most`` names, then how many more: ``a, b, c and 7 more`` (a fleet of
    thousands stays one readable line)."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return sep.join(names[:most]) + more
