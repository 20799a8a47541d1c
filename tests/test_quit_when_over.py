"""Stopping once a deployment is over: only its ``complete`` hook and the release of its
locks are left (seconds at a thousand hosts), and nothing may say it stays open.

Demo fleet over real SSH, no canary, one wave; the ``complete`` traffic hook waits (at most
10 s) for a file the test makes, so the stop always lands while the deployment finishes.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env, run_cli
from test_ui_stories import SIZE, USER, deploy_by_keys, type_version, versions_known
from test_ui_support import record_notifications, until

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import ActionRefused, Engine
from canarytui.engine import locks as lock
from canarytui.journal import Journal, JournalError
from canarytui.ui.app import CanaryApp
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.status_header import StatusHeader


def _slow_complete(demo: DemoFleet, tmp_path: Path, go: Path) -> Path:
    def edit(data: dict[str, Any]) -> None:
        data.pop("canary", None)
        data["promote"] = {"waves": ["100%"], "pause": "0s"}
        wait = (
            f"i=0; while [ ! -e {shlex.quote(str(go))} ] && [ $i -lt 200 ]; "
            "do sleep 0.05; i=$((i+1)); done"
        )
        data["traffic"] = {"complete": wait}

    return edit_env(demo.env_path, tmp_path / "slow-complete.yaml", edit)


def _app(demo: DemoFleet, state_dir: Path, tmp_path: Path, go: Path) -> CanaryApp:
    env = load_env(_slow_complete(demo, tmp_path, go))
    journal = Journal(state_dir)
    return CanaryApp(env, journal, engine=Engine(env, journal, user=USER))


def _locks_freed(demo: DemoFleet, journal: Journal) -> bool:
    on_hosts = [
        demo.sandbox_of(n) / ".canarytui" / "lock.demo.shop" / "owner" for n in demo.host_names
    ]
    local = lock.read_local(lock.local_lock_path(journal.state_dir, "demo", "shop"))
    return local is None and not any(p.exists() for p in on_hosts)


def _unreadable(d: int) -> None:
    raise JournalError("journal.db", f"deployment #{d} could not be read", "check the disk")


def _said(journal: Journal, d: int) -> list[dict[str, Any]]:
    return [e for e in journal.events(d) if e["event"] == "notice"]


async def test_stopped_while_finishing_says_it_is_over(
    demo: DemoFleet, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (a cancelled call) during the ``complete`` hook: the notice says the
    deployment is over, not that it stays open; its locks are freed on every host."""
    go = tmp_path / "go"
    env = load_env(_slow_complete(demo, tmp_path, go))
    journal = Journal(state_dir)
    engine = Engine(env, journal, user=USER)
    try:
        task = asyncio.ensure_future(engine.deploy("1.1.0"))
        for _ in range(600):  # the phase, polled (bounded): the hook then waits for `go`
            if engine.phase is ev.Phase.COMPLETE or task.done():
                break
            await asyncio.sleep(0.05)
        assert engine.phase is ev.Phase.COMPLETE and not task.done()
        assert engine.finishing
        with monkeypatch.context() as broken:  # a journal that cannot be read now
            broken.setattr(journal, "deployment", _unreadable)
            assert not engine.finishing  # taken as running: a quit asks
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=20)
        assert done and task.cancelled()
    finally:
        await engine.fleet.close()
    record = journal.last_deployment("demo", "shop")
    assert record is not None and not record.is_open and record.outcome == "complete"
    notices = [n["message"] for n in _said(journal, record.id)]
    assert not any("stays open" in m for m in notices), notices
    assert any("it is over; its locks are released now" in m for m in notices), notices
    assert _locks_freed(demo, journal)
    assert {demo.version_on(n) for n in demo.host_names} == {"1.1.0"}


