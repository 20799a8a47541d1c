"""The demo app's service manager: a restart asked on ``run/control`` happens at once, and
the asker is answered on ``run/up`` once the app is up again (as ``systemctl restart``
returns), with no polling on either side.

The restart step writes a line to the ``run/control`` FIFO and reads ``run/up``; the
fleet's event loop reads the control FIFO as data comes (one descriptor per host, opened
read-write so it never sees an end), restarts the app, then answers. The asker may not be
reading ``run/up`` yet when the answer is ready: the answer is retried for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

CONTROL = "run/control"
UP = "run/up"
ANSWER_TRIES = 400  # x ANSWER_RETRY: how long an answer waits for its reader
ANSWER_RETRY = 0.005


def make_fifos(sandbox: Path) -> None:
    for name in (CONTROL, UP):
        path = sandbox / name
        if not path.exists():
            os.mkfifo(path, 0o600)


class Service:
    """Restarts one host's app when asked on its control FIFO; answers on ``run/up``."""

    def __init__(self, sandbox: Path, restart: Callable[[], object]) -> None:
        self._sandbox = sandbox
        self._restart = restart
        self._fd: int | None = None
        self._owed = 0  # answers not written yet
        self._tries = 0
        self._pending: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._fd = os.open(self._sandbox / CONTROL, os.O_RDWR | os.O_NONBLOCK)
        asyncio.get_running_loop().add_reader(self._fd, self._asked)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _asked(self) -> None:
        assert self._fd is not None
        try:
            asks = os.read(self._fd, 4096).count(b"\n")
        except BlockingIOError:
            return
        if not asks:
            return
        with contextlib.suppress(OSError):  # the sandbox is the user's to break
            self._restart()
        self._owed += asks
        if self._pending is None:
            self._answer()

    def _answer(self) -> None:
        self._pending = None
        try:
            fd = os.open(self._sandbox / UP, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO and self._tries < ANSWER_TRIES:  # not read yet
                self._tries += 1
                self._pending = asyncio.get_running_loop().call_later(ANSWER_RETRY, self._answer)
            else:  # given up: the asker's command times out, as a stuck restart would
                self._owed = self._tries = 0
            return
        with contextlib.suppress(OSError):
            os.write(fd, b"up\n" * self._owed)
        os.close(fd)
        self._owed = self._tries = 0
