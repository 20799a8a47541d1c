"""While a deployment starts (every host locked and asked its version: seconds at a
thousand hosts), the screen says so; a start that is refused leaves no trace of it.

Demo fleet over real SSH; a ``slow`` host (every command waits 2 s) makes the start last.
"""

from __future__ import annotations

from pathlib import Path

from test_ui_stories import SIZE, make_app, type_version
from test_ui_support import record_notifications, until

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.status_header import StatusHeader

LOCKING = "locking 6 host(s) and reading what each runs"


async def test_the_screen_says_a_deployment_is_starting(demo: DemoFleet, state_dir: Path) -> None:
    await demo.set_fault("web-03", "slow")
    app = make_app(demo, state_dir)
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        progress = app.fleet_screen.query_one(RolloutProgress)
        header = app.fleet_screen.query_one(StatusHeader)
        await until(pilot, lambda: engine.versions.get("web-03") == "1.0.0", 15, "discovery")
        assert "No deployment yet." in str(progress.render())
        await pilot.press("d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter", "y")
        await until(pilot, lambda: LOCKING in str(progress.render()), 5, "the start shown")
        # Nothing is open yet (web-03 takes 2 s to answer): the header says starting.
        assert engine.deployment is None and engine.phase is ev.Phase.IDLE
        assert "Deploying 1.1.0: " in str(progress.render())
        assert "phase  starting " in str(header.render())
        await until(pilot, lambda: engine.deployment is not None, 20, "the deployment open")
        await until(pilot, lambda: LOCKING not in str(progress.render()), 5, "the start gone")
        assert "rollout #1" in str(progress.border_title)
        assert "starting" not in str(header.render())
        await pilot.press("q", "y")
        await until(pilot, lambda: not app.is_running, 20, "app exited")


async def test_a_refused_start_leaves_the_screen_as_it_was(
    demo: DemoFleet, state_dir: Path
) -> None:
    app = make_app(demo, state_dir)
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        said = record_notifications(app)
        progress = app.fleet_screen.query_one(RolloutProgress)
        header = app.fleet_screen.query_one(StatusHeader)
        await until(pilot, lambda: engine.versions.get("web-01") == "1.0.0", 15, "discovery")
        await demo.set_fault("web-01", "down")  # the default canary
        await pilot.press("d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter", "y")
        await until(pilot, lambda: any("canary unreachable" in s for s in said), 20, "refusal")
        await until(
            pilot, lambda: "No deployment yet." in str(progress.render()), 5, "panel as it was"
        )
        assert "starting" not in str(header.render())
        assert engine.deployment is None
