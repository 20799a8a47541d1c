"""The release stories played on the real demo fleet by key presses alone.

Good: ``d 1.1.0 enter y``, the canary passes, ``p y`` through every wave; every host then
runs 1.1.0 on disk and the journal has the deployment complete and each decision with its
user. Bad: ``d 1.3.0-bad enter y``; the analysis catches the error ratio on the canary and
rolls it back; no host runs the bad release and nobody else ever got it; ``a`` shows it
happen in the analysis view.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_ui_support import record_notifications, settle, until
from textual.widgets import DataTable

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.engine import locks as lock
from canarytui.journal import Journal
from canarytui.ui.app import CanaryApp
from canarytui.ui.screens.analysis import AnalysisScreen
from canarytui.ui.screens.confirm import ChoiceScreen, ConfirmScreen
from canarytui.ui.widgets.analysis_chart import AnalysisChart
from canarytui.ui.widgets.log_pane import LogPane
from canarytui.ui.widgets.rollout_progress import RolloutProgress

USER = "story-operator"
SIZE = (120, 40)


@contextlib.asynccontextmanager
async def running_fleet(hosts: int, analysis: float = 2.0) -> AsyncIterator[DemoFleet]:
    """A demo fleet with a short analysis (2 s unless said), busy enough that a good
    release passes on it."""
    demo = DemoFleet(hosts=hosts, analysis_duration=analysis, interval=0.3, tick=0.3, traffic=12.0)
    await asyncio.wait_for(demo.start(), 30)
    try:
        yield demo
    finally:
        await asyncio.wait_for(demo.stop(), 30)


@pytest.fixture
async def fleet() -> AsyncIterator[DemoFleet]:
    async with running_fleet(4) as demo:
        yield demo


def make_app(fleet: DemoFleet, state: Path) -> CanaryApp:
    env = load_env(fleet.env_path)
    journal = Journal(state)
    return CanaryApp(env, journal, engine=Engine(env, journal, user=USER))


async def type_version(pilot, version: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press(*[{".": "full_stop", "-": "minus"}.get(c, c) for c in version])


async def versions_known(pilot: Any, app: CanaryApp, fleet: DemoFleet) -> None:
    """Until the UI knows every host's version (1.0.0, the demo's first)."""
    engine = app.engine
    await until(
        pilot,
        lambda: all(engine.versions.get(h) == "1.0.0" for h in fleet.host_names),
        10,
        "versions discovered",
    )


async def deploy_by_keys(pilot, app: CanaryApp, fleet: DemoFleet, version: str) -> None:  # type: ignore[no-untyped-def]
    """Once every host's version is known: ``d VERSION enter y``."""
    await versions_known(pilot, app, fleet)
    await pilot.press("d")
    await type_version(pilot, version)
    await pilot.press("enter", "y")


async def deploy_canary(pilot: Any, app: CanaryApp, fleet: DemoFleet, version: str) -> None:
    """``deploy_by_keys``, then until the canary passed: the deployment awaits promotion."""
    engine = app.engine
    await deploy_by_keys(pilot, app, fleet, version)
    await until(
        pilot,
        lambda: engine.phase is ev.Phase.AWAITING_PROMOTION and not engine.busy,
        30,
        lambda: (
            f"canary passed (phase {engine.phase.value}, verdict "
            f"{engine.last_verdict and engine.last_verdict.reasons})"
        ),
    )


def stopped_after(engine: Engine, wave: int) -> bool:
    """The engine is idle and its journal says the rollout stopped after ``wave`` (or
    completed)."""
    record = engine.journal.deployment(engine.deployment.id)
    return (
        not engine.busy
        and record is not None
        and (
            record.phase == "complete"
            or (record.wave == wave and record.phase == "awaiting promotion")
        )
    )


@contextlib.asynccontextmanager
async def in_a_long_analysis(state: Path) -> AsyncIterator[tuple[Any, CanaryApp, DemoFleet]]:
    """Four demo hosts, 1.1.0 deployed by keys, its 60 s analysis begun: (pilot, app, fleet)."""
    async with running_fleet(4, analysis=60.0) as fleet:
        app = make_app(fleet, state)
        async with app.run_test(size=SIZE) as pilot:
            await deploy_by_keys(pilot, app, fleet, "1.1.0")
            await until(pilot, lambda: app.engine.phase is ev.Phase.ANALYSIS, 20, "analysis")
            yield pilot, app, fleet


