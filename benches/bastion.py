"""Releases through a ProxyJump bastion: their cost against direct connections, in one run.

    python benches/bastion.py --hosts 200

One fleet of N real OpenSSH hosts and a bastion (its own sshd; see tests/sshd_fleet.py),
each host reachable both directly and through the bastion. Prints the wall time of
  1. bare asyncssh, one reused connection per host, the three commands in turn, direct
     and then tunnelled over one shared connection to the bastion (the floors);
  2. canarytui's whole deploy (lock and discovery, one-host canary, 100 ms analysis, one
     wave, unlock), direct and then with ``ssh.proxy_jump`` naming the bastion;
all after an untimed run of (1) direct (a fresh fleet's first release pays for what its
hosts set up once: timed first, it flattered every ratio to it), with the ratios, and how
many times the bastion was logged in to during the tunnelled release (1: every host's
connection multiplexed over one connection to the bastion).
Needs root and /usr/sbin/sshd (it starts its own).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import canarytui  # noqa: F401 (first: it quiets asyncssh's DSA warnings)

# isort: split
import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fanout import floor_options
from sshd_fleet import SshdFleet

from canarytui import events as ev
from canarytui.config import load_env, render
from canarytui.engine import Engine
from canarytui.heap import collect_less
from canarytui.journal import Journal

PARALLEL = 50


def bastion_spec(fleet: SshdFleet) -> str:
    b = fleet.bastion("b1")
    return f"{b.user}@{b.address}:{b.port}"


async def bare(fleet: SshdFleet, version: str, jump: bool) -> float:
    """The floor: one connection per host (tunnelled over one to the bastion if ``jump``)."""
    env = fleet.env_dict()
    commands = [render(s["run"], {"version": version}) for s in env["deploy"]["steps"]]
    slots = asyncio.Semaphore(PARALLEL)
    options = floor_options(fleet)
    started = time.perf_counter()
    tunnel = None
    if jump:
        b = fleet.bastion("b1")
        tunnel = await asyncssh.connect(b.address, username=b.user, **options)

    async def one(user: str, address: str) -> None:
        async with slots, asyncssh.connect(address, username=user, tunnel=tunnel, **options) as c:
            for command in commands:
                await c.run(command, check=True)

    try:
        await asyncio.gather(*(one(h.user, h.address) for h in fleet.hosts))
    finally:
        if tunnel is not None:
            tunnel.close()
    return time.perf_counter() - started


async def release(fleet: SshdFleet, version: str, state: Path, jump: bool) -> float:
    def edit(d: dict[str, Any]) -> None:
        d["ssh"]["max_parallel"] = PARALLEL
        if jump:
            d["ssh"]["proxy_jump"] = bastion_spec(fleet)
        d["health"] = {"check": "true", "interval": "100ms", "timeout": "5s"}
        d["canary"]["analysis"] = {"duration": "100ms", "baseline": 0, "max_failed_checks": 0}
        d["promote"] = {"waves": ["100%"], "max_failures": 0, "pause": "manual"}

    engine = Engine(load_env(fleet.write_env(edit=edit)), Journal(state))
    started = time.perf_counter()
    outcome = await engine.deploy(version, auto_promote=True)
    elapsed = time.perf_counter() - started
    await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE, outcome
    assert {fleet.version_on(h) for h in fleet.host_names} == {version}
    return elapsed


async def main(hosts: int) -> None:
    with SshdFleet.start(hosts, bastions=1) as fleet:
        print(f"bastion: {hosts} OpenSSH hosts on loopback, 3 steps, {PARALLEL} in parallel")
        await bare(fleet, "3.9.9", jump=False)  # warm-up, untimed
        direct = await bare(fleet, "4.0.0", jump=False)
        print(f"  bare asyncssh, direct              : {direct:6.2f} s")
        logins = fleet.bastion_logins("b1")
        jumped = await bare(fleet, "4.0.1", jump=True)
        print(
            f"  bare asyncssh, through the bastion : {jumped:6.2f} s  ({jumped / direct:.2f}x,"
            f" {fleet.bastion_logins('b1') - logins} bastion login)"
        )
        with tempfile.TemporaryDirectory() as state:
            ours = await release(fleet, "4.0.2", Path(state), jump=False)
        print(f"  canarytui deploy, direct           : {ours:6.2f} s  ({ours / direct:.2f}x)")
        logins = fleet.bastion_logins("b1")
        with tempfile.TemporaryDirectory() as state:
            ours_jumped = await release(fleet, "4.0.3", Path(state), jump=True)
        logins = fleet.bastion_logins("b1") - logins
        print(
            f"  canarytui deploy, through bastion  : {ours_jumped:6.2f} s"
            f"  ({ours_jumped / ours:.2f}x its direct, {ours_jumped / jumped:.2f}x the"
            f" tunnelled floor; {logins} bastion login(s) for {hosts} hosts)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    collect_less()  # as the canarytui process does (cli.main.run); the floors run here too
    asyncio.run(main(parser.parse_args().hosts))
