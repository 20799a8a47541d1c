"""The filter follows the fleet: hosts enter and leave it as their state and health change."""

from __future__ import annotations

from pathlib import Path

from test_ui_support import Script, record_notifications, settle, until
from textual.widgets import Static

from canarytui import events as ev
from canarytui.engine.bus import HeldBy
from canarytui.ui.host_filter import version_matches
from canarytui.ui.messages import OperatorResult
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.state_text import PanelText

SIZE = (120, 40)
TO_THEM = "(/ version=1.2.0 shows its hosts; then d, o: a release to them)"


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


def panel_text(script: Script) -> str:
    text = script.app.fleet_screen.query_one(RolloutProgress)._last_text
    return text if isinstance(text, str) else text.plain if text is not None else ""


async def test_a_fleet_on_several_versions_says_so_and_the_filter_finds_each(
    tmp_path: Path,
) -> None:
    """A host a rollout could not reach comes back on the release before: at rest, the
    rollout panel says how many hosts run each version and how to find them; the filter's
    ``version=`` shows the hosts whose version contains the rest, and follows them."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered("1.1.0")
        await settle(pilot)
        assert "versions" not in panel_text(script)  # one version: nothing to say
        script.engine.emit(ev.HostUpdate(host="web-09", state=ev.HostState.IDLE, version="1.2.0"))
        await settle(pilot)
        said = f"versions 1.1.0 on 11, 1.2.0 on 1\n{TO_THEM}"
        await until(pilot, lambda: said in panel_text(script), 5, "the versions said")
        state = script.app.fleet_screen.state
        await pilot.press("slash", *"version=1.2", "enter")
        assert state.shown == ["web-09"]
        script.engine.emit(ev.HostUpdate(host="web-03", state=ev.HostState.IDLE, version="1.2.0"))
        script.engine.emit(ev.HostUpdate(host="web-09", state=ev.HostState.IDLE, version="1.1.0"))
        await settle(pilot)
        assert state.shown == ["web-03"]
        assert script.app.fleet_screen.grid.cursor_host == "web-03"
        await pilot.press("escape")
        assert len(state.shown) == 12
        await pilot.press("slash", *"VERSION=1.1", "enter")  # any case, as the rest of it
        assert len(state.shown) == 11 and "web-03" not in state.shown
        script.engine.emit(ev.HostUpdate(host="web-05", state=ev.HostState.IDLE, version="1.10"))
        await settle(pilot)
        assert len(state.shown) == 10 and "web-05" not in state.shown  # 1.10 is not 1.1


async def test_after_a_rollout_that_left_a_host_behind_the_panel_says_what_runs_where(
    tmp_path: Path,
) -> None:
    """Over, the rollout's rows and outcome stay, and the versions follow under them: the
    host it could not reach on its last known version, then on what it says it runs."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.1.0", ["web-01"])
        for name in script.env.host_names:
            if name != "web-09":
                script.deploy_host(name, "1.1.0")
        script.host("web-09", ev.HostState.UNREACHABLE)
        script.phase(ev.Phase.COMPLETE)
        script.emit(ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary="1.1.0 on 11"))
        await settle(pilot)
        said = "versions 1.1.0 on 11, 1.0.0 on 1"  # its last known
        await until(pilot, lambda: said in panel_text(script), 5, "the versions said")
        row = next(line for line in panel_text(script).splitlines() if "1 unreachable" in line)
        script.engine.emit(ev.HostUpdate(host="web-09", state=ev.HostState.IDLE, version="1.2.0"))
        said = f"versions 1.1.0 on 11, 1.2.0 on 1\n{TO_THEM}"
        await until(pilot, lambda: said in panel_text(script), 5, "the versions said again")
        assert "outcome complete" in panel_text(script)
        # Back and idle since, it is still a host the rollout did not reach: its row says so.
        assert row in panel_text(script).splitlines(), panel_text(script)