async def test_q_and_p_during_the_analysis_say_what_it_is_doing(tmp_path: Path) -> None:
    """In a long analysis: q asks first, saying what the deployment is doing, and n goes
    on; p says it promotes once the canary passed; r, y rolls it back."""
    async with in_a_long_analysis(tmp_path / "state") as (pilot, app, fleet):
        engine = app.engine
        said = record_notifications(app)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        shown = str(app.screen.message)
        assert "deployment #1 of 1.1.0 is in its analysis. Quitting" in shown
        await pilot.press("n")
        await pilot.press("p")
        assert "deployment #1 is in its analysis: p promotes once it passed" in said, said
        assert engine.phase is ev.Phase.ANALYSIS and app.is_running
        await pilot.press("r", "y")
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.ROLLED_BACK and not engine.busy,
            30,
            "rolled back",
        )
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 10, "app exited")
        assert {fleet.version_on(h) for h in fleet.host_names} == {"1.0.0"}


async def test_a_stop_signal_during_the_analysis_is_named_in_the_journal(tmp_path: Path) -> None:
    """SIGHUP (the terminal closed) in a long analysis: the UI quits as a confirmed quit
    does, and the journal says what stopped the deployment it leaves open."""
    async with in_a_long_analysis(tmp_path / "state") as (pilot, app, _):
        app._stop_signalled(signal.SIGHUP)  # as the loop's signal handler calls it
        await until(pilot, lambda: not app.is_running, 20, "app exited")
    journal = Journal(tmp_path / "state")
    record = journal.open_deployment("demo", "shop")
    assert record is not None and record.phase == "analysis"
    said = [e.get("message", "") for e in journal.events(record.id)]
    journal.close()
    assert any(
        m.startswith("stopped by SIGHUP (its terminal closed) during analysis: deployment #1")
        for m in said
    ), said
    assert app.return_value == 129  # the exit status the process ends with


async def test_good_release_promoted_in_waves_by_keys(fleet: DemoFleet, tmp_path: Path) -> None:
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_canary(pilot, app, fleet, "1.1.0")
        assert fleet.version_on("web-01") == "1.1.0"
        assert {fleet.version_on(h) for h in fleet.host_names[1:]} == {"1.0.0"}
        waves = len(engine.deployment.plan)
        for wave in range(1, waves + 1):
            await pilot.press("p")
            await pilot.press("y")
            await until(pilot, lambda w=wave: stopped_after(engine, w), 20, f"wave {wave} done")
        assert engine.phase is ev.Phase.COMPLETE
        progress = app.fleet_screen.query_one(RolloutProgress)
        await until(
            pilot,
            lambda: "outcome complete" in str(progress.render()),
            5,
            "the screen says complete",
        )
        d = engine.deployment.id
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 10, "app exited")
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.1.0"}
    journal = Journal(tmp_path / "state")
    record = journal.deployment(d)
    assert record is not None and record.outcome == "complete" and not record.is_open
    decisions = journal.decisions(d)
    assert [x["action"] for x in decisions] == ["deploy"] + ["promote"] * waves
    assert {x["user"] for x in decisions} == {USER}
    assert {h.current for h in journal.hosts(d).values()} == {"1.1.0"}


