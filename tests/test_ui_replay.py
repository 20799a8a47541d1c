"""Replay: a past deployment re-played on the grid from the journal, no host touched.

On the real demo fleet: a bad release is caught and rolled back by keys, then ``H`` and
``enter`` replay it; the canary's tile goes through deploying to rolled back again, the
speed keys and pause change the replay, operator keys are refused, and the demo hosts
receive no command until escape brings the live grid back. ``canarytui replay`` is checked
through ``main()`` (bad ID, bad speed) and through the app it opens (no SSH connection
attempted). A scripted journal gives a deterministic snapshot of the grid mid-replay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_ui_stories import USER, deploy_by_keys, fleet, make_app
from test_ui_support import FIXED_TIME, THEMES, record_notifications, until, write_env
from textual.pilot import Pilot
from textual.widgets import Static

from canarytui import events as ev
from canarytui.cli.main import main
from canarytui.config import Environment, load_env
from canarytui.demo import DemoFleet
from canarytui.engine import ActionRefused, make_plan
from canarytui.journal import Journal
from canarytui.ssh.connect import Connector
from canarytui.ui.app import CanaryApp
from canarytui.ui.replay import (
    Recording,
    ReplayEngine,
    Replayer,
    ReplayError,
    ReplayRequest,
    load_recording,
)
from canarytui.ui.screens.analysis import AnalysisScreen
from canarytui.ui.screens.history import HistoryScreen
from canarytui.ui.screens.replay import ALLOWED, REFUSED, ReplayScreen
from canarytui.ui.screens.version import VersionScreen
from canarytui.ui.widgets.rollout_progress import RolloutProgress

__all__ = ["fleet"]  # the demo fleet fixture of the UI stories

SIZE = (120, 40)
BAD = "1.3.0-bad"
OPERATOR = "operator"


# A scripted journal: one bad release caught on web-01, every event at a fixed time --------


def created(
    env: Environment,
    journal: Journal,
    version: str,
    waves: list[list[str]],
    previous: dict[str, str | None],
) -> int:
    """A deployment of ``version`` to canary web-01 then ``waves``, in the journal."""
    return journal.create_deployment(
        token=f"t0ken-{version}",
        env=env.name,
        app=env.app,
        env_path=str(env.path),
        version=version,
        canaries=["web-01"],
        plan=waves,
        previous=previous,
        user="operator",
        machine="ci",
    )


def record_bad_release(env: Environment, journal: Journal) -> int:
    """Deployment #1 of 1.3.0-bad on canary web-01 of a 12-host env, journaled as the
    engine would (20 s: deploy, analysis with five updates, fail, roll back)."""
    plan = make_plan(env, ["web-01"])
    previous: dict[str, str | None] = {h: "1.0.0" for h in env.host_names}
    d = created(env, journal, BAD, plan.waves, previous)
    journal.set_previous_many(d, previous)

    def at(t: float, *events: ev.Event) -> None:
        for e in events:
            journal.record(_with(e, deployment=d, at=FIXED_TIME + t))

    at(
        0.0,
        ev.DeploymentStarted(
            version=BAD,
            canaries=plan.canaries,
            waves=plan.waves,
            previous=previous,
            user="operator",
        ),
        ev.Decision(action="deploy", user="operator", detail=f"{BAD} to canaries web-01"),
    )
    at(0.2, *(ev.HostUpdate(host=h, state=ev.HostState.PENDING, version="1.0.0") for h in previous))
    at(0.5, ev.PhaseChanged(phase=ev.Phase.CANARY, waves=len(plan.waves)))
    at(1.0, ev.HostUpdate(host="web-01", state=ev.HostState.DEPLOYING))
    for i, step in enumerate(("install", "switch", "restart")):
        at(2.0 + i, _step(step, "deploy"))
    at(
        5.0,
        ev.HostUpdate(host="web-01", state=ev.HostState.DEPLOYED, version=BAD),
        ev.PhaseChanged(phase=ev.Phase.ANALYSIS, waves=len(plan.waves)),
        ev.AnalysisStarted(canaries=["web-01"], baseline=["web-04", "web-08"], duration=30.0),
    )
    ratios = (0.01, 0.09, 0.16, 0.2, 0.21)
    for i, ratio in enumerate(ratios):
        at(7.0 + 2 * i, ev.AnalysisUpdate(elapsed=2.0 * (i + 1), duration=30.0, measurements=[
            _ratio(ratio, "pass" if ratio <= 0.05 else "undecided" if i < 3 else "fail")
        ]))  # fmt: skip
    failed = _ratio(ratios[-1], "fail")
    at(
        16.0,
        ev.VerdictReached(
            verdict=ev.Verdict.FAIL, reasons=[failed.describe()], measurements=[failed]
        ),
        ev.PhaseChanged(phase=ev.Phase.ROLLING_BACK, waves=len(plan.waves)),
    )
    at(17.0, ev.HostUpdate(host="web-01", state=ev.HostState.ROLLING_BACK))
    at(18.0, _step("switch", "rollback"))
    at(19.0, _step("restart", "rollback"))
    at(
        20.0,
        ev.HostUpdate(host="web-01", state=ev.HostState.ROLLED_BACK, version="1.0.0"),
        ev.PhaseChanged(phase=ev.Phase.ROLLED_BACK, waves=len(plan.waves)),
        ev.DeploymentFinished(
            outcome=ev.Outcome.CANARY_FAILED, summary=f"{BAD}: canary failed; rolled back"
        ),
    )
    return d


def _with(event: ev.Event, **changes: Any) -> ev.Event:
    import dataclasses

    return dataclasses.replace(event, **changes)


def _step(step: str, action: str) -> ev.StepResult:
    return ev.StepResult(
        host="web-01", step=step, action=action, exit_status=0, output=f"{step} ok", duration=0.4
    )


def _ratio(value: float, status: str) -> ev.Measurement:
    return ev.Measurement(
        rule="error-ratio",
        host="web-01",
        value=value,
        baseline=0.006,
        limit="<= 0.05 and <= 3x baseline (0.018)",
        passed={"pass": True, "fail": False}.get(status),
        status=status,
        recent=value,
        band=[0.004, 0.008],
    )


def scripted(tmp_path: Path) -> tuple[Environment, Journal, int]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = load_env(write_env(tmp_path))
    journal = Journal(tmp_path / "state")
    return env, journal, record_bad_release(env, journal)


def replay_app(tmp_path: Path, *, speed: float = 10.0, paused: bool = True) -> CanaryApp:
    env, journal, d = scripted(tmp_path)
    recording = load_recording(journal, env, d)
    request = ReplayRequest(recording, speed, paused=paused)
    return CanaryApp(env, journal, monitor=False, themes_folder=THEMES, replay=request)


async def settle_replay(pilot: Pilot[int], screen: ReplayScreen) -> None:
    screen.bridge.flush()
    await pilot.pause()
    screen.repaint_now()
    await pilot.pause()


# The story on the real demo fleet ------------------------------------------------------------


def canary_tile(screen: ReplayScreen, host: str) -> tuple[str, str]:
    return screen.state.tile_kind(host), screen.state.host_state(host).value


async def test_bad_release_replayed_from_history_touches_no_host(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """d 1.3.0-bad: caught and rolled back live. H, enter: the replay's grid starts with every
    host on 1.0.0 and idle; stepping with '.' (paused) the canary goes deploying, deployed,
    rolling back, rolled back; + and - change the speed, space pauses and plays, d r P s c H
    are refused with a notice; the demo hosts get no command until escape, after which the
    live grid (and its monitor) is back."""
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await deploy_by_keys(pilot, app, fleet, BAD)
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.ROLLED_BACK and not engine.busy,
            25,
            "canary rolled back live",
        )
        d = engine.deployment.id
        canary = engine.deployment.canaries[0]
        await pilot.press("H")
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen), 5, "the replay screen")
        first = app.screen
        assert isinstance(first, ReplayScreen) and first.recording.record.id == d
        # 0: from the start, paused, so each event can be looked at.
        await pilot.press("0")
        await until(
            pilot,
            lambda: isinstance(app.screen, ReplayScreen) and app.screen is not first,
            5,
            "the replay restarted",
        )
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        assert screen.replayer.paused and screen.replayer.position == 0
        # The live monitor is stopped and the live connections closed before it plays.
        await until(pilot, lambda: screen.started, 10, "the live session is quiet")
        sent_before = fleet.commands_received
        connects_before = engine.fleet.connects
        await settle_replay(pilot, screen)
        assert canary_tile(screen, canary) == ("healthy", "idle")  # as before the deployment
        assert "paused" in screen.banner_text()
        # The banner is on the screen (it stayed blank, the grid passing for the live one).
        banner = str(screen.query_one("#replay-banner", Static).render())
        assert banner.startswith(f"REPLAY of #{d} ") and "paused" in banner, banner
        assert f"REPLAY of #{d}" in screen.banner_text()

        # Step through the canary's deployment event by event.
        seen: list[str] = []
        while "deployed" not in seen:
            assert not screen.replayer.finished, seen
            await pilot.press("full_stop")
            await settle_replay(pilot, screen)
            state = canary_tile(screen, canary)[1]
            if not seen or seen[-1] != state:
                seen.append(state)
        assert seen == ["idle", "pending", "deploying", "deployed"] or seen[-3:] == [
            "pending",
            "deploying",
            "deployed",
        ], seen
        assert screen.replay_engine.versions[canary] == BAD
        # Its rollout panel offers none of the live keys (each was refused in the replay).
        panel = str(screen.query_one(RolloutProgress).render())
        assert "r roll back" not in panel and "d deploy" not in panel, panel

        # Speed keys.
        speed = screen.replayer.speed
        await pilot.press("plus")
        assert screen.replayer.speed > speed
        await pilot.press("minus", "left_square_bracket")
        assert screen.replayer.speed < speed
        await settle_replay(pilot, screen)
        assert f"{screen.replayer.speed:g}x · paused" in screen.banner_text()
        # Paused: nothing moves on its own; space plays again.
        position = screen.replayer.position
        await pilot.pause(0.2)
        assert screen.replayer.position == position
        # Operator actions are refused, no dialog opens.
        for key in ("d", "r", "P", "s", "c", "H"):
            await pilot.press(key)
            assert app.screen is screen, key
            assert not isinstance(app.screen, VersionScreen)
        refusals = [n for n in notes if "refused in the replay" in n]
        assert len(refusals) >= 6, notes[-8:]
        # The analysis view shows the replayed deployment.
        await pilot.press("a")
        assert isinstance(app.screen, AnalysisScreen)
        assert app.screen.current.deployment == d
        await pilot.press("escape")
        assert app.screen is screen
        played_at = time.time()
        await pilot.press("space")
        assert not screen.replayer.paused
        await until(pilot, lambda: screen.replayer.finished, 30, "the replay played to its end")
        await settle_replay(pilot, screen)
        assert canary_tile(screen, canary) == ("rolled-back", "rolled back")
        assert screen.replay_engine.phase is ev.Phase.ROLLED_BACK
        assert "finished" in screen.banner_text()
        assert screen.state.verdict is not None
        assert screen.state.verdict.verdict is ev.Verdict.FAIL

        # Nothing reached any host while replaying.
        assert fleet.commands_received == sent_before
        assert engine.fleet.connects == connects_before
        assert screen.replay_engine.fleet.refused == 0
        assert engine.journal.deployment(d) == screen.recording.record  # journal unchanged

        # What the replay told (its verdict...) is titled so, and gone with it: on the live
        # grid it read as news of the fleet.
        told = [n for n in app._notifications if n.raised_at > played_at and "verdict" in n.message]
        assert told and all(n.title.startswith("replay") for n in told), told
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.fleet_screen, 5, "back to the live grid")
        assert not any(n.title.startswith("replay") for n in app._notifications)
        await until(
            pilot,
            lambda: fleet.commands_received > sent_before,
            15,
            "the live monitor probes the hosts again",
        )
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 10, "app exited")
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.0.0"}
    journal = Journal(tmp_path / "state")
    assert [r.id for r in journal.history(load_env(fleet.env_path).name, "shop")] == [d]
    assert USER in {x["user"] for x in journal.decisions(d)}


# The driver ----------------------------------------------------------------------------------


def _driver(tmp_path: Path, **kwargs: Any) -> tuple[Replayer, list[ev.Event]]:
    env, journal, d = scripted(tmp_path)
    engine = ReplayEngine(env, journal, load_recording(journal, env, d))
    got: list[ev.Event] = []
    engine.subscribe(got.append)
    return Replayer(engine, **kwargs), got


async def test_the_grid_starts_from_the_fleet_before_the_deployment(tmp_path: Path) -> None:
    replayer, got = _driver(tmp_path, paused=True)
    engine = replayer.engine
    assert set(engine.host_states.values()) == {ev.HostState.IDLE}
    assert set(engine.versions.values()) == {"1.0.0"}
    assert engine.deployment is None
    replayer.step()
    assert isinstance(got[0], ev.DeploymentStarted)
    assert engine.deployment is not None and engine.deployment.is_open
    assert engine.deployment.phase == "idle" and engine.deployment.outcome is None
    replayer.step(len(replayer.events))
    assert engine.phase is ev.Phase.ROLLED_BACK
    assert engine.versions["web-01"] == "1.0.0"
    assert [type(e) for e in got] == [type(e) for e in replayer.events]
    # Nothing was written to the journal, and every operator call is refused.
    journal = engine.journal
    d = engine.recording.record.id
    assert len(journal.events(d)) == len(replayer.events)
    assert journal.deployment(d) == engine.recording.record
    for call in (
        engine.deploy("1.2.0"),
        engine.promote(),
        engine.rollback(),
        engine.restore("1.0.0"),
        engine.resume(),
        engine.releases(["web-01"]),
    ):
        with pytest.raises(ActionRefused, match="nothing is sent to any host"):
            await call
    with pytest.raises(ActionRefused):
        engine.hold()
    assert await engine.discover() == {}
    assert [r.id for r in journal.history(engine.env.name, engine.env.app)] == [d]
    assert engine.fleet.refused == 0


def one_canary(
    env: Environment, journal: Journal, version: str = "1.1.0"
) -> tuple[int, ev.DeploymentStarted]:
    """A deployment of ``version`` on canary web-01 in the journal, and its first event."""
    waves = make_plan(env, ["web-01"]).waves
    previous: dict[str, str | None] = {h: "1.0.0" for h in env.host_names}
    d = created(env, journal, version, waves, previous)
    started = ev.DeploymentStarted(
        version=version, canaries=["web-01"], waves=waves, previous=previous, user="operator"
    )
    return d, started


async def test_a_passing_canary_replayed_offers_no_keys(tmp_path: Path) -> None:
    """Live, a PASS says "p promotes, r rolls back"; in a replay those keys are refused
    (nothing is sent to any host): its notice says the verdict, and no key."""
    env, journal, _ = scripted(tmp_path)
    d, started = one_canary(env, journal)
    for i, event in enumerate(
        (
            started,
            ev.PhaseChanged(phase=ev.Phase.ANALYSIS),
            ev.VerdictReached(verdict=ev.Verdict.PASS, reasons=[], measurements=[]),
            ev.PhaseChanged(phase=ev.Phase.AWAITING_PROMOTION),
        )
    ):
        journal.record(_with(event, deployment=d, at=FIXED_TIME + i))
    request = ReplayRequest(load_recording(journal, env, d), 100.0, paused=False)
    app = CanaryApp(env, journal, monitor=False, themes_folder=THEMES, replay=request)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await until(pilot, lambda: screen.replayer.finished, 10, "the replay's end")
        await settle_replay(pilot, screen)
    assert "#2 canary verdict: PASS" in notes, notes  # (whose: the replayed deployment)
    assert not [n for n in notes if "promotes" in n], notes


async def test_a_replay_before_its_first_event_shows_none_of_the_live_state(
    tmp_path: Path,
) -> None:
    """Paused before its first event, a replay's rollout panel said "No deployment open.
    Last deployment #N" (the journal's latest, not the one replayed) and the live keys
    (space, c, d), which a replay refuses."""
    env, journal, _ = scripted(tmp_path)
    d, started = one_canary(env, journal)
    journal.record(_with(started, deployment=d, at=FIXED_TIME))
    one_canary(env, journal, "1.2.0")  # a later one: the journal's last
    request = ReplayRequest(load_recording(journal, env, d), 100.0, paused=True)
    app = CanaryApp(env, journal, monitor=False, themes_folder=THEMES, replay=request)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await settle_replay(pilot, screen)
        shown = str(screen.query_one(RolloutProgress).render())
        assert "Its deployment starts at its first event" in shown, shown
        assert "Last deployment" not in shown and "d deploy" not in shown, shown


async def test_pause_speed_and_capped_gaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paused, nothing is sent; playing, a gap takes its journal time over the speed, capped
    at MAX_GAP of real time; a faster speed shortens a wait already begun; step sends now."""
    replayer, got = _driver(tmp_path, speed=0.5, paused=True)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(replayer.run())
    try:
        await asyncio.sleep(0.2)  # bounded: nothing may happen while paused
        assert got == []
        deploying = next(  # the canary's DEPLOYING, at t=1.0 s
            i
            for i, e in enumerate(replayer.events)
            if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.DEPLOYING
        )
        assert replayer.step(deploying + 1) == deploying + 1
        assert got[-1] == replayer.events[deploying]
        replayer.toggle_pause()  # next: its install step, 1 s later: 2 s at 0.5x
        began = loop.time()
        await asyncio.sleep(0.2)
        assert len(got) == deploying + 1
        replayer.set_speed(1000.0)
        await _await(lambda: len(got) >= deploying + 2, 1.0)
        assert loop.time() - began < 1.5
        assert isinstance(got[deploying + 1], ev.StepResult)
    finally:
        task.cancel()

    monkeypatch.setattr("canarytui.ui.replay.MAX_GAP", 0.3)
    replayer, got = _driver(tmp_path / "capped", speed=0.1)
    began = loop.time()
    task = asyncio.create_task(replayer.run())
    try:
        # t=0 -> 0.2 -> 0.5 s at 0.1x would take 5 s; capped, two waits of 0.3 s.
        await _await(lambda: any(isinstance(e, ev.PhaseChanged) for e in got), 3.0)
        assert 0.5 <= loop.time() - began < 2.0
    finally:
        task.cancel()


