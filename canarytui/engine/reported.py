"""What a host printed of its version, trusted only once it matches ``version_pattern``."""

from __future__ import annotations

import re

from canarytui.config import Environment


def first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def reported_version(env: Environment, text: str | None) -> str | None:
    """The version a host printed, if it is one (matches ``version_pattern``); else None."""
    line = first_line(text or "")
    if line is None or len(line) > 256:
        return None
    try:
        return line if re.fullmatch(env.version_pattern, line) else None
    except re.error:
        return None
