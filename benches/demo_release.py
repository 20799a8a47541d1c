"""A real release to a demo fleet through the command line: the engine's overhead, CPU, RSS.

    python benches/demo_release.py --hosts 1000 [--pause 1] [--bare-steps] [--profile]

Starts the demo fleet as its own process (``canarytui demo --serve --hosts N``; above the
CLI's 500, the same server through ``python -m canarytui.demo --hosts N``), then runs
``canarytui deploy ENV 1.1.0 --auto-promote --json`` against it as a second process, and
prints:

- the machine's speed, before and after (a process started by a shell, a stretch of
  Python): runs on other days compare through it;
- the time until the fleet's env file path is printed;
- the deploy's exit status and wall time, and each phase's time (the events' timestamps);
- the time in analysis (``analysis_started`` to ``verdict``: the demo's ``duration``, 15 s)
  and in pauses (``promote.pause``: ``manual`` in the demo file, which the CLI does not
  wait for; ``--pause 1`` writes a copy of the file with a timed pause of 1 s);
- the engine's overhead: wall minus analysis minus pauses (quality bar at 1,000 hosts: < 10 s),
  and how much of it the steps' own run time is (the demo's install step sleeps 0.2 s on
  every host; ``--bare-steps`` writes a copy of the file without that sleep);
- the deploy process's CPU (user + sys) and peak RSS (``os.wait4``; the traffic hooks it
  runs are its children and count in its CPU), and the demo server's CPU over the same span
  (``/proc/PID/stat``: its own, and that of the shells it ran for the commands);
- where the time went, phase by phase (start-up and locks, canary, analysis, waves, the
  locks' release, the exit): the machine's busy and idle core-seconds (``/proc/stat``), the
  deploy's CPU (its traffic hooks included) and the demo server's, and the rest of the busy
  time: the hosts' shells and their commands, mostly (a shell's CPU is counted in the
  server's only once it ends, so it is not told apart per phase). Idle cores while hosts
  are worked on say the time went to waiting (a step's own sleep, a round trip), not CPU;
  and over the phases that count as overhead, the fleet's work (server and shells) against
  the deploy's, with the time the fleet's alone takes on this machine's cores: the
  overhead cannot go under it here, however little the engine does; and the time this
  machine's hypervisor took from it meanwhile (steal: a run with much of it is not
  comparable with others);
- the hosts on the new version afterwards, how long Ctrl-C takes to stop the fleet, and
  the SSH connections and sessions the fleet served (more connections than hosts: some
  were closed and opened again);
- the floor, side by side (``--no-floor`` skips it): the same work on the same fleet by
  bare asyncssh in this process, one connection per host, one exec per command, the same
  50 hosts at once, no barrier, no analysis, no journal, no traffic hooks: the lock with
  version discovery, the three steps, the health check, the release, for 1.2.0; with the
  demo server's and its shells' CPU meanwhile. On a machine whose cores the fleet shares,
  it says how much of the overhead is the fleet's own work.
  Then what the lock phase cannot go under: connecting alone to every host, and connecting
  with one session each (the deploy opens one a host, the kept shell), 50 at once.

``--profile`` runs the deploy and the demo server under ``python -m cProfile`` and prints
the top 20 functions of each by cumulative and by own time (the server's cover its whole
run; profiling adds its own cost to every figure above).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import canarytui  # noqa: F401, E402 (first: it quiets asyncssh's DSA warnings)

# isort: split
import asyncssh  # noqa: E402

from canarytui.config import Environment, load_env, render  # noqa: E402
from canarytui.demo.app import read_version  # noqa: E402
from canarytui.engine import lockscripts  # noqa: E402
from canarytui.engine.locks import Owner  # noqa: E402

CLI_MAX_HOSTS = 500  # `canarytui demo --hosts` refuses more; the demo module takes 2,000
PARALLEL = 50  # the demo file's ssh.max_parallel
TICKS = os.sysconf("SC_CLK_TCK")


def start_fleet(
    hosts: int, env: dict[str, str], profile: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    """The demo fleet in its own process, and the path of its env file once it is up."""
    if profile:
        command = ["-m", "cProfile", "-o", profile, "-m", "canarytui.demo", "--hosts", str(hosts)]
    elif hosts <= CLI_MAX_HOSTS:
        command = ["-m", "canarytui", "demo", "--serve", "--hosts", str(hosts)]
    else:
        command = ["-m", "canarytui.demo", "--hosts", str(hosts)]
    started = time.perf_counter()
    fleet = subprocess.Popen(
        [sys.executable, *command], stdout=subprocess.PIPE, text=True, env=env, cwd=PROJECT_ROOT
    )
    assert fleet.stdout is not None
    env_path = fleet.stdout.readline().strip()
    if not env_path:
        raise SystemExit(f"the demo fleet did not start (exit {fleet.wait()})")
    up = time.perf_counter() - started
    print(f"demo fleet of {hosts} hosts: env file printed after {up:.2f} s ({env_path})")
    return fleet, env_path


def with_pause(env_path: str, pause: float) -> str:
    """A copy of the env file with a timed ``promote.pause`` instead of ``manual``."""
    text = Path(env_path).read_text(encoding="utf-8")
    text, found = re.subn(r"(?m)^  pause: manual", f"  pause: {pause:g}s", text)
    if found != 1:
        raise SystemExit(f"no 'pause: manual' in {env_path}")
    copy = Path(env_path).with_name("bench-env.yaml")
    copy.write_text(text, encoding="utf-8")
    return str(copy)


def without_step_sleep(env_path: str) -> str:
    """A copy of the env file whose install step does not sleep (the demo's 0.2 s of
    "work" per host): what is left of the waves is the engine's and SSH's own."""
    text = Path(env_path).read_text(encoding="utf-8")
    text, found = re.subn(r" && sleep 0\.2", "", text)
    if not found:
        raise SystemExit(f"no install sleep in {env_path}")
    copy = Path(env_path).with_name("bare-steps.yaml")
    copy.write_text(text, encoding="utf-8")
    return str(copy)


def cpu_of(pid: int) -> tuple[float, float]:
    """CPU seconds of a live process: its own, and its reaped children's (utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    own = int(fields[11]) + int(fields[12])
    children = int(fields[13]) + int(fields[14])
    return own / TICKS, children / TICKS


