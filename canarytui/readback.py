"""Events read back from the dicts the journal stores (``Event.to_dict``): a replay, the
analysis view and the report of a past deployment.

A kind or a shape this version cannot read is None, never an error; fields it does not
know are left out; each value is checked against its annotation (enums, nested records,
numbers) before it is trusted.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any

from canarytui.events import Event


def event_from_dict(data: Mapping[str, Any]) -> Event | None:
    """An event from its dict (``to_dict``, as the journal stores it); None for a kind or a
    shape this version cannot read. Fields this version does not know are left out."""
    cls = _kinds().get(str(data.get("event")))
    try:
        return None if cls is None else cls(**_fields(cls, data))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


@functools.cache
def _kinds() -> dict[str, type[Event]]:
    kinds, todo = {}, [Event]
    while todo:  # every event class of this module, by kind
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__ == Event.__module__ and cls is not Event:
            kinds[cls.kind] = cls
    return kinds


def _fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    return {f.name: _value(hints[f.name], data[f.name]) for f in fields(cls) if f.name in data}


_hints = functools.cache(typing.get_type_hints)


def _value(tp: Any, value: Any) -> Any:
    """``value`` (from JSON) as the annotated type: enums, nested records, numbers."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _value(next(a for a in args if a is not type(None)), value)
    if origin in (list, dict):
        return [_value(args[0], v) for v in value] if origin is list else dict(value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if is_dataclass(tp):
        return tp(**_fields(tp, value))  # type: ignore[operator,arg-type]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if (tp in (int, float) and not numeric) or (tp is str and not isinstance(value, str)):
        raise ValueError(f"{value!r} is not a {tp.__name__}")
    return tp(value) if tp in (int, float) else value