async def test_a_release_that_missed_a_host_is_not_said_to_be_on_every_host(
    tmp_path: Path,
) -> None:
    """The notice that ends a release said "on every host" whatever it reached: complete
    with a host it could not reach (within max_failures), it says the summary, how many of
    how many, as a warning; complete everywhere, "on every host"."""
    (tmp_path / "missed").mkdir()
    (tmp_path / "all").mkdir()
    said = await release_ended(tmp_path / "missed", "web-09")
    assert "complete: 1.1.0 on 11 of 12 hosts" in said, said
    assert not any("every host" in s for s in said)
    said = await release_ended(tmp_path / "all", None)
    assert "1.1.0: on every host" in said, said


async def release_ended(tmp_path: Path, missed: str | None) -> list[str]:
    """A release of 1.1.0 complete on every host but ``missed``, ended as the operator's
    promote call ends: what the operator was told."""
    script = Script(tmp_path)
    said = record_notifications(script.app)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.1.0", ["web-01"])
        for name in script.env.host_names:
            if name != missed:
                script.deploy_host(name, "1.1.0")
        if missed:
            script.host(missed, ev.HostState.UNREACHABLE)
        script.phase(ev.Phase.COMPLETE)
        summary = f"1.1.0 on {11 if missed else 12} of 12 hosts"
        script.emit(ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary=summary))
        await settle(pilot)
        screen = script.app.fleet_screen
        screen.post_message(OperatorResult("promote", outcome=ev.Outcome.COMPLETE))
        await until(pilot, lambda: any("1.1.0" in s for s in said), 5, lambda: str(said))
    return said


def test_version_filter_matches_whole_parts() -> None:
    """``version=1.0`` once showed hosts on 1.1.0 (``1.0`` is in ``1.1.0``): a version
    matches the text typed, or continues it at a part's end."""
    assert version_matches("1.2.0", "1.2") and version_matches("1.2", "1.2")
    assert version_matches("1.2.3-RC1", "1.2.3-rc1") and version_matches("1.2.3-rc1", "1.2.3")
    assert version_matches("1.2.0", "1.2.") and not version_matches("1.2.3-rc1", "1.2.3-rc")
    assert version_matches("2026.12.06-build.4711", "2026.12")
    assert not version_matches("1.1.0", "1.0")
    assert not version_matches("1.20.0", "1.2") and not version_matches("11.2.0", "1.2")
    assert not version_matches("1.2a", "1.2")


