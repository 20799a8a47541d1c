"""The demo's service manager: a restart asked on the control FIFO happens at once and
the asker is answered once it is done, even when it starts reading late."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from conftest import wait_for

from canarytui.demo.app import init_sandbox
from canarytui.demo.envfile import CURRENT, HEALTH_CHECK, RESTART
from canarytui.demo.service import CONTROL, UP, Service, make_fifos


async def sh(folder: Path, script: str, env: dict[str, str] | None = None) -> bytes:
    shell = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", script, cwd=folder, stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await asyncio.wait_for(shell.communicate(), 10)
    return out


async def test_a_restart_asked_is_done_then_answered(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    make_fifos(tmp_path)
    restarts: list[int] = []
    service = Service(tmp_path, lambda: restarts.append(1))
    service.start()
    try:
        # As the restart step does: ask, then wait for the answer.
        answer = f"echo restart > {CONTROL} && read -r word < {UP} && echo $word"
        assert await sh(tmp_path, answer) == b"up\n"
        assert restarts == [1]

        # Asked by someone who reads the answer only later: it waits for them.
        fd = os.open(tmp_path / CONTROL, os.O_WRONLY)
        os.write(fd, b"restart\n")
        os.close(fd)
        await wait_for(lambda: restarts == [1, 1] and service._pending is not None, 10)
        assert await sh(tmp_path, f"read -r word < {UP} && echo $word") == b"up\n"
    finally:
        service.close()


async def test_the_commands_every_host_runs_start_no_process(tmp_path: Path) -> None:
    """The demo file's version discovery, restart and health check are shell builtins: with
    no PATH at all they still work (at a thousand hosts, a process each is seconds of the
    fleet's CPU)."""
    init_sandbox(tmp_path, "1.2.0")
    restarts: list[int] = []
    service = Service(tmp_path, lambda: restarts.append(1))
    service.start()
    bare = {"PATH": "/nonexistent"}
    try:
        assert await sh(tmp_path, CURRENT, bare) == b"1.2.0\n"
        assert await sh(tmp_path, f"{RESTART} && echo restarted", bare) == b"restarted\n"
        assert restarts == [1] and (tmp_path / "run" / "restart").exists()
        (tmp_path / "run" / "restart").unlink()
        (tmp_path / "run" / "health").write_text("ok 1.2.0\n")
        assert await sh(tmp_path, f"{HEALTH_CHECK} && echo healthy", bare) == b"healthy\n"
        (tmp_path / "current").unlink()
        assert await sh(tmp_path, f"{CURRENT}; echo end", bare) == b"end\n"  # none: empty
    finally:
        service.close()
