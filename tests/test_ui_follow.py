"""A deployment another process of this machine drives, followed live by the UI.

An operator deploys from the command line while a colleague has the UI open on the same
journal (or two UIs watch one release): the UI reads the other process's events back
from the journal (``engine.follow``) and shows them as they happen, as its own would be;
its own events are never shown twice. Demo fleet over real SSH, the CLI as a process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import edit_env, engine_for, run_cli, wait_for
from test_ui_stories import SIZE, make_app, type_version
from test_ui_support import Script, record_notifications, settle, until

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.engine.follow import Follower
from canarytui.journal import Journal
from canarytui.ui.app import CanaryApp
from canarytui.ui.follow import FOLLOW_INTERVAL
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.screens.fleet import FleetScreen
from canarytui.ui.screens.history import HistoryScreen
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.status_header import StatusHeader


def followed_by(follower: Follower) -> list[ev.Event]:
    """Every event ``follower``'s polls hand on from now on."""
    seen: list[ev.Event] = []
    poll = follower.poll

    def recording() -> list[ev.Event]:
        events = poll()
        seen.extend(events)
        return events

    follower.poll = recording  # type: ignore[method-assign]
    return seen


async def test_the_ui_follows_a_release_the_command_line_drives(
    demo: DemoFleet, state_dir: Path
) -> None:
    """The UI open, nothing deployed; `canarytui deploy` then `canarytui promote` in
    another process: the UI shows the deployment open, its verdict (without offering keys
    for it while the other process acts), then every host on the release and the outcome.
    Then the UI deploys by keys itself: none of its own events come back through the
    journal."""
    env = str(demo.env_path)
    app = make_app(demo, state_dir)
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        said = record_notifications(app)
        screen = app.fleet_screen
        assert screen.journal_follow is not None
        followed = followed_by(screen.journal_follow.follower)
        progress = screen.query_one(RolloutProgress)
        header = screen.query_one(StatusHeader)
        deploy = asyncio.ensure_future(run_cli("deploy", env, "1.1.0", state_dir=state_dir))
        try:
            await until(pilot, lambda: engine.deployment is not None, 20, "the deployment seen")
            assert engine.deployment is not None and engine.deployment.version == "1.1.0"
            await until(pilot, lambda: "rollout #1" in str(progress.border_title), 5, "shown")
            done = await asyncio.wait_for(deploy, 60)
        finally:
            if not deploy.done():
                deploy.cancel()
        assert done.code == 0, done.out + done.err
        await until(
            pilot, lambda: engine.phase is ev.Phase.AWAITING_PROMOTION, 5, "awaiting promotion"
        )
        await until(pilot, lambda: "verdict  PASS" in str(progress.render()), 5, "the verdict")
        assert "#1 canary verdict: PASS" in said, said  # what happened; its keys not promised
        assert engine.host_states["web-01"] is ev.HostState.DEPLOYED
        assert engine.versions["web-01"] == "1.1.0"
        assert "stable 1.0.0  candidate 1.1.0" in str(header.render())  # what it replaces
        promoted = await run_cli("promote", env, state_dir=state_dir)
        assert promoted.code == 0, promoted.out + promoted.err
        await until(pilot, lambda: engine.phase is ev.Phase.COMPLETE, 10, "complete")
        assert {engine.versions[h] for h in demo.host_names} == {"1.1.0"}
        await until(pilot, lambda: "stable 1.1.0" in str(header.render()), 5, "the header")
        # (The outcome follows the phase: the complete hook runs between them.)
        await until(pilot, lambda: "outcome complete" in str(progress.render()), 5, "outcome")
        # The other process has exited; what it recorded after the phase (the traffic
        # hook's last shift) is read by the next poll: everything of theirs, then counted.
        follower = screen.journal_follow.follower
        await until(pilot, lambda: follower.caught_up, 5, "every event of theirs read")
        theirs = len(followed)
        assert theirs and {e.deployment for e in followed} == {1}
        kinds = [e.kind for e in followed]
        assert kinds.count("deployment_started") == 1 and kinds.count("verdict") == 1
        # The UI's own release: shown from its engine, never read back as another's.
        await pilot.press("d")
        await type_version(pilot, "1.2.0")
        await pilot.press("enter", "y")
        await until(pilot, lambda: engine.phase is ev.Phase.AWAITING_PROMOTION, 30, "its own")
        assert engine.deployment is not None and engine.deployment.id == 2
        await pilot.pause(1.0)  # two polls of the journal at least
        assert len(followed) == theirs, followed[theirs:]
        await pilot.press("r", "y")
        await until(pilot, lambda: engine.phase is ev.Phase.ROLLED_BACK, 30, "rolled back")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 20, "app exited")
    assert len(followed) == theirs


