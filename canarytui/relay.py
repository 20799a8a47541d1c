"""Text written to a descriptor by a thread of its own: a reader that stops never holds
the writer.

A deployment's timing must not depend on who reads its output. Written from the event
loop, a line or a screen waits whenever the reader does: a pager not scrolled, a terminal
paused with Ctrl-S, a slow or stalled link to the operator's terminal, a CI log collector
that stalls. The whole loop waits with it (probes, step timeouts, the analysis clock), and
when the reader goes on, the steps that were running have "timed out" and a healthy
release is rolled back.

A ``Relay`` keeps what is written in memory and writes it to its descriptor from a thread,
in order; the writer never waits on the reader. Memory is bounded: past ``LIMIT``
characters not yet read, a write waits for the reader after all. A reader that went away
(a closed pipe: ``| head``) gets nothing more, and the writer goes on. ``close`` writes
everything kept before it returns. The command line's output (``cli.relay``) and the UI's
screen (``ui.driver``) go out through one.
"""

from __future__ import annotations

import os
import select
import threading
from typing import Any, TextIO

LIMIT = 64 * 1024 * 1024  # characters held for a reader that does not read
_BATCH = 64 * 1024  # characters that wake the writer without a flush


class Relay:
    """A text stream whose writes are sent to ``fd`` by a thread (``close`` ends it)."""

    def __init__(
        self, stream: TextIO, fd: int, limit: int = LIMIT, name: str = "canarytui-stdout"
    ) -> None:
        self.stream = stream  # the stream it stands in for (encoding, isatty, ...)
        self.limit = limit
        self.broken = False  # the reader went away: the rest is dropped
        self._fd = fd
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._pending: list[str] = []
        self._size = 0
        self._asked = False  # a flush came: write what there is
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write(self, text: str) -> int:
        with self._changed:
            while self._size >= self.limit and not self.broken:
                self._changed.wait()
            if not self.broken:
                self._pending.append(text)
                self._size += len(text)
                if self._size >= _BATCH:
                    self._asked = True
                    self._changed.notify_all()
        return len(text)

    def flush(self) -> None:
        """Have what was written sent (it does not wait for the reader)."""
        with self._changed:
            self._asked = True
            self._changed.notify_all()

    def close(self) -> None:
        """Send everything written, waiting for the reader as long as it takes."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self.stream, name)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not (self._asked and self._pending) and not self._closing:
                    self._changed.wait()
                if self._closing and not self._pending:
                    return
                text = "".join(self._pending)
                self._pending, self._size, self._asked = [], 0, False
                self._changed.notify_all()  # a write waiting for room may go on
            self._send(text.encode(self._encoding, "backslashreplace"))

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.broken:
            try:
                view = view[os.write(self._fd, view) :]
            except BlockingIOError:  # a descriptor left non-blocking by whoever started us
                select.select([], [self._fd], [])
            except OSError:  # the reader went away (EPIPE), or the descriptor did
                with self._changed:
                    self.broken = True
                    self._pending, self._size = [], 0
                    self._changed.notify_all()