def _cpu_ticks(stat: str | None) -> list[int]:
    """The machine's line of /proc/stat (``stat``: its text, if read already): user, nice,
    system, idle, iowait, irq, softirq, steal."""
    stat = Path("/proc/stat").read_text() if stat is None else stat
    return [int(x) for x in stat.split("\n", 1)[0].split()[1:9]]


def machine_cpu(stat: str | None = None) -> tuple[float, float]:
    """The machine's busy and idle (idle + iowait) core-seconds since boot. Time the
    hypervisor took from this machine (steal) is neither: no process here used it."""
    ticks = _cpu_ticks(stat)[:7]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / TICKS, idle / TICKS


def machine_steal(stat: str | None = None) -> float:
    """Core-seconds the hypervisor has taken from this machine since boot (steal): a run
    with much of it ran on a slower machine than the one its figures describe."""
    return _cpu_ticks(stat)[7] / TICKS


def machine_speed() -> str:
    """This machine's speed now, in the units a release spends: a process started by a
    shell and reaped (fork, exec, exit: what a host's step costs), and a stretch of pure
    Python (what the controller and the demo server cost). Runs of a bench on different
    days compare through these: this VM's speed was seen to move by 1.5x between days."""
    count = 300
    loop = f"i=0; while [ $i -lt {count} ]; do /bin/true; i=$((i + 1)); done"
    started = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", loop], check=True)
    process = (time.perf_counter() - started) / count * 1000
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    python = time.perf_counter() - started
    return (
        f"the machine now: a process from a shell {process:.2f} ms, "
        f"5M Python additions {python:.2f} s"
    )


# The events that end a phase of the deploy, and the phase they end.
PHASE_ENDS = {
    "deployment_started": "start-up, lock + discovery",
    "analysis_started": "canary",
    "verdict": "analysis",
    "deployment_finished": "waves",
    "result": "the locks' release",
}


