"""Shared fixtures: the embedded demo fleet (in-process asyncssh servers), a real OpenSSH
fleet (tests/sshd_fleet.py), isolated state dirs, and a bounded CLI runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sshd_fleet import sshd_fleet

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.journal import Journal

__all__ = ["sshd_fleet"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test ever reads or writes the user's real state dir."""
    state = tmp_path / "state"
    monkeypatch.setenv("CANARYTUI_STATE_DIR", str(state))
    return state


@pytest.fixture
def state_dir(_isolated_state: Path) -> Path:
    return _isolated_state


@contextlib.asynccontextmanager
async def demo_fleet(traffic: float = 12.0) -> AsyncIterator[DemoFleet]:
    """Six demo hosts with a 2 s analysis, started and stopped (bounded)."""
    fleet = DemoFleet(hosts=6, analysis_duration=2.0, interval=0.25, tick=0.25, traffic=traffic)
    await asyncio.wait_for(fleet.start(), 30)
    try:
        yield fleet
    finally:
        await asyncio.wait_for(fleet.stop(), 30)


@pytest.fixture
async def demo() -> AsyncIterator[DemoFleet]:
    """Six demo hosts with a short analysis, busy enough (~1,200 requests a host in 2 s)
    that a good release never fails on noise."""
    async with demo_fleet() as fleet:
        yield fleet


def edit_env(src: Path, dest: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of an environment file with some keys changed."""
    data = yaml.safe_load(src.read_text())
    edit(data)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def switch_to(fleet: DemoFleet, name: str, version: str) -> None:
    """Put a demo host on ``version`` by hand: its release folder, and its ``current``
    link replaced at once (as a deployment done outside canarytui would)."""
    sandbox = fleet.sandbox_of(name)
    release = sandbox / "releases" / version
    release.mkdir(parents=True, exist_ok=True)
    (release / "VERSION").write_text(version + "\n")
    link = sandbox / "current.by-hand"
    link.symlink_to(Path("releases") / version)
    link.replace(sandbox / "current")


def engine_for(env_path: Path, state_dir: Path, user: str | None = None) -> Engine:
    return Engine(load_env(env_path), Journal(state_dir), user=user)


async def release_leaving_a_lock(demo: DemoFleet, state_dir: Path, host: str) -> ev.Outcome:
    """Deploy 1.1.0 to the demo (auto-promoted) with ``host`` going down as its locks are
    released: the deployment ends, and ``host`` keeps the lock it could not free."""
    engine = engine_for(demo.env_path, state_dir)
    release = engine.locks.release

    async def down_first(token: str) -> None:
        await demo.set_fault(host, "down")
        await release(token)

    engine.locks.release = down_first  # type: ignore[method-assign]
    try:
        return await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


async def run_cli(
    *args: str,
    timeout: float = 60.0,
    state_dir: Path | None = None,
    started: Callable[[asyncio.subprocess.Process], Any] | None = None,
    stderr: int = asyncio.subprocess.PIPE,
    stdout: int = asyncio.subprocess.PIPE,
    stdin: int | None = None,
) -> CliResult:
    """Run ``python -m canarytui ARGS`` as a separate process (a second operator).
    ``stderr``, ``stdout``: where they go instead of ``err``, ``out`` (a terminal's
    descriptor); ``stdin``: what it reads (this process's own if None)."""
    env = dict(os.environ)
    if state_dir is not None:
        env["CANARYTUI_STATE_DIR"] = str(state_dir)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarytui",
        *args,
        cwd=REPO,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
    )
    if started is not None:
        await started(proc)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode() if out else "", err.decode() if err else "")


@contextlib.asynccontextmanager
async def driven_elsewhere(lock: Path, record: Any) -> AsyncIterator[int]:
    """The open deployment ``record`` driven by another process of this machine: the local
    lock (``lock``) names a live process, as a UI's or a CLI run's does. Yields its pid."""
    driver = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "input()", stdin=asyncio.subprocess.PIPE
    )
    try:
        owner = {"token": record.token, "deployment": record.id, "version": record.version}
        owner.update(user="ops", machine=record.machine, pid=driver.pid, since=time.time())
        _write(lock, json.dumps(owner))
        yield driver.pid
    finally:
        driver.kill()
        await asyncio.wait_for(driver.wait(), 10)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def dead_pid() -> int:
    """The pid of a process that ended (and was reaped): it names no process now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.05
) -> None:
    """Await a state with a deadline (tests never sleep to wait for a state)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"state not reached within {timeout}s")
        await asyncio.sleep(step)


async def cut_off(call: Awaitable[Any], when: Callable[[], bool]) -> None:
    """Run ``call`` and stop it as Ctrl-C does (cancelled) once ``when()`` holds."""
    run = asyncio.ensure_future(call)
    await wait_for(when, 30, 0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 30)


def add_before_rule(data: dict[str, Any]) -> None:
    """An environment's analysis edited to probe the canaries 1 s before deploying them
    and judge their p99 against those values of their own (``compare_to: before``)."""
    analysis = data["canary"]["analysis"]
    analysis["before"] = "1s"
    analysis["rules"].append(
        {
            "name": "p99-vs-itself",
            "metric": 'http_request_duration_seconds{route!="/health"}',
            "quantile": 0.99,
            "compare": "mann-whitney",
            "compare_to": "before",
            "max_increase": "20%",
        }
    )


def new_deployment(journal: Journal, token: str = "t0ken", scope: str | None = None) -> int:
    """An open deployment of production/shop (``sample_envs/example-production.yaml``'s
    environment) in ``journal``: 2.0.0, canary web-01, one wave; its number (``scope``:
    limited to those hosts, as ``deploy --hosts`` says it)."""
    return journal.create_deployment(
        token=token,
        env="production",
        app="shop",
        env_path="/envs/production.yaml",
        version="2.0.0",
        canaries=["web-01"],
        plan=[["web-02", "web-03"]],
        previous={"web-01": "1.0.0", "web-02": "1.0.0", "web-03": "1.0.0"},
        user="alice",
        machine="laptop",
        scope=scope,
    )
