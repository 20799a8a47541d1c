"""Command templates and durations: placeholders found, rendered shell-quoted; ``5m`` -> seconds."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping

from canarytui.config.limits import MAX_DURATION, MAX_DURATION_TEXT, MAX_NUMBER_CHARS, shown

PLACEHOLDERS = frozenset({"version", "previous", "host", "address", "app", "env"})
# Traffic hooks speak of a phase, not of one host.
TRAFFIC_PLACEHOLDERS = frozenset({"hosts", "wave", "percent", "version", "app", "env"})
# `{name}` is a placeholder unless it follows `$` (then it is the shell's `${name}`).
_PLACEHOLDER_RE = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PART = r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)"
# `5m`, or parts from the largest unit down: `1m30s`, `1h 15m`.
_DURATION_RE = re.compile(rf"^\s*(?:{_PART}\s*)+$")
_PART_RE = re.compile(_PART)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def placeholders_in(template: str) -> set[str]:
    return set(_PLACEHOLDER_RE.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders; every value is shell-quoted, whatever it holds."""

    def sub(match: re.Match[str]) -> str:
        return shlex.quote(str(values[match.group(1)]))

    return _PLACEHOLDER_RE.sub(sub, template)


def parse_duration(text: str) -> float:
    """``500ms`` / ``2s`` / ``5m`` / ``1m30s`` -> seconds; at most 7 days, never infinite."""
    match = _DURATION_RE.match(text) if len(text) <= MAX_NUMBER_CHARS else None
    if not match:
        if _DURATION_RE.match(text):  # only the length is wrong: a 400-digit duration
            raise ValueError(f"duration {shown(text)} is too long: at most {MAX_DURATION_TEXT}")
        raise ValueError(f"bad duration {shown(text)}: write e.g. 500ms, 2s, 5m")
    parts = [(float(n), _DURATION_UNITS[unit]) for n, unit in _PART_RE.findall(text)]
    units = [unit for _, unit in parts]
    if units != sorted(set(units), reverse=True):
        raise ValueError(f"bad duration {shown(text)}: units from the largest down, e.g. 1m30s")
    seconds = sum(n * unit for n, unit in parts)
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f"duration {shown(text)} is too long: at most {MAX_DURATION_TEXT}")
    return seconds
