"""An idle fleet held open in the UI: controller CPU and remote commands per second.

    python benches/idle_fleet.py [--hosts 1000 5000] [--seconds 60]

For each fleet size, the UI runs headless with its monitor on and nothing deployed: the
hosts' versions are discovered once at start (one command per host, reported apart), then
the environment is held open for ``--seconds`` while the bench prints, per 10 s window, the
controller's CPU share of one core and the remote commands sent per second. The cost of
watching must grow with what is watched (the canaries, the host under the cursor), not
with the fleet: both figures stay flat from the smallest fleet to the largest.

The hosts are a counting fake at the SSH layer (``Fleet.run``, ``Fleet.run_steps`` and
``Fleet.stream`` answered in-process after ``--latency`` seconds): the demo fleet stops at
2,000 hosts, and 5,000 real servers in this process would measure the servers, not the
controller. A real command (a probe's check, metrics and, at rest, the host's version and
lock: one script, one command) also costs the controller ~3-5 ms of CPU for SSH itself
(DESIGN.md), which the fake does not: that cost is the commands per second printed times
those milliseconds.

``--env FILE ...`` holds real environments instead (the demo fleet served by another
process, ``python -m canarytui.demo --hosts N``, up to 2,000 hosts): the commands go over
SSH through the engine's own fleet, still counted, and the CPU then includes SSH's (the
handshakes, the keepalives of the connections held open). ``--merge`` holds those files
as one environment: three demo fleets (2,000 + 2,000 + 1,000) make 5,000 real hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_fleet import SIZE, write_env

from canarytui.ssh import Fleet
from canarytui.ssh.errors import CommandResult
from canarytui.ssh.fleet import OUTPUT_LIMIT

WINDOW = 10.0  # seconds per printed window
METRICS = """\
# TYPE app_requests_total counter
app_requests_total 1000
# TYPE app_requests_failed_total counter
app_requests_failed_total 3
"""


class CountingFleet(Fleet):
    """Counts every command; answers it in-process after ``latency`` seconds, or, with
    ``real``, sends it to the host over SSH as the engine's own fleet does."""

    def __init__(self, env: object, latency: float, real: bool = False) -> None:
        super().__init__(env)  # type: ignore[arg-type]
        self.latency = latency
        self.real = real
        self.commands = 0
        self.streams = 0
        self.hosts_asked: set[str] = set()

    async def run(
        self, name: str, command: str, timeout: float | None = None, *, limit: int = 0
    ) -> CommandResult:
        self.commands += 1
        self.hosts_asked.add(name)
        if self.real:
            return await super().run(name, command, timeout, limit=limit or OUTPUT_LIMIT)
        await asyncio.sleep(self.latency)
        return self._answer(command)

    async def run_steps(
        self,
        name: str,
        steps: Sequence[tuple[str, float | None]],
        done: Callable[[int, CommandResult], None],
        **options: Any,
    ) -> None:
        """Several commands as one script (a probe's): one command sent."""
        self.commands += 1
        self.hosts_asked.add(name)
        if self.real:
            return await super().run_steps(name, steps, done, **options)
        await asyncio.sleep(self.latency)
        for i, (command, _timeout) in enumerate(steps):
            done(i, self._answer(command))
        return None

    def _answer(self, command: str) -> CommandResult:
        if "CANARYTUI-CURRENT" in command:  # the version and the lock, asked at rest
            return CommandResult(0, "CANARYTUI-CURRENT\n1.0.0\n", "", self.latency)
        if "VERSION" in command:
            return CommandResult(0, "1.0.0\n", "", self.latency)
        if "metrics" in command:
            return CommandResult(0, METRICS, "", self.latency)
        return CommandResult(0, "", "", self.latency)

    async def stream(self, name: str, command: str) -> AsyncIterator[str]:
        self.commands += 1
        self.streams += 1
        if self.real:
            async for line in super().stream(name, command):
                yield line
            return
        await asyncio.Event().wait()  # a log that prints nothing, until stopped
        yield ""


async def hold(
    hosts: int, seconds: float, latency: float, env_path: Path | None = None
) -> dict[str, object]:
    from canarytui.config import load_env
    from canarytui.engine import Engine
    from canarytui.journal import Journal
    from canarytui.ui.app import CanaryApp

    folder = Path(tempfile.mkdtemp(prefix="canarytui-idle-"))
    env = load_env(env_path or write_env(folder, hosts))
    hosts = len(env.hosts)
    journal = Journal(folder / "state")
    fleet = CountingFleet(env, latency, real=env_path is not None)
    engine = Engine(env, journal, user="bench", fleet=fleet)
    app = CanaryApp(env, journal, engine=engine, monitor=True)
    out: dict[str, object] = {"hosts": hosts}
    # Discovery: every host's version once, from the app's start; bounded wait.
    started = time.perf_counter()
    cpu0 = time.process_time()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        deadline = started + 300.0
        names = env.host_names
        while time.perf_counter() < deadline:
            if all(engine.versions.get(n) for n in names):
                break
            await asyncio.sleep(0.2)
        out["discovery_s"] = time.perf_counter() - started
        out["discovery_cpu_s"] = time.process_time() - cpu0
        out["discovery_commands"] = fleet.commands
        out["discovered"] = sum(1 for n in names if engine.versions.get(n))
        await asyncio.sleep(2.0)  # let the last discovery batch settle in the UI

        # Held open, nothing deployed.
        windows: list[tuple[float, float]] = []
        held0 = (time.process_time(), time.perf_counter(), fleet.commands)
        fleet.hosts_asked.clear()
        end = held0[1] + seconds
        while time.perf_counter() < end - 0.5:
            c0, w0, n0 = time.process_time(), time.perf_counter(), fleet.commands
            await asyncio.sleep(min(WINDOW, end - w0))
            c1, w1, n1 = time.process_time(), time.perf_counter(), fleet.commands
            windows.append(((c1 - c0) / (w1 - w0), (n1 - n0) / (w1 - w0)))
        c1, w1, n1 = time.process_time(), time.perf_counter(), fleet.commands
        out["cpu_share"] = (c1 - held0[0]) / (w1 - held0[1])
        out["commands_per_s"] = (n1 - held0[2]) / (w1 - held0[1])
        out["windows"] = windows
        out["hosts_probed"] = len(fleet.hosts_asked)
        out["streams"] = fleet.streams
        out["open_connections"] = fleet.open_connections
        await app.close_engine()
    journal.close()
    shutil.rmtree(folder, ignore_errors=True)  # its env file and journal, read
    return out


