"""The deploy dialog's release picker, played on the real demo fleet by key presses.

The list is what ``deploy.releases`` prints on the canary plus the journal's versions,
newest first, the stable and the last rolled-back release marked, the next release after
the stable one highlighted; arrows and enter pick, typing filters or enters a new version,
an invalid one is refused in the dialog. The good path (pick a canary, deploy the next
release, promote every wave) takes at most 8 keys. A snapshot shows the dialog.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import switch_to
from test_releases import record
from test_ui_stories import USER, make_app, running_fleet
from test_ui_stories import type_version as type_text
from test_ui_support import Script, settle, until
from textual.pilot import Pilot
from textual.widgets import Static

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.engine.releases import Catalogue, build_catalogue
from canarytui.journal import Journal
from canarytui.ssh import CommandResult
from canarytui.ui.app import CanaryApp
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.screens.fleet import FleetScreen
from canarytui.ui.screens.version import VersionScreen
from canarytui.ui.widgets.release_list import ReleaseList

SIZE = (120, 40)


@pytest.fixture
async def fleet() -> AsyncIterator[DemoFleet]:
    async with running_fleet(4) as demo:
        yield demo


DEMO_RELEASES = ["1.5.0-slow", "1.4.0-dead", "1.3.0-bad", "1.2.0", "1.1.0", "1.0.0"]


async def discovered(pilot: Pilot[Any], app: CanaryApp, fleet: DemoFleet) -> None:
    await until(
        pilot,
        lambda: all(app.engine.versions.get(h) == "1.0.0" for h in fleet.host_names),
        10,
        "versions discovered",
    )


async def open_picker(pilot: Pilot[Any], app: CanaryApp) -> VersionScreen:
    """``d``, then wait until the list has come back from the canaries."""
    await pilot.press("d")
    await until(pilot, lambda: isinstance(app.screen, VersionScreen), 5, "the version dialog")
    screen = app.screen
    assert isinstance(screen, VersionScreen)
    await until(pilot, lambda: not screen.listing, 15, "the releases listed")
    await pilot.pause()
    return screen


def shown(screen: VersionScreen) -> list[str]:
    return list(screen.query_one(ReleaseList).shown)


def highlighted(screen: VersionScreen) -> str | None:
    return screen.query_one(ReleaseList).highlighted_version


def text_of(screen: VersionScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def confirmed_version(pilot: Pilot[Any], app: CanaryApp) -> str:
    """The deploy confirmation's version, answered no."""
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the confirmation")
    screen = app.screen
    assert isinstance(screen, ConfirmScreen)
    title = f"{screen.title_text}\n{screen.message}"
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, FleetScreen), 5, "back on the fleet")
    assert app.engine.journal.last_deployment("demo", "shop") is None
    return title


