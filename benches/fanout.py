"""Fleet fan-out: a three-step release to N real OpenSSH hosts, side by side in one run.

    python benches/fanout.py --hosts 200

Prints the wall time of
  1. bare asyncssh, one reused connection per host, the three commands in turn (the floor;
     the known_hosts file and the key read once, not once a connection, and canarytui's
     cipher order: the same SSH as the engine's, without the engine);
  2. bare asyncssh, a new connection per command; and, reusing its connection, as its
     documentation writes a client (the known_hosts file and the key given as paths, read
     again for every connection, asyncssh's default ciphers): what a hand-written script
     costs, where the floor (1) is tuned as canarytui's own SSH is;
  3. canarytui's engine: the same three steps in one wave (plus what the engine adds: lock
     and version discovery in one round trip (the version read by shell builtins, as the
     README advises), the post-deploy health check, unlock), with a
     one-host canary and a 100 ms analysis before it; the session that takes a host's lock
     stays as its shell, and the steps (with a first health probe) and the unlock go down
     it, so a host costs one session where the floor opens three;
  4. canarytui's SSH layer alone (Fleet.run), exactly the three commands of (1);
  5. the engine's promotion alone (the wave to the N-1 other hosts), the like-for-like
     comparison with (1);
  6. bare asyncssh running every command the engine's release sends, one exec each on one
     reused connection per host (the lock with version discovery, the three steps, the
     health check, the unlock): the same remote work as (3) without folding it into one
     session, without the canary first and without a journal;
  7. canarytui's whole deploy as (3), straight to the wave (``canary_phase`` off, as a
     staging environment without a ``canary`` section runs): what the canary phase costs,
     its analysis's wait and its barrier (every lock held before the canary changes);
and the ratios to the floor (1); (3)'s to (6) too. (3), (5) and (7) are run in ``--rounds``
rounds, each with a floor (1) and a floor (6) of its own, run before it in odd rounds and
after it in even ones (the machine's speed drifts within a run), with where the engine's
time went (each phase with the core-seconds the machine left idle in it) and the median
ratio, and for all three what they cost the machine: its CPU (the hosts' sshd and shells
share it) and how much of it stayed idle, this process's own CPU, the hosts' (their sshd
processes and all they started, counted once the run has left them), and the processes
started.
With ``--rtt MS``, every connection of every run goes through ``delay_proxy.py`` (its own
process), which adds MS of round trip to loopback: what a fleet in another room or region
costs, where the time is the round trips, not this machine's CPU.
The machine's speed (a process started by a shell, a stretch of Python) is printed before
and after: runs on other days compare through it.
Every timed run starts once the run before it has left the hosts (its connections' sshd
processes gone), so none pays for another's teardown.
Needs root and /usr/sbin/sshd (it starts its own sshd).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import canarytui  # noqa: F401 (first: it quiets asyncssh's DSA warnings)

# isort: split
import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from demo_release import cpu_of, machine_cpu, machine_speed, release_commands
from sshd_fleet import SshdFleet

from canarytui import events as ev
from canarytui.config import Environment, load_env, render
from canarytui.demo.envfile import CURRENT
from canarytui.engine import Engine
from canarytui.engine.locks import Owner
from canarytui.heap import collect_less
from canarytui.journal import Journal
from canarytui.ssh import Fleet
from canarytui.ssh.connect import CIPHERS

PARALLEL = 50


def steps(fleet: SshdFleet) -> list[str]:
    env = fleet.env_dict()
    return [s["run"] for s in env["deploy"]["steps"]]


@dataclass(frozen=True)
class Usage:
    """The machine's busy and idle CPU (core-seconds), this process's CPU (seconds), the
    hosts' (every connection's sshd and what it started: ``reaped_cpu``) and the processes
    started on the machine: since boot, or (a difference) over a run."""

    busy: float
    idle: float
    own: float
    hosts: float
    forks: int

    @classmethod
    def now(cls, fleet: SshdFleet) -> Usage:
        stat = Path("/proc/stat").read_text()
        busy, idle = machine_cpu(stat)
        lines = stat.splitlines()
        forks = next(int(line.split()[1]) for line in lines if line.startswith("processes "))
        own = resource.getrusage(resource.RUSAGE_SELF)
        return cls(busy, idle, own.ru_utime + own.ru_stime, reaped_cpu(fleet.pids()), forks)

    def __sub__(self, before: Usage) -> Usage:
        return Usage(
            self.busy - before.busy,
            self.idle - before.idle,
            self.own - before.own,
            self.hosts - before.hosts,
            self.forks - before.forks,
        )

    def __str__(self) -> str:
        return (
            f"machine CPU {self.busy:.2f} s (idle {self.idle:.2f}), this process "
            f"{self.own:.2f} s, the hosts {self.hosts:.2f} s, {self.forks} processes"
        )


def reaped_cpu(pids: list[int]) -> float:
    """The CPU (s) of the processes' children that they have reaped (``cutime`` and
    ``cstime``): a listener's connections, once gone, with all they started. And init's:
    one sshd process of every connection outlives its parent at the end and is reaped by
    init (pid 1), with what it ran (the session's shells), a third of the hosts' CPU; on
    the bench's machine nothing else is orphaned meanwhile."""
    total = 0.0
    for pid in [1, *pids]:
        with contextlib.suppress(OSError):  # a listener gone meanwhile
            total += cpu_of(pid)[1]
    return total


@dataclass
class Route:
    """Where the runs reach each host: directly, or through the delaying proxy."""

    address: dict[str, str]  # host name -> address to connect to
    known_hosts: Path

    @classmethod
    def direct(cls, fleet: SshdFleet) -> Route:
        return cls({h.name: h.address for h in fleet.hosts}, fleet.known_hosts)


@contextlib.contextmanager
def delayed(fleet: SshdFleet, rtt_ms: float) -> Iterator[Route]:
    """``delay_proxy.py`` in front of every host (its own process, its own loopback
    addresses on the same port), with a known_hosts file that names them."""
    route = Route({}, fleet.run_dir / "client" / "known_hosts.delayed")
    lines, routes = [], []
    lines_in = fleet.known_hosts.read_text().splitlines(keepends=True)
    known = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines_in}
    for i, host in enumerate(fleet.hosts):
        a, b, _, _ = host.address.split(".")
        proxy = f"{a}.{b}.{128 + i // 200}.{10 + i % 200}"
        route.address[host.name] = proxy
        lines.append(f"[{proxy}]:{fleet.port} {known[f'[{host.address}]:{fleet.port}']}")
        routes.append(f"{proxy}:{fleet.port}={host.address}:{fleet.port}")
    route.known_hosts.write_text("".join(lines))
    script = Path(__file__).with_name("delay_proxy.py")
    proxy = subprocess.Popen(
        [sys.executable, str(script), "--rtt", str(rtt_ms), *routes],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proxy.stdout is not None
        if proxy.stdout.readline().strip() != "ready":
            raise SystemExit(f"the delaying proxy did not start (exit {proxy.wait(timeout=10)})")
        yield route
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


async def settle(fleet: SshdFleet, limit: float = 15.0) -> None:
    """Wait (at most ``limit`` s) until the run before has left the hosts: its connections'
    sshd processes exit after its client has closed them (the next run would pay for that
    teardown), and init has reaped those that outlived their parents (their CPU would be
    counted in the next run's)."""
    for _ in range(round(limit / 0.02)):  # the hosts' processes, polled: no event says it
        if not fleet.connections_left() and not orphaned_sshd():
            return
        await asyncio.sleep(0.02)


def orphaned_sshd() -> int:
    """sshd processes started since this bench whose parent is init (pid 1), reaped or not
    yet (a system sshd, older, is not counted)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                name, fields = _stat(Path("/proc", entry, "stat").read_text())
                count += name == "sshd" and fields[1] == "1" and int(fields[19]) >= _STARTED
    return count


def _stat(text: str) -> tuple[str, list[str]]:
    """A ``/proc/PID/stat`` line: the command's name, and the fields after it (state first)."""
    return text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()


_STARTED = int(_stat(Path("/proc/self/stat").read_text())[1][19])  # in clock ticks since boot


async def spent(fleet: SshdFleet, before: Usage) -> Usage:
    """What a run has cost since ``before``: the machine and this process up to now, the
    hosts once its connections have left them (their sshd processes are reaped then)."""
    used = Usage.now(fleet) - before
    await settle(fleet)
    return dataclasses.replace(used, hosts=reaped_cpu(fleet.pids()) - before.hosts)


def floor_options(fleet: SshdFleet, route: Route | None = None) -> dict[str, Any]:
    """The bare floor's connection options: the same SSH as the engine's, without it.

    The known_hosts file and the key are read once, as a careful client (and canarytui)
    does: given as paths, asyncssh reads and parses both again for every connection (a
    third of the floor's CPU at 200 hosts). canarytui's cipher order (AES-GCM first: 4-5 %
    off the floor), so the two differ by what the engine does, not by the SSH they speak.
    """
    return {
        "known_hosts": asyncssh.read_known_hosts(str((route or Route.direct(fleet)).known_hosts)),
        "client_keys": [asyncssh.read_private_key(str(fleet.client_key))],
        "encryption_algs": CIPHERS,
        "port": fleet.port,
    }


async def bare(
    fleet: SshdFleet,
    version: str,
    reuse: bool,
    route: Route | None = None,
    used: list[Usage] | None = None,
    like_engine: bool = False,
    documented: bool = False,
) -> float:
    plain = [render(c, {"version": version}) for c in steps(fleet)]
    commands = {h.name: plain for h in fleet.hosts}
    if like_engine:
        env = engine_env(fleet, route)
        owner = Owner(os.urandom(16).hex(), 0, version, "bench", "bench")
        commands = {h.name: release_commands(env, h.name, version, owner) for h in fleet.hosts}
    slots = asyncio.Semaphore(PARALLEL)
    route = route or Route.direct(fleet)
    options = floor_options(fleet, route)
    if documented:  # as asyncssh's documentation writes a client
        options = {
            "known_hosts": str(route.known_hosts),
            "client_keys": [str(fleet.client_key)],
            "port": fleet.port,
        }

    def connect(user: str, address: str) -> asyncssh.SSHClientConnection:
        return asyncssh.connect(address, username=user, **options)

    async def one(user: str, address: str, commands: list[str]) -> None:
        async with slots:
            if reuse:
                async with connect(user, address) as conn:
                    for c in commands:
                        await conn.run(c, check=True)
            else:
                for c in commands:
                    async with connect(user, address) as conn:
                        await conn.run(c, check=True)

    await settle(fleet)
    before, started = Usage.now(fleet), time.perf_counter()
    await asyncio.gather(
        *(one(h.user, route.address[h.name], commands[h.name]) for h in fleet.hosts)
    )
    elapsed = time.perf_counter() - started
    if used is not None:
        used.append(await spent(fleet, before))
    return elapsed


def routed(d: dict[str, Any], route: Route | None) -> None:
    """An environment dict edited to reach its hosts by ``route``."""
    if route is not None:
        d["ssh"]["known_hosts"] = str(route.known_hosts)
        for host in d["hosts"]:
            host["address"] = route.address[host["name"]]


async def engine_fleet(fleet: SshdFleet, version: str, route: Route | None = None) -> float:
    """The engine's SSH layer alone (Fleet.run), the same three commands per host."""

    def edit(d: dict[str, Any]) -> None:
        d["ssh"]["max_parallel"] = PARALLEL
        routed(d, route)

    env = load_env(fleet.write_env(edit=edit))
    pool = Fleet(env)
    commands = [render(c, {"version": version}) for c in steps(fleet)]

    async def one(name: str) -> None:
        for c in commands:
            assert (await pool.run(name, c)).ok

    await settle(fleet)
    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in env.host_names))
    elapsed = time.perf_counter() - started
    await pool.close()
    return elapsed


