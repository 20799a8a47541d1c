"""Kill -9 a headless deploy at a chosen point, recover with the next processes, and say what
diverged (for tests/test_kill9_sshd.py and benches/kill9.py).

A point is "after the Nth JSON event line": the deploy runs with ``--json``, so each line is
an event already in the journal; the process is SIGKILLed as soon as line N is read. Then
``status`` and ``rollback`` run as new processes, and the hosts, the journal and the locks
are compared.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sshd_fleet import SshdFleet

from canarytui.journal import Journal

REPO = Path(__file__).resolve().parent.parent
LOCK = Path(".canarytui") / "lock.sshd-test.shop"


@dataclass
class Cli:
    code: int
    out: str
    err: str


@dataclass
class Recovery:
    """What one kill point left, after status and rollback."""

    point: int
    killed_after: str  # the kind of the last event read before the kill
    status: Cli
    rollback: Cli
    problems: list[str] = field(default_factory=list)


async def cli(*args: str, state_dir: Path, timeout: float = 120.0) -> Cli:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarytui",
        *args,
        cwd=REPO,
        env={**os.environ, "CANARYTUI_STATE_DIR": str(state_dir)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Cli(proc.returncode, out.decode(), err.decode())


async def deploy_killed_after(
    env: Path, version: str, state_dir: Path, lines: int | None, timeout: float = 120.0
) -> tuple[list[str], int | None]:
    """Run ``deploy --auto-promote --json``; SIGKILL it after ``lines`` event lines
    (None: let it finish). Returns the event kinds read and the exit status."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarytui",
        "deploy",
        str(env),
        version,
        "--auto-promote",
        "--json",
        cwd=REPO,
        env={**os.environ, "CANARYTUI_STATE_DIR": str(state_dir)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    kinds: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while lines is None or len(kinds) < lines:
                line = await proc.stdout.readline()
                if not line:
                    break
                kinds.append(str(json.loads(line).get("event")))
            if lines is not None and proc.returncode is None:
                proc.send_signal(signal.SIGKILL)
            await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return kinds, proc.returncode


def divergences(fleet: SshdFleet, state_dir: Path, stable: str) -> list[str]:
    """Every host on the version the journal says, no lock anywhere, all on ``stable``."""
    problems = []
    journal = Journal(state_dir)
    try:
        record = journal.last_deployment("sshd-test", "shop")
        recorded = journal.hosts(record.id) if record is not None else {}
        if record is not None and record.is_open:
            problems.append(f"deployment #{record.id} still open ({record.phase})")
    finally:
        journal.close()
    for host in fleet.hosts:
        running = fleet.version_on(host.name)
        if running != stable:
            problems.append(f"{host.name} runs {running}, not {stable}")
        rec = recorded.get(host.name)
        if rec is not None and rec.current is not None and rec.current != running:
            problems.append(f"{host.name}: journal says {rec.current}, host runs {running}")
        if (host.home / LOCK / "owner").exists():
            problems.append(f"{host.name}: lock left")
    locks = state_dir / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        problems.append(f"local lock left: {sorted(p.name for p in locks.iterdir())}")
    return problems


async def kill_and_recover(
    fleet: SshdFleet, env: Path, state_dir: Path, point: int, version: str, stable: str
) -> Recovery:
    kinds, _ = await deploy_killed_after(env, version, state_dir, point)
    status = await cli("status", str(env), state_dir=state_dir)
    rollback = await cli("rollback", str(env), state_dir=state_dir)
    recovery = Recovery(point, kinds[-1] if kinds else "-", status, rollback)
    for name, result in (("status", status), ("rollback", rollback)):
        if "Traceback" in result.err or "Traceback" in result.out:
            recovery.problems.append(f"{name} printed a traceback")
    if status.code != 0:
        recovery.problems.append(f"status exited {status.code}: {status.err.strip()[-200:]}")
    if rollback.code != 0 and "nothing to roll back" not in rollback.err:
        recovery.problems.append(f"rollback exited {rollback.code}: {rollback.err.strip()[-200:]}")
    recovery.problems += divergences(fleet, state_dir, stable)
    return recovery


def spread(total: int, count: int) -> list[int]:
    """``count`` kill points spread evenly over a run of ``total`` event lines."""
    if total <= 1:
        return [1]
    step = (total - 1) / max(1, count - 1)
    return sorted({max(1, min(total - 1, round(1 + i * step))) for i in range(count)})
