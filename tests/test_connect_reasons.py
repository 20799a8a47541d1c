"""Why a host could not be reached, in words an operator can act on: a name the resolver
does not know read "unknown error -2" (``os.strerror`` of the resolver's own code), the
message every typo in an address gave."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env

from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.ssh import Fleet, SshError
from canarytui.ssh.reasons import os_reason

TYPO = "web-02.exmaple.invalid"


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "no such name (name or service not known): is the address right?",
        ),
        (
            socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
            "the name could not be looked up now (temporary failure in name resolution): "
            "is DNS reachable?",
        ),
        (
            socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
            "the name could not be looked up (non-recoverable failure in name resolution)",
        ),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), "connection refused"),
    ],
)
def test_the_reason_is_the_resolvers_or_the_systems(exc: OSError, said: str) -> None:
    assert os_reason(exc) == said


async def test_a_name_nobody_knows_is_said_so_naming_the_host(
    demo: DemoFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host's address mistyped: its connection fails as a name nobody knows, with the
    host's address, never as "unknown error"; the other hosts are reached. (The resolver
    is this process's, refusing that one name: no lookup leaves the machine.)"""

    def typo(d: dict[str, Any]) -> None:
        d["hosts"][1]["address"] = TYPO

    env = load_env(edit_env(demo.env_path, tmp_path / "typo.yaml", typo))
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo

    async def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == TYPO:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await resolve(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    fleet = Fleet(env)
    try:
        ok = await asyncio.wait_for(fleet.run("web-01", "true"), 20)
        assert ok.exit_status == 0
        with pytest.raises(SshError) as failed:
            await asyncio.wait_for(fleet.run("web-02", "true"), 20)
    finally:
        await fleet.close()
    message = str(failed.value)
    assert TYPO in message and "unknown error" not in message
    assert message.endswith("no such name (name or service not known): is the address right?")
