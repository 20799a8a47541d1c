"""Ctrl-C while a deployment takes its locks (seconds at a thousand hosts, or a host slow
to answer): a lock already made on a host whose reply had not come back is freed with the
others, so the next deployment is not refused by a deployment the journal never kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env, engine_for, wait_for

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import lockscripts, maintenance

OWNER = Path(".canarytui", "lock.demo.shop", "owner")


def locked(demo: DemoFleet) -> list[str]:
    return [h for h in demo.host_names if (demo.sandbox_of(h) / OWNER).exists()]


def slow(data: dict[str, Any]) -> None:
    """The version is read in the lock's own round trip, after the lock is made: a slow
    read holds the reply back with the lock already on the host."""
    data["deploy"]["current"] = "sleep 5; " + data["deploy"]["current"]


async def test_ctrl_c_while_a_lock_is_made_but_unanswered_leaves_no_lock(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    engine = engine_for(edit_env(demo.env_path, tmp_path / "slow.yaml", slow), state_dir)
    try:
        run = asyncio.ensure_future(engine.deploy("1.1.0"))
        await wait_for(lambda: len(locked(demo)) == len(demo.host_names), 10, 0.01)
        assert engine.phase is ev.Phase.IDLE  # no host has answered yet
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 30)
    finally:
        await engine.fleet.close()
    assert locked(demo) == []
    assert engine.journal.open_deployment("demo", "shop") is None
    assert {demo.version_on(h) for h in demo.host_names} == {"1.0.0"}
    # The next deployment starts: no lock of a deployment nobody knows refuses it.
    again = engine_for(demo.env_path, state_dir)
    try:
        outcome = await asyncio.wait_for(again.deploy("1.1.0", auto_promote=True), 60)
    finally:
        await again.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}


async def test_ctrl_c_while_an_analysis_again_locks_the_hosts_leaves_no_lock(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The same as a later process takes a stopped deployment's locks again (``promote``
    analysing it again): stopped there, it frees them and stays open, saying its way out."""
    first = engine_for(demo.env_path, state_dir)
    try:
        run = asyncio.ensure_future(first.deploy("1.1.0"))
        await wait_for(lambda: first.phase is ev.Phase.ANALYSIS, 30, 0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 30)
    finally:
        await first.fleet.close()
    assert locked(demo) == []
    later = engine_for(edit_env(demo.env_path, tmp_path / "slow.yaml", slow), state_dir)
    try:
        again = asyncio.ensure_future(later.promote())
        await wait_for(lambda: len(locked(demo)) == len(demo.host_names), 10, 0.01)
        again.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(again, 30)
    finally:
        await later.fleet.close()
    assert locked(demo) == []
    record = later.journal.open_deployment("demo", "shop")
    assert record is not None and record.phase == "analysis"
    said = [e["message"] for e in later.journal.events(record.id) if e["event"] == "notice"]
    assert said[-1] == (
        "interrupted during analysis: deployment #1 stays open (promote analyses its "
        "canaries again, or roll it back later)"
    ), said


async def test_ctrl_c_while_a_maintenance_lock_is_made_but_unanswered_leaves_no_lock(
    demo: DemoFleet, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``canarytui lock`` stopped as its locks are made: none stays, here or on a host."""
    made = lockscripts.hold_command

    def answered_late(app: str, env: str, owner: dict[str, Any]) -> str:
        return made(app, env, owner) + "; sleep 5"  # the lock made, its end not read yet

    monkeypatch.setattr(lockscripts, "hold_command", answered_late)
    engine = engine_for(demo.env_path, state_dir)
    try:
        run = asyncio.ensure_future(maintenance.hold(engine.ctx, "disk swap"))
        await wait_for(lambda: len(locked(demo)) == len(demo.host_names), 10, 0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, 30)
    finally:
        await engine.fleet.close()
    assert locked(demo) == []
    assert not engine.locks.local_path().exists()