async def test_list_marks_stable_and_the_rolled_back_release(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    bad = Engine(load_env(fleet.env_path), Journal(state), user=USER)
    try:
        outcome = await asyncio.wait_for(bad.deploy("1.3.0-bad", canaries=["web-02"]), 40)
    finally:
        await bad.fleet.close()
    assert outcome is ev.Outcome.CANARY_FAILED
    assert fleet.version_on("web-02") == "1.0.0"

    app = make_app(fleet, state)
    async with app.run_test(size=SIZE) as pilot:
        await discovered(pilot, app, fleet)
        screen = await open_picker(pilot, app)
        assert shown(screen) == DEMO_RELEASES
        assert screen.catalogue.stable == "1.0.0"
        assert screen.catalogue.rolled_back == "1.3.0-bad"
        releases = {r.version: r for r in screen.catalogue.releases}
        assert releases["1.0.0"].marks == ("stable",)
        assert releases["1.3.0-bad"].marks == ("rolled back",)
        assert releases["1.3.0-bad"].listed and releases["1.3.0-bad"].in_journal
        lines = [str(o.prompt) for o in screen.query_one(ReleaseList).options]
        assert [line.split()[0] for line in lines] == DEMO_RELEASES
        assert lines[2].split(maxsplit=1)[1] == "rolled back"
        assert lines[5].split(maxsplit=1)[1] == "stable"
        assert highlighted(screen) == "1.1.0"
        assert text_of(screen, "#choice") == "enter: 1.1.0"
        assert text_of(screen, "#notes") == ""
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_arrows_and_enter_pick_a_release(fleet: DemoFleet, tmp_path: Path) -> None:
    app = make_app(fleet, tmp_path / "state")
    async with app.run_test(size=SIZE) as pilot:
        await discovered(pilot, app, fleet)
        screen = await open_picker(pilot, app)
        assert highlighted(screen) == "1.1.0"
        await pilot.press("up", "up", "down")
        assert highlighted(screen) == "1.2.0"
        assert text_of(screen, "#choice") == "enter: 1.2.0"
        await pilot.press("enter")
        assert "Deploy 1.2.0" in await confirmed_version(pilot, app)


async def test_hosts_left_behind_are_offered_the_release_the_others_run(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """Three hosts on 1.1.0, web-04 behind on 1.0.0: filtered to it (``version=1.0``),
    ``d`` offers 1.1.0 first, catching it up (it offered the release after the stable,
    a new one to send to that host with no canary); unfiltered, the next release still."""
    for name in ("web-01", "web-02", "web-03"):
        switch_to(fleet, name, "1.1.0")
    app = make_app(fleet, tmp_path / "state")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.engine.versions.get("web-01") == "1.1.0", 10, "versions")
        await until(pilot, lambda: app.engine.versions.get("web-04") == "1.0.0", 10, "versions")
        screen = await open_picker(pilot, app)
        assert highlighted(screen) == "1.2.0"
        await pilot.press("escape")
        await pilot.press("slash", *"version=1.0", "enter")
        assert app.fleet_screen.state.shown == ["web-04"]
        screen = await open_picker(pilot, app)
        assert highlighted(screen) == "1.1.0" and text_of(screen, "#choice") == "enter: 1.1.0"
        await pilot.press("escape")


async def test_typing_filters_and_arrows_pick_from_what_is_left(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    app = make_app(fleet, tmp_path / "state")
    async with app.run_test(size=SIZE) as pilot:
        await discovered(pilot, app, fleet)
        screen = await open_picker(pilot, app)
        await type_text(pilot, "1.")
        assert shown(screen) == DEMO_RELEASES
        assert highlighted(screen) is None  # what was typed is no release
        await type_text(pilot, "4")
        assert shown(screen) == ["1.4.0-dead"]
        await pilot.press("backspace", "backspace", "backspace")
        assert shown(screen) == DEMO_RELEASES and highlighted(screen) == "1.1.0"
        await type_text(pilot, "slow")
        assert shown(screen) == ["1.5.0-slow"]
        assert (
            text_of(screen, "#choice")
            == "enter: slow, not in the list (a new version); ↓ picks 1.5.0-slow"
        )
        await pilot.press("down")
        assert highlighted(screen) == "1.5.0-slow"
        assert text_of(screen, "#choice") == "enter: 1.5.0-slow"
        await pilot.press("enter")
        said = await confirmed_version(pilot, app)
        assert "Deploy 1.5.0-slow" in said and "Warning" not in said  # picked: no warning

        # Typed, a part of a release's name: enter takes what was typed, and the question
        # says that no canary lists it (a slip: "1.3" for 1.3.0-bad).
        screen = await open_picker(pilot, app)
        await type_text(pilot, "1.3")
        assert shown(screen) == ["1.3.0-bad"] and highlighted(screen) is None
        await pilot.press("enter")
        said = await confirmed_version(pilot, app)
        assert said.startswith("Deploy 1.3?\nWarning: 1.3 is not among the releases the canaries")
        assert "list (1.3.0-bad is): it was typed, not picked from the list" in said
        assert "is it the release you meant?\n" in said and "?." not in said  # said once


async def test_a_typed_version_in_the_list_or_new_is_taken(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    app = make_app(fleet, tmp_path / "state")
    async with app.run_test(size=SIZE) as pilot:
        await discovered(pilot, app, fleet)
        screen = await open_picker(pilot, app)
        await type_text(pilot, "1.2.0")
        assert shown(screen) == ["1.2.0"] and highlighted(screen) == "1.2.0"
        await pilot.press("enter")
        assert "Deploy 1.2.0" in await confirmed_version(pilot, app)

        screen = await open_picker(pilot, app)
        await type_text(pilot, "2.0.0-rc1")
        assert shown(screen) == [] and highlighted(screen) is None
        assert "not in the list (a new version)" in text_of(screen, "#choice")
        await pilot.press("enter")
        said = await confirmed_version(pilot, app)
        assert "Deploy 2.0.0-rc1" in said
        assert "Warning: 2.0.0-rc1 is not among the releases the canaries list: it" in said


async def test_an_invalid_typed_version_is_refused_in_the_dialog(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    app = make_app(fleet, tmp_path / "state")
    async with app.run_test(size=SIZE) as pilot:
        await discovered(pilot, app, fleet)
        screen = await open_picker(pilot, app)
        await type_text(pilot, "-bad")
        assert shown(screen) == ["1.3.0-bad"] and highlighted(screen) is None
        await pilot.press("enter")
        assert app.screen is screen
        error = text_of(screen, "#error")
        assert "version '-bad' does not match version_pattern" in error
        await type_text(pilot, "x")  # typing again clears the message
        assert text_of(screen, "#error") == ""
        await pilot.press(*["backspace"] * 5)
        assert highlighted(screen) == "1.1.0"  # nothing typed: the next release again
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)
        assert app.engine.journal.last_deployment("demo", "shop") is None


async def test_the_dialog_opens_at_once_and_the_list_fills_later(tmp_path: Path) -> None:
    """A slow listing never blocks typing: the dialog opens, says it is listing, and
    takes a typed version before the list comes back."""
    script = Script(tmp_path)
    release = asyncio.Event()

    async def slow(canaries: Any) -> Catalogue:
        await release.wait()
        return Catalogue()

    script.engine.releases = slow  # type: ignore[method-assign]
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fleet_screen.is_mounted, 10, "screen mounted")
        script.discovered()
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, VersionScreen), 5, "the dialog")
        screen = app.screen
        assert isinstance(screen, VersionScreen) and screen.listing
        assert text_of(screen, "#notes") == "listing the releases on web-01 …"
        await pilot.press("enter")
        assert text_of(screen, "#error") == "type a version, or wait for the list"
        await type_text(pilot, "1.1.0")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirmation")
        await pilot.press("n")
        release.set()


