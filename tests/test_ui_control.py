"""The operator's control by keys on the real demo fleet: `P` every wave with one
confirmation, `s` hold and resume (the header says who held it), the guided-failure dialog
(retry, skip, roll back, halt) and an environment without a canary phase; each checked on
the hosts and in the journal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env
from test_ui_stories import deploy_canary, running_fleet, type_version
from test_ui_support import until

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.journal import Journal
from canarytui.ui.app import CanaryApp
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.screens.failure import FailureScreen
from canarytui.ui.widgets.log_pane import LogPane
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.status_header import StatusHeader

USER = "control-operator"
SIZE = (120, 40)
BROKEN = "broken"


@pytest.fixture
async def fleet() -> AsyncIterator[DemoFleet]:
    async with running_fleet(6) as demo:
        yield demo


def make_app(env_path: Path, state: Path) -> CanaryApp:
    env = load_env(env_path)
    journal = Journal(state)
    return CanaryApp(env, journal, engine=Engine(env, journal, user=USER))


def asking(fleet: DemoFleet, tmp_path: Path) -> Path:
    def edit(data: dict[str, Any]) -> None:
        data["promote"].update({"on_failure": "ask", "max_failures": 1})
        data["deploy"]["steps"].insert(
            0, {"name": "preflight", "run": f"if [ -e {BROKEN} ]; then cat {BROKEN}; exit 3; fi"}
        )

    return edit_env(fleet.env_path, tmp_path / "ask.yaml", edit)


def actions(state: Path, deployment: int) -> list[str]:
    journal = Journal(state)
    try:
        return [d["action"] for d in journal.decisions(deployment)]
    finally:
        journal.close()


async def test_promote_all_with_one_confirmation(fleet: DemoFleet, tmp_path: Path) -> None:
    app = make_app(fleet.env_path, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_canary(pilot, app, fleet, "1.1.0")
        # Six hosts fit in two tile columns: the right column (the verdict) gets the rest,
        # the grid and logs keep 60 columns.
        assert app.fleet_screen.query_one("#right").size.width == SIZE[0] - 60
        await pilot.press("P", "y")
        await until(
            pilot, lambda: engine.phase is ev.Phase.COMPLETE and not engine.busy, 30, "complete"
        )
        d = engine.deployment.id
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.1.0"}
    assert actions(tmp_path / "state", d) == ["deploy", "promote"]


async def resumed_to_the_end(
    pilot: Any, app: CanaryApp, fleet: DemoFleet, state: Path, key: str
) -> int:
    """``key`` resumes a rollout held after wave 1: it completes, every host on 1.1.0, the
    journal's decisions those of a hold and its resume. Returns the deployment's id."""
    engine = app.engine
    await pilot.press(key)
    await until(pilot, lambda: engine.phase is ev.Phase.COMPLETE and not engine.busy, 30, "resumed")
    assert engine.deployment is not None
    d = engine.deployment.id
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.1.0"}
    assert actions(state, d) == ["deploy", "promote", "hold", "resume"]
    return d


async def test_hold_and_resume_by_key(fleet: DemoFleet, tmp_path: Path) -> None:
    app = make_app(fleet.env_path, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_canary(pilot, app, fleet, "1.1.0")
        # Slow the second wave's hosts down so that `s` lands while wave 1 is in flight.
        await fleet.set_fault("web-02", "slow")
        await pilot.press("P", "y")
        await until(pilot, lambda: engine.phase is ev.Phase.PROMOTING, 10, "promoting")
        await pilot.press("s")
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.AWAITING_PROMOTION and not engine.busy,
            30,
            "held after wave 1",
        )
        assert engine.state.held is not None and engine.state.held[0] == USER
        header = app.fleet_screen.query_one(StatusHeader)
        app.fleet_screen.repaint_now()
        await until(pilot, lambda: f"HELD by {USER}" in str(header.render()), 5, "header")
        held_versions = {h: fleet.version_on(h) for h in fleet.host_names}
        assert held_versions["web-06"] == "1.0.0"
        d = await resumed_to_the_end(pilot, app, fleet, tmp_path / "state", "s")
    # Said in the engine's words, no UI key: another UI following it, or the command line
    # (whose `promote` resumes it), reads the same notice.
    journal = Journal(tmp_path / "state")
    said = [e.get("message") for e in journal.events(d) if e.get("event") == "notice"]
    journal.close()
    assert f"held after wave 1 by {USER}: resume or promote it when ready" in said, said


async def test_no_new_wave_starts_while_a_rollback_is_asked(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """`r` during wave 1: the waves hold while the dialog is up (wave 2 started behind it,
    and the dialog's count and the header's "complete" were false by the answer); `n`
    resumes them, and the rollout completes."""
    app = make_app(fleet.env_path, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_canary(pilot, app, fleet, "1.1.0")
        await fleet.set_fault("web-02", "slow")  # wave 1 in flight long enough for `r`
        await pilot.press("P", "y")
        await until(pilot, lambda: engine.phase is ev.Phase.PROMOTING, 10, "promoting")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the dialog")
        asked = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "No new wave starts while you decide." in asked, asked
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.AWAITING_PROMOTION and not engine.busy,
            30,
            "held after wave 1",
        )
        assert fleet.version_on("web-06") == "1.0.0"
        assert isinstance(app.screen, ConfirmScreen)
        await resumed_to_the_end(pilot, app, fleet, tmp_path / "state", "n")


async def fail_web02(pilot: Any, app: CanaryApp, fleet: DemoFleet) -> Callable[[], str]:
    """The canary deployed, web-02's first step broken, every wave promoted: once the
    failure dialog is up, a function reading its text."""
    await deploy_canary(pilot, app, fleet, "1.1.0")
    (fleet.sandbox_of("web-02") / BROKEN).write_text("no space left on device\n")
    await pilot.press("P", "y")
    await until(pilot, lambda: isinstance(app.screen, FailureScreen), 30, "the dialog")
    dialog = app.screen
    assert isinstance(dialog, FailureScreen)
    return lambda: " ".join(str(s.render()) for s in dialog.query("Static"))


async def test_failure_dialog_says_the_wave_stopped(fleet: DemoFleet, tmp_path: Path) -> None:
    """One wave, one host at a time: web-02 fails first, the four others of the wave are
    never started; the dialog says so, and retry goes on with them."""

    def one_wave(data: dict[str, Any]) -> None:
        data["ssh"]["max_parallel"] = 1
        data["promote"]["waves"] = ["100%"]

    env_path = edit_env(asking(fleet, tmp_path), tmp_path / "one-wave.yaml", one_wave)
    app = make_app(env_path, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        text = await fail_web02(pilot, app, fleet)
        await until(pilot, lambda: "not started" in text(), 10, lambda: f"dialog: {text()}")
        assert "the wave stopped there: 4 of its hosts were not started" in text()
        assert {fleet.version_on(h) for h in ("web-03", "web-04", "web-05", "web-06")} == {"1.0.0"}
        (fleet.sandbox_of("web-02") / BROKEN).unlink()
        await pilot.press("r")
        await until(
            pilot, lambda: engine.phase is ev.Phase.COMPLETE and not engine.busy, 30, "retried"
        )
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.1.0"}


@pytest.mark.parametrize("choice", ["retry", "skip", "rollback", "halt"])
async def test_failure_dialog_answers(fleet: DemoFleet, tmp_path: Path, choice: str) -> None:
    app = make_app(asking(fleet, tmp_path), tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        text = await fail_web02(pilot, app, fleet)
        # Pushed is not yet composed: under load the dialog's widgets come a frame later.
        await until(pilot, lambda: "preflight" in text(), 10, lambda: f"dialog text: {text()}")
        shown = text()
        assert "web-02: step preflight exited 3" in shown, shown
        assert "no space left on device" in shown, shown
        if choice in ("retry", "rollback"):
            (fleet.sandbox_of("web-02") / BROKEN).unlink()
        await pilot.press({"retry": "r", "skip": "s", "rollback": "b", "halt": "h"}[choice])
        if choice == "rollback":
            await pilot.press("y")
        final = {
            "retry": ev.Phase.COMPLETE,
            "skip": ev.Phase.COMPLETE,
            "rollback": ev.Phase.ROLLED_BACK,
            "halt": ev.Phase.HALTED,
        }[choice]
        await until(
            pilot,
            lambda: engine.phase is final and not engine.busy,
            30,
            lambda: f"{choice}: phase {engine.phase.value}",
        )
        d = engine.deployment.id
        states = dict(engine.host_states)
    versions = {h: fleet.version_on(h) for h in fleet.host_names}
    decided = actions(tmp_path / "state", d)
    if choice == "retry":
        assert set(versions.values()) == {"1.1.0"} and decided[-2:] == ["retry", "continue"]
    elif choice == "skip":
        assert versions["web-02"] == "1.0.0" and states["web-02"] is ev.HostState.SKIPPED
        assert {v for h, v in versions.items() if h != "web-02"} == {"1.1.0"}
        assert decided[-2:] == ["skip", "continue"]
    elif choice == "rollback":
        assert set(versions.values()) == {"1.0.0"} and decided[-1] == "rollback"
    else:
        assert versions["web-02"] == "1.0.0" and decided[-1] == "halt"
        assert versions["web-06"] == "1.0.0"  # the next waves never started


async def test_no_canary_environment_goes_straight_to_the_waves(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    def edit(data: dict[str, Any]) -> None:
        del data["canary"]
        data["promote"]["pause"] = "0s"

    env = edit_env(fleet.env_path, tmp_path / "staging.yaml", edit)
    app = make_app(env, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: all(engine.versions.get(h) == "1.0.0" for h in fleet.host_names),
            10,
            "versions discovered",
        )
        await pilot.press("d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter")

        def shown() -> str:
            return " ".join(str(s.render()) for s in app.screen.query("Static"))

        await until(pilot, lambda: "straight to the waves" in shown(), 10, shown)
        assert "no canary phase" in shown()
        await pilot.press("y")
        await until(
            pilot, lambda: engine.phase is ev.Phase.COMPLETE and not engine.busy, 30, "complete"
        )
        d = engine.deployment
        # The rollout's rows are its waves: no "canary 0/0" row.
        labels = [w.label for w in app.fleet_screen.state.wave_progress()]
        assert labels == ["wave 1", "wave 2", "wave 3"], labels
        panel = str(app.fleet_screen.query_one(RolloutProgress).render())
        assert "wave 1" in panel and "canary " not in panel, panel
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.1.0"}
    assert d.canaries == []
    journal = Journal(tmp_path / "state")
    phases = {e["phase"] for e in journal.events(d.id) if e["event"] == "phase"}
    assert "canary" not in phases and "analysis" not in phases


async def test_a_start_held_up_by_a_hung_host_says_which(fleet: DemoFleet, tmp_path: Path) -> None:
    """A hung host holds a start for its whole command timeout: the rollout panel says,
    every second, which host the locks wait for; once it is given up, its tile says it
    no longer answers (not the "✓" of its last probe before it hung)."""
    from canarytui.ui.widgets.tiles import health_text as _health_text

    def edit(data: dict[str, Any]) -> None:
        # The probes' timeout past the locks': a probe that timed out first would drop the
        # host's connection, and the lock with it, before the start waited a second.
        data["ssh"]["command_timeout"] = "4s"
        data["health"]["timeout"] = "20s"

    app = make_app(edit_env(fleet.env_path, tmp_path / "short.yaml", edit), tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        state = app.fleet_screen.state
        await until(
            pilot,
            lambda: (
                all(engine.versions.get(h) == "1.0.0" for h in fleet.host_names)
                and state.hosts["web-03"].ok is True
            ),
            10,
            "versions discovered, web-03 probed",
        )
        await fleet.set_fault("web-03", "hang")
        await pilot.press("d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter", "y")

        def panel() -> str:
            return str(app.fleet_screen.query_one(RolloutProgress).render())

        others = len(fleet.host_names) - 1
        said = f"{others} of {others + 1} answered; waiting "
        await until(pilot, lambda: said in panel(), 10, panel)
        assert "s for web-03\n" in panel(), panel()
        await until(pilot, lambda: engine.deployment is not None, 15, "started")
        assert engine.host_states["web-03"] is ev.HostState.UNREACHABLE
        await until(
            pilot,
            lambda: _health_text(state, "web-03") == "✗ no reply",
            5,
            lambda: f"web-03's tile: {_health_text(state, 'web-03')!r}",
        )
        await until(pilot, lambda: "answered; waiting" not in panel(), 5, panel)
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.AWAITING_PROMOTION and not engine.busy,
            30,
            lambda: f"canary passed (phase {engine.phase.value})",
        )


async def test_a_promote_taking_the_locks_again_says_which_it_waits_for(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """The UI opened on a deployment another process left open takes its locks again
    before the wave: a hung host holds that for its command timeout, said in the panel."""

    def edit(data: dict[str, Any]) -> None:
        data["ssh"]["command_timeout"] = "4s"
        data["health"]["timeout"] = "20s"  # no probe drops the hung host's connection first

    env_path = edit_env(fleet.env_path, tmp_path / "short.yaml", edit)
    first = Engine(load_env(env_path), Journal(tmp_path / "state"), user=USER)
    try:
        assert await asyncio.wait_for(first.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
    finally:
        await first.fleet.close()
    app = make_app(env_path, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await fleet.set_fault("web-03", "hang")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "question")
        await pilot.press("y")

        def panel() -> str:
            return str(app.fleet_screen.query_one(RolloutProgress).render())

        await until(pilot, lambda: " answered; waiting " in panel(), 10, panel)
        assert "s for web-03\n" in panel(), panel()
        await until(pilot, lambda: not engine.busy, 30, "the wave")
        await until(pilot, lambda: "answered; waiting" not in panel(), 5, panel)


async def test_log_pane_names_the_deployed_canaries(fleet: DemoFleet, tmp_path: Path) -> None:
    app = make_app(fleet.env_path, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: all(engine.versions.get(h) == "1.0.0" for h in fleet.host_names),
            10,
            "versions discovered",
        )
        await pilot.press("down", "space")  # web-03 (the grid is 2 rows of tiles? move on)
        picked = list(app.fleet_screen.state.picked)
        assert picked and picked != ["web-01"]
        await pilot.press("d")
        await type_version(pilot, "1.1.0")
        await pilot.press("enter", "y")
        await until(pilot, lambda: engine.phase is ev.Phase.ANALYSIS, 20, "analysis")
        pane = app.fleet_screen.query_one(LogPane)
        assert f"canaries {', '.join(picked)}" in str(pane.border_title)
        assert "web-01" not in str(pane.border_title)
        await until(pilot, lambda: not engine.busy, 30, "verdict")
        assert f"canaries {', '.join(picked)}" in str(pane.border_title)


async def test_back_to_a_known_version_from_history(fleet: DemoFleet, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = Engine(load_env(fleet.env_path), Journal(state), user=USER)
    try:
        assert await first.deploy("1.1.0", auto_promote=True) is ev.Outcome.COMPLETE
        assert await first.deploy("1.3.0-bad") is ev.Outcome.CANARY_FAILED
        assert await first.deploy("1.2.0", auto_promote=True) is ev.Outcome.COMPLETE
    finally:
        await first.fleet.close()
        first.journal.close()
    app = make_app(fleet.env_path, state)
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        names = fleet.host_names
        await until(pilot, lambda: all(engine.versions.get(h) for h in names), 10, "versions")
        await pilot.press("H", "b")  # #3, 1.2.0: every host runs it
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "question")
        assert str(app.screen.message).endswith(
            "\n\nEvery host runs 1.2.0 already: nothing would change."
        )
        await pilot.press("n", "H")
        await pilot.press("down")  # #2, 1.3.0-bad: rolled back, not a known-good release
        await pilot.press("b")
        await until(pilot, lambda: len(app._notifications) > 0, 5, "refusal")
        assert "did not complete" in list(app._notifications)[-1].message
        await pilot.press("down", "b", "y")  # #1, 1.1.0: complete
        await until(
            pilot,
            lambda: engine.phase is ev.Phase.COMPLETE and not engine.busy and engine.deployment,
            30,
            lambda: f"restored (phase {engine.phase.value})",
        )
        d = engine.deployment
        app.fleet_screen.repaint_now()
        panel = str(app.fleet_screen.query_one(RolloutProgress).render())
        # Not undone by r (refused: it would put back what it escaped), so not offered.
        assert "d deploy" in panel and "r roll back" not in panel, panel
        # 1.2.0 again (#3), which this rollback took the fleet off: the question says so.
        await pilot.press("H", "down", "b")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "question")
        assert str(app.screen.message).endswith(
            f"\n\nMind: #{d.id} put 1.1.0 back over it (rollback --to)."
        ), app.screen.message
        await pilot.press("n")
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.1.0"}
    assert d.version == "1.1.0" and d.kind == "rollback" and d.canaries == []
    assert actions(state, d.id) == ["rollback"]


def test_a_host_that_stops_answering_drops_its_last_good_probe(tmp_path: Path) -> None:
    """A host the engine marks unreachable (a hung host's lock timed out) is not shown
    "ok" from a probe taken before: its tile and panel said "✓ 13ms" and "health ok" for up
    to a minute, until the slow background refresh probed it again."""
    from test_ui_support import Script

    from canarytui.ui.fleet_state import FleetState, TileKind
    from canarytui.ui.widgets.tiles import health_text as _health_text

    script = Script(tmp_path, hosts=3)
    state = FleetState(script.engine)
    state.add_samples([ev.HealthSample(host="web-02", ok=True, latency=0.013, detail="ok")])
    assert _health_text(state, "web-02") == "✓ 13ms "
    lost = ev.HostUpdate(host="web-02", state=ev.HostState.UNREACHABLE)
    script.engine.emit(lost)
    state.apply(lost)
    assert state.tile_kind("web-02") == TileKind.UNREACHABLE
    assert _health_text(state, "web-02") == "✗ no reply"
    assert state.hosts["web-02"].latency is None
    # A probe that finds it again says so.
    state.add_samples([ev.HealthSample(host="web-02", ok=True, latency=0.009, detail="ok")])
    assert _health_text(state, "web-02") == "✓ 9ms "


def test_a_deployed_host_drops_the_failed_probe_of_its_restart(tmp_path: Path) -> None:
    """A probe that failed while the host restarted must not keep its tile red once the
    health gate passed (it used to wait for the slow background refresh)."""
    from test_ui_support import Script

    from canarytui.ui.fleet_state import FleetState, TileKind

    script = Script(tmp_path, hosts=3)
    state = FleetState(script.engine)
    state.add_samples([ev.HealthSample(host="web-02", ok=False, latency=0.0, detail="503")])
    assert state.tile_kind("web-02") == TileKind.FAILING
    update = ev.HostUpdate(host="web-02", state=ev.HostState.DEPLOYED, version="1.1.0")
    script.engine.emit(update)
    state.apply(update)
    assert state.tile_kind("web-02") == TileKind.DEPLOYED
    skipped = ev.HostUpdate(host="web-03", state=ev.HostState.SKIPPED)
    script.engine.emit(skipped)
    state.apply(skipped)
    assert state.tile_kind("web-03") == TileKind.PENDING and state.state_text("web-03") == "skipped"


def test_an_old_probe_is_shown_by_its_age(tmp_path: Path) -> None:
    """Past ``old_after`` (at least three health intervals, 10 s at least), a tile says how
    long ago its host was probed, in tens of seconds, minutes or hours; "no reply" stays."""
    from test_ui_support import Script

    from canarytui.ui.fleet_state import OLD_AFTER, FleetState
    from canarytui.ui.widgets.tiles import health_text as _health_text

    script = Script(tmp_path, hosts=3)
    state = FleetState(script.engine)
    assert state.old_after == max(OLD_AFTER, 3 * script.engine.env.health.interval)
    now = 1_000_000.0
    said = {}
    for age, ok in ((1, True), (state.old_after + 5, True), (200, False), (7300, True)):
        state.add_samples([ev.HealthSample(host="web-02", ok=ok, latency=0.011, at=now - age)])
        said[age] = _health_text(state, "web-02", now)
    assert list(said.values()) == [
        "✓ 11ms ",
        f"✓ {int(state.old_after + 5) // 10 * 10}s ago ",
        "✗ 3m ago ",
        "✓ 2h ago ",
    ]
    state.add_samples([ev.HealthSample(host="web-02", ok=None, latency=0.0, at=now - 7300)])
    assert _health_text(state, "web-02", now) == "✗ no reply"


async def test_a_wave_row_says_unreachable_hosts_apart_from_failed_ones(tmp_path: Path) -> None:
    """A host unreachable when the deployment started counts against its wave's budget
    (red on the bar) but has not failed anything: the row said "0/3, 1 failed" before its
    wave had started. It says "1 unreachable"; a host a step failed says "failed"."""
    from test_ui_support import Script, settle

    script = Script(tmp_path, hosts=8)
    waves = script.canary_passed("1.1.0", ["web-01"])
    lost, broken = waves[1][0], waves[1][1]
    script.host(lost, ev.HostState.UNREACHABLE, detail="web-0x: unreachable: timed out")
    async with script.app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)

        def row(label: str) -> str:
            text = str(script.app.fleet_screen.query_one(RolloutProgress).render())
            return next(line for line in text.splitlines() if line.startswith(label))

        assert row("wave 2").endswith(f" 0/{len(waves[1])}, 1 unreachable"), row("wave 2")
        script.host(broken, ev.HostState.FAILED)
        await settle(pilot)
        assert row("wave 2").endswith(f" 0/{len(waves[1])}, 1 failed, 1 unreachable")
        # With a host rolled back too, the counts go on a line of their own under the bar
        # (they wrapped at the panel's edge, at 120 columns, "back" alone on a line).
        script.host(waves[1][2], ev.HostState.ROLLED_BACK)
        await settle(pilot)
        panel = script.app.fleet_screen.query_one(RolloutProgress)
        lines = str(panel.render()).splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("wave 2"))
        assert lines[at].endswith(f" 0/{len(waves[1])}")
        assert lines[at + 1] == " " * 8 + "1 failed, 1 unreachable, 1 rolled back"
        assert max(len(line) for line in lines[: at + 2]) <= panel.scrollable_content_region.width


async def test_the_host_panel_note_says_why_not_who(tmp_path: Path) -> None:
    """The panel's note is one line under the host's name and address: the error's own
    "web-03 (127.0.0.1:2203): " took most of it ("web-01 (127.0.0.1:41245): unreachab…").
    The note says the reason; the details screen keeps the whole message."""
    from test_ui_support import Script, settle

    script = Script(tmp_path, hosts=4)
    host = script.env.host("web-03")
    said = f"web-03 ({host.endpoint}): unreachable: timed out after 5s"
    async with script.app.run_test(size=(120, 40)) as pilot:
        script.discovered()
        script.engine.emit(
            ev.HostUpdate(host="web-03", state=ev.HostState.UNREACHABLE, detail=said)
        )
        script.app.fleet_screen.grid.move_cursor_to("web-03")
        await settle(pilot)
        info = str(script.app.fleet_screen.query_one("#host-info").render())
        note = next(line for line in info.splitlines() if line.startswith("note"))
        assert note.split(None, 1)[1] == "unreachable: timed out after 5s", note


def test_a_host_the_deployment_changed_keeps_its_state_when_a_read_gets_no_answer(
    tmp_path: Path,
) -> None:
    """A flaky host deployed in its wave, then a background read of it unanswered: it was
    turned "unreachable", its row counted it failed then nowhere, though it runs the
    release (the journal says deployed). Its state stays; the read's error is its detail.
    A pending host is still marked unreachable (its wave counts it against the budget)."""
    from test_ui_support import Script

    from canarytui.engine.discovery import unanswered
    from canarytui.ssh import Unreachable
    from canarytui.ui.fleet_state import FleetState

    script = Script(tmp_path)
    waves = script.canary_passed("1.1.0", ["web-01"])
    first, later = waves[0], waves[1]
    script.phase(ev.Phase.PROMOTING, wave=1)
    for name in first:
        script.deploy_host(name, "1.1.0")
    host = script.env.host(first[0])
    ctx = script.engine.ctx
    unanswered(ctx, first[0], Unreachable(host, "timed out"))
    unanswered(ctx, later[0], Unreachable(script.env.host(later[0]), "timed out"))
    states = script.engine.host_states
    assert states[first[0]] is ev.HostState.DEPLOYED
    assert script.engine.details[first[0]].endswith("timed out")
    assert script.engine.state.refused[first[0]] == "unreachable"
    assert states[later[0]] is ev.HostState.UNREACHABLE
    row = FleetState(script.engine).wave_progress()[1]
    assert (row.done, row.failed, row.unreachable) == (len(first), 0, 0), row


async def test_after_a_refused_start_the_panel_names_the_last_deployment(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    """A start refused (its canary down) leaves no deployment open: the panel named the
    journal's last as it was when the screen started ("No deployment yet." here), not the
    one this screen ran."""
    app = make_app(fleet.env_path, tmp_path / "state")
    engine = app.engine
    async with app.run_test(size=SIZE) as pilot:
        await deploy_canary(pilot, app, fleet, "1.1.0")
        await pilot.press("r", "y")
        await until(
            pilot, lambda: engine.phase is ev.Phase.ROLLED_BACK and not engine.busy, 30, "back"
        )
        await fleet.set_fault("web-01", "down")
        await pilot.press("d")
        await type_version(pilot, "1.2.0")
        await pilot.press("enter", "y")
        progress = app.fleet_screen.query_one(RolloutProgress)
        said = "No deployment open. Last deployment #1 1.1.0: rolled back"
        await until(
            pilot, lambda: said in str(progress.render()), 30, lambda: str(progress.render())
        )