async def test_a_follower_skips_its_own_events_and_hosts_its_file_does_not_list(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Two engines on one journal, the second with a copy of the file that lists one host
    fewer: it follows the first's release (state, phase, versions) without the host it
    does not know; its own rollback afterwards is not read back; events of another
    environment in the same journal are not its."""
    driver = engine_for(demo.env_path, state_dir, user="ops")

    def fewer(d: dict[str, Any]) -> None:
        d["hosts"] = [h for h in d["hosts"] if h["name"] != "web-06"]

    watcher = engine_for(edit_env(demo.env_path, tmp_path / "fewer.yaml", fewer), state_dir)
    follower = watcher.follower()

    def other_env(d: dict[str, Any]) -> None:
        d["name"] = "staging"

    elsewhere = engine_for(edit_env(demo.env_path, tmp_path / "staging.yaml", other_env), state_dir)
    try:
        assert follower.poll() == []
        assert await driver.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        assert await elsewhere.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        got = follower.poll()
        assert got and all(e.deployment == driver.deployment.id for e in got)  # type: ignore[union-attr]
        assert not any(getattr(e, "host", None) == "web-06" for e in got)
        assert "web-06" not in watcher.host_states
        assert watcher.deployment is not None and watcher.deployment.id == driver.deployment.id  # type: ignore[union-attr]
        assert watcher.phase is ev.Phase.AWAITING_PROMOTION
        assert watcher.versions["web-01"] == "1.1.0"
        assert watcher.previous == dict.fromkeys(watcher.env.host_names, "1.0.0")
        assert watcher.last_verdict is not None and watcher.last_verdict.verdict is ev.Verdict.PASS
        assert follower.poll() == []  # nothing new
        await driver.fleet.close()
        driver.journal.close()
        # The watcher's file has no web-06: the release's plan has it, so the watcher
        # cannot continue it; the first engine's file rolls it back, the watcher follows.
        driver = engine_for(demo.env_path, state_dir, user="ops")
        assert await driver.rollback() is ev.Outcome.ROLLED_BACK
        got = follower.poll()
        assert ev.Phase.ROLLED_BACK in [e.phase for e in got if isinstance(e, ev.PhaseChanged)]
        assert watcher.phase is ev.Phase.ROLLED_BACK
        assert watcher.versions["web-01"] == "1.0.0"
        # Its own release: recorded by its own bus, never handed on as another's.
        assert await watcher.deploy("1.2.0") is ev.Outcome.CANARY_PASSED
        assert await watcher.rollback() is ev.Outcome.ROLLED_BACK
        assert follower.poll() == []
        assert watcher.bus.recorded == set()  # forgotten once read past
    finally:
        for engine in (driver, watcher, elsewhere):
            await engine.fleet.close()
            engine.journal.close()


async def test_the_ui_opened_while_the_command_line_drives_says_so_and_follows_it(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The UI started during another process's analysis: it says that process drives the
    deployment (its pid) and that it shows it; the analysis goes on on screen to its
    verdict, and the phase the other process left it in, without a key pressed."""

    def longer(d: dict[str, Any]) -> None:
        d["canary"]["analysis"]["duration"] = "8s"  # the UI starts well within it

    env_path = edit_env(demo.env_path, tmp_path / "demo.yaml", longer)
    drivers: list[asyncio.subprocess.Process] = []

    async def started(proc: asyncio.subprocess.Process) -> None:
        drivers.append(proc)

    deploy = asyncio.ensure_future(
        run_cli("deploy", str(env_path), "1.1.0", state_dir=state_dir, started=started)
    )
    journal = Journal(state_dir)
    try:

        def analysing() -> bool:
            record = journal.open_deployment("demo", "shop")
            return record is not None and record.phase == ev.Phase.ANALYSIS.value

        await wait_for(analysing, 30)
        env = load_env(env_path)
        app = CanaryApp(env, journal, engine=Engine(env, journal, user="tester"))
        said = record_notifications(app)
        async with app.run_test(size=SIZE) as pilot:
            engine = app.engine
            progress = app.fleet_screen.query_one(RolloutProgress)
            await until(pilot, lambda: bool(said), 5, "the open deployment said")
            assert said[0] == (
                "deployment #1 of 1.1.0 is being driven by another canarytui on this machine "
                f"(pid {drivers[0].pid}): follow it or act on it there, or stop it (kill -INT "
                f"{drivers[0].pid}: the deployment stays open) and act on it here; this screen "
                "shows it "
                "as it goes"
            ), said
            assert engine.phase is ev.Phase.ANALYSIS
            # Its keys are offered where they are taken, not here (r was, then refused).
            pid = drivers[0].pid
            driven = f"driven by another canarytui (pid {pid}): act on it there, or stop it "
            await until(pilot, lambda: driven in str(progress.render()), 5, "driven said")
            assert "r roll back" not in str(progress.render())
            await until(pilot, lambda: "verdict  PASS" in str(progress.render()), 20, "verdict")
            await until(pilot, lambda: engine.phase is ev.Phase.AWAITING_PROMOTION, 5, "phase")
            done = await asyncio.wait_for(deploy, 30)
            assert done.code == 0, done.out + done.err
            # That process has exited at a rest point: nothing ended mid-way, and the
            # deployment is this screen's to act on.
            await pilot.pause(3 * FOLLOW_INTERVAL)
            assert not [s for s in said if "ended while" in s], said
            await until(pilot, lambda: "p next wave" in str(progress.render()), 5, "keys")
            assert "driven by another" not in str(progress.render())
            await pilot.press("P")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "asked")
            await pilot.press("y")
            await until(pilot, lambda: engine.phase is ev.Phase.COMPLETE, 30, "complete")
            assert {engine.versions[h] for h in demo.host_names} == {"1.1.0"}
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, 20, "app exited")
    finally:
        if not deploy.done():
            deploy.cancel()
        journal.close()


