"""What one SSH session per host would cost a release, against the floor, in one run.

    python benches/one_session.py --hosts 200 [--rounds 3]

The design question behind issue 12's fan-out bar: canarytui opens two sessions on a host
of the last wave (the lock, then the steps' script, which stays to release the lock) and
three on any other; the floor (benches/fanout.py) runs one per command. This bench runs,
with bare asyncssh on real OpenSSH hosts, the same three steps the way a single session
per host would: the lock script, then the steps sent down that session's input once every
host is locked (the engine's barrier before anything changes), then the release on a word
once every host is done. It prints each round's floor and that time, side by side. Needs
root and /usr/sbin/sshd (it starts its own sshd).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout import PARALLEL, bare, steps
from sshd_fleet import SshdFleet

from canarytui.config import render
from canarytui.engine import lockscripts
from canarytui.engine.locks import Owner


class Barrier:
    """Every host reaches it before any goes on."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.open = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived == self.parties:
            self.open.set()
        await self.open.wait()


async def one_session(fleet: SshdFleet, version: str) -> float:
    owner = Owner("0" * 32, 1, version, "bench", "bench")
    lock = lockscripts.acquire_command(
        "shop", "sshd-test", owner, "cat current/VERSION 2>/dev/null || true"
    )
    unlock = lockscripts.release_command("shop", "sshd-test", owner.token)
    script = (
        f'{lock}; echo LOCKED-ALL; IFS= read -r cmd; eval "$cmd"; echo STEPS-DONE $?; '
        f'IFS= read -r word; [ "$word" = go ] && {{ {unlock}\n}}'
    )
    line = " && ".join(f"( {render(c, {'version': version})} )" for c in steps(fleet))
    known = asyncssh.read_known_hosts(str(fleet.known_hosts))
    slots = asyncio.Semaphore(PARALLEL)
    locked, stepped = Barrier(len(fleet.hosts)), Barrier(len(fleet.hosts))

    async def until(proc: asyncssh.SSHClientProcess[str], mark: str) -> None:
        while mark not in await proc.stdout.readline():
            pass

    async def host(user: str, address: str) -> None:
        async with slots:
            conn = await asyncssh.connect(
                address,
                port=fleet.port,
                username=user,
                known_hosts=known,
                client_keys=[str(fleet.client_key)],
            )
            proc = await conn.create_process(script)
            await until(proc, "LOCKED-ALL")
        await locked.wait()
        async with slots:
            proc.stdin.write(line + "\n")
            await until(proc, "STEPS-DONE")
        await stepped.wait()
        async with slots:
            proc.stdin.write("go\n")
            await proc.wait_closed()
        conn.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(host(h.user, h.address) for h in fleet.hosts)), 300)
    return time.perf_counter() - started


async def main(hosts: int, rounds: int) -> None:
    with SshdFleet.start(hosts) as fleet:
        print(f"one session per host: {hosts} OpenSSH hosts, 3 steps, {PARALLEL} in parallel")
        for r in range(rounds):
            floor = await bare(fleet, f"4.0.{r}", reuse=True)
            one = await one_session(fleet, f"4.1.{r}")
            assert {fleet.version_on(h) for h in fleet.host_names} == {f"4.1.{r}"}
            print(
                f"  round {r + 1}: floor {floor:5.2f} s; lock + steps + release in one "
                f"session a host {one:5.2f} s ({one / floor:.2f}x)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.hosts, args.rounds))
