"""Saying, while hosts' locks are taken, which hosts have not answered yet."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from canarytui import events as ev
from canarytui.engine.bus import Bus

LOCKS_WAITED = 1.0  # seconds between two words of the hosts the locks still wait for
WAITING_NAMED = 3  # hosts named in them at most


class Answers(Protocol):
    answered: set[str]  # hosts that have answered the locks being taken


@contextlib.asynccontextmanager
async def waits_said(bus: Bus, locks: Answers, hosts: Sequence[str]) -> AsyncIterator[None]:
    """While the hosts' locks are taken: every second, which hosts have not answered yet
    (a hung host holds them for its whole command timeout; the operator sees which)."""

    async def say() -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(LOCKS_WAITED)
            left = [h for h in hosts if h not in locks.answered]
            if left:
                bus.emit(
                    ev.LocksWaiting(
                        answered=len(hosts) - len(left),
                        total=len(hosts),
                        waiting=left[:WAITING_NAMED],
                        more=max(0, len(left) - WAITING_NAMED),
                        waited=time.monotonic() - started,
                    )
                )

    task = asyncio.create_task(say(), name="locks-waiting")
    try:
        yield
    finally:
        task.cancel()