async def test_the_ui_says_when_the_process_it_followed_ended_mid_way(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """`canarytui deploy` killed (-9) during its analysis while the UI follows it: the
    analysis on screen would wait for a verdict that never comes; the UI says, once, that
    the process ended with the deployment in its analysis, and what is left (roll it
    back), which r then does."""

    def longer(d: dict[str, Any]) -> None:
        d["canary"]["analysis"]["duration"] = "8s"

    env_path = edit_env(demo.env_path, tmp_path / "demo.yaml", longer)
    env = load_env(env_path)
    journal = Journal(state_dir)
    app = CanaryApp(env, journal, engine=Engine(env, journal, user="tester"))
    said = record_notifications(app)
    drivers: list[asyncio.subprocess.Process] = []

    async def started(proc: asyncio.subprocess.Process) -> None:
        drivers.append(proc)

    try:
        async with app.run_test(size=SIZE) as pilot:
            engine = app.engine
            deploy = asyncio.ensure_future(
                run_cli("deploy", str(env_path), "1.1.0", state_dir=state_dir, started=started)
            )
            try:
                await until(pilot, lambda: engine.phase is ev.Phase.ANALYSIS, 30, "analysis")
                drivers[0].kill()
                done = await asyncio.wait_for(deploy, 10)
            finally:
                if not deploy.done():
                    deploy.cancel()
            assert done.code == -9
            ended = (
                f"the canarytui that drove deployment #1 of 1.1.0 (pid {drivers[0].pid}) "
                "ended while it was in its analysis: promote analyses its canaries again, or "
                "roll it back"
            )
            await until(pilot, lambda: ended in said, 5, lambda: f"said: {said}")
            await pilot.pause(3 * FOLLOW_INTERVAL)
            assert said.count(ended) == 1
            # Shown where it stopped, with what p and r do now.
            panel = str(app.fleet_screen.query_one(RolloutProgress).render())
            assert "phase analysis, stopped" in panel and "p analyse again" in panel, panel
            assert "s left" not in panel, panel
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "asked")
            await pilot.press("y")
            await until(pilot, lambda: engine.phase is ev.Phase.ROLLED_BACK, 30, "rolled back")
            assert said.count(ended) == 1  # its own rollback is no process that ended
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, 20, "app exited")
    finally:
        journal.close()


