"""Supervised fan-out over hosts: one task group, an unexpected error cancels the rest.

An SSH failure is a host's outcome and is handled inside each host's work; anything
else escaping it is a bug in canarytui. Then no sibling may go on changing hosts
unsupervised: the group cancels them, waits for them, and raises ``HostWorkFailed``
naming the host whose work broke.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class HostWorkFailed(Exception):
    """A host's work raised something that is not a host outcome (a bug, not the host)."""

    def __init__(self, host: str, error: BaseException) -> None:
        super().__init__(f"{host}: {type(error).__name__}: {error}")
        self.host = host
        self.error = error


async def each_host(names: Iterable[str], work: Callable[[str], Awaitable[T]]) -> dict[str, T]:
    """``work(name)`` for every host at once; results by host, in the order given."""
    names = list(dict.fromkeys(names))

    async def guarded(name: str) -> T:
        try:
            return await work(name)
        except HostWorkFailed:
            raise
        except Exception as exc:
            raise HostWorkFailed(name, exc) from exc

    if len(names) == 1:  # no sibling to supervise: run it here, not in a task of its own
        return {names[0]: await guarded(names[0])}
    try:
        async with asyncio.TaskGroup() as group:
            tasks = {name: group.create_task(guarded(name)) for name in names}
    except BaseExceptionGroup as failed:
        raise _first_failure(failed) from None
    return {name: task.result() for name, task in tasks.items()}


def _first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_failure(exc)
        return exc
    return group
