"""Ansible's host ranges: ``web[01:20]``, ``db-[a:c]``, ``node[1:9:2]``, several in one name.

As Ansible expands them: numbers zero-padded to the width of a padded start (``[01:20]``
gives ``01`` .. ``20``), single letters in ``a..zA..Z`` order, an optional step, a missing
start meaning 0; the first range varies slowest. Unlike Ansible, a range that is empty
(start after end) or unbalanced brackets are refused, and the count is known before any
name is made, so ``[0:999999999]`` is one message, not a hung process.
"""

from __future__ import annotations

import itertools
import re
import string

_RANGE = re.compile(r"\[([^\[\]]*)\]")
_NUMBER = re.compile(r"[0-9]{1,18}")
_FORMS = "[START:END] or [START:END:STEP], with numbers or single letters"


class RangeError(ValueError):
    """A host pattern whose range cannot be expanded; the message says why."""


def expand(pattern: str, limit: int) -> list[str]:
    """Every name the pattern stands for, in Ansible's order; at most ``limit`` of them."""
    parts: list[list[str]] = []
    position = 0
    for match in _RANGE.finditer(pattern):
        parts += [[pattern[position : match.start()]], _values(match.group(1), limit)]
        position = match.end()
    text = _RANGE.sub("", pattern)
    if "[" in text or "]" in text:
        raise RangeError(f"unbalanced brackets: a range is {_FORMS}")
    parts.append([pattern[position:]])
    count = 1
    for part in parts:
        count *= len(part)
        if count > limit:
            raise RangeError(f"stands for more than {limit} hosts")
    if count == 0:
        raise RangeError("stands for no host")
    return ["".join(names) for names in itertools.product(*parts)]


def _values(spec: str, limit: int) -> list[str]:
    bounds = spec.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(f"[{spec}]: a range is {_FORMS}")
    start, end = bounds[0] or "0", bounds[1]
    step = 1
    if len(bounds) == 3:
        if not _NUMBER.fullmatch(bounds[2]) or int(bounds[2]) == 0:
            raise RangeError(f"[{spec}]: the step must be a whole number above 0")
        step = int(bounds[2])
    if not end:
        raise RangeError(f"[{spec}]: the range has no end")
    letters = string.ascii_letters
    if len(start) == 1 and len(end) == 1 and start in letters and end in letters:
        first, last = letters.index(start), letters.index(end)
        if first > last:
            raise RangeError(f"[{spec}]: {start!r} comes after {end!r} (a..z, then A..Z)")
        return list(letters[first : last + 1 : step])
    if not (_NUMBER.fullmatch(start) and _NUMBER.fullmatch(end)):
        raise RangeError(f"[{spec}]: a range is {_FORMS}")
    width = len(start) if start[0] == "0" and len(start) > 1 else 0
    if width and len(end) != width:
        raise RangeError(
            f"[{spec}]: a zero-padded start needs an end of the same width ([01:20], not [01:5])"
        )
    first, last = int(start), int(end)
    if first > last:
        raise RangeError(f"[{spec}]: the start is after the end")
    if (last - first) // step + 1 > limit:
        raise RangeError(f"[{spec}]: stands for more than {limit} hosts")
    return [str(n).zfill(width) for n in range(first, last + 1, step)]
