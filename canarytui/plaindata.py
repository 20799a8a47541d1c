"""Values as plain data for JSON: an event's fields as dicts, lists and leaves (what the
journal stores and ``--json`` prints), and the JSON form of what is not plain."""

from __future__ import annotations

import functools
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

# Values that are their own plain form: most of an event's fields (names, states, numbers).
_LEAVES = (str, int, float, type(None))


def plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies: containers rebuilt, leaves shared.
    Leaves are told first: every event a host's step or state change makes is journaled,
    a thousand hosts' release makes ten thousand of them."""
    if isinstance(value, _LEAVES):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def json_default(value: object) -> Any:
    # Enums (phases, states, verdicts) by their value; anything else as text.
    return value.value if isinstance(value, Enum) else str(value)
