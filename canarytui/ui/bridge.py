"""The engine subscriber that turns engine events into Textual messages.

The engine calls subscribers synchronously in its own loop (the app's loop), so posting
is safe. Other events are gathered until the loop turns (``call_soon``) and posted as one
message: no delay, but a burst is one message. High-rate events are buffered and flushed
every ``interval`` seconds; the log buffer is bounded, and lines shed are counted.
"""

from __future__ import annotations

import asyncio
from collections import deque

from textual.message_pump import MessagePump

from canarytui import events as ev
from canarytui.ui.messages import EngineEvents, HealthBatch, LogBatch

BATCH_INTERVAL = 0.1
LOG_BUFFER = 20_000  # lines held between two flushes at most (4x the 5,000 lines/s target)


class EngineBridge:
    """``engine.subscribe(bridge)``: events in, messages out to ``target``."""

    def __init__(
        self, target: MessagePump, *, interval: float = BATCH_INTERVAL, log_buffer: int = LOG_BUFFER
    ) -> None:
        self.target = target
        self.interval = interval
        self._health: list[ev.HealthSample] = []
        self._logs: deque[ev.LogLine] = deque(maxlen=log_buffer)
        self._dropped = 0
        self._events: list[ev.Event] = []
        self._events_handle: asyncio.Handle | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self.closed = False

    def __call__(self, event: ev.Event) -> None:
        if self.closed:
            return
        if isinstance(event, ev.HealthSample):
            self._health.append(event)
            self._schedule()
        elif isinstance(event, ev.LogLine):
            if len(self._logs) == self._logs.maxlen:
                self._dropped += 1
            self._logs.append(event)
            self._schedule()
        else:
            self._events.append(event)
            if self._events_handle is None:
                self._events_handle = asyncio.get_running_loop().call_soon(self._post_events)

    def _post_events(self) -> None:
        self._events_handle = None
        if self._events and not self.closed:
            events, self._events = self._events, []
            self.target.post_message(EngineEvents(events))

    def _schedule(self) -> None:
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Post what is buffered now (also called by tests to skip the wait)."""
        if self._events_handle is not None:
            self._events_handle.cancel()
        self._post_events()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.closed:
            return
        if self._health:
            samples, self._health = self._health, []
            self.target.post_message(HealthBatch(samples))
        if self._logs:
            lines = list(self._logs)
            self._logs.clear()
            dropped, self._dropped = self._dropped, 0
            self.target.post_message(LogBatch(lines, dropped))

    def close(self) -> None:
        self.closed = True
        if self._events_handle is not None:
            self._events_handle.cancel()
            self._events_handle = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
