"""Keys that read or write the journal: a journal that fails is said, the screen stays.

The journal can fail under a running UI (a disk that errs, a file replaced by a newer
canarytui's, a state dir on a network share that went away). A key whose handler meets
that says what failed and what to do (``JournalError``'s message), as a notification,
instead of closing the UI on an exception nobody handles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from canarytui.journal import JournalError

P = ParamSpec("P")
R = TypeVar("R")


class _Notifies(Protocol):
    def notify(self, message: str, **kwargs: Any) -> None: ...


def journal_guarded(method: Callable[P, R]) -> Callable[P, R | None]:
    """``method`` of a screen (or any widget), with a ``JournalError`` said, not raised."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return method(*args, **kwargs)
        except JournalError as exc:
            screen: _Notifies = args[0]  # type: ignore[assignment]
            screen.notify(str(exc), title="journal", severity="error", timeout=15, markup=False)
            return None

    return guarded