class PhaseUsage:
    """The machine's and both processes' CPU at each phase's end (``mark``)."""

    def __init__(self, deploy_pid: int, fleet_pid: int) -> None:
        self.deploy_pid, self.fleet_pid = deploy_pid, fleet_pid
        self.marks: list[tuple[str, float, float, float, float, float]] = []
        self.steal: list[float] = []  # steal at each mark
        self.mark("")

    def mark(self, phase: str, deploy: float | None = None) -> None:
        """``deploy``: its CPU once it has exited (its rusage), else read from /proc."""
        stat = Path("/proc/stat").read_text()  # once: the machine's CPU and its steal
        busy, idle = machine_cpu(stat)
        self.steal.append(machine_steal(stat))
        if deploy is None:
            deploy = sum(cpu_of(self.deploy_pid))  # its own and its reaped hooks'
        self.marks.append(
            (phase, time.perf_counter(), busy, idle, deploy, cpu_of(self.fleet_pid)[0])
        )

    def print(self) -> None:
        print(
            "  where the time went (core-seconds; the rest: the hosts' shells, mostly):\n"
            f"  {'phase':<28} {'wall':>6} {'busy':>6} {'idle':>6} {'deploy':>7} "
            f"{'server':>7} {'rest':>6}"
        )
        for before, after in zip(self.marks, self.marks[1:], strict=False):
            wall, busy, idle, deploy, server = (
                b - a for a, b in zip(before[1:], after[1:], strict=True)
            )
            rest = busy - deploy - server
            print(
                f"  {after[0]:<28} {wall:6.2f} {busy:6.2f} {idle:6.2f} {deploy:7.2f} "
                f"{server:7.2f} {rest:6.2f}"
            )
        self.print_bound()

    def print_bound(self) -> None:
        """What the fleet's own work (its server and the hosts' shells) in the phases that
        count as overhead (all but the analysis) leaves the engine on this machine: its
        cores do that work however little the engine does."""
        fleet = engine = 0.0
        for before, after in zip(self.marks, self.marks[1:], strict=False):
            if after[0] == PHASE_ENDS["verdict"]:
                continue
            busy, deploy = after[2] - before[2], after[4] - before[4]
            fleet += busy - deploy
            engine += deploy
        cores = os.cpu_count() or 1
        print(
            f"  in the phases that count as overhead: the fleet's work (server and shells) "
            f"{fleet:.2f} core-s, the deploy's {engine:.2f}; on this machine's {cores} cores "
            f"the fleet's alone takes {fleet / cores:.2f} s"
        )
        print(
            f"  taken from this machine by its hypervisor meanwhile (steal, in none of the "
            f"above): {self.steal[-1] - self.steal[0]:.2f} core-s"
        )


