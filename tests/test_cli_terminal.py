"""The UI's commands without a terminal: refused at once with what to do, nothing started.

Without a terminal on stdin, stdout and stderr (``ssh HOST canarytui ENV.yaml`` without
``-t``, a cron job, ``canarytui demo | tee``) the UI spun a core redrawing for ever and did
not stop on SIGTERM. Each command runs here as its own process with its streams set
explicitly (pipes, /dev/null, a pseudo-terminal), so what the test runner's own streams are
does not matter; every run is bounded by a timeout, which a UI that started would hit.
"""

from __future__ import annotations

import asyncio
import os
import pty
import sys
from functools import partial
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from test_ui_replay import scripted

from canarytui.demo import DemoFleet

TIMEOUT = 30.0
SHM = Path("/dev/shm")
NONE_IS = "standard input, standard output and standard error are not terminals"


async def run(
    args: list[str], state_dir: Path, *, terminal: tuple[str, ...] = ()
) -> tuple[int, str]:
    """``python -m canarytui ARGS`` with the streams named in ``terminal`` ("in", "out",
    "err") on one pseudo-terminal, stdin from /dev/null otherwise and the rest on pipes;
    its exit status and all it wrote (pipes and terminal alike). A UI that started would
    not end: the run's timeout stops it and fails the test."""
    master, slave = pty.openpty()
    seen = bytearray()
    loop = asyncio.get_running_loop()
    loop.add_reader(master, _drain, master, seen)
    try:
        done = await run_cli(
            *args,
            timeout=TIMEOUT,
            state_dir=state_dir,
            stdin=slave if "in" in terminal else asyncio.subprocess.DEVNULL,
            stdout=slave if "out" in terminal else asyncio.subprocess.PIPE,
            stderr=slave if "err" in terminal else asyncio.subprocess.PIPE,
            started=partial(_close, slave),
        )
    finally:
        loop.remove_reader(master)
        _drain(master, seen)
        os.close(master)
    text = done.out + done.err + bytes(seen).decode(errors="replace")
    return done.code, " ".join(text.split())


async def _close(fd: int, _proc: object) -> None:
    os.close(fd)  # the child has its copy: the terminal ends when the child does


def _drain(fd: int, into: bytearray) -> None:
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):  # nothing now, or EIO: the child has gone
            return
        if not chunk:
            return
        into += chunk


def made_in(folder: Path) -> set[str]:
    """The names in ``folder`` (none if there is no such folder)."""
    return set(os.listdir(folder)) if folder.is_dir() else set()


def refused(code: int, said: str, missing: str) -> None:
    assert code == 2, said
    assert f"the UI needs a terminal, and {missing}" in said, said
    assert "ssh -t HOST" in said and "canarytui deploy ENV.yaml VERSION" in said, said
    assert "Traceback" not in said and "internal error" not in said, said
    assert "\x1b[" not in said, said  # not one escape sequence: nothing was drawn


async def test_the_ui_on_an_environment_refuses_and_contacts_no_host(
    demo: DemoFleet, state_dir: Path
) -> None:
    before = demo.connections_received
    code, said = await run([str(demo.env_path)], state_dir)
    refused(code, said, NONE_IS)
    # Its output piped, as `canarytui ENV.yaml | tee` would: keys and screen on a terminal.
    code, said = await run([str(demo.env_path)], state_dir, terminal=("in", "err"))
    refused(code, said, "standard output is not one")
    code, said = await run([str(demo.env_path)], state_dir, terminal=("out", "err"))
    refused(code, said, "standard input is not one")
    assert demo.connections_received == before  # no host contacted
    assert made_in(state_dir) == set()  # no journal


async def test_a_mistake_in_the_file_is_said_first(tmp_path: Path) -> None:
    bad = tmp_path / "prod.yaml"
    bad.write_text("name: prod\n")
    code, said = await run([str(bad)], tmp_path / "state")
    assert code == 2 and f"{bad}:" in said and "needs a terminal" not in said, said


@pytest.mark.parametrize("terminal", [(), ("in", "err")])
async def test_the_demo_refuses_before_its_fleet_starts(
    tmp_path: Path, terminal: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # where a sandbox would go
    (tmp_path / "tmp").mkdir()
    in_memory = made_in(SHM)  # a fleet's folder goes there when there is room
    code, said = await run(["demo", "--hosts", "2"], tmp_path / "state", terminal=terminal)
    refused(code, said, NONE_IS if not terminal else "standard output is not one")
    assert "the demo fleet" not in said
    assert made_in(tmp_path / "tmp") == set()
    assert {m for m in made_in(SHM) - in_memory if m.startswith("canarytui-demo-")} == set()


async def test_a_replay_refuses_after_checking_its_deployment(tmp_path: Path) -> None:
    env, journal, d = scripted(tmp_path)
    journal.close()
    state = tmp_path / "state"
    code, said = await run(["replay", str(env.path), "999"], state)
    assert code == 2 and "no deployment #999" in said, said  # the ID is checked first
    code, said = await run(["replay", str(env.path), str(d)], state)
    refused(code, said, NONE_IS)


async def test_a_terminal_on_all_three_streams_is_enough(tmp_path: Path) -> None:
    """The check lets a real terminal through (the UI's own tests drive it headless)."""
    code = (
        "import sys\n"
        "from canarytui.cli.terminal import missing_terminal\n"
        "sys.exit(0 if missing_terminal() is None else 3)"
    )
    master, slave = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdin=slave, stdout=slave, stderr=slave, cwd=REPO
        )
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        os.close(slave)
        os.close(master)
