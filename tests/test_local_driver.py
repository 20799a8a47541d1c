"""Who drives an open deployment on this machine, from its local lock: a process killed
and not yet reaped (a zombie), or a pid given to another process since (after a crash or
a reboot), is no driver, so the deployment is offered to go on, not refused as driven."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cut_off, engine_for

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import locks
from canarytui.journal.records import machine_name


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process of this machine that is no canarytui, ended after the test."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def state_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[0]


def identity(pid: int) -> dict[str, object]:
    """The boot and the start (clock ticks since boot) of a process, as ``/proc`` has them."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return {"boot": boot, "started": int(stat[stat.rindex(")") + 2 :].split()[19])}


def owner(pid: int, **written: object) -> dict[str, object]:
    """A local lock as a process ``pid`` of this machine wrote it (``written``: its boot
    and start as it recorded them; a lock of an earlier canarytui has neither)."""
    return {
        "token": "t0ken",
        "machine": machine_name(),
        "pid": pid,
        "since": time.time(),
        **written,
    }


def test_the_process_that_wrote_the_lock_drives_it(sleeper: subprocess.Popen[bytes]) -> None:
    assert locks.driving_elsewhere(owner(sleeper.pid, **identity(sleeper.pid)), machine_name())
    # A lock that does not say which process wrote it: a live pid is taken as its writer.
    assert locks.driving_elsewhere(owner(sleeper.pid), machine_name())


def test_a_pid_given_to_another_process_since_is_no_driver(
    sleeper: subprocess.Popen[bytes],
) -> None:
    """The same number, another process: started at another time, or in another boot."""
    now = identity(sleeper.pid)
    earlier = {**now, "started": int(str(now["started"])) - 100}
    assert not locks.driving_elsewhere(owner(sleeper.pid, **earlier), machine_name())
    other_boot = {**now, "boot": "00000000-0000-0000-0000-000000000000"}
    assert not locks.driving_elsewhere(owner(sleeper.pid, **other_boot), machine_name())


def test_a_lock_written_here_names_its_process() -> None:
    path = Path(tempfile.mkdtemp()) / "lock"
    locks.acquire_local(path, locks.Owner("t0ken", 1, "1.1.0", "ops", machine_name()))
    held = json.loads(path.read_text())
    assert {k: held[k] for k in ("pid", "boot", "started")} == {
        "pid": os.getpid(),
        **identity(os.getpid()),
    }


def test_a_killed_process_not_yet_reaped_is_no_driver() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        proc.kill()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # ended, left unreaped
        assert state_of(proc.pid) == "Z"
        written = identity(proc.pid)
        assert not locks.driving_elsewhere(owner(proc.pid, **written), machine_name())
    finally:
        proc.wait(timeout=10)


async def test_a_deployment_whose_driver_pid_was_reused_goes_on(
    demo: DemoFleet, state_dir: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """Killed in its analysis, then the machine restarted: the local lock names a pid that
    another process has now. The deployment is offered to go on (analysed again)."""
    first = engine_for(demo.env_path, state_dir)
    try:
        await cut_off(first.deploy("1.1.0"), lambda: first.phase is ev.Phase.ANALYSIS)
    finally:
        await first.fleet.close()
    record = first.journal.open_deployment("demo", "shop")
    assert record is not None
    # As kill -9 leaves it (no release), its pid now another process's (this one's start
    # is not the one the lock recorded).
    path = locks.local_lock_path(state_dir, "demo", "shop")
    written = {**identity(sleeper.pid), "started": 1}
    path.write_text(json.dumps({**owner(sleeper.pid, **written), "token": record.token}))
    later = engine_for(demo.env_path, state_dir)
    try:
        assert later.driven_elsewhere(record) is None
        assert await asyncio.wait_for(later.promote(), 60) is ev.Outcome.COMPLETE
    finally:
        await later.fleet.close()
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
