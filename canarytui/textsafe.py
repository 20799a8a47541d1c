"""Text from remote hosts made harmless before it reaches the terminal."""

from __future__ import annotations

import re

# CSI (colours, cursor moves), OSC (titles, hyperlinks), and other ESC sequences.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL or ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC ... ST
    r"|\x1b[ -/]*[0-~]?"  # two-byte and nF sequences, a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAX_LINE = 2000


def harmless(line: str, limit: int = MAX_LINE) -> str:
    """One line of remote text: escape sequences removed, other controls shown as '?'."""
    if len(line) > limit:
        line = line[:limit] + "…"
    if "\x1b" in line or "\x9b" in line:
        line = _ESCAPES.sub("", line)
    line = line.expandtabs(4) if "\t" in line else line
    return _CONTROLS.sub("?", line)


def harmless_block(text: str, limit: int = MAX_LINE) -> str:
    return "\n".join(harmless(line, limit) for line in text.splitlines())