def merge_envs(paths: list[Path]) -> Path:
    """One environment file holding the hosts of several (demo fleets served apart)."""
    import yaml

    docs = [yaml.safe_load(path.read_text()) for path in paths]
    merged = docs[0]
    folder = Path(tempfile.mkdtemp(prefix="canarytui-idle-merged-"))
    known = folder / "known_hosts"
    known.write_text("".join(Path(d["ssh"]["known_hosts"]).read_text() for d in docs))
    merged["ssh"]["known_hosts"] = str(known)
    merged["ssh"]["identity_files"] = [f for d in docs for f in d["ssh"]["identity_files"]]
    merged["hosts"] = [
        {**h, "name": f"f{i}-{h['name']}"} for i, d in enumerate(docs) for h in d["hosts"]
    ]
    canary = merged.get("canary") or {}
    canary["hosts"] = [f"f0-{name}" for name in canary.get("hosts", [])]
    path = folder / "merged.yaml"
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--seconds", type=float, default=60.0, help="time held open per size")
    p.add_argument("--latency", type=float, default=0.002, help="fake round trip (s)")
    p.add_argument(
        "--env",
        type=Path,
        nargs="+",
        help="real environment files instead of the fake (e.g. the demo fleet's, "
        "python -m canarytui.demo --hosts N): commands go over SSH, still counted",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="hold the --env files as one environment (their hosts renamed apart, their "
        "keys and known_hosts together): 5,000 real hosts from three demo fleets",
    )
    args = p.parse_args(argv)
    if args.merge and args.env:
        args.env = [merge_envs(args.env)]
    print(
        f"canarytui idle bench: held {args.seconds:g} s per size, monitor on, nothing "
        f"deployed, "
        + (
            "real SSH (counted)"
            if args.env
            else f"counting fake SSH ({args.latency * 1000:g} ms per command)"
        )
        + ", "
        f"python {sys.version.split()[0]}"
    )
    results = []
    runs = [(0, path) for path in args.env] if args.env else [(n, None) for n in args.hosts]
    for size, path in runs:
        r = asyncio.run(hold(size, args.seconds, args.latency, path))
        hosts = r["hosts"]
        gc.collect()
        results.append(r)
        windows = r["windows"]
        assert isinstance(windows, list)
        cpus = [w[0] for w in windows]
        rates = [w[1] for w in windows]
        print(
            f"  {hosts:>5} hosts: discovery {r['discovered']}/{hosts} hosts in "
            f"{r['discovery_s']:.2f} s ({r['discovery_commands']} commands, "
            f"{r['discovery_cpu_s']:.2f} s CPU, app start included)"
        )
        print(
            f"         held: CPU {r['cpu_share']:.1%} of one core "
            f"(windows {min(cpus):.1%}-{max(cpus):.1%}), "
            f"{r['commands_per_s']:.1f} commands/s "
            f"(windows {min(rates):.1f}-{max(rates):.1f}), "
            f"{r['hosts_probed']} hosts asked, {r['streams']} log streams; last window "
            f"CPU {cpus[-1]:.1%}; {r['open_connections']} connections open at the end"
        )
    failed = 0
    if len(results) > 1:
        small, large = results[0], results[-1]
        cpu_ratio = float(large["cpu_share"]) / max(1e-9, float(small["cpu_share"]))  # type: ignore[arg-type]
        cmd_ratio = float(large["commands_per_s"]) / max(1e-9, float(small["commands_per_s"]))  # type: ignore[arg-type]
        fleet_ratio = int(large["hosts"]) / int(small["hosts"])  # type: ignore[call-overload]
        flat_cmd = cmd_ratio <= 1.25
        flat_cpu = cpu_ratio <= 1.5
        failed = (not flat_cmd) + (not flat_cpu)
        print(
            f"  {small['hosts']} -> {large['hosts']} hosts (x{fleet_ratio:g}): commands/s "
            f"x{cmd_ratio:.2f} {'ok ' if flat_cmd else 'MISS'} (target <= x1.25), CPU "
            f"x{cpu_ratio:.2f} {'ok ' if flat_cpu else 'MISS'} (target <= x1.5)"
        )
        rates = [float(r["commands_per_s"]) for r in results]  # type: ignore[arg-type]
        print(
            f"  commands/s by size: {', '.join(f'{x:.1f}' for x in rates)}; "
            f"median {statistics.median(rates):.1f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