async def _await(predicate: Callable[[], bool], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "state not reached in time"
        await asyncio.sleep(0.02)


def test_every_fleet_key_is_either_a_look_or_refused() -> None:
    """A new operator key on the fleet screen is refused in a replay unless listed as a look."""
    from canarytui.ui.screens.fleet import FleetScreen
    from canarytui.ui.screens.replay import _action

    actions = {_action(b) for b in FleetScreen.BINDINGS}
    assert actions <= ALLOWED | set(REFUSED)
    assert {"deploy", "promote", "rollback", "toggle_canary", "history"} <= set(REFUSED)
    for name in REFUSED:
        assert getattr(ReplayScreen, f"action_{name}") is not getattr(FleetScreen, f"action_{name}")


def test_unknown_deployment_and_other_environments_are_refused(tmp_path: Path) -> None:
    env, journal, d = scripted(tmp_path)
    with pytest.raises(ReplayError, match="no deployment #99 of production/shop"):
        load_recording(journal, env, 99)
    assert isinstance(load_recording(journal, env, d), Recording)
    staging = tmp_path / "staging.yaml"
    staging.write_text(env.path.read_text().replace("name: production", "name: staging"))
    with pytest.raises(ReplayError, match=f"no deployment #{d} of staging/shop"):
        load_recording(journal, load_env(staging), d)


# canarytui replay -----------------------------------------------------------------------------


def test_cli_replay_bad_id_names_the_env_and_the_latest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, journal, d = scripted(tmp_path)
    journal.close()
    state = str(tmp_path / "state")
    assert main(["replay", str(env.path), "42", "--state-dir", state]) == 2
    err = capsys.readouterr().err
    assert "no deployment #42 of production/shop" in err
    assert f"#{d} {BAD} (canary failed)" in err
    assert main(["replay", str(env.path), "abc", "--state-dir", state]) == 2
    err = capsys.readouterr().err
    assert "must be a number" in err and "'abc'" in err and f"#{d}" in err
    empty = tmp_path / "empty"
    empty.mkdir()  # (one that does not exist is refused as mistyped)
    assert main(["replay", str(env.path), "1", "--state-dir", str(empty)]) == 2
    assert "has none yet" in capsys.readouterr().err


@pytest.mark.parametrize("speed", ["0", "-3", "fast", "nan", "inf", "5000"])
def test_cli_replay_bad_speed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], speed: str
) -> None:
    env, journal, d = scripted(tmp_path)
    journal.close()
    code = main(["replay", str(env.path), str(d), f"--speed={speed}", "--state-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--speed must be a number from 0.1 to 1000" in err and repr(speed) in err


async def test_replay_app_opens_no_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app ``canarytui replay`` opens: replay screen first, no monitor, no SSH attempt;
    it plays to the end on its own and q quits with 0."""
    attempts: list[str] = []

    async def refuse(self: Connector, host: Any, client: Any) -> Any:
        attempts.append(host.name)
        raise AssertionError("a replay must not connect")

    monkeypatch.setattr(Connector, "connect", refuse)
    app = replay_app(tmp_path, speed=1000.0, paused=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, ReplayScreen) and screen.standalone
        assert app.monitor is None
        await until(pilot, lambda: screen.replayer.finished, 20, "replayed to the end")
        await settle_replay(pilot, screen)
        assert screen.replay_engine.phase is ev.Phase.ROLLED_BACK
        await pilot.press("d")
        assert app.screen is screen
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 10, "app exited")
    assert app.return_code in (None, 0)
    assert attempts == []
    assert app.engine.fleet.connects == 0
    assert screen.replay_engine.fleet.refused == 0


# Snapshot ---------------------------------------------------------------------------------------


def test_replay_paused_mid_analysis(snap_compare: Any, tmp_path: Path) -> None:
    """The replay of #1 (1.3.0-bad), paused after the analysis' third update: under the
    header, a banner in the warning colour says REPLAY of #1 1.3.0-bad · 10x · paused ·
    event 25/35 · 0:11 of 0:20 · nothing is sent to any host · q quits; header phase
    analysis #1, stable 1.0.0, candidate 1.3.0-bad; web-01 in the deployed colour with the
    canary badge, the eleven others pending on 1.0.0; the side panel on web-01 (last step
    deploy restart, exit 0); the rollout panel: canary 1/1, analysis 6s of 30s, error-ratio
    undecided at 0.16; the log pane's title says logs are not kept in the journal; the
    footer offers Pause/play, Faster, Slower and Back, and no Deploy, Promote or Rollback."""
    app = replay_app(tmp_path)

    async def run_before(pilot: Pilot[int]) -> None:
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        await until(pilot, lambda: screen.is_mounted, 10, "screen mounted")
        await pilot.pause()
        events = screen.replayer.events
        third = [i for i, e in enumerate(events) if isinstance(e, ev.AnalysisUpdate)][2]
        screen.replayer.step(third + 1)
        await settle_replay(pilot, screen)
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
