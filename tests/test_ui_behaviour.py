"""UI behaviour without SSH: themes, dialogs, keys, mouse, filter, palette, open deployments,
and the plumbing that keeps a busy fleet from flooding the screen."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import driven_elsewhere
from test_ui_hostile import screen_text
from test_ui_support import THEMES, Script, record_notifications, settle, until
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Static

from canarytui import events as ev
from canarytui.engine import ActionRefused
from canarytui.journal.records import machine_name
from canarytui.textsafe import harmless, listed
from canarytui.ui import FRAME_RATE
from canarytui.ui.bridge import EngineBridge
from canarytui.ui.messages import HealthBatch, LogBatch
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.screens.failure import FailureScreen, describe
from canarytui.ui.screens.fleet import FleetScreen
from canarytui.ui.screens.history import HistoryScreen
from canarytui.ui.screens.version import VersionScreen
from canarytui.ui.themes import STATE_VARIABLES, ThemeError, load_themes, parse_theme
from canarytui.ui.widgets.fleet_grid import PITCH_X, PITCH_Y, FleetGrid
from canarytui.ui.widgets.host_panel import HostPanel
from canarytui.ui.widgets.log_pane import LogPane
from canarytui.ui.widgets.rollout_progress import RolloutProgress

SIZE = (120, 40)


# Frame rate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "period", "left"), [(None, 1 / FRAME_RATE, False), ("30", 1 / 30, True)]
)
def test_the_ui_draws_at_its_frame_rate_unless_the_operator_set_one(
    given: str | None, period: float, left: bool
) -> None:
    # In a fresh interpreter: Textual reads TEXTUAL_FPS once, when first imported (here the
    # test plugin has imported it already). The variable canarytui sets is not left for
    # the commands it starts; the operator's own is kept.
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    if given is not None:
        env["TEXTUAL_FPS"] = given
    code = (
        "import os\nimport canarytui.ui.app\nfrom textual import screen\n"
        "print(screen.UPDATE_PERIOD, 'TEXTUAL_FPS' in os.environ)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    drawn_every, kept = out.stdout.split()
    assert float(drawn_every) == pytest.approx(period)
    assert kept == str(left)


# Themes ----------------------------------------------------------------------------


def test_shipped_themes_validate_and_name_every_state_colour() -> None:
    found = load_themes(THEMES)
    assert found.problems == []
    assert {"dark", "light", "high-contrast"} <= set(found.names)
    for theme in found.themes:
        assert set(STATE_VARIABLES) <= set(theme.variables), theme.name


def test_a_broken_theme_file_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("name: good\nprimary: '#123456'\n")
    (tmp_path / "typo.yaml").write_text("name: typo\nprimary: '#123456'\nprimry: red\n")
    (tmp_path / "colour.yaml").write_text("name: colour\nprimary: not-a-colour\n")
    (tmp_path / "yaml.yaml").write_text("name: [unclosed\n")
    found = load_themes(tmp_path)
    assert "good" in found.names and "dark" in found.names  # the built-in fallback
    assert len(found.problems) == 3
    assert any("typo.yaml: unknown key(s): primry" in p for p in found.problems)
    assert any("colour.yaml: primary: not a colour" in p for p in found.problems)
    assert any(p.startswith("yaml.yaml:") for p in found.problems)
    with pytest.raises(ThemeError, match=r"variables\.state-canary: not a colour"):
        parse_theme({"name": "x", "primary": "#fff", "variables": {"state-canary": "zz"}}, "x")


def test_a_hostile_theme_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """A theme file nested thousands deep (the composer recurses on it), one far too large,
    one that is not text and a FIFO are each reported, and the other themes still load."""
    (tmp_path / "good.yaml").write_text("name: good\nprimary: '#123456'\n")
    (tmp_path / "deep.yaml").write_text("name: deep\nvariables: " + "[" * 5000 + "]" * 5000)
    (tmp_path / "huge.yaml").write_text("name: huge\n" + "# padding\n" * 10_000)
    (tmp_path / "binary.yaml").write_bytes(b"name: \xff\xfe\n")
    os.mkfifo(tmp_path / "fifo.yaml")  # nobody writes to it: reading it would block
    found = load_themes(tmp_path)
    assert "good" in found.names
    assert sorted(p.split(":")[0] for p in found.problems) == [
        "binary.yaml",
        "deep.yaml",
        "fifo.yaml",
        "huge.yaml",
    ]
    assert any("deep.yaml: nested more than 64 deep" in p for p in found.problems)
    assert any("huge.yaml: too large" in p for p in found.problems)
    assert any("binary.yaml: not valid UTF-8" in p for p in found.problems)
    assert any("fifo.yaml: not a regular file" in p for p in found.problems)


async def test_broken_theme_and_unknown_theme_fall_back_with_a_notification(tmp_path: Path) -> None:
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "broken.yaml").write_text("name: broken\n")
    script = Script(tmp_path, theme="no-such-theme")
    script.app = type(script.app)(
        script.env,
        script.journal,
        engine=script.engine,
        theme="no-such-theme",
        monitor=False,
        themes_folder=themes,
    )
    texts = record_notifications(script.app)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert script.app.theme == "dark"
        assert any("broken.yaml: primary: required" in t for t in texts)
        assert any("'no-such-theme' not found" in t for t in texts)


async def test_textual_builtin_theme_gets_state_colour_defaults(tmp_path: Path) -> None:
    script = Script(tmp_path, theme="nord")
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert script.app.theme == "nord"
        style = script.app.fleet_screen.grid.get_component_rich_style("fleet-grid--failing")
        assert style.bgcolor is not None


def test_themes_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from canarytui.ui.themes import themes_dir

    monkeypatch.setenv("CANARYTUI_THEMES_DIR", str(tmp_path))
    assert themes_dir() == tmp_path
    monkeypatch.delenv("CANARYTUI_THEMES_DIR")
    assert themes_dir() == THEMES


# Remote text ------------------------------------------------------------------------


def test_remote_text_is_made_harmless() -> None:
    """Escape sequences and controls become visible placeholders (tests/test_textsafe.py)."""
    assert harmless("\x1b[31mERROR\x1b[0m boom") == "␛ERROR␛ boom"
    assert harmless("a\x1b]0;title\x07b") == "a␛b"
    assert harmless("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "a␛link␛"
    assert harmless("bell\x07 cr\r nul\x00") == "bell␇ cr␍ nul␀"
    assert harmless("tab\there") == "tab here"
    assert len(harmless("x" * 10_000)) <= 2000


# The bridge: bursts become one message ----------------------------------------------


class _Sink(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[object] = []

    def on_health_batch(self, message: HealthBatch) -> None:
        self.batches.append(message)

    def on_log_batch(self, message: LogBatch) -> None:
        self.batches.append(message)


async def test_bridge_batches_bursts_and_bounds_the_log_buffer() -> None:
    app = _Sink()
    async with app.run_test() as pilot:
        bridge = EngineBridge(app, interval=0.05, log_buffer=1000)
        for i in range(5000):
            bridge(ev.LogLine(host="web-01", line=f"line {i}"))
        for i in range(300):
            bridge(ev.HealthSample(host=f"web-{i}", ok=True, latency=0.01))
        await until(pilot, lambda: len(app.batches) >= 2, 5, "batches")
        logs = [b for b in app.batches if isinstance(b, LogBatch)]
        health = [b for b in app.batches if isinstance(b, HealthBatch)]
        assert len(logs) == 1 and len(health) == 1
        assert len(logs[0].lines) == 1000 and logs[0].dropped == 4000
        assert logs[0].lines[-1].line == "line 4999"  # the newest are kept
        assert len(health[0].samples) == 300
        bridge.close()


# Dialogs ---------------------------------------------------------------------------


class _Asker(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[bool | None] = []

    def compose(self) -> ComposeResult:
        yield Static("base")

    def ask(self) -> None:
        self.push_screen(ConfirmScreen("Sure?", "Really?"), self.answers.append)


@pytest.mark.parametrize(
    ("key", "answer"), [("y", True), ("enter", True), ("n", False), ("escape", False)]
)
async def test_every_confirmation_takes_y_enter_n_escape(key: str, answer: bool) -> None:
    app = _Asker()
    async with app.run_test() as pilot:
        app.ask()
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert app.answers == [answer]
        assert not isinstance(app.screen, ConfirmScreen)


async def test_version_dialog_refuses_invalid_versions_in_the_dialog(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        assert isinstance(script.app.screen, VersionScreen)
        await pilot.press("minus", "b", "a", "d", "enter")
        assert isinstance(script.app.screen, VersionScreen)
        error = str(script.app.screen.query_one("#error", Static).render())
        assert "does not match version_pattern" in error
        await pilot.press("escape")
        assert isinstance(script.app.screen, FleetScreen)
        assert script.journal.last_deployment("production", "shop") is None


async def test_deploy_confirmation_names_version_and_picked_canaries(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "space", "down", "space", "d", "2", "full_stop", "0", "enter")
        screen = script.app.screen
        assert isinstance(screen, ConfirmScreen)
        assert "Deploy 2.0 to 2 canary host(s): web-02, web-05?" in screen.message
        await pilot.press("n")
        assert isinstance(script.app.screen, FleetScreen)
        assert not script.engine.busy
        assert script.journal.last_deployment("production", "shop") is None


@pytest.mark.parametrize(
    ("warmup", "watched"),
    [(None, "for 30s; promotion"), ("5s", "for 35s (the first 5s a warmup, not judged);")],
)
async def test_deploy_confirmation_says_how_long_the_rollout_panel_will_count(
    tmp_path: Path, warmup: str | None, watched: str
) -> None:
    """The question's time is the analysis's whole watch, warmup included: the one the
    rollout panel then counts ("35s of 35s"), not the judged duration alone."""
    script = Script(tmp_path, warmup=warmup)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.press("d", "2", "full_stop", "0", "enter")
        screen = script.app.screen
        assert isinstance(screen, ConfirmScreen)
        assert f"The analysis then watches them {watched}" in screen.message
        await pilot.press("n")
        assert script.journal.last_deployment("production", "shop") is None


async def rollback_question(pilot: Pilot[int], script: Script) -> str:
    """r: the rollback's question, answered no."""
    await settle(pilot)
    await pilot.press("r")
    screen = script.app.screen
    assert isinstance(screen, ConfirmScreen)
    await pilot.press("n")
    return screen.message