async def test_p_after_a_tolerated_failure_promotes_the_next_wave_as_its_dialog_says(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """web-02 (wave 1) is down: wave 1 fails it within max_failures and stops. p then asks
    for wave 2 and says web-02 is tried again; y does exactly that (it once tried web-02
    alone and stopped after wave 1 again, whatever the dialog had said)."""
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_canary(pilot, app, fleet, "1.1.0")
        assert engine.deployment.plan == [["web-02"], ["web-03"], ["web-04"]]
        await fleet.set_fault("web-02", "down")
        await pilot.press("p", "y")
        await until(pilot, lambda: stopped_after(engine, 1), 20, "wave 1 done")
        # Unreachable, or failed if its kept shell was cut in the middle of a command.
        lost = engine.state.host_states["web-02"]
        assert lost in (ev.HostState.UNREACHABLE, ev.HostState.FAILED)
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmScreen)
        # Unreachable, it is counted again if it still is (within the budget: said so).
        warned = "\n\nWarning: web-02 unreachable now: counted against promote.max_failures (1)."
        assert str(app.screen.message) == (
            "Deploy 1.1.0 to wave 2/3 (1 host(s)), and again to web-02, which failed in an "
            "earlier wave?" + (warned if lost is ev.HostState.UNREACHABLE else "")
        )
        await pilot.press("y")
        await until(pilot, lambda: stopped_after(engine, 2), 20, "wave 2 done")
        assert fleet.version_on("web-03") == "1.1.0" and fleet.version_on("web-04") == "1.0.0"


async def test_a_host_whose_key_changed_says_so_on_its_tile(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """web-01's and web-02's keys swapped in known_hosts: their tiles and panel say "host key
    refused", not "unreachable", so nobody chases a network fault; the filter still finds
    them as unreachable."""
    lines = fleet.known_hosts_path.read_text().splitlines()
    keys = [line.split(None, 1) for line in lines]
    keys[0][1], keys[1][1] = keys[1][1], keys[0][1]
    fleet.known_hosts_path.write_text("".join(f"{a} {b}\n" for a, b in keys))
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: (
                {"web-01", "web-02"} <= set(engine.state.refused)
                and engine.versions.get("web-03") == engine.versions.get("web-04") == "1.0.0"
            ),
            10,
            "every host discovered",
        )
        await settle(pilot)
        state = app.fleet_screen.state
        assert [state.state_text(h) for h in fleet.host_names] == [
            "host key refused",
            "host key refused",
            "idle",
            "idle",
        ]
        grid = app.fleet_screen.grid
        assert "host key refused" in "".join(s.text for s in grid.painter.line("web-01", 2, False))
        assert state.apply_filter("unreachable") == ["web-01", "web-02"]
        await pilot.press("d", *"1.1.0".replace(".", " full_stop ").split(), "enter")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)  # the filter is on: o, its hosts only
        assert "Warning: canary web-01 host key refused now: the deployment would be " in str(
            app.screen.message
        )


async def test_bad_release_caught_on_the_canary_and_rolled_back(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: all(engine.versions.get(h) == "1.0.0" for h in fleet.host_names),
            10,
            "versions discovered",
        )
        # Pick web-02 as the only canary instead of the default web-01.
        await pilot.press("right", "space")
        await pilot.press("d")
        await type_version(pilot, "1.3.0-bad")
        await pilot.press("enter", "enter")  # enter confirms too
        grid = app.fleet_screen.grid
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.ANALYSIS and "picked" not in str(grid.border_title),
            10,
            "the grid's title no longer says a canary is picked: it is the deployment's",
        )
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.ROLLED_BACK and not engine.busy,
            25,
            "canary rolled back",
        )
        progress = app.fleet_screen.query_one(RolloutProgress)
        await until(
            pilot,
            lambda: "outcome canary failed" in str(progress.render()),
            5,
            "the screen says the canary failed",
        )
        shown = str(progress.render())
        assert "FAIL" in shown and "error-ratio" in shown
        # The pick was that deployment's: once it is over, the grid's title and the log
        # pane say what the next one would take (the file's default canary).
        screen = app.fleet_screen
        assert "picked" not in str(screen.grid.border_title), screen.grid.border_title
        assert str(screen.query_one(LogPane).border_title) == "logs · canaries web-01"
        d = engine.deployment.id
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 10, "app exited")
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.0.0"}
    journal = Journal(tmp_path / "state")
    record = journal.deployment(d)
    assert record is not None
    assert record.canaries == ["web-02"]
    assert (record.outcome, record.verdict, record.is_open) == ("canary failed", "fail", False)
    assert [x["action"] for x in journal.decisions(d)] == ["deploy"]
    # Only the canary was ever touched.
    touched = {h for h, r in journal.hosts(d).items() if r.last_step}
    assert touched == {"web-02"}


