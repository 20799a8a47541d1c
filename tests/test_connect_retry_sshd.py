"""Hosts that close a connection before the login (real OpenSSH).

An sshd setting up more connections than its ``MaxStartups`` (10 by default) drops new
ones at random: a fleet reached through a ``ProxyCommand`` bastion opens one to the bastion
per host, many at once. Nothing was sent to the host then, so the connection is tried
again, a few times, after short random pauses; a host that always closes it is unreachable
with a message that says what happened, not "timed out".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sshd_fleet import FleetFactory, FleetHost, SshdFleet
from test_ssh_config_sshd import alias_env, aliases, home, run_everywhere, users, write_config

from canarytui.ssh import Unreachable
from canarytui.ssh.connect import CONNECT_TRIES

pytestmark = pytest.mark.sshd
__all__ = ["home"]  # the fixture, for the ProxyCommand test


@dataclass
class Doorman:
    """A TCP relay to a host that closes its first ``refuse`` connections at once (as an
    sshd past its MaxStartups does), then passes the others through."""

    target: FleetHost
    refuse: int
    accepted: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.accepted <= self.refuse:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.target.address, self.target.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (pump(reader, up_writer), pump(up_reader, writer)):
            running = asyncio.ensure_future(task)
            self.tasks.add(running)
            running.add_done_callback(self.tasks.discard)


@contextlib.asynccontextmanager
async def doorman(fleet: SshdFleet, name: str, refuse: int) -> AsyncIterator[tuple[Doorman, Path]]:
    """The relay on a loopback address of its own, and an environment file that reaches
    ``name`` through it (its key listed for the relay's address)."""
    relay = Doorman(fleet.host(name), refuse)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = fleet.host(name)
    line = next(
        entry
        for entry in fleet.known_hosts.read_text().splitlines()
        if entry.startswith(f"[{target.address}]:{target.port} ")
    )
    known = fleet.run_dir / "known_hosts.doorman"
    known.write_text(f"[127.0.0.1]:{port} {line.split(' ', 1)[1]}\n")

    def edit(d: dict[str, Any]) -> None:
        d["ssh"]["known_hosts"] = str(known)
        d["hosts"] = [{"name": name, "address": "127.0.0.1", "port": port, "user": target.user}]

    try:
        yield relay, fleet.write_env(fleet.run_dir / "doorman.yaml", edit=edit)
    finally:
        server.close()
        for task in list(relay.tasks):
            task.cancel()
        await asyncio.wait_for(server.wait_closed(), 10)


async def test_a_connection_closed_before_the_login_is_tried_again(
    sshd_fleet: FleetFactory,
) -> None:
    fleet = sshd_fleet(1)
    async with doorman(fleet, "h01", refuse=CONNECT_TRIES - 1) as (relay, env_path):
        found, _ = await run_everywhere(env_path)
        assert found == {"h01": "ctfleet01"}
        assert relay.accepted == CONNECT_TRIES


async def test_a_host_that_always_closes_it_is_unreachable_saying_so(
    sshd_fleet: FleetFactory,
) -> None:
    fleet = sshd_fleet(1)
    async with doorman(fleet, "h01", refuse=1000) as (relay, env_path):
        started = time.monotonic()
        found, _ = await run_everywhere(env_path)
        took = time.monotonic() - started
    refused = found["h01"]
    assert isinstance(refused, Unreachable), found
    assert relay.accepted == CONNECT_TRIES
    assert str(refused).endswith(
        f"unreachable: the host closed the connection before the login ({CONNECT_TRIES} "
        "tries; an sshd busy with more new connections than its MaxStartups drops some)"
    )
    assert took < 10, took  # the pauses between tries are short: about 4 s in all


async def test_a_proxycommand_bastion_past_its_max_startups(
    sshd_fleet: FleetFactory, home: Path
) -> None:
    """48 hosts at once through ``ProxyCommand ssh -W %h:%p b1``, the bastion's sshd with
    its default MaxStartups (10:30:100): a third of them were dropped, said unreachable;
    tried again, every host is reached."""
    fleet = sshd_fleet(48, bastions=1)
    fleet.limit_startups("b1")
    key = f"    IdentityFile {fleet.client_key}\n"
    config = home / ".ssh" / "config"
    proxy = f"    ProxyCommand ssh -F {config} -W %h:%p b1\n"
    write_config(home, aliases(fleet, app_options=key + proxy, bastion_options=key))
    # 48 ssh processes logging in to the bastion at once on a busy machine can take more
    # than the other tests' 3 s to connect: what is judged here is the drops, not the time.
    found, _ = await run_everywhere(alias_env(fleet, max_parallel=48, connect_timeout="30s"))
    assert found == users(fleet)