async def test_rollback_confirmation_says_which_hosts_go_back_to_what(tmp_path: Path) -> None:
    """The question names the hosts the deployment reached (not "every host it reached")
    and the version each goes back to; one that reached none is closed, nothing undone."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.start("1.1.0", ["web-02"])
        assert await rollback_question(pilot, script) == (
            "Close deployment #1 (1.1.0)? It reached no host yet: nothing to undo."
        )
        script.phase(ev.Phase.CANARY)
        script.deploy_host("web-02", "1.1.0")
        script.host("web-05", ev.HostState.FAILED, detail="exit 3")
        assert await rollback_question(pilot, script) == (
            "Roll deployment #1 (1.1.0) back on the 2 host(s) it reached (web-02, web-05), "
            "to 1.0.0?"
        )
        # A rollback halted part way: web-02 is back, web-05 is not. The question names
        # the host left as the one still to put back, not as all it reached.
        script.phase(ev.Phase.ROLLING_BACK)
        script.host("web-02", ev.HostState.ROLLED_BACK, "1.0.0")
        script.host("web-05", ev.HostState.ROLLBACK_FAILED, detail="down")
        script.phase(ev.Phase.HALTED)
        assert await rollback_question(pilot, script) == (
            "Roll deployment #1 (1.1.0) back on the 1 host(s) still to put back (web-05; 1 "
            "back already), to 1.0.0?"
        )
        # A host the grid shows unreachable: its rollback would fail there, said first.
        script.health("web-05", ok=None, detail="no reply")
        assert await rollback_question(pilot, script) == (
            "Roll deployment #1 (1.1.0) back on the 1 host(s) still to put back (web-05; 1 "
            "back already), to 1.0.0?\n\nWarning: web-05 unreachable now: if still so, the "
            "rollback fails there and the deployment stays open (r again once it answers)."
        )
    assert script.journal.deployment(1).is_open


async def test_promote_question_warns_of_the_unreachable_hosts_it_would_count(
    tmp_path: Path,
) -> None:
    """`P` asked "Deploy 1.1.0 to every remaining wave (7 host(s))?" while two of them were
    unreachable: past max_failures (1), the rollout then rolled everything back, unwarned.
    The question names the unreachable hosts it would deploy to and, beyond the budget, the
    wave where the rollout would stop; `p` for a wave without them warns of nothing. A
    pending host is unreachable as soon as a probe says so (its tile: pending, "no reply")."""
    script = Script(tmp_path)
    waves = script.canary_passed("1.1.0", ["web-01"])
    _, last = waves
    script.host(last[0], ev.HostState.UNREACHABLE, detail="unreachable: timed out")
    async with script.app.run_test(size=SIZE) as pilot:
        await settle(pilot)

        async def asked(key: str) -> str:
            await pilot.press(key)
            screen = script.app.screen
            assert isinstance(screen, ConfirmScreen)
            await pilot.press("n")
            await settle(pilot)
            return screen.message

        # Nothing answered yet since the screen opened (a hung host shows no tile mark):
        # said, and the wave where the rollout would stop if they never do.
        first = waves[0]
        assert (await asked("p")).endswith(
            f"\n\nMind: {listed(first)} not answered yet (no health check since this screen "
            "opened), more than promote.max_failures (1) allows: if they do not answer by "
            "wave 1/2, the rollout stops there (on_failure: rollback)."
        )
        for name in script.engine.env.host_names:
            if name != last[0]:
                script.health(name)
        await settle(pilot)
        assert "Warning" not in await asked("p")  # wave 1: all of it answers
        assert "Mind" not in await asked("p")
        assert (await asked("P")).endswith(
            f"\n\nWarning: {last[0]} unreachable now: counted against promote.max_failures (1)."
        )
        script.health(last[1], ok=None, detail="connection refused")  # still pending
        await settle(pilot)
        assert script.engine.host_states[last[1]] is ev.HostState.PENDING
        assert (await asked("P")).endswith(
            f"\n\nWarning: {last[0]}, {last[1]} unreachable now, more than "
            "promote.max_failures (1) allows: if they do not answer by wave 2/2, the rollout "
            "stops there (on_failure: rollback)."
        )
    assert script.journal.deployment(1).is_open


async def test_many_picked_canaries_are_named_as_a_few_and_a_count(tmp_path: Path) -> None:
    script = Script(tmp_path, hosts=200)
    async with script.app.run_test(size=SIZE) as pilot:
        for _ in range(14):
            await pilot.press("space", "right")
        names = script.app.fleet_screen.state.canaries_for_deploy()
        assert len(names) == 14
        await pilot.press("d", "2", "full_stop", "0", "enter")
        screen = script.app.screen
        assert isinstance(screen, ConfirmScreen)
        assert (
            f"Deploy 2.0 to 14 canary host(s): {', '.join(names[:10])} and 4 more?"
            in screen.message
        )
        await pilot.press("n")


async def test_deploy_confirmation_warns_when_more_hosts_are_down_than_tolerated(
    tmp_path: Path,
) -> None:
    """max_failures is 1: one host the grid shows unreachable is no warning; two, and the
    question says where the rollout would stop if they stay down, before anything starts;
    the canary down, and it says the deployment would be refused."""
    script = Script(tmp_path)
    script.discovered()
    async with script.app.run_test(size=SIZE) as pilot:
        for down in (["web-07"], ["web-07", "web-09"]):
            for name in down:
                script.health(name, ok=None, detail="unreachable: timed out")
            await pilot.pause()
            await pilot.press("d", "2", "full_stop", "0", "enter")
            screen = script.app.screen
            assert isinstance(screen, ConfirmScreen)
            if len(down) == 1:
                assert "Warning" not in screen.message
            else:
                assert screen.message.endswith(
                    "Warning: web-07, web-09 unreachable now, more than promote.max_failures "
                    "(1): if they do not answer by wave 2/2, the rollout stops there "
                    "(on_failure: rollback)."
                )
            await pilot.press("n")
        script.health("web-01", ok=None, detail="unreachable: timed out")  # the canary
        await pilot.pause()
        await pilot.press("d", "2", "full_stop", "0", "enter")
        screen = script.app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.message.endswith(
            "Warning: canary web-01 unreachable now: the deployment would be refused "
            "(nothing would change); pick other canaries with space."
        )
        await pilot.press("n")
        assert script.journal.last_deployment("production", "shop") is None


async def test_deploy_confirmation_warns_when_every_host_runs_that_version(
    tmp_path: Path,
) -> None:
    """Every host found on 1.0.0: deploying 1.0.0 again (a wrong pick, mostly) is said in the
    question; another version is not."""
    script = Script(tmp_path)
    script.discovered("1.0.0")
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for version, warned in (("1.0.0", True), ("2.0", False)):
            await pilot.press("d", *version.replace(".", " full_stop ").split(), "enter")
            screen = script.app.screen
            assert isinstance(screen, ConfirmScreen)
            said = (
                "Warning: every host runs 1.0.0 already: its steps run again, and the "
                "analysis compares 1.0.0 with itself."
            )
            assert (said in screen.message) is warned, screen.message
            await pilot.press("n")
        # Two hosts on 2.0 (a rollout that stopped part way): said, not as a warning.
        for name in script.env.host_names[2:4]:
            script.engine.emit(ev.HostUpdate(host=name, state=ev.HostState.IDLE, version="2.0"))
        await pilot.press("d", "2", "full_stop", "0", "enter")
        screen = script.app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.message.endswith(
            f"\n\n{listed(script.env.host_names[2:4])} run(s) 2.0 already: its steps run "
            "again there; the analysis's baseline leaves them out."
        )
        await pilot.press("n")
        assert script.journal.last_deployment("production", "shop") is None


# Grid, keys, mouse, filter -----------------------------------------------------------


async def test_grid_is_one_virtual_widget_that_moves_and_scrolls(tmp_path: Path) -> None:
    script = Script(tmp_path, hosts=1000)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app = script.app
        grid = app.fleet_screen.grid
        assert len(list(app.fleet_screen.query("*"))) < 80  # no widget per host
        assert grid.virtual_size.height >= 1000 // grid.columns * PITCH_Y
        assert len(grid.visible_hosts()) < 40
        await pilot.press("down", "down", "right", "j", "h", "k")
        assert grid.cursor_host == f"web-{2 * grid.columns + 1:02d}"
        await pilot.press("end")
        assert grid.cursor_host == "web-1000"
        assert "web-1000" in grid.visible_hosts()
        assert app.fleet_screen.query_one(HostPanel).host == "web-1000"
        await pilot.press("home")
        assert grid.cursor_host == "web-01" and grid.scroll_offset.y == 0


async def test_the_panel_says_how_old_the_key_metrics_of_a_silent_host_are(
    tmp_path: Path,
) -> None:
    """web-01 measured two minutes ago, unreachable since: its key metrics are said to be
    that old (they read as the host's now); fresh ones are said as before."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        then = time.time() - 120
        for at, requests in ((then - 1, 1000.0), (then, 1300.0)):
            metrics = script.readings(requests, 5.0)
            sample = ev.HealthSample(host="web-01", ok=True, latency=0.01, metrics=metrics, at=at)
            script.engine.emit(sample)
        script.health("web-01", ok=None)  # no answer now
        script.flush()
        await settle(pilot)
        script.app.fleet_screen.repaint_now()
        line = next(x for x in screen_text(script.app).splitlines() if "key metrics" in x)
        assert "key metrics, 2 sample(s), 120s old" in line, line
        script.health("web-01", ok=True, requests=1600.0)
        script.flush()
        await settle(pilot)
        script.app.fleet_screen.repaint_now()
        line = next(x for x in screen_text(script.app).splitlines() if "key metrics" in x)
        assert " old" not in line and "key metrics, last 3 sample(s)" in line, line


async def test_the_panel_draws_no_latency_history_for_a_host_without_one(
    tmp_path: Path,
) -> None:
    """No host (a filter that matches none), or a host not probed twice yet: no history,
    and no flat line that reads as one (an empty sparkline draws its floor)."""
    from textual.widgets import Sparkline

    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        spark = script.app.fleet_screen.query_one(HostPanel).query_one(Sparkline)
        await settle(pilot)
        assert not spark.visible
        script.discovered()  # two probes of every host
        script.flush()
        await settle(pilot)
        script.app.fleet_screen.repaint_now()
        assert spark.visible and len(spark.data) == 2
        await pilot.press("slash", *"zzz", "enter")
        await settle(pilot)
        assert script.app.fleet_screen.query_one(HostPanel).host is None
        assert not spark.visible


async def test_moving_between_hosts_repaints_the_panel_and_never_lays_the_screen_out(
    tmp_path: Path,
) -> None:
    # web-01 says all a host can (health, a note, a step with a long line and more output
    # lines than shown); web-02 has no note and no step: the panel keeps its size, the
    # rollout panel below it too, and no key costs a layout of the screen.
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.1.0", ["web-01"])
        script.host("web-01", ev.HostState.FAILED, detail="health check failed\nexit 7")
        long_step = "migrate-" + "x" * 120
        output = "\n".join(f"line {i} " + "y" * 80 for i in range(9))
        script.step("web-01", long_step, exit_status=3, output=output)
        await settle(pilot)
        screen = script.app.fleet_screen
        panel, progress = screen.query_one(HostPanel), screen.query_one("#progress")
        grid = screen.grid
        grid.move_cursor_to("web-02")
        await settle(pilot)
        sizes = (panel.region, progress.region)
        layouts: list[object] = []
        laid_out = screen._refresh_layout

        def counted(*args: object, **kwargs: object) -> None:
            layouts.append(args)
            laid_out(*args, **kwargs)

        screen._refresh_layout = counted  # type: ignore[method-assign]
        for _ in range(3):
            await pilot.press("left")  # web-01: everything
            await settle(pilot)
            assert panel.host == "web-01"
            assert (panel.region, progress.region) == sizes
            await pilot.press("right")  # web-02: little
            await settle(pilot)
            assert panel.host == "web-02"
            assert (panel.region, progress.region) == sizes
        assert layouts == []
        await pilot.press("left")
        await settle(pilot)
        step = screen.query_one("#host-step", Static)
        lines = [strip.text for strip in step.render_lines(step.region.reset_offset)]
        assert lines[0].startswith("last step deploy migrate-x") and lines[0].endswith("…")
        assert lines[-1].startswith(" line 8 y") and lines[-1].endswith("…")


async def test_clicking_a_tile_focuses_its_host(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        grid = script.app.fleet_screen.grid
        # Second row, third column (the grid has a border and one column of padding).
        await pilot.click(FleetGrid, offset=(2 + 2 * PITCH_X + 3, 1 + PITCH_Y + 1))
        await pilot.pause()
        assert grid.cursor_host == f"web-{grid.columns + 3:02d}"
        assert script.app.fleet_screen.query_one(HostPanel).host == grid.cursor_host


async def test_filter_by_role_label_and_state(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.engine.emit(ev.HostUpdate(host="web-07", state=ev.HostState.UNREACHABLE))
        await settle(pilot)
        state = script.app.fleet_screen.state
        await pilot.press("slash", *"zone=us-1")
        assert state.shown == ["web-03", "web-06", "web-09", "web-12"]
        box = script.app.fleet_screen.query_one("#filter", Input)
        box.value = "unreachable"
        await pilot.pause()
        assert state.shown == ["web-07"]
        box.value = "state=unreachable"  # as role= and zone= are written (it matched none)
        await pilot.pause()
        assert state.shown == ["web-07"]
        assert script.app.fleet_screen.grid.cursor_host == "web-07"
        await pilot.press("enter")  # keeps the filter, back to the grid
        assert state.shown == ["web-07"]
        await pilot.press("escape")
        assert len(state.shown) == 12
        # A role as the command line's --hosts writes it (role=api) finds its hosts too.
        api = [h.name for h in script.env.hosts if "api" in h.roles]
        box.value = "role=api"
        await pilot.pause()
        assert api and state.shown == api


async def test_canary_picks_and_default_canaries(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        state = script.app.fleet_screen.state
        await pilot.press("right", "space", "right", "space")
        assert state.picked == ["web-02", "web-03"]
        await pilot.press("space")
        assert state.picked == ["web-02"]
        await pilot.press("c")
        assert state.picked == ["web-01"]


async def test_the_filter_canary_shows_the_canaries_d_would_take(tmp_path: Path) -> None:
    """``/canary`` with none picked shows the file's default canary (the rollout panel
    names it; the grid showed nothing); a pick replaces it there at once, as in ``d``."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        await settle(pilot)
        state = script.app.fleet_screen.state
        await pilot.press("slash", *"canary", "enter")
        assert state.shown == ["web-01"] == state.canaries_for_deploy()
        await pilot.press("space")  # web-01 picked: the same canary, picked now
        assert state.picked == ["web-01"] and state.shown == ["web-01"]
        await pilot.press("space")  # unpicked: the default again
        assert state.picked == [] and state.shown == ["web-01"]
        box = script.app.fleet_screen.query_one("#filter", Input)
        box.value = ""
        await pilot.pause()
        await pilot.press("right", "space")  # web-02 picked: it alone
        box.value = "canary"
        await pilot.pause()
        assert state.shown == ["web-02"]


async def test_palette_offers_every_action_and_theme(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = {c.title for c in script.app.get_system_commands(script.app.screen)}
        for title in (
            "Deploy",
            "Promote",
            "Roll back",
            "Toggle canary",
            "Default canaries",
            "Logs of focused host",
            "Host details",
            "Analysis",
            "Filter hosts",
            "History",
            "Help",
            "Quit",
            "Theme: dark",
            "Theme: light",
            "Theme: high-contrast",
        ):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Theme: light", "enter")
        await until(pilot, lambda: script.app.theme == "light", 5, "theme switched")


async def test_logs_are_sanitised_bounded_and_follow_the_focused_host(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        screen = script.app.fleet_screen
        pane = screen.query_one(LogPane)
        for i in range(3000):
            script.log("web-01", f"\x1b[32mline {i}\x1b[0m")
        script.log("web-02", "not followed")
        await settle(pilot)
        assert pane.line_count <= pane.max_lines
        assert pane.lines[-1].endswith("│ ␛line 2999␛")
        await until(
            pilot,
            lambda: pane.max_scroll_y > 0 and pane.scroll_offset.y == pane.max_scroll_y,
            5,
            "newest line in view",
        )
        assert not any("not followed" in line for line in pane.lines)
        await pilot.press("right", "l")
        assert "web-02" in str(pane.border_title)
        # Where web-02's lines begin is said (they came after web-01's, as if one stream).
        assert pane.shown_rows[-1] == "[canarytui] ── web-02 from here ──"
        script.log("web-02", "now followed")
        await settle(pilot)
        assert pane.lines[-1].endswith("now followed")
        assert pane.shown_rows[-2:] == [
            "[canarytui] ── web-02 from here ──",
            "web-02 │ now followed",
        ]


# Open deployments and history ---------------------------------------------------------


FAILED = ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=[], measurements=[])
PASSED = ev.VerdictReached(verdict=ev.Verdict.PASS, reasons=[], measurements=[])
NOT_BACK = ev.HostUpdate(host="web-01", state=ev.HostState.ROLLBACK_FAILED, detail="down")
WATCHED = ev.AnalysisStarted(canaries=["web-01"], baseline=["web-04"], duration=30.0)
SIX_SECONDS_IN = ev.AnalysisUpdate(elapsed=6.0, duration=30.0, measurements=[])


@pytest.mark.parametrize(
    ("kind", "version", "before", "phase", "offer"),
    [
        # Killed during the analysis: p analyses it again (no promote without a verdict).
        (
            "deploy",
            "1.1.0",
            [WATCHED, SIX_SECONDS_IN],
            ev.Phase.ANALYSIS,
            "the canary has no verdict: p analyses it again, r rolls back",
        ),
        # Halted before its verdict (a failed canary_start hook): p analyses it again.
        (
            "deploy",
            "1.1.0",
            [],
            ev.Phase.HALTED,
            "the canary has no verdict: p analyses it again, r rolls back",
        ),
        # The canary failed and its rollback failed (a host down): promote is refused.
        ("deploy", "1.3.0-bad", [FAILED], ev.Phase.HALTED, "its canary failed: r rolls back"),
        # An operator's rollback failed on a host: only rolling back again finishes it.
        (
            "deploy",
            "1.2.0",
            [PASSED, NOT_BACK],
            ev.Phase.HALTED,
            "its rollback did not finish: r rolls back again to finish it",
        ),
        # A release put back (rollback --to, b in history), stopped mid-way: finished, never
        # undone (r would put back the release it escaped, everywhere, no canary).
        ("rollback", "1.0.0", [], ev.Phase.PROMOTING, "p finishes putting 1.0.0 back"),
    ],
)
async def test_an_open_deployment_is_offered_what_finishes_it(
    tmp_path: Path,
    kind: str,
    version: str,
    before: list[ev.Event],
    phase: ev.Phase,
    offer: str,
) -> None:
    first = Script(tmp_path)
    # Started on this machine: a later process knows nobody drives it any more.
    first.start(version, ["web-01"], kind=kind, machine=machine_name())
    for event in before:
        first.emit(event)
    first.phase(phase)
    script = Script(tmp_path)
    texts = record_notifications(script.app)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        said = [t for t in texts if f"deployment #1 of {version} is open" in t]
        assert said == [f"deployment #1 of {version} is open ({phase.value}): {offer}"], texts
        panel = str(script.app.fleet_screen.query_one(RolloutProgress).render())
        again = "p analyses it again" in offer
        assert ("p analyse again" in panel) is again, panel  # the keys that apply
        assert ("p next wave" in panel) is ("p " in offer and not again), panel
        # A rollback that failed on a host is said so on its row (it said "1 failed", as a
        # failed deploy, the canary still on the release), and r is to roll back again.
        stuck = NOT_BACK in before
        assert ("canary  ████████████ 0/1, 1 rollback failed" in panel) is stuck, panel
        assert ("r roll back again" in panel) is stuck, panel
        if phase is ev.Phase.ANALYSIS:  # where it stopped: no countdown, nothing runs it
            assert "analysis 6s of 30s\n" in panel, panel
        if again:  # p asks first, saying what it does; no is no
            await pilot.press("p")
            await settle(pilot)
            screen = script.app.screen
            assert isinstance(screen, ConfirmScreen), screen
            assert screen.title_text == f"Analyse {version} again?"
            assert "before its canary had a verdict" in screen.message
            await pilot.press("n")
            await settle(pilot)
            assert not script.app.engine.busy
        if "p " not in offer:  # p is refused at once, no dialog the engine would refuse
            await pilot.press("p")
            await settle(pilot)
            assert isinstance(script.app.screen, FleetScreen), script.app.screen
            assert "roll it back" in texts[-1] or "until the canary has a verdict" in texts[-1]


async def test_hosts_cut_off_by_a_stopped_process_are_not_shown_in_flight(
    tmp_path: Path,
) -> None:
    """A process stopped mid-wave (Ctrl-C, a crash) left a host "deploying" in the journal:
    the UI opened on it showed the host deploying and the wave in flight, though nothing
    ran. Nobody driving the deployment, the host says "deploy cut off" (its tile waits as a
    pending one), its wave's row counts it apart, until the host is worked on again; with
    another process of this machine driving it, it is in flight as the journal says."""
    first = Script(tmp_path)
    waves = first.canary_passed("1.1.0", ["web-01"])
    host = waves[0][0]
    first.phase(ev.Phase.PROMOTING, wave=1)
    first.host(host, ev.HostState.DEPLOYING)
    with sqlite3.connect(first.journal.path) as db:  # driven from this machine, as a CLI run
        db.execute("UPDATE deployments SET machine = ?", (machine_name(),))
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        state = script.app.fleet_screen.state
        assert (state.state_text(host), state.tile_kind(host)) == ("deploy cut off", "pending")
        assert state.phase_label() == "promoting wave 1/2, stopped"  # the header's too
        wave = state.wave_progress()[1]
        assert (wave.label, wave.active, wave.cut_off) == ("wave 1", 0, 1)
        panel = str(script.app.fleet_screen.query_one(RolloutProgress).render())
        assert f" 0/{len(waves[0])}, 1 cut off" in panel, panel
        script.phase(ev.Phase.PROMOTING, wave=1)  # worked on again (a promote here)
        script.host(host, ev.HostState.DEPLOYING)
        await settle(pilot)
        assert (state.state_text(host), state.tile_kind(host)) == ("deploying", "deploying")
        assert state.phase_label() == "promoting wave 1/2"
    driven = Script(tmp_path)
    record = driven.journal.open_deployment(driven.env.name, driven.env.app)
    assert record is not None
    async with (
        driven_elsewhere(driven.engine.locks.local_path(), record),
        driven.app.run_test(size=SIZE) as pilot,
    ):
        await settle(pilot)
        assert driven.app.fleet_screen.state.state_text(host) == "deploying"
        assert driven.app.fleet_screen.state.phase_label() == "promoting wave 1/2"


async def test_open_deployment_is_offered_on_start(tmp_path: Path) -> None:
    first = Script(tmp_path)
    first.canary_passed("1.1.0", ["web-01"])  # as a killed run or the CLI left it
    script = Script(tmp_path)
    texts = record_notifications(script.app)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app = script.app
        assert any("deployment #1 of 1.1.0 is open (awaiting promotion)" in t for t in texts)
        assert script.engine.phase is ev.Phase.AWAITING_PROMOTION
        state = app.fleet_screen.state
        assert state.is_canary("web-01") and state.verdict is not None
        assert state.tile_kind("web-01") == "deployed"
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmScreen)
        assert "wave 1/2 (3 host(s))" in app.screen.message
        await pilot.press("escape", "d")  # a second deployment is refused
        assert isinstance(app.screen, FleetScreen)
        assert any("is still open" in t for t in texts)


async def test_p_asks_about_a_deployment_another_process_recorded_just_now(
    tmp_path: Path,
) -> None:
    """A deployment the CLI left awaiting promotion while the UI was open, p pressed before
    the UI's follower read it: the question is what the journal says (the engine's state
    taken from it, as promote takes it), not a crash on a state that has none yet."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        other = Script(tmp_path)
        other.canary_passed("1.1.0", ["web-01"])
        script.engine.state.deployment = None  # not followed yet
        await pilot.press("p")
        assert isinstance(script.app.screen, ConfirmScreen)
        # (its hosts not answered yet in this world without hosts: said after the question)
        assert script.app.screen.message.startswith("Deploy 1.1.0 to wave 1/2 (3 host(s))?\n")


async def test_with_none_open_the_rollout_panel_names_the_last_deployment(
    tmp_path: Path,
) -> None:
    """The UI opened after a release that ended (a CLI run, an earlier session) says how
    it ended, not "No deployment yet"; a fresh journal says that."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    async with Script(fresh).app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = str(pilot.app.fleet_screen.query_one(RolloutProgress).render())
        assert "No deployment yet." in text, text
    first = Script(tmp_path)
    first.canary_passed("1.3.0", ["web-01"])
    first.phase(ev.Phase.ROLLED_BACK)
    first.emit(ev.DeploymentFinished(outcome=ev.Outcome.CANARY_FAILED, summary="rolled back"))
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = " ".join(str(script.app.fleet_screen.query_one(RolloutProgress).render()).split())
        record = script.engine.journal.deployment(1)
        assert record is not None and record.finished_at is not None
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(record.finished_at))
        assert (
            "No deployment open. Last deployment #1 1.3.0: canary failed "
            f"{stamp} UTC, by {record.user} (H history)"
        ) in text, text
        assert "No deployment yet" not in text
        assert script.engine.deployment is None  # shown, not adopted: nothing to go on with


async def test_an_open_deployment_with_a_host_taken_out_of_the_file_is_said_at_once(
    tmp_path: Path,
) -> None:
    """The file lost a host the open deployment planned: on start the notice says so
    instead of offering p and r, and p, P, r and d say it again at once, no dialog that
    the engine would refuse after the operator confirmed."""
    Script(tmp_path).canary_passed("1.1.0", ["web-01"])  # planned on web-01 .. web-12
    script = Script(tmp_path, hosts=11)
    texts = record_notifications(script.app)
    said = (
        f"deployment #1 of 1.1.0 planned web-12, which {script.env.path} no longer lists: "
        "put it back in the file to go on with it"
    )
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [t for t in texts if "deployment #1" in t] == [said]
        for key in ("p", "P", "r", "d"):
            texts.clear()
            await pilot.press(key)
            await settle(pilot)
            assert texts and texts[-1] == said, (key, texts)
            assert isinstance(script.app.screen, FleetScreen), key  # no dialog
    assert script.engine.phase is ev.Phase.AWAITING_PROMOTION


async def test_history_lists_deployments_from_the_journal(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.canary_passed("1.1.0", ["web-01"])
        await settle(pilot)
        await pilot.press("H")
        assert isinstance(script.app.screen, HistoryScreen)
        assert [r.version for r in script.app.screen.records] == ["1.1.0"]
        await settle(pilot)
        lines = str(script.app.screen.query_one("#detail-text", Static).render()).splitlines()
        hosts = [line.split() for line in lines[lines.index("hosts") + 1 :] if line.strip()]
        # The canary went from 1.0.0 to 1.1.0; the others wait, on what they ran.
        assert hosts[0][:6] == ["web-01", "canary", "1.0.0", "→", "1.1.0", "deployed"], hosts
        assert hosts[1][:4] == ["web-02", "wave", "1", "1.0.0"] and hosts[1][4] == "pending"
        await pilot.press("escape")
        assert isinstance(script.app.screen, FleetScreen)


async def test_quit_without_running_deployment_does_not_ask(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await until(pilot, lambda: not script.app.is_running, 5, "exit")
    assert script.app.return_code == 0
    await asyncio.sleep(0)


async def test_a_wave_of_many_failures_is_named_in_one_line(tmp_path: Path) -> None:
    """on_failure: ask after a wave of 40 failures (max_parallel of them in flight): the
    dialog's title names six and counts the rest; each failure is still listed below."""
    script = Script(tmp_path, hosts=48)
    names = script.env.host_names[:40]
    question = ev.FailureQuestion(
        wave=1,
        waves=2,
        failures=[ev.HostFailure(host=h, step="restart", exit_status=1, output="") for h in names],
        skippable=0,
    )
    async with script.app.run_test(size=SIZE) as pilot:
        script.app.push_screen(FailureScreen(question, "1.1.0"))
        await pilot.pause()
        title = str(script.app.screen.query_one("#title", Static).content)
        assert title == f"{', '.join(names[:6])} and 34 more failed in wave 1/2 of 1.1.0"
        assert len(script.app.screen.query("#failures Static")) == 40


def test_a_host_that_failed_before_any_step_is_described_once() -> None:
    """A host lost before a step ran has its reason as its recorded output: the dialog says
    it once, not again as output, and its name once (the reason names the host); a failed
    step's output is still shown under it."""
    reason = "web-06 (127.0.0.1:2222): connection lost during a command: its session was cut"
    lost = describe(
        ev.HostFailure(host="web-06", step="", exit_status=None, output=reason, detail=reason)
    )
    assert lost == reason
    assert (
        describe(ev.HostFailure(host="web-06", step="", exit_status=None, output="", detail="gone"))
        == "web-06: gone"
    )
    failed = describe(
        ev.HostFailure(host="web-07", step="restart", exit_status=1, output="oops\nno port")
    )
    assert failed == "web-07: step restart exited 1\n  | oops\n  | no port"


def local_lock(script: Script, owner: dict[str, object]) -> Path:
    """This machine's lock file of the script's environment, as another process wrote it."""
    lock = script.engine.locks.local_path()
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps(owner))
    return lock


async def test_an_open_deployment_driven_by_another_process_is_said_before_any_dialog(
    tmp_path: Path,
) -> None:
    """A second UI on the same journal while another process drives the open deployment
    (its local lock, a live pid of this machine): p, r and d say so at once, no dialog
    that the lock would refuse after the operator confirmed; deploy from the engine too.
    Once that process is gone, p asks as before."""
    script = Script(tmp_path)
    driver = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    try:
        async with script.app.run_test(size=SIZE) as pilot:
            seen = record_notifications(script.app)
            script.discovered()
            script.start("1.1.0", ["web-01"])
            script.phase(ev.Phase.AWAITING_PROMOTION)
            await settle(pilot)
            owner = {"token": "t0ken", "deployment": script.deployment, "version": "1.1.0"}
            owner.update(user="ops", machine=script.engine.ctx.machine, pid=driver.pid)
            local_lock(script, owner)
            said = (
                f"deployment #{script.deployment} of 1.1.0 is being driven by another "
                f"canarytui on this machine (pid {driver.pid}): follow it or act on it there, or "
                f"stop it (kill -INT {driver.pid}: the deployment stays open) and act on it here"
            )
            for key in ("p", "P", "r", "d"):
                await pilot.press(key)
                await settle(pilot)
                assert seen and seen[-1] == said, (key, seen)
                assert isinstance(script.app.screen, FleetScreen), key  # no dialog
                seen.clear()
            with pytest.raises(ActionRefused, match="being driven by another canarytui"):
                await script.engine.deploy("1.2.0")
            driver.kill()
            await asyncio.wait_for(driver.wait(), 10)
            await pilot.press("p")
            await until(pilot, lambda: isinstance(script.app.screen, ConfirmScreen), 5, "ask")
            assert not seen, seen
    finally:
        if driver.returncode is None:
            driver.kill()
            await asyncio.wait_for(driver.wait(), 10)


async def test_deploy_held_for_maintenance_from_this_machine_is_said_before_any_dialog(
    tmp_path: Path,
) -> None:
    """`canarytui lock` on this machine holds the environment: d says who holds it, why and
    since when, at once, not after the version and the confirmation; once it is released,
    d asks for the version again."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        seen = record_notifications(script.app)
        script.discovered()
        await settle(pilot)
        owner = {"maintenance": "db [b]migration[/b]", "user": "ops", "machine": "bastion"}
        lock = local_lock(script, {**owner, "since": 1.7e9})
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(script.app.screen, FleetScreen)
        assert len(seen) == 1 and seen[0].startswith(
            "held for maintenance by ops@bastion (maintenance: db [b]migration[/b]) since "
        ), seen
        assert seen[0].endswith(": deployments are refused until it is over (canarytui unlock)")
        lock.unlink()
        await pilot.press("d")
        await until(pilot, lambda: isinstance(script.app.screen, VersionScreen), 5, "asked")


async def test_r_on_a_deployment_its_canary_failure_rolled_back_says_so_without_asking(
    tmp_path: Path,
) -> None:
    """r after a canary failure (rolled back then) asked "Close deployment #1? It reached no
    host yet: nothing to undo." (it had reached the canary), then was refused: it says at
    once that there is nothing to roll back, and why, asking nothing."""
    script = Script(tmp_path)
    said = record_notifications(script.app)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.4.0", ["web-01"])
        script.deploy_host("web-01", "1.4.0")
        script.host("web-01", ev.HostState.ROLLED_BACK, "1.0.0")
        script.phase(ev.Phase.ROLLED_BACK)
        script.emit(
            ev.DeploymentFinished(outcome=ev.Outcome.CANARY_FAILED, summary="1 host rolled back")
        )
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(script.app.screen, FleetScreen)
        assert (
            "nothing to roll back: deployment #1 of 1.4.0 was rolled back when its canary failed"
            in said
        ), said


async def test_a_key_pressed_over_and_over_shows_one_toast_not_a_pile(tmp_path: Path) -> None:
    """``p`` five times with nothing to promote: five refusals said, one toast on the
    screen (they piled up over the grid); other words still get their own."""
    script = Script(tmp_path)
    app = script.app
    texts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        script.discovered()
        await settle(pilot)
        app.clear_notifications()
        for _ in range(5):
            await pilot.press("p")
        await settle(pilot)
        assert len(texts) == 5 and len(set(texts)) == 1, texts
        assert [n.message for n in app._notifications] == texts[:1]
        await pilot.press("right", "space")  # other words: a toast of their own
        await settle(pilot)
        assert [n.message for n in app._notifications] == [texts[0], texts[-1]]
        assert texts[-1] == "web-02 picked as canary"


async def test_a_deployment_taken_up_again_says_the_share_of_users_it_left(
    tmp_path: Path,
) -> None:
    """Quit during wave 1: the balancer still sends 25 % of the users to the release, and
    the next start's header said nothing of it (it said "traffic 25 % new" before)."""
    from canarytui.journal.records import machine_name
    from canarytui.ui.widgets.status_header import StatusHeader

    first = Script(tmp_path)
    # Started on this machine: the next start knows nobody drives it any more.
    first.start("1.1.0", ["web-01"], machine=machine_name())
    first.phase(ev.Phase.PROMOTING, wave=1)
    shift = ev.TrafficShifted(phase="wave_start", hosts=["web-02"], percent=25, ok=True)
    first.emit(shift)
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        script.app.fleet_screen.repaint_now()
        header = script.app.fleet_screen.query_one(StatusHeader)
        await until(pilot, lambda: "traffic 25 % new" in str(header.render()), 5, "the share")


async def test_a_hosts_last_step_of_an_older_deployment_says_which(tmp_path: Path) -> None:
    """A new deployment that has not reached a host yet: the host's panel showed the last
    step of the one before as this one's; it says which deployment it was of."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.1.0", ["web-01"])
        for name in ("web-01", "web-02"):
            script.deploy_host(name, "1.1.0")
        script.phase(ev.Phase.COMPLETE)
        script.emit(ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary="1.1.0"))
        script.start("1.2.0", ["web-01"])
        script.deploy_host("web-01", "1.2.0")
        screen = script.app.fleet_screen
        step = screen.query_one("#host-step", Static)

        def first_line(name: str) -> str:
            screen.grid.move_cursor_to(name)
            return str(step.render()).splitlines()[0] if str(step.render()) else ""

        await until(
            pilot,
            lambda: first_line("web-02").startswith("last step of #1 deploy restart: exit 0"),
            5,
            lambda: first_line("web-02"),
        )
        await until(
            pilot,
            lambda: first_line("web-01").startswith("last step deploy restart: exit 0"),
            5,
            lambda: first_line("web-01"),
        )


async def test_a_rollback_to_halted_is_finished_never_undone(tmp_path: Path) -> None:
    """A rollback --to halted mid-way: the panel offers p (finish putting it back), not r;
    r says why (it would put back the release it escaped, everywhere, no canary) and
    changes nothing; its failure dialog's roll back is refused the same way."""
    from canarytui.ui.screens.failure import FailureScreen
    from canarytui.ui.widgets.rollout_progress import RolloutProgress

    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        said = record_notifications(script.app)
        script.discovered("1.2.0")
        script.start("1.1.0", [], kind="rollback")
        script.phase(ev.Phase.PROMOTING, wave=1)
        script.deploy_host("web-01", "1.1.0")
        script.host("web-02", ev.HostState.FAILED)
        script.phase(ev.Phase.HALTED, wave=1)
        progress = script.app.fleet_screen.query_one(RolloutProgress)
        await until(pilot, lambda: "p next wave" in str(progress.render()), 5, "keys")
        assert "r roll back" not in str(progress.render())
        await pilot.press("r")
        await until(pilot, lambda: bool(said), 5, "refusal")
        assert "rolling it back would put back the release it escaped" in said[-1], said
        assert not isinstance(script.app.screen, ConfirmScreen)
        question = ev.FailureQuestion(
            wave=1, waves=3, failures=[], skippable=1, deployment=script.deployment
        )
        script.app.push_screen(FailureScreen(question, "1.1.0", undo=False))
        await settle(pilot)
        await pilot.press("b")
        await until(pilot, lambda: "retry, skip or halt" in said[-1], 5, lambda: str(said))
        assert isinstance(script.app.screen, FailureScreen)


async def test_a_verdict_waiting_for_a_silent_canary_says_so(tmp_path: Path) -> None:
    """The analysis time up and a canary hung: the panel sat on "17s of 17s, 0s left" for
    the probe's timeout, as if frozen; it says the verdict waits for whom."""
    from canarytui.metrics import STOPPED
    from canarytui.ui.widgets.rollout_progress import RolloutProgress

    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.2.0", ["web-02", "web-03"])
        script.phase(ev.Phase.CANARY)
        script.analysis_started(["web-02", "web-03"], duration=17.0)
        silent = f"{STOPPED}: no answer for 10s"

        def update(elapsed: float) -> None:
            ms = [
                ev.Measurement(rule="traffic", host="web-02", value=1.0, limit="x", passed=True),
                ev.Measurement(
                    rule="traffic", host="web-03", value=None, limit="x", passed=None,
                    status="undecided", note=silent,
                ),
            ]  # fmt: skip
            script.emit(ev.AnalysisUpdate(elapsed=elapsed, duration=17.0, measurements=ms))

        progress = script.app.fleet_screen.query_one(RolloutProgress)
        update(12.0)  # still counting down: its rules wait, nothing more said
        await until(pilot, lambda: "12s of 17s, 5s left" in str(progress.render()), 5, "update")
        assert "verdict waits" not in str(progress.render())
        update(17.0)
        said = "verdict waits: web-03 stopped answering"
        await until(
            pilot, lambda: said in str(progress.render()), 5, lambda: str(progress.render())
        )


def test_a_step_read_back_from_the_journal_has_no_empty_action() -> None:
    """An adopted deployment's last steps come from the journal, without their action:
    the panel said "last step  restart" (an empty field before the step)."""
    from rich.style import Style

    from canarytui.ui.widgets.host_panel import _step_text

    said = _step_text("restart", None, None, 0, "", None, Style()).plain
    assert said.splitlines()[0] == "last step restart: exit 0"
    said = _step_text("restart", 3, "deploy", 0, "", 0.4, Style()).plain
    assert said.splitlines()[0] == "last step of #3 deploy restart: exit 0 (0.4s)"


async def test_b_in_the_history_with_a_deployment_open_says_so_there(tmp_path: Path) -> None:
    """`b` on a completed deployment's row while another is open: the history closed, then
    said "a deployment is open"; it says so and stays open (the row is still in view)."""
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        script.discovered()
        script.start("1.1.0", ["web-01"])
        script.phase(ev.Phase.COMPLETE)
        script.emit(ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary="1.1.0"))
        script.canary_passed("1.2.0", ["web-01"])  # open, awaiting promotion
        said = record_notifications(script.app)
        await pilot.press("H")
        await until(pilot, lambda: isinstance(script.app.screen, HistoryScreen), 5, "history")
        await settle(pilot)
        await pilot.press("down", "b")  # the newest first: #1, complete, is the second row
        await until(pilot, lambda: bool(said), 5, "the refusal")
        assert said[-1] == "a deployment is open: roll it back (r) or finish it first", said
        assert isinstance(script.app.screen, HistoryScreen)