def test_events_after_reads_one_environment_in_order_and_bounded(tmp_path: Path) -> None:
    """The ids ``record_many`` returns are the ones ``events_after`` reads back, in order,
    from the one environment's app asked for, at most ``limit`` at a time."""
    journal = Journal(tmp_path)
    try:
        assert journal.last_event_id() == 0
        ids = {}
        for env in ("production", "staging"):
            d = journal.create_deployment(
                token=f"t-{env}",
                env=env,
                app="shop",
                env_path=f"/{env}.yaml",
                version="2.0.0",
                canaries=["web-01"],
                plan=[["web-02"]],
                previous={"web-01": "1.0.0", "web-02": "1.0.0"},
                user="alice",
                machine="laptop",
            )
            ids[env] = journal.record_many(
                ev.HostUpdate(deployment=d, host=h, state=ev.HostState.PENDING)
                for h in ("web-01", "web-02")
            )
        prod, staging = ids["production"], ids["staging"]
        assert len(prod) == 2 and prod == sorted(prod) and min(staging) > max(prod)
        assert journal.last_event_id() == max(staging)
        read = journal.events_after("production", "shop", 0)
        assert [i for i, _ in read] == prod
        assert [d["host"] for _, d in read] == ["web-01", "web-02"]
        assert [i for i, _ in journal.events_after("production", "shop", 0, limit=1)] == prod[:1]
        assert [i for i, _ in journal.events_after("production", "shop", prod[0])] == prod[1:]
        assert [i for i, _ in journal.events_after("staging", "shop", 0)] == staging
        assert journal.events_after("staging", "cart", 0) == []
    finally:
        journal.close()


async def test_a_journal_that_cannot_be_read_is_said_once_and_the_screen_stays(
    tmp_path: Path,
) -> None:
    """The journal unreadable under the open UI (here: its connection closed): the
    following of other processes says so once, not every half second; the keys that read
    it (history, deploy, promote, roll back) say what failed, and nothing closes the UI."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        said = record_notifications(script.app)
        script.discovered()
        await settle(pilot)
        script.journal.close()
        await until(pilot, lambda: any("journal" in s for s in said), 5, "the journal said")
        await pilot.pause(3 * FOLLOW_INTERVAL)
        unread = [s for s in said if "what other processes do is not shown" in s]
        assert len(unread) == 1, said
        assert "could not read" in unread[0] and str(script.journal.path) in unread[0]
        # Every key that reads the journal says it failed (it closed the UI before).
        for key in ("H", "d", "p", "r"):
            said.clear()
            await pilot.press(key)
            await settle(pilot)
            assert script.app.is_running, key
            assert any("could not read" in s for s in said), (key, said)
            if isinstance(script.app.screen, HistoryScreen):
                await pilot.press("escape")
            assert isinstance(script.app.screen, FleetScreen), key