def run_deploy(
    env_path: str, env: dict[str, str], profile: str | None, fleet_pid: int
) -> tuple[int, float, list[dict[str, Any]], Any, tuple[float, float], PhaseUsage]:
    """The deploy as a child process: exit status, wall time, events, rusage, the times
    from its last event to its result line and from that line to its exit, and the CPU
    used phase by phase."""
    runner = ["-m", "cProfile", "-o", profile] if profile else []
    command = [sys.executable, *runner, "-m", "canarytui", "deploy", env_path, "1.1.0"]
    t0 = time.perf_counter()
    deploy = subprocess.Popen(
        [*command, "--auto-promote", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    assert deploy.stdout is not None
    used = PhaseUsage(deploy.pid, fleet_pid)
    lines, arrived = [], []
    for line in deploy.stdout:
        lines.append(line)
        arrived.append(time.perf_counter())
        if line.startswith('{"event": "'):
            phase = PHASE_ENDS.get(line[11 : line.find('"', 11)])
            if phase is not None:
                used.mark(phase)
    _, status, usage = os.wait4(deploy.pid, 0)
    wall = time.perf_counter() - t0
    used.mark("the exit", usage.ru_utime + usage.ru_stime)
    deploy.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    events = [json.loads(line) for line in lines if line.startswith("{")]
    # The result line comes after the hosts' locks are released (no event says so).
    timed = [i for i, e in enumerate(events) if "at" in e]
    to_result = arrived[-1] - arrived[timed[-1]] if timed and len(arrived) == len(events) else 0
    tail = time.perf_counter() - (arrived[-1] if arrived else t0)
    return deploy.returncode, wall, events, usage, (to_result, tail), used


def print_phases(events: list[dict[str, Any]], epoch: float, hosts: int) -> None:
    """Each phase's time, from the events' own timestamps."""
    phases = [(e["at"], e["phase"], e.get("wave")) for e in events if e["event"] == "phase"]
    first = next(e["at"] for e in events if e["event"] == "deployment_started")
    print(f"  start-up, lock + version discovery on {hosts} hosts: {first - epoch:.2f} s")
    if phases:
        print(f"  {'started, until a phase':<24} {phases[0][0] - first:7.2f} s")
    timed = [e for e in events if "at" in e]
    for (at, phase, wave), nxt in zip(
        phases, [*phases[1:], (timed[-1]["at"], "", None)], strict=True
    ):
        label = f"{phase} {wave}" if wave else phase
        print(f"  {label:<24} {nxt[0] - at:7.2f} s")


def analysis_and_pauses(events: list[dict[str, Any]], pause: float) -> tuple[float, float]:
    """Seconds in analysis (analysis_started to verdict) and in timed pauses (their notices)."""
    started = [e["at"] for e in events if e["event"] == "analysis_started"]
    verdicts = [e["at"] for e in events if e["event"] == "verdict"]
    analysis = sum(v - s for s, v in zip(started, verdicts, strict=False))
    paused = sum(
        1 for e in events if e["event"] == "notice" and "(promote.pause)" in e.get("message", "")
    )
    return analysis, paused * pause


def release_commands(
    env: Environment, name: str, version: str, owner: Owner, previous: str = ""
) -> list[str]:
    """What the engine's release sends one host, as separate commands (the floors of this
    bench and of ``fanout.py``): the lock with version discovery, the steps, the health
    check, the unlock."""
    values = env.placeholders(name, version, previous)
    current = render(env.deploy.current, env.placeholders(name))
    return [
        lockscripts.acquire_command(env.app, env.name, owner, current),
        *(render(step.run, values) for step in env.deploy.steps),
        render(env.health.check, values),
        lockscripts.release_command(env.app, env.name, owner.token),
    ]


async def each_host(
    env: Environment, work: Callable[[str, asyncssh.SSHClientConnection], Awaitable[bool]]
) -> tuple[float, int]:
    """``work`` on every host of ``env`` by bare asyncssh, one connection per host, 50 at
    once (wall, hosts whose work returned True)."""
    known = asyncssh.read_known_hosts(str(env.resolve_path(env.ssh.known_hosts)))
    keys = [asyncssh.read_private_key(str(env.resolve_path(p))) for p in env.ssh.identity_files]
    slots = asyncio.Semaphore(PARALLEL)

    async def one(name: str) -> bool:
        host = env.host(name)
        async with slots:
            async with asyncssh.connect(
                host.address,
                port=host.port,
                username=host.user or env.ssh.user,
                known_hosts=known,
                client_keys=keys,
            ) as conn:
                return await work(name, conn)

    started = time.perf_counter()
    done = await asyncio.gather(*(one(h.name) for h in env.hosts))
    return time.perf_counter() - started, sum(done)


async def bare_release(env: Environment, version: str) -> tuple[float, int]:
    """The floor: the release's commands by bare asyncssh, each host on its own (wall, hosts
    that ran every command with exit 0)."""
    owner = Owner("f" * 32, 0, version, "bench", "bench")

    async def release(name: str, conn: asyncssh.SSHClientConnection) -> bool:
        for command in release_commands(env, name, version, owner, previous="1.1.0"):
            if (await conn.run(command)).exit_status != 0:
                return False
        return True

    return await each_host(env, release)


async def connected(_name: str, _conn: asyncssh.SSHClientConnection) -> bool:
    return True


async def one_session(_name: str, conn: asyncssh.SSHClientConnection) -> bool:
    return (await conn.run("true")).exit_status == 0


def print_floor(env_path: str, fleet_pid: int, hosts: int, overhead: float) -> None:
    env = load_env(Path(env_path))  # read once, for the floor and the lock's floor below
    before = cpu_of(fleet_pid)
    usage = os.times()
    wall, ok = asyncio.run(bare_release(env, "1.2.0"))
    after = cpu_of(fleet_pid)
    ended = os.times()
    own, shells = (b - a for a, b in zip(before, after, strict=True))
    cpu = ended.user + ended.system - usage.user - usage.system
    print(
        f"floor: bare asyncssh, the same commands (lock, 3 steps, health, release) on "
        f"{hosts} hosts, {PARALLEL} at once: {wall:.2f} s ({ok} of {hosts} passed); "
        f"engine overhead / floor: {overhead / wall:.2f}x"
    )
    print(
        f"  its CPU {cpu:.2f} s; demo server CPU meanwhile {own:.2f} s, its shells {shells:.2f} s"
    )
    # What the lock phase cannot go under: it connects to every host and opens one session
    # there (the kept shell its lock script, steps and unlock go down).
    for what, work in (("connecting alone", connected), ("connecting + one session", one_session)):
        before = cpu_of(fleet_pid)
        wall, ok = asyncio.run(each_host(env, work))
        own, shells = (b - a for a, b in zip(before, cpu_of(fleet_pid), strict=True))
        print(
            f"  {what} ({ok} of {hosts} hosts, {PARALLEL} at once): {wall:.2f} s; demo server "
            f"CPU {own:.2f} s, its shells {shells:.2f} s"
        )


def print_profile(path: str, what: str) -> None:
    for order in ("cumulative", "tottime"):
        print(f"\n--- {what} profile: top 20 by {order}")
        stats = pstats.Stats(path, stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(20)


def main(
    hosts: int, pause: float | None, profile: bool, bare_steps: bool = False, floor: bool = True
) -> int:
    print(machine_speed())
    state = tempfile.mkdtemp(prefix="canarytui-bench-state-")
    env = dict(os.environ, CANARYTUI_STATE_DIR=state)
    fleet_profile = os.path.join(state, "fleet.prof") if profile else None
    fleet, env_path = start_fleet(hosts, env, fleet_profile)
    profile_path = os.path.join(state, "deploy.prof") if profile else None
    try:
        if pause is not None:
            env_path = with_pause(env_path, pause)
        if bare_steps:
            env_path = without_step_sleep(env_path)
        fleet_before = cpu_of(fleet.pid)
        epoch = time.time()
        code, wall, events, usage, (to_result, tail), used = run_deploy(
            env_path, env, profile_path, fleet.pid
        )
        fleet_after = cpu_of(fleet.pid)
        print(f"deploy 1.1.0 --auto-promote: exit {code} in {wall:.2f} s")
        if not any(e["event"] == "deployment_started" for e in events):
            return 1  # refused before it began: its reason is on stderr above
        print_phases(events, epoch, hosts)
        print(f"  last event to the result line (the locks' release): {to_result:.2f} s")
        print(f"  result line to the process's exit: {tail:.2f} s")
        analysis, paused = analysis_and_pauses(events, pause or 0.0)
        overhead = wall - analysis - paused
        print(f"  analysis {analysis:.2f} s, pauses {paused:.2f} s")
        print(f"  engine overhead (wall - analysis - pauses): {overhead:.2f} s (bar: < 10 s)")
        steps = sum(e.get("duration") or 0.0 for e in events if e["event"] == "step")
        print(
            f"  of which the steps' own run time: {steps:.1f} host-seconds, "
            f"{steps / PARALLEL:.2f} s at {PARALLEL} hosts at once"
        )
        cpu = usage.ru_utime + usage.ru_stime
        print(
            f"  deploy process CPU {cpu:.2f} s (user {usage.ru_utime:.2f}, sys "
            f"{usage.ru_stime:.2f}), peak RSS {usage.ru_maxrss / 1024:.0f} MB"
        )
        own, shells = (b - a for a, b in zip(fleet_before, fleet_after, strict=True))
        print(f"  demo server CPU meanwhile: {own:.2f} s, its commands' shells {shells:.2f} s")
        used.print()
        sandboxes = Path(env_path).parent / "hosts"
        done = sum(read_version(s) == "1.1.0" for s in sandboxes.iterdir())
        print(f"  hosts on 1.1.0 after (their current/VERSION): {done} of {hosts}")
        if floor:
            print_floor(env_path, fleet.pid, hosts, overhead)
        if profile_path:
            print_profile(profile_path, "deploy process")
    finally:
        t1 = time.perf_counter()
        fleet.send_signal(signal.SIGINT)
        rest, _ = fleet.communicate(timeout=60)
        print(f"Ctrl-C: fleet exited {fleet.returncode} after {time.perf_counter() - t1:.2f} s")
        # "demo fleet stopped after N SSH connections and M sessions": all of them the
        # deploy's, since nothing else used the fleet.
        print("  " + (rest.strip().splitlines() or ["(the fleet said nothing)"])[-1])
    print(machine_speed())
    if fleet_profile:
        print_profile(fleet_profile, "demo server (its whole run)")
    shutil.rmtree(state, ignore_errors=True)  # the release's journal (and profiles), read
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--pause", type=float, help="a timed promote.pause, in seconds")
    parser.add_argument(
        "--profile", action="store_true", help="the deploy and the demo server under cProfile"
    )
    parser.add_argument(
        "--bare-steps", action="store_true", help="the demo's install step without its sleep"
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the bare asyncssh floor afterwards"
    )
    args = parser.parse_args()
    raise SystemExit(main(args.hosts, args.pause, args.profile, args.bare_steps, not args.no_floor))