def engine_env(fleet: SshdFleet, route: Route | None = None) -> Environment:
    """The environment the engine's release runs on (and floor (6) renders): the three
    steps, a health check that is the shell's ``true``, the version read by shell builtins
    (as the demo's file and the README advise: no process on a host, where ``cat`` cost
    each host ~1 ms of its CPU, ~4 % of the whole deploy at 200 hosts), a one-host canary
    judged for 100 ms, then one wave."""

    def edit(d: dict) -> None:  # type: ignore[type-arg]
        routed(d, route)
        d["deploy"]["current"] = CURRENT
        d["ssh"]["max_parallel"] = PARALLEL
        d["health"] = {"check": "true", "interval": "100ms", "timeout": "5s"}
        d["canary"]["analysis"] = {"duration": "100ms", "baseline": 0, "max_failed_checks": 0}
        d["promote"] = {"waves": ["100%"], "max_failures": 0, "pause": "manual"}

    return load_env(fleet.write_env(edit=edit))


# The engine's run, phase by phase: (name, the mark it starts at, the mark it ends at).
PHASES = [
    ("connect + lock", "started", "canary"),
    ("canary + analysis", "canary", "wave_started"),
    ("wave", "wave_started", "wave_finished"),
    ("release + close", "deployment_finished", "ended"),
]


