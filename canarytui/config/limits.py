"""What an environment file may hold at most, and its values shown safely in messages.

A file is hostile input until proven otherwise: every bound a reader enforces is here, and
every value a problem message quotes goes through ``shown`` (``repr``, cut short) so that a
message never carries a raw control character or a megabyte of text to the terminal.
"""

from __future__ import annotations

import re

from yaml.nodes import Node, ScalarNode

# The file: a 1,000-host file is ~150 KiB, so 4 MiB is a lot of fleet.
MAX_FILE_BYTES = 4 * 1024 * 1024
# Mappings and lists inside each other; the schema itself needs five levels.
MAX_DEPTH = 64
# Values (nodes) in one file: ~300 bytes of memory each once composed; 1,000 hosts are ~20,000.
MAX_NODES = 300_000
# Problems listed for one file; beyond that, one line says how many more there were.
MAX_PROBLEMS = 200
# Characters in one string value (names, addresses, paths, selectors) and in one command.
MAX_STRING = 4096
MAX_COMMAND = 64 * 1024
# Characters in a number or a duration as written: anything longer is not a sane value.
MAX_NUMBER_CHARS = 64
# Every duration (timeouts, intervals, the analysis window, pauses).
MAX_DURATION = 7 * 24 * 3600.0
MAX_DURATION_TEXT = "168h (7 days)"
# Host counts (waves, baseline, failures tolerated) and failed checks tolerated.
MAX_HOSTS = 100_000
MAX_CHECKS = 100_000
# The observations a rule needs before it has a value.
MAX_MIN_COUNT = 1_000_000_000
# Characters quoted from a value in a message.
SHOWN = 80

# Control characters refused in strings: C0 and C1 (but tab and newline), DEL, the Unicode
# line and paragraph separators, and the bidirectional overrides and isolates that make a
# command read differently from what runs ("Trojan Source").
# A mapping key shown bare in a key path; any other is quoted.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.<>@/+-]{1,80}")
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def unsafe_char(text: str) -> int | None:
    """The index of the first character refused in a string value, or None."""
    match = _UNSAFE.search(text)
    return match.start() if match else None


def escape(text: str) -> str:
    """Every character a terminal would not print as itself, as ``\\x1b``, ``\\u2028`` ..."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(value: object, limit: int = SHOWN) -> str:
    """A value quoted for a message: its ``repr``, escaped, cut to about ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    quoted = repr(text[:limit])
    if len(text) <= limit and len(quoted) <= limit + 2:
        return quoted
    return f"{quoted[: limit + 1]}...{quoted[0]} ({len(text)} characters)"


def safe_line(text: str, limit: int = 1000) -> str:
    """One problem line, printable and bounded, whatever went into it."""
    text = escape(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_text(key: Node | str | None) -> str:
    """A mapping key as a key path shows it: bare when it is a plain name, else quoted."""
    if isinstance(key, ScalarNode):
        key = str(key.value)
    if not isinstance(key, str):
        return "(a key that is not a name)"
    return key if _PLAIN_KEY.fullmatch(key) else shown(key)