async def test_quit_once_the_deployment_is_over_does_not_ask(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """``q`` while a complete deployment releases its locks: no "stops it where it is"
    question (it is over); the app waits for the hook and the release, then exits."""
    go = tmp_path / "go"
    app = _app(demo, state_dir, tmp_path, go)
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_by_keys(pilot, app, demo, "1.1.0")
        await until(pilot, lambda: engine.phase is ev.Phase.COMPLETE, 30, "complete")
        assert engine.busy  # the hook waits for `go`
        assert engine.deployment is not None
        d = engine.deployment.id
        await pilot.press("q")
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.is_running and engine.busy  # left to finish, not stopped
        go.touch()
        await until(pilot, lambda: not app.is_running, 20, "app exited")
    journal = Journal(state_dir)
    record = journal.deployment(d)
    assert record is not None and not record.is_open and record.outcome == "complete"
    assert not [n for n in _said(journal, d) if "interrupted" in n["message"]]
    hook = [e for e in journal.events(d) if e.get("step") == "traffic.complete"]
    assert [e["exit_status"] for e in hook] == [0]  # it ran to its end
    assert _locks_freed(demo, journal)


async def test_a_rollback_of_a_finished_deployment_is_not_finishing(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Rolling a completed deployment back reopens it and says "rolling back" before its
    locks are taken again (a slow host): it is not finishing (``q`` asks). A stop then
    says so in the journal and leaves the hosts locked; a later process finishes it."""
    go = tmp_path / "go"
    go.touch()  # the complete hook does not wait here
    env_path = _slow_complete(demo, tmp_path, go)
    env = load_env(env_path)
    journal = Journal(state_dir)
    engine = Engine(env, journal, user=USER)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.COMPLETE
        assert engine.phase is ev.Phase.COMPLETE and not engine.finishing
        await demo.set_fault("web-03", "slow")  # its lock answers after 2 s
        task = asyncio.ensure_future(engine.rollback())
        d = engine.deployment
        assert d is not None
        for _ in range(200):  # reopened, then its locks taken again (bounded)
            record = journal.deployment(d.id)
            if record is not None and record.is_open and engine.locks.holding:
                break
            await asyncio.sleep(0.02)
        assert engine.busy and engine.phase is ev.Phase.ROLLING_BACK
        assert journal.deployment(d.id).phase == "rolling back"  # type: ignore[union-attr]
        assert not engine.finishing
        task.cancel()
        await asyncio.wait({task}, timeout=20)
    finally:
        await engine.fleet.close()
    record = journal.deployment(d.id)
    assert record is not None and record.is_open  # stopped mid-rollback: still open
    notices = [n["message"] for n in _said(journal, d.id)]
    assert not any("it is over" in m for m in notices), notices
    assert any(
        f"interrupted while rolling back: deployment #{d.id} stays open and its hosts stay "
        "locked" in m
        for m in notices
    ), notices
    assert not _locks_freed(demo, journal)  # a fleet half rolled back stays locked
    # Reopened, it is no longer "complete" anywhere: history says it is open.
    assert record.outcome is None and record.summary is None
    shown = await run_cli("history", str(env_path), state_dir=state_dir)
    assert shown.code == 0, shown.err
    line = next(x for x in shown.out.splitlines() if x.strip().startswith("1 "))
    assert "open: rolling back" in line and "complete" not in line, shown.out
    await demo.set_fault("web-03", "up")
    later = Engine(env, Journal(state_dir), user=USER)  # the next process finishes it
    try:
        with pytest.raises(ActionRefused, match=r"its rollback was stopped\): roll it back again"):
            await later.promote()
        assert await asyncio.wait_for(later.rollback(), 60) is ev.Outcome.ROLLED_BACK
    finally:
        await later.fleet.close()
    assert {demo.version_on(n) for n in demo.host_names} == {"1.0.0"}
    assert _locks_freed(demo, journal)


async def test_quit_while_the_next_deployment_starts_asks(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """After a complete deployment, ``q`` while the next one locks its hosts asks first
    (the last phase on record is still "complete"); the question says it is starting."""
    go = tmp_path / "go"
    go.touch()
    app = _app(demo, state_dir, tmp_path, go)
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_by_keys(pilot, app, demo, "1.1.0")
        await until(pilot, lambda: not engine.busy, 30, "the first one done")
        assert engine.phase is ev.Phase.COMPLETE
        await demo.set_fault("web-03", "slow")  # the next start lasts 2 s
        await pilot.press("d")
        await type_version(pilot, "1.2.0")
        await pilot.press("enter", "y")
        await until(pilot, lambda: app.fleet_screen.state.starting is not None, 5, "starting")
        assert engine.busy and engine.deployment is None and not engine.finishing
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert "is starting" in str(app.screen.message)
        await pilot.press("n")
        await until(pilot, lambda: not engine.busy, 30, "the second one done")
        assert {demo.version_on(n) for n in demo.host_names} == {"1.2.0"}
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 20, "app exited")


async def test_quit_during_a_rollback_asks_and_keeps_the_hosts_locked(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """``r`` on a completed deployment: while its locks are taken again (a slow host) the
    header and the panel say rolling back, not "complete" with its old outcome; ``q``
    asks, says the hosts stay locked, and the journal says the rollback was stopped."""
    go = tmp_path / "go"
    go.touch()
    app = _app(demo, state_dir, tmp_path, go)
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        progress = app.fleet_screen.query_one(RolloutProgress)
        header = app.fleet_screen.query_one(StatusHeader)
        await deploy_by_keys(pilot, app, demo, "1.1.0")
        await until(pilot, lambda: not engine.busy, 30, "the deployment done")
        await until(pilot, lambda: "outcome complete" in str(progress.render()), 5, "outcome")
        await demo.set_fault("web-03", "slow")  # the rollback's re-lock lasts 2 s
        await pilot.press("r", "y")
        await until(pilot, lambda: engine.phase is ev.Phase.ROLLING_BACK, 5, "rolling back")
        await until(pilot, lambda: "phase  rolling back " in str(header.render()), 5, "header")
        assert "outcome complete" not in str(progress.render())
        assert "phase rolling back" in str(progress.render())
        assert engine.deployment is not None
        d = engine.deployment.id
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert "is rolling back" in str(app.screen.message)
        assert "its hosts stay locked" in str(app.screen.message)
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, 20, "app exited")
    journal = Journal(state_dir)
    record = journal.deployment(d)
    assert record is not None and record.is_open and record.phase == "rolling back"
    notices = [n["message"] for n in _said(journal, d)]
    assert any("interrupted while rolling back" in m for m in notices), notices
    assert lock.read_local(lock.local_lock_path(state_dir, "demo", "shop")) is not None
    # The next start says what is left to do, and r finishes it.
    await demo.set_fault("web-03", "up")
    again = _app(demo, state_dir, tmp_path, go)
    texts = record_notifications(again)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any(
            f"deployment #{d} of 1.1.0 is open (rolling back): its rollback did not finish: "
            "r rolls back again to finish it" in t
            for t in texts
        ), texts
        await pilot.press("r", "y")
        await until(pilot, lambda: again.engine.phase is ev.Phase.ROLLED_BACK, 30, "finished")
        await until(pilot, lambda: not again.engine.busy, 10, "locks released")
        await pilot.press("q")
        await until(pilot, lambda: not again.is_running, 20, "app exited")
    assert {demo.version_on(n) for n in demo.host_names} == {"1.0.0"}
    assert _locks_freed(demo, Journal(state_dir))


async def test_quit_while_a_host_hangs_says_what_it_waits_for(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """``q`` then ``y`` while a host's command never ends: stopping it on the host takes
    seconds, and the screen says so at once (it looked frozen); nothing changed."""
    go = tmp_path / "go"
    go.touch()
    app = _app(demo, state_dir, tmp_path, go)
    engine = app.engine
    texts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await versions_known(pilot, app, demo)
        await demo.set_fault("web-03", "hang")  # its lock's command never ends
        await pilot.press("d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter", "y")
        await until(pilot, lambda: engine.busy, 5, "the deployment starting")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(
            pilot,
            lambda: any(t.startswith("stopping what runs on the hosts") for t in texts),
            2,
            lambda: f"the stop said: {texts}",
        )
        await demo.set_fault("web-03", "up")
        await until(pilot, lambda: not app.is_running, 25, "app exited")
    assert {demo.version_on(n) for n in demo.host_names} == {"1.0.0"}


async def test_the_quit_question_follows_what_runs(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """``q`` during the wave, and the deployment ends while the question is up: it said
    still that the deployment "stays open in the journal"; it says what a quit stops now."""
    go = tmp_path / "go"
    go.touch()  # the complete hook does not wait
    app = _app(demo, state_dir, tmp_path, go)
    engine = app.engine
    await demo.set_fault("web-03", "slow")  # the wave lasts long enough for the question
    async with app.run_test(size=SIZE) as pilot:
        await deploy_by_keys(pilot, app, demo, "1.1.0")
        await until(pilot, lambda: engine.phase is ev.Phase.PROMOTING, 15, "promoting")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        asked = app.screen
        assert "stays open in the journal" in str(asked.message)
        assert asked.title_text == "Quit?"  # "while a deployment runs" went on after it
        restated: list[str] = []
        restate = asked._restate
        assert restate is not None

        def recorded() -> str:
            restated.append(restate())
            return restated[-1]

        asked._restate = recorded
        await until(pilot, lambda: not engine.busy, 30, "the deployment done")
        await until(
            pilot,
            lambda: str(asked.message) == "Nothing runs any more: quitting stops nothing.",
            5,
            lambda: f"restated: {asked.message}",
        )
        # Over, finishing (hooks, locks): never "stops it where it is; it stays open".
        over = [m for m in restated if "complete" in m]
        assert all("stays open" not in m for m in over), over
        await pilot.press("n")
        assert app.is_running
    await demo.set_fault("web-03", "up")