@dataclass(frozen=True)
class Phase:
    """A phase of the engine's run: its wall time, and the core-seconds the machine left
    idle meanwhile (a phase that waits, not computes, leaves cores idle)."""

    wall: float
    idle: float

    def __str__(self) -> str:
        return f"{self.wall:.2f} s (idle {self.idle:.2f})"


async def engine_release(
    fleet: SshdFleet,
    version: str,
    state: Path,
    route: Route | None = None,
    used: list[Usage] | None = None,
    canary_phase: bool = True,
) -> tuple[float, float, dict[str, Phase]]:
    engine = Engine(engine_env(fleet, route), Journal(state))
    at: dict[str, tuple[float, float]] = {}  # the time, and the machine's idle core-seconds

    def now() -> tuple[float, float]:
        return time.perf_counter(), machine_cpu()[1]

    def clock(event: ev.Event) -> None:
        if isinstance(event, ev.PhaseChanged):
            if event.phase.value not in at:  # a phase's first start only
                at[event.phase.value] = now()
        elif isinstance(event, ev.WaveStarted | ev.WaveFinished | ev.DeploymentFinished):
            at[event.kind] = now()

    engine.subscribe(clock)
    await settle(fleet)
    before = Usage.now(fleet)
    at["started"] = now()
    outcome = await engine.deploy(version, auto_promote=True, canary_phase=canary_phase)
    await engine.fleet.close()  # as the command line does before it exits
    at["ended"] = now()
    if used is not None:
        used.append(await spent(fleet, before))
    assert outcome is ev.Outcome.COMPLETE, outcome
    if not canary_phase:  # locked, then straight to the wave
        at["canary"] = at["wave_started"]
    phases = {
        name: Phase(at[end][0] - at[start][0], at[end][1] - at[start][1])
        for name, start, end in PHASES
        if at[end][0] > at[start][0]
    }
    return at["ended"][0] - at["started"][0], phases["wave"].wall, phases