async def test_a_listing_that_breaks_is_a_note_and_typing_still_works(tmp_path: Path) -> None:
    script = Script(tmp_path)

    async def broken(canaries: Any) -> Catalogue:
        raise RuntimeError("journal unreadable")

    script.engine.releases = broken  # type: ignore[method-assign]
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fleet_screen.is_mounted, 10, "screen mounted")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, VersionScreen), 5, "the dialog")
        screen = app.screen
        assert isinstance(screen, VersionScreen)
        await until(pilot, lambda: not screen.listing, 5, "the listing failed")
        assert text_of(screen, "#notes") == (
            "could not list the releases: journal unreadable; type a version"
        )
        await type_text(pilot, "1.1.0")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirmation")


async def test_good_release_in_eight_keys(fleet: DemoFleet, tmp_path: Path) -> None:
    """space (the focused host as canary), d, enter (the next release, 1.1.0), y, then
    P y (every wave, one confirmation): 6 keys, every host on 1.1.0."""
    app = make_app(fleet, tmp_path / "state")
    engine = app.engine
    keys: list[str] = []

    async def press(*pressed: str) -> None:
        keys.extend(pressed)
        await pilot.press(*pressed)

    async with app.run_test(size=SIZE) as pilot:
        await discovered(pilot, app, fleet)
        await press("space")
        assert app.fleet_screen.state.canaries_for_deploy() == ["web-01"]
        await press("d")
        await until(pilot, lambda: isinstance(app.screen, VersionScreen), 5, "the dialog")
        screen = app.screen
        assert isinstance(screen, VersionScreen)
        await until(pilot, lambda: not screen.listing, 15, "the releases listed")
        await press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirmation")
        await press("y")
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.AWAITING_PROMOTION and not engine.busy,
            25,
            lambda: f"canary passed (phase {engine.phase.value})",
        )
        assert engine.deployment is not None and engine.deployment.version == "1.1.0"
        await press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirmation")
        await press("y")
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.COMPLETE and not engine.busy,
            30,
            lambda: f"complete (phase {engine.phase.value})",
        )
        d = engine.deployment.id
        assert len(keys) <= 8, keys
    journal = Journal(tmp_path / "state")
    record = journal.deployment(d)
    assert record is not None
    assert (record.version, record.outcome, record.is_open) == ("1.1.0", "complete", False)
    assert record.canaries == ["web-01"]
    assert {h: r.current for h, r in journal.hosts(d).items()} == {
        h: "1.1.0" for h in fleet.host_names
    }
    assert {h: fleet.version_on(h) for h in fleet.host_names} == {
        h: "1.1.0" for h in fleet.host_names
    }
    decisions = [x["action"] for x in journal.decisions(d)]
    assert decisions[0] == "deploy" and "promote" in decisions[1:]


