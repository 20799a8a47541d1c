"""The demo's service manager: a restart asked on the control FIFO happens at once and
the asker is answered once it is done, even when it starts reading late."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from conftest import wait_for

from canarytui.demo.service import CONTROL, UP, Service, make_fifos


async def sh(folder: Path, script: str) -> bytes:
    shell = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", script, cwd=folder, stdout=asyncio.subprocess.PIPE
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