async def floors(
    fleet: SshdFleet,
    r: int,
    route: Route | None,
    floor_used: list[Usage],
    same_used: list[Usage],
) -> tuple[float, float]:
    """Round ``r``'s floor (1) and the engine's commands one exec each (6)."""
    plain = await bare(fleet, f"3.1.{r}", True, route, floor_used)
    same = await bare(fleet, f"3.3.{r}", True, route, same_used, like_engine=True)
    return plain, same


async def main(hosts: int, rounds: int, rtt: float) -> None:
    with contextlib.ExitStack() as stack:
        fleet = stack.enter_context(SshdFleet.start(hosts))
        route = stack.enter_context(delayed(fleet, rtt)) if rtt else None
        where = f"{rtt:g} ms of round trip added (delay_proxy.py)" if rtt else "on loopback"
        print(f"fan-out: {hosts} OpenSSH hosts {where}, 3 steps, {PARALLEL} in parallel")
        print("  " + machine_speed())
        floor = await bare(fleet, "3.0.0", reuse=True, route=route)
        print(f"  bare asyncssh, reused connection : {floor:6.2f} s")
        again = await bare(fleet, "3.0.1", reuse=False, route=route)
        print(f"  bare asyncssh, connect per command: {again:6.2f} s  ({again / floor:.2f}x)")
        plain = await bare(fleet, "3.0.3", reuse=True, route=route, documented=True)
        print(
            f"  bare asyncssh, reused, as documented: {plain:6.2f} s  ({plain / floor:.2f}x; "
            "known_hosts and key read for every connection, default ciphers)"
        )
        layer = await engine_fleet(fleet, "3.0.2", route)
        print(f"  canarytui SSH layer, same commands: {layer:6.2f} s  ({layer / floor:.2f}x)")
        # The machine's speed drifts, so the floor and the engine are run in pairs, each
        # round in the other order.
        print(f"  the floor and canarytui's whole deploy, {rounds} rounds in alternating order:")
        ratios, same_ratios, straight_ratios = [], [], []
        for r in range(rounds):
            floor_first = r % 2 == 0
            floor_used: list[Usage] = []
            same_used: list[Usage] = []
            engine_used: list[Usage] = []
            if floor_first:
                floor, same = await floors(fleet, r, route, floor_used, same_used)
            with tempfile.TemporaryDirectory() as state:
                total, wave, phases = await engine_release(
                    fleet, f"3.2.{r}", Path(state), route, engine_used
                )
            assert {fleet.version_on(h) for h in fleet.host_names} == {f"3.2.{r}"}
            with tempfile.TemporaryDirectory() as state:
                straight, _, straight_phases = await engine_release(
                    fleet, f"3.4.{r}", Path(state), route, canary_phase=False
                )
            assert {fleet.version_on(h) for h in fleet.host_names} == {f"3.4.{r}"}
            if not floor_first:
                floor, same = await floors(fleet, r, route, floor_used, same_used)
            ratios.append(total / floor)
            straight_ratios.append(straight / floor)
            same_ratios.append(total / same)
            order = "floors first" if floor_first else "engine first"
            print(
                f"  round {r + 1} ({order}): floor {floor:5.2f} s, canarytui whole deploy "
                f"{total:5.2f} s ({total / floor:.2f}x); the wave alone {wave:.2f} s "
                f"({hosts - 1} hosts); the engine's commands one exec each {same:5.2f} s "
                f"(canarytui {total / same:.2f}x that)"
            )
            print(
                "    where its time went (idle: the core-seconds the machine left idle): "
                + ", ".join(f"{k} {v}" for k, v in phases.items())
            )
            print(
                f"    the same deploy straight to the wave (no canary phase): {straight:5.2f} s "
                f"({straight / floor:.2f}x): "
                + ", ".join(f"{k} {v}" for k, v in straight_phases.items())
            )
            print(
                f"    the floor cost: {floor_used[0]}\n    canarytui cost: {engine_used[0]}"
                f"\n    its commands one exec each cost: {same_used[0]}"
            )
        print(f"  canarytui / floor, median of {rounds} rounds: {statistics.median(ratios):.2f}x")
        print(
            f"  canarytui straight to the wave / floor, median: "
            f"{statistics.median(straight_ratios):.2f}x (what the canary phase costs: its "
            "analysis's wait, and a barrier: every lock held before the canary changes)"
        )
        print(
            f"  canarytui / its own commands one exec each, median: "
            f"{statistics.median(same_ratios):.2f}x"
        )
        print("  " + machine_speed())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rtt", type=float, default=0.0, help="round trip to add, in ms")
    args = parser.parse_args()
    collect_less()  # as the canarytui process does (cli.main.run); the floors run here too
    asyncio.run(main(args.hosts, args.rounds, args.rtt))
