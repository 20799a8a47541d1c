"""A terminal that stops reading does not stop the deployment running in the UI.

The UI runs as its own process on a pseudo-terminal, as an operator's does; the test is the
terminal. Once a deployment is under way, the terminal stops reading (an SSH link to a jump
host that stalls): the canary analysis must still run on its own clock and pass, recorded
in the journal, and when the terminal reads again the screen catches up."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import threading
from collections.abc import AsyncIterator

import pytest
from conftest import REPO, wait_for

from canarytui.demo import DemoFleet
from canarytui.journal import Journal

ESCAPES = re.compile(
    rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])"
)
ROWS, COLUMNS = 50, 160
LEAVE_ALT_SCREEN = b"\x1b[?1049l"


class Terminal:
    """The master side of a pseudo-terminal, read by a thread while ``reading`` is set."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.reading = threading.Event()
        self.reading.set()
        self.seen = bytearray()
        self.read_after_resume = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            self.reading.wait()
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
            except (OSError, ValueError):  # closed (``close()``): the terminal has gone
                return
            if not ready or not self.reading.is_set():  # a stall begun: read nothing more
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the UI has gone
                return
            if not chunk:
                return
            with self._lock:
                self.seen += chunk

    def raw(self) -> bytes:
        with self._lock:
            return bytes(self.seen)

    def text(self) -> str:
        return ESCAPES.sub(b"", self.raw()).decode("utf-8", "replace")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    async def run(self, *args: str, **env: str) -> asyncio.subprocess.Process:
        """``canarytui ARGS`` on this terminal, as an operator starts it (``env`` added)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "canarytui",
            *args,
            cwd=REPO,
            env=dict(os.environ, TERM="xterm-256color", COLORTERM="", **env),
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
        )
        os.close(self.slave)
        return proc

    def close(self) -> None:
        if self.master < 0:
            return
        self.reading.set()
        os.close(self.master)
        self.master = -1
        self._thread.join(10)


@pytest.fixture
async def slow_canary() -> AsyncIterator[DemoFleet]:
    """Six demo hosts whose canary analysis lasts 8 s: long enough for a stalled terminal
    to have stopped a UI that waits on it."""
    fleet = DemoFleet(hosts=6, analysis_duration=8.0, interval=0.25, tick=0.25, traffic=12.0)
    await asyncio.wait_for(fleet.start(), 30)
    try:
        yield fleet
    finally:
        await asyncio.wait_for(fleet.stop(), 30)


async def test_a_deployment_goes_on_while_the_terminal_does_not_read(
    slow_canary: DemoFleet, tmp_path: os.PathLike[str]
) -> None:
    state = os.path.join(tmp_path, "state")
    terminal = Terminal()
    proc = await terminal.run(str(slow_canary.env_path), CANARYTUI_STATE_DIR=state)
    journal: Journal | None = None
    try:
        await wait_for(lambda: terminal.text().count("1.0.0") >= 6, timeout=30)
        terminal.type("d")
        await wait_for(lambda: "Deploy to demo" in terminal.text(), timeout=15)
        terminal.type("1.1.0\r")
        await wait_for(lambda: "Deploy 1.1.0?" in terminal.text(), timeout=15)
        terminal.type("y")
        await wait_for(lambda: os.path.exists(os.path.join(state, "journal.sqlite3")), 15)
        journal = Journal(state)

        def phase() -> str | None:
            assert journal is not None
            record = journal.open_deployment("demo", "shop")
            return record.phase if record is not None else None

        await wait_for(lambda: phase() in ("canary", "analysis"), timeout=30)
        terminal.reading.clear()  # the terminal stalls: nothing it is sent is read
        # The analysis (8 s) runs on and passes while nothing is read: the verdict is in
        # the journal. A UI that waits for its terminal stops within a second or two.
        await wait_for(lambda: phase() == "awaiting promotion", timeout=40)
        assert proc.returncode is None
        terminal.reading.set()  # the terminal reads again: the screen catches up
        await wait_for(lambda: "awaiting promotion" in terminal.text(), timeout=20)
        terminal.type("\x11")  # ctrl+q: the deployment waits for a promotion, nothing runs
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        # Everything the UI wrote reached the terminal, down to leaving its screen.
        await wait_for(lambda: LEAVE_ALT_SCREEN in terminal.raw(), timeout=10)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        terminal.close()
        if journal is not None:
            journal.close()


@pytest.mark.parametrize(("stop", "status"), [("kill", 143), ("terminal closed", 129)])
async def test_the_ui_quits_cleanly_when_killed_or_its_terminal_goes(
    tmp_path: os.PathLike[str], stop: str, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `canarytui demo` as an operator runs it; then `kill` (SIGTERM), or the terminal
    # closing (an SSH session dropped: the pty's other side gone, then SIGHUP, as sshd and
    # tmux send it). Either way the UI shuts down as a confirmed quit does: 128 + the
    # signal, and the demo's fleet and journal folders are removed. No state dir named
    # (which would keep the journal), the user's under a home of the test's own.
    monkeypatch.delenv("CANARYTUI_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", os.path.join(tmp_path, "state-home"))
    temp = os.path.join(tmp_path, "tmp")
    os.mkdir(temp)
    terminal = Terminal()
    proc = await terminal.run("demo", "--hosts", "3", TMPDIR=temp)

    def demo_folders() -> list[str]:
        return sorted(n for n in os.listdir(temp) if n.startswith("canarytui-demo"))

    try:
        await wait_for(lambda: terminal.text().count("1.0.0") >= 3, timeout=30)
        assert len(demo_folders()) == 2  # the fleet's hosts and the demo's journal
        if stop == "kill":
            proc.send_signal(signal.SIGTERM)
        else:
            terminal.close()
            proc.send_signal(signal.SIGHUP)
        assert await asyncio.wait_for(proc.wait(), 30) == status
        assert demo_folders() == []
        if stop == "kill":  # the terminal is handed back as it was
            await wait_for(lambda: LEAVE_ALT_SCREEN in terminal.raw(), timeout=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        terminal.close()
