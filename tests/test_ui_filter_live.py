"""The filter follows the fleet: hosts enter and leave it as their state and health change."""

from __future__ import annotations

from pathlib import Path

from test_ui_support import Script, settle

from canarytui import events as ev

SIZE = (120, 40)


async def test_an_open_filter_follows_host_updates_and_health(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        await settle(pilot)
        screen = script.app.fleet_screen
        state = screen.state
        await pilot.press("slash", *"failing", "enter")
        assert state.shown == []
        script.health("web-04", ok=False)
        script.engine.emit(ev.HostUpdate(host="web-09", state=ev.HostState.FAILED))
        await settle(pilot)
        assert state.shown == ["web-04", "web-09"]
        assert screen.grid.cursor_host == "web-09"  # the first to enter (its update came first)
        assert "2 shown" in str(screen.grid.border_title)
        script.health("web-04", ok=True)
        await settle(pilot)
        assert state.shown == ["web-09"]
        assert screen.grid.cursor_host == "web-09"
        await pilot.press("escape")
        assert len(state.shown) == 12


async def test_a_finished_deployment_refilters_every_host(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.1.0", ["web-01"])
        await settle(pilot)
        state = script.app.fleet_screen.state
        await pilot.press("slash", *"pending", "enter")
        assert len(state.shown) == 12
        # Over: hosts left pending are shown at rest again, with no update of their own.
        script.phase(ev.Phase.ROLLED_BACK)
        script.emit(ev.DeploymentFinished(outcome=ev.Outcome.ROLLED_BACK, summary="rolled back"))
        await settle(pilot)
        assert state.shown == []
