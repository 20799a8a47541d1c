"""A stop that a library dropped, asked again.

Python 3.11's ``asyncio.wait_for`` (asyncssh's ``connect`` bounds itself with it) returns
what it waited for when that came in at the same moment as a cancel, and the cancel is
lost: the task goes on as if nobody had asked it to stop. asyncio still counts the request
(``Task.cancelling``), so code that calls such a library compares the count before and
after, and stops itself (``resume``). A loop that retries after errors checks it too, or a
lost cancel would keep it, and the program waiting for it, going for ever.
"""

from __future__ import annotations

import asyncio


def asked() -> int:
    """How many stops the running task was asked for and has not handled (0 outside one)."""
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0


def lost(before: int) -> bool:
    """A stop was asked since ``asked()`` returned ``before`` and is still pending."""
    return asked() > before


def resume(before: int) -> None:
    """Raise the ``CancelledError`` a library dropped since ``asked()`` was ``before``."""
    if lost(before):
        raise asyncio.CancelledError
