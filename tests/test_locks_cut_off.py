"""Ctrl-C while a deployment takes its locks (seconds at a thousand hosts, or a host slow
to answer): a lock already made on a host whose reply had not come back is freed with the
others, so the next deployment is not refused by a deployment the journal never kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import cut_off, edit_env, engine_for
from test_analyse_again import locked, stays_open_saying_so, stopped

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import lockscripts, maintenance


def all_locked(demo: DemoFleet) -> Callable[[], bool]:
    return lambda: len(locked(demo)) == len(demo.host_names)


def slow(data: dict[str, Any]) -> None:
    """The version is read in the lock's own round trip, after the lock is made: a slow
    read holds the reply back with the lock already on the host."""
    data["deploy"]["current"] = "sleep 5; " + data["deploy"]["current"]


async def test_ctrl_c_while_a_lock_is_made_but_unanswered_leaves_no_lock(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    engine = engine_for(edit_env(demo.env_path, tmp_path / "slow.yaml", slow), state_dir)
    try:
        # Cut off once every host has its lock, before any has answered.
        await cut_off(engine.deploy("1.1.0"), all_locked(demo))
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
    await stopped(demo.env_path, state_dir, "1.1.0", ev.Phase.ANALYSIS)
    assert locked(demo) == []
    later = engine_for(edit_env(demo.env_path, tmp_path / "slow.yaml", slow), state_dir)
    try:
        await cut_off(later.promote(), all_locked(demo))
    finally:
        await later.fleet.close()
    assert locked(demo) == []
    stays_open_saying_so(later.journal)


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
        await cut_off(maintenance.hold(engine.ctx, "disk swap"), all_locked(demo))
    finally:
        await engine.fleet.close()
    assert locked(demo) == []
    assert not engine.locks.local_path().exists()
