"""The UI's deploy with the filter on: the dialog offers the release to the hosts the filter
shows only first (o, and enter when a canary is among them), the whole fleet a key of its
own (a). On the real demo fleet: a host left behind, found with `/ version=1.0`, caught
up by keys alone; the others never locked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import switch_to
from test_ui_stories import make_app, running_fleet, type_version
from test_ui_support import Script, settle, until
from textual.widgets import DataTable, Static

from canarytui import events as ev
from canarytui.journal import Journal
from canarytui.ui.screens.confirm import ChoiceScreen, ConfirmScreen
from canarytui.ui.widgets.rollout_progress import RolloutProgress

SIZE = (120, 40)


def behind(script: Script) -> None:
    """Twelve hosts on 1.1.0 but web-05 and web-09, left on 1.0.0."""
    script.discovered("1.1.0")
    for name in ("web-05", "web-09"):
        script.host(name, ev.HostState.IDLE, "1.0.0")


async def ask_behind(pilot: Any, script: Script, *picks: str) -> None:
    """``behind``, then ``/ version=1.0``, the ``picks`` keys, ``d 1.1.0 enter``: the
    deploy question with the filter on."""
    behind(script)
    await settle(pilot)
    await pilot.press("slash", *"version=1.0", "enter", *picks, "d")
    await type_version(pilot, "1.1.0")
    await pilot.press("enter")


def record_deploys(script: Script) -> list[dict[str, Any]]:
    """What the UI asks the engine to deploy (this file's hosts are not reachable)."""
    calls: list[dict[str, Any]] = []

    async def deploy(version: str, **kwargs: Any) -> ev.Outcome:
        calls.append({"version": version, **kwargs})
        return ev.Outcome.COMPLETE

    script.engine.deploy = deploy  # type: ignore[method-assign]
    return calls


async def test_the_filtered_hosts_alone_are_offered_and_deployed_without_a_canary(
    tmp_path: Path,
) -> None:
    script = Script(tmp_path)
    calls = record_deploys(script)
    async with script.app.run_test(size=SIZE) as pilot:
        await ask_behind(pilot, script)
        screen = script.app.screen
        assert isinstance(screen, ChoiceScreen)
        assert [label for _, label, _ in screen.answers] == ["Only 2", "All 12", "No"]
        # What enter would do comes first; without a canary among them, enter does nothing:
        # a release without analysis is never a reflex.
        assert screen.message.startswith(
            "Deploy 1.1.0 to only the 2 host(s) the filter shows (version=1.0): web-05, "
            "web-09; no canary among them: straight to 2 wave(s), each host health-gated, "
            "without canary or analysis. The others are not changed (o)\n\nOr every host "
            "(a): deploy 1.1.0 to 1 canary host(s): web-01?"
        ), screen.message
        await pilot.press("enter")
        await settle(pilot)
        assert script.app.screen is screen and not calls
        # web-05 is put on 1.1.0 while the question is open (the filter follows it out):
        # the hosts the question named are the ones deployed to.
        script.host("web-05", ev.HostState.IDLE, "1.1.0")
        await settle(pilot)
        assert script.app.fleet_screen.state.shown == ["web-09"]
        await pilot.press("o")
        await until(pilot, lambda: bool(calls), 5, "the deploy call")
    assert calls == [
        {
            "version": "1.1.0",
            "canaries": None,
            "hosts": ["web-05", "web-09"],
            "canary_phase": False,
        }
    ]


async def test_a_pick_among_the_filtered_hosts_is_their_canary_and_enter_is_only_them(
    tmp_path: Path,
) -> None:
    script = Script(tmp_path)
    calls = record_deploys(script)
    async with script.app.run_test(size=SIZE) as pilot:
        await ask_behind(pilot, script, "space")  # web-05 picked
        said = script.app.screen.message  # type: ignore[attr-defined]
        assert (
            "; canary web-05, watched by the analysis for 30s, then 1 wave(s) when you promote. "
            "The others are not changed (o, or enter)"
        ) in said, said
        await pilot.press("enter")  # the first answer: the filtered hosts only
        await until(pilot, lambda: len(calls) == 1, 5, "the limited deploy call")
        await pilot.press("d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter", "y")  # not every host: y is no key of this question
        assert isinstance(script.app.screen, ChoiceScreen) and len(calls) == 1
        await pilot.press("a")  # every host: its own key
        await until(pilot, lambda: len(calls) == 2, 5, "the whole fleet's deploy call")
        # Without the filter, the plain question again.
        await pilot.press("slash", "ctrl+u", "enter", "d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter")
        assert isinstance(script.app.screen, ConfirmScreen)
        await pilot.press("n")
    limited, every = calls
    assert (limited["hosts"], limited["canaries"], limited["canary_phase"]) == (
        ["web-05", "web-09"],
        ["web-05"],
        True,
    )
    assert (every["hosts"], every["canaries"], every["canary_phase"]) == (None, ["web-05"], True)


async def test_a_host_left_behind_is_caught_up_by_keys_alone(tmp_path: Path) -> None:
    async with running_fleet(4) as fleet:
        for name in ("web-01", "web-02", "web-03"):
            switch_to(fleet, name, "1.2.0")
        app = make_app(fleet, tmp_path / "state")
        engine = app.engine
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: (
                    engine.versions.get("web-04") == "1.0.0"
                    and engine.versions.get("web-01") == "1.2.0"
                ),
                15,
                "versions discovered",
            )
            await pilot.press("slash", *"version=1.0", "enter", "d")
            await type_version(pilot, "1.2.0")
            await pilot.press("enter")
            assert isinstance(app.screen, ChoiceScreen)
            await pilot.press("o")
            await until(
                pilot,
                lambda: (
                    engine.deployment is not None
                    and not engine.busy
                    and engine.phase is ev.Phase.COMPLETE
                ),
                60,
                lambda: f"complete (phase {engine.phase.value})",
            )
            await settle(pilot)
            panel = app.fleet_screen.query_one(RolloutProgress)
            assert str(panel.border_title) == "rollout #1 · 1.2.0 · 1 of 4 hosts"
            await pilot.press("H")  # the history's detail says the limit and its decision
            await settle(pilot)
            detail = str(app.screen.query_one("#detail-text", Static).render())
            assert "no canary; wave 1: 1 host(s); only web-04" in detail
            assert "limit  to 1 of 4 hosts: web-04" in detail
            # Its row says it too, as the command line's history does (it read as a whole
            # fleet's release).
            row = app.screen.query_one(DataTable).get_row_at(0)
            assert [str(c) for c in row][7] == "(no canary phase) (only web-04)"
        assert {h: fleet.version_on(h) for h in fleet.host_names} == dict.fromkeys(
            fleet.host_names, "1.2.0"
        )
        # Only web-04 was locked: the lock's folder is made on every host a deployment locks.
        made = [h for h in fleet.host_names if (fleet.sandbox_of(h) / ".canarytui").exists()]
        assert made == ["web-04"]
        journal = Journal(tmp_path / "state")
        record = journal.last_deployment("demo", "shop")
        assert record is not None
        assert (record.scope, record.canaries, record.plan) == ("web-04", [], [["web-04"]])
        journal.close()