async def test_bad_release_seen_in_the_analysis_view(fleet: DemoFleet, tmp_path: Path) -> None:
    """d 1.3.0-bad, then a while the canary is analysed: the view's table has the canary's
    error-ratio row failing with its value and the baseline's, the chart has the canary's
    points; escape goes back to the fleet; the journal has the verdict."""
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_by_keys(pilot, app, fleet, "1.3.0-bad")
        await until(
            pilot,
            lambda: engine.phase is not ev.Phase.IDLE and engine.phase is not ev.Phase.CANARY,
            20,
            lambda: f"the analysis (phase {engine.phase.value})",
        )
        await pilot.press("a")
        assert isinstance(app.screen, AnalysisScreen)
        view = app.screen
        canary = engine.deployment.canaries[0]

        def error_ratio() -> ev.Measurement | None:
            return next(
                (m for m in view.rows if m.rule == "error-ratio" and m.host == canary), None
            )

        await until(
            pilot,
            lambda: (m := error_ratio()) is not None and m.state == "fail",
            25,
            lambda: f"a failing error-ratio row (rows: {[m.describe() for m in view.rows]})",
        )
        row = error_ratio()
        assert row is not None and row.value is not None and row.baseline is not None
        assert row.value > row.baseline
        # The arrows move in the table: to the error-ratio row, whose chart has points.
        table = view.query_one(DataTable)
        target = view.rows.index(row)
        moves = target - table.cursor_row
        await pilot.press(*(["down"] * moves if moves > 0 else ["up"] * -moves), "down", "up")
        chart = view.query_one(AnalysisChart)
        assert table.cursor_row == target
        assert "error-ratio" in str(chart.border_title)
        assert chart.data is not None and chart.data.points, "no chart points"
        assert any(p.recent is not None and p.recent > 0.05 for p in chart.data.points)
        await pilot.press("escape")
        assert app.screen is app.fleet_screen
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.ROLLED_BACK and not engine.busy,
            25,
            "canary rolled back",
        )
        d = engine.deployment.id
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 10, "app exited")
    journal = Journal(tmp_path / "state")
    record = journal.deployment(d)
    assert record is not None and record.verdict == "fail"
    verdicts = [e for e in journal.events(d) if e["event"] == "verdict"]
    assert len(verdicts) == 1 and verdicts[0]["verdict"] == "fail"
    assert any(
        m["rule"] == "error-ratio" and m["status"] == "fail" for m in verdicts[0]["measurements"]
    )


async def test_quit_during_a_deployment_asks_and_leaves_it_open(tmp_path: Path) -> None:
    """q while the canary is analysed asks first; after y the app exits, the deployment
    stays open in the journal with its locks freed, and a later process rolls it back.
    The analysis lasts longer than the test: the quit always lands while it runs."""
    async with running_fleet(4, analysis=120.0) as fleet:
        await quit_mid_analysis(fleet, tmp_path)


async def quit_mid_analysis(fleet: DemoFleet, tmp_path: Path) -> None:
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: engine.versions.get("web-01") == "1.0.0", 10, "discovery")
        await pilot.press("d")
        await type_version(pilot, "1.2.0")
        await pilot.press("enter", "y")
        await until(pilot, lambda: engine.phase is ev.Phase.ANALYSIS, 15, "analysis")
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        # What it says is left is what will be accepted: no verdict yet, so no promote
        # but an analysis again.
        assert "promote analyses its canaries again, or roll it back" in app.screen.message
        assert "promote or roll" not in app.screen.message
        await pilot.press("n")  # changed my mind: still running
        assert app.is_running and engine.busy
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, 20, "app exited")
    journal = Journal(tmp_path / "state")
    record = journal.open_deployment("demo", "shop")
    assert record is not None and record.version == "1.2.0"
    held = lock.read_local(lock.local_lock_path(journal.state_dir, "demo", "shop"))
    assert held is None  # stopped mid-way: its lock is freed
    later = Engine(load_env(fleet.env_path), journal, user="next-operator")
    try:
        assert await later.rollback() is ev.Outcome.ROLLED_BACK
    finally:
        await later.fleet.close()
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.0.0"}
