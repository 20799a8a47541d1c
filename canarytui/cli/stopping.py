"""Why the command is being stopped, for the engine's journal: the signal ``main``'s
handler received (SIGTERM, SIGHUP) is told to the engines the command runs
(``CallRunner.stopped_by``) before their calls are cancelled. Ctrl-C is the operator's own:
it stays "interrupted". The engine is imported only once one runs."""

from __future__ import annotations

import weakref
from typing import Any

_engines: weakref.WeakSet[Any] = weakref.WeakSet()
_opened: list[int] = []  # the deployment an engine of the command acted on, once known
_ended: list[str] = []  # how it ended, once it has (its DeploymentFinished's outcome)


def watch(engine: Any) -> None:
    """``engine`` is told what stops the command; what it acts on is noted (``opened``)."""
    _engines.add(engine)
    engine.subscribe(_note)


def _note(event: Any) -> None:
    if event.deployment is not None and not _opened:
        _opened.append(event.deployment)
    if getattr(event, "kind", None) == "deployment_finished" and event.deployment in _opened:
        _ended[:] = [str(event.outcome)]


def forget() -> None:
    """A new command: nothing opened yet (a process runs one, a test several)."""
    _opened.clear()
    _ended.clear()


def opened() -> int | None:
    """The deployment an engine of the command opened (or took up), if one did: a command
    stopped before had changed no host's release (its locks are released as it stops)."""
    return _opened[0] if _opened else None


def ended() -> str | None:
    """How the deployment the command acted on ended (``rolled back``, ...), if it had when
    the command was stopped: then nothing of it stays open (only its locks' release was
    cut short, and the next command releases them)."""
    return _ended[0] if _ended else None


def stopped(signum: int) -> None:
    if not _engines:
        return
    from canarytui.engine.calls import signal_cause

    for engine in list(_engines):
        engine.stopped_by = signal_cause(signum)