# Snapshot -------------------------------------------------------------------------------


def test_release_picker_dialog(snap_compare: Any, tmp_path: Path) -> None:
    """The deploy dialog over the idle fleet: title "Deploy to production / shop",
    canaries web-01, an empty input, then the list newest first (1.5.0-slow, 1.4.0-dead,
    1.3.0-bad marked rolled back, 1.2.0, 1.1.0 highlighted, 1.0.0 marked stable, 0.9.0
    marked deployed before), two notes under it (one line of web-01 ignored, its escape
    shown as the text \\x1b; web-02 unreachable), a blank error line, "enter: 1.1.0" in
    bold and the keys hint on one line."""
    script = Script(tmp_path)
    env = dataclasses.replace(
        script.env, deploy=dataclasses.replace(script.env.deploy, releases="ls ~/releases")
    )

    async def fixed(canaries: Any) -> Catalogue:
        listing = CommandResult(0, "\n".join(DEMO_RELEASES) + "\n\x1b[31mbuild.log\n", "", 0.01)
        history = [record(2, "1.3.0-bad", "canary failed"), record(1, "0.9.0", "complete")]
        return build_catalogue(
            env,
            {
                "web-01": listing,
                "web-02": "web-02 (10.0.0.2:22): unreachable: connection refused",
            },
            history,
            dict(script.engine.versions),
        )

    script.engine.releases = fixed  # type: ignore[method-assign]

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
        await pilot.pause()
        script.discovered()
        await settle(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(script.app.screen, VersionScreen), 5, "dialog")
        screen = script.app.screen
        assert isinstance(screen, VersionScreen)
        await until(pilot, lambda: not screen.listing, 5, "the list")
        await settle(pilot)

    assert snap_compare(script.app, terminal_size=SIZE, run_before=run_before)


async def test_the_dialog_survives_any_terminal_size(fleet: DemoFleet, state_dir: Path) -> None:
    """A terminal made narrow with the dialog open (a pane split, a window dragged small)
    leaves the UI running at every size, its list included, and usable once wide again."""
    app = make_app(fleet, state_dir)
    async with app.run_test(size=SIZE) as pilot:
        await discovered(pilot, app, fleet)
        screen = await open_picker(pilot, app)
        assert shown(screen)
        for width in range(1, 25):
            for height in (1, 3, 8):
                await pilot.resize_terminal(width, height)
                await pilot.pause()
                assert app.is_running and app._exception is None, (width, height)
        await pilot.resize_terminal(*SIZE)
        await settle(pilot)
        assert app.screen is screen and shown(screen) == DEMO_RELEASES
