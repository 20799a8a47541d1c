"""Commands that wait on every host before they print anything (status, check, unlock, lock:
seconds at a thousand hosts) say what they ask of how many, on a terminal's stderr only.

The demo fleet over real SSH; the command runs as its own process with stderr on a pseudo-
terminal (what an operator's shell gives it), or on a pipe (a script)."""

from __future__ import annotations

import os
import pty
from functools import partial
from pathlib import Path

from conftest import run_cli

from canarytui.demo import DemoFleet


async def _with_terminal_stderr(*args: str, state_dir: Path) -> tuple[int, str, str]:
    """``python -m canarytui ARGS``: stdout on a pipe, stderr on a pseudo-terminal."""
    master, slave = pty.openpty()
    try:
        started = partial(_close_in_parent, slave)
        done = await run_cli(*args, state_dir=state_dir, stderr=slave, started=started)
        seen = b""
        while True:  # the terminal's side; the child has exited, so this ends
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: nothing more
                break
            if not chunk:
                break
            seen += chunk
        return done.code, done.out, seen.decode()
    finally:
        os.close(master)


async def _close_in_parent(fd: int, _proc: object) -> None:
    os.close(fd)  # the child has its copy: the terminal ends when the child does


async def test_status_and_check_say_what_they_ask_on_a_terminal(
    demo: DemoFleet, state_dir: Path
) -> None:
    env = str(demo.env_path)
    code, out, err = await _with_terminal_stderr("status", env, state_dir=state_dir)
    assert code == 0, err
    assert "canarytui: reading the lock and version of 6 host(s)…" in err
    assert "host(s)…" not in out and "web-06" in out  # the table on stdout, as before
    code, out, err = await _with_terminal_stderr("check", env, state_dir=state_dir)
    assert "canarytui: connecting to 6 host(s)…" in err, (code, err)
    assert "host(s)…" not in out


async def test_nothing_more_when_stderr_is_not_a_terminal(demo: DemoFleet, state_dir: Path) -> None:
    shown = await run_cli("status", str(demo.env_path), state_dir=state_dir)
    assert shown.code == 0, shown.err
    assert "host(s)…" not in shown.err and "host(s)…" not in shown.out
