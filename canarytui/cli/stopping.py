"""Why the command is being stopped, for the engine's journal: the signal ``main``'s
handler received (SIGTERM, SIGHUP) is told to the engines the command runs
(``CallRunner.stopped_by``) before their calls are cancelled. Ctrl-C is the operator's own:
it stays "interrupted". The engine is imported only once one runs."""

from __future__ import annotations

import weakref
from typing import Any

_engines: weakref.WeakSet[Any] = weakref.WeakSet()


def watch(engine: Any) -> None:
    """``engine`` is told what stops the command."""
    _engines.add(engine)


def stopped(signum: int) -> None:
    if not _engines:
        return
    from canarytui.engine.calls import signal_cause

    for engine in list(_engines):
        engine.stopped_by = signal_cause(signum)