async def test_hosts_another_deployment_holds_say_so_at_rest(tmp_path: Path) -> None:
    """At rest, a host whose lock another machine's deployment (or a maintenance lock)
    holds says so on its tile and in its panel, the rollout panel says whose and on how
    many, and the filter finds them; once this process deploys, the hosts are its own."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        held = script.engine.state.locked_by
        held["web-03"] = HeldBy("ops@bastion (maintenance: disk swap) since 10:00", True)
        # One deployment: its hosts were locked by two processes (the canary's, the
        # promote's), at two times; said once, on both hosts.
        held["web-04"] = HeldBy("bob@laptop (deployment #7 of 1.3.0, pid 42) since 10:02", key="t")
        held["web-05"] = HeldBy("bob@laptop (deployment #7 of 1.3.0, pid 43) since 10:05", key="t")
        for name in ("web-03", "web-04", "web-05"):
            script.engine.emit(ev.HostUpdate(host=name, state=ev.HostState.IDLE, version="1.0.0"))
        await settle(pilot)
        screen = script.app.fleet_screen
        state = screen.state
        assert [state.state_text(n) for n in ("web-02", "web-03", "web-04")] == [
            "idle",
            "maintenance",
            "locked",
        ]
        text = panel_text(script)
        assert "locked 2 host(s) by bob@laptop (deployment #7 of 1.3.0, pid 42)" in text
        assert "locked 1 host(s) by ops@bastion (maintenance: disk swap)" in text
        screen.grid.move_cursor_to("web-04")
        await settle(pilot)
        info = screen.query_one("#host-info", PanelText)._last_text
        assert info is not None and "locked by bob@laptop (deployment #7" in str(info)
        await pilot.press("slash", *"locked", "enter")
        assert state.shown == ["web-04", "web-05"]
        await pilot.press("escape")
        script.start("1.1.0", ["web-01"])  # this process's deployment: the hosts are its own
        await settle(pilot)
        assert held == {} and state.state_text("web-04") == "pending"


async def test_a_lock_this_journal_left_says_the_next_deployment_frees_it(tmp_path: Path) -> None:
    """At rest, a host keeps the lock this journal's own deployment (or refused start) left,
    unreachable as it ended: the rollout panel says so, and that the next one frees it,
    where another machine's lock says whose only."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        held = script.engine.state.locked_by
        held["web-06"] = HeldBy("ci@desk (deployment #2 of 1.2.0)", key="u", left_here=True)
        held["web-07"] = HeldBy("bob@laptop (deployment #7 of 1.3.0)", key="t")
        for name in ("web-06", "web-07"):
            script.engine.emit(ev.HostUpdate(host=name, state=ev.HostState.IDLE, version="1.0.0"))
        await settle(pilot)
        text = " ".join(panel_text(script).split())
        assert (
            "locked 1 host(s) by ci@desk (deployment #2 of 1.2.0) (left by this journal: "
            "the next deployment frees it; canarytui unlock breaks it now)" in text
        ), text
        assert "locked 1 host(s) by bob@laptop (deployment #7 of 1.3.0)" in text
        assert "(deployment #7 of 1.3.0) (left" not in text
        screen = script.app.fleet_screen
        for name, said in (("web-06", True), ("web-07", False)):
            screen.grid.move_cursor_to(name)
            await settle(pilot)
            info = " ".join(str(screen.query_one("#host-info", PanelText)._last_text).split())
            assert "locked by" in info
            assert ("(left by this journal: the next deployment frees it" in info) is said
        # The details (enter) say it whole, where the side panel cuts it at its width.
        screen.grid.move_cursor_to("web-06")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        shown = " ".join(str(script.app.screen.query_one("#info", Static).render()).split())
        assert (
            "lock held by ci@desk (deployment #2 of 1.2.0) (left by this journal: the next "
            "deployment frees it; canarytui unlock breaks it now)"
        ) in shown, shown


def test_words_are_all_matched_and_a_key_value_whole() -> None:
    """`role=web zone=eu-1` showed no host (two words: nothing matched both as one text);
    `zone=eu` showed eu-1 and eu-2 (a label matched as a part). Several words: the hosts
    every one matches; `key=value`: a role or label whole, as `--hosts role=web` is."""
    from canarytui.config import Host
    from canarytui.ui.host_filter import HostFilter

    hosts = [
        Host("web-01", "10.0.0.1", None, None, roles=("web",), labels={"zone": "eu-1"}),
        Host("web-02", "10.0.0.2", None, None, roles=("web",), labels={"zone": "eu-2"}),
        Host("api-01", "10.0.0.3", None, None, roles=("api",), labels={"zone": "eu-1"}),
        Host("web-03", "10.0.0.4", None, None, roles=("web", "edge"), labels={"zone": "us-1"}),
    ]
    failed = {"web-02"}
    grid = HostFilter(
        hosts, lambda name, needle: needle == "failed" and name in failed, "failed".startswith
    )
    assert grid.apply("role=web zone=eu-1") == ["web-01"]
    assert grid.apply("zone=eu") == []
    assert grid.apply("eu") == ["web-01", "web-02", "api-01"]  # a word alone: a part
    assert grid.apply("  web   state=failed ") == ["web-02"]
    failed.add("web-03")
    assert grid.refilter(["web-03"]) and grid.shown == ["web-02", "web-03"]
    assert grid.apply("role=we") == [] and grid.apply("role=edge") == ["web-03"]
    assert grid.apply("") == ["web-01", "web-02", "api-01", "web-03"]
