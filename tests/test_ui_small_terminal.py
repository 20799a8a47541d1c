"""The fleet screen in a small terminal (80x24, the default of most terminals): the rollout
panel keeps its rows, so the verdict stays on screen, and the header keeps the phase and
both versions in view. Wider and taller terminals keep the layout they had."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ui_support import Script, settle, until
from textual.containers import VerticalScroll
from textual.pilot import Pilot

from canarytui import events as ev
from canarytui.ui.screens.confirm import ChoiceScreen
from canarytui.ui.screens.failure import FailureScreen
from canarytui.ui.screens.log_filter import LogFilterScreen
from canarytui.ui.widgets.filter_bar import FilterBar
from canarytui.ui.widgets.fleet_grid import PITCH_Y
from canarytui.ui.widgets.host_panel import HostPanel
from canarytui.ui.widgets.log_pane import LogPane
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.side_column import HOST_MAX, PROGRESS_MIN, side_width
from canarytui.ui.widgets.status_header import StatusHeader


def shown_lines(widget: RolloutProgress | StatusHeader) -> list[str]:
    """The lines of the widget's text that fit its content area (it is scrolled to the top)."""
    text = widget._last_text
    assert text is not None
    lines = (text if isinstance(text, str) else text.plain).split("\n")
    return lines[: widget.content_region.height]


async def passed_canary(pilot: Pilot[int], script: Script) -> None:
    await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
    await pilot.pause()
    script.discovered()
    script.canary_passed("1.1.0", ["web-01"])
    await settle(pilot)


def assert_verdict_and_versions_in_view(script: Script, size: tuple[int, int]) -> None:
    screen = script.app.fleet_screen
    progress = screen.query_one(RolloutProgress)
    region = progress.region
    assert screen.region.contains_region(region), (region, size)
    assert region.height >= PROGRESS_MIN, (region, size)
    assert any(line.startswith("verdict") and "PASS" in line for line in shown_lines(progress))
    header = screen.query_one(StatusHeader)
    line = shown_lines(header)[0]
    assert len(line) <= size[0], line
    for shown in ("awaiting promotion", "1.0.0", "1.1.0", "12 hosts"):
        assert shown in line, (shown, line)


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (200, 60)])
async def test_the_verdict_and_both_versions_stay_in_view(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=size) as pilot:
        await passed_canary(pilot, script)
        assert_verdict_and_versions_in_view(script, size)
        host = script.app.fleet_screen.query_one(HostPanel)
        if size[1] >= 40:
            # Room for both: the host panel is as tall as before (its every part).
            assert host.styles.max_height is not None
            assert host.styles.max_height.value == HOST_MAX
            assert host.region.height == host.virtual_size.height + 2


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_keys_that_act_stay_in_view_under_a_long_verdict(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """A canary that stopped answering: its verdict's reasons filled the rollout panel and
    its keys (r: the only way out then) were below its end, out of view. They come up under
    the phase when they would not be seen at the end; at the end when there is room."""
    script = Script(tmp_path)
    async with script.app.run_test(size=size) as pilot:
        await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
        script.discovered()
        canaries = ["web-01", "web-05"]
        script.canaries_analysed("1.3.0-bad", canaries)
        rules = ("error-ratio", "p99-latency", "latency-shift", "traffic", "failed-checks")
        ms = [
            ev.Measurement(rule=r, host=c, value=None, limit="<= 0.05", passed=False)
            for c in canaries
            for r in rules
        ]
        reasons = [f"{c}: stopped answering (3 probes got no answer)" for c in canaries]
        script.emit(ev.AnalysisUpdate(elapsed=30.0, duration=30.0, measurements=ms))
        script.emit(ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=reasons, measurements=ms))
        script.phase(ev.Phase.HALTED)
        await settle(pilot)
        progress = script.app.fleet_screen.query_one(RolloutProgress)
        await until(pilot, lambda: "verdict  FAIL" in progress._last_text.plain, 5, "verdict")  # type: ignore[union-attr]
        shown = shown_lines(progress)
        assert any(" r roll back" in line for line in shown), shown
        assert shown[0].startswith("by ") or shown[0].startswith("phase"), shown


async def test_the_layout_follows_the_terminal_when_it_is_resized(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=(120, 40)) as pilot:
        await passed_canary(pilot, script)
        header = script.app.fleet_screen.query_one(StatusHeader)
        assert "candidate 1.1.0" in shown_lines(header)[0]
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert_verdict_and_versions_in_view(script, (80, 24))
        assert "1.0.0 → 1.1.0" in shown_lines(header)[0]
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        assert_verdict_and_versions_in_view(script, (120, 40))
        assert "candidate 1.1.0" in shown_lines(header)[0]


def test_below_80_columns_the_side_column_narrows_for_the_grid() -> None:
    """At 80 and wider the side column is as it was; narrower, the grid and logs keep the
    34 columns they have at 80 (a column of tiles) while the side column can give them."""
    assert side_width(80, 49) == 46 and side_width(100, 49) == 46
    assert side_width(70, 49) == 36 and side_width(65, 49) == 31
    assert side_width(50, 49) == 31  # the side column's least: the grid gets less


@pytest.mark.parametrize("width", [70, 65])
async def test_a_terminal_under_80_columns_keeps_a_column_of_tiles(
    tmp_path: Path, width: int
) -> None:
    """A 70- or 65-column terminal: the grid shows its tiles whole, one column of them, the
    logs beside the side column; the rollout keeps its phase on one line and its verdict
    (the user who deployed is left out where the line would not fit)."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(width, 24)) as pilot:
        await passed_canary(pilot, script)
        screen = script.app.fleet_screen
        grid, progress = screen.grid, screen.query_one(RolloutProgress)
        assert grid.region.width >= 34 and grid.columns == 1, grid.region
        assert screen.query_one(LogPane).region.width == grid.region.width
        lines = shown_lines(progress)
        assert lines[0].startswith("phase awaiting promotion"), lines
        assert any(line.startswith("verdict") and "PASS" in line for line in lines), lines
        assert screen.region.contains_region(progress.region)


async def test_the_filter_bar_takes_its_rows_from_the_host_panel(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await passed_canary(pilot, script)
        screen = script.app.fleet_screen
        host = screen.query_one(HostPanel)
        before = host.region.height
        await pilot.press("slash")
        await settle(pilot)
        bar = screen.query_one(FilterBar)
        assert bar.shown and bar.region.height > 0
        progress = screen.query_one(RolloutProgress)
        assert progress.region.bottom <= bar.region.y, (progress.region, bar.region)
        assert progress.region.height >= PROGRESS_MIN
        assert host.region.height < before
        assert any(line.startswith("verdict") for line in shown_lines(progress))
        await pilot.press("escape")
        await settle(pilot)
        assert not bar.shown and host.region.height == before


async def test_the_logs_full_screen_show_long_lines_and_come_back(tmp_path: Path) -> None:
    """L: the log pane over the screen's whole width, the header and keys kept, its long
    lines wrapped (w: cut, the arrows scrolling them; w again: wrapped); L or escape: back
    to the grid, the lines from their start."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await passed_canary(pilot, script)
        screen = script.app.fleet_screen
        pane = screen.query_one(LogPane)
        message = "POST /api/checkout 500 database connection refused " + "x" * 80
        for i in range(30):
            script.log("web-01", f"2026-12-04T14:06:{i:02d}.007Z ERROR shop[web-01] {message}")
        await until(pilot, lambda: pane.shown_lines >= 30, 10, "log lines shown")
        narrow = pane.region.width
        assert narrow < 40 and screen.grid.region.width > 0

        for back in ("L", "escape"):
            await pilot.press("L")
            await settle(pilot)
            assert screen.maximized is pane and screen.focused is pane
            assert pane.region.width == 80 and pane.region.height > 12
            assert screen.query_one(StatusHeader).region.height == 1
            assert screen.grid.region.width == 0  # the grid is not laid out meanwhile
            rows = [str(line) for line in pane.lines]
            assert rows and all(len(row) < pane.size.width for row in rows)
            # The last line whole, on rows whose next ones keep the host column.
            tail = rows[-3:]
            assert tail[0].startswith("web-01 │ ") and tail[2].startswith("       │ ")
            assert "".join(r.split(" │ ", 1)[1] for r in tail).endswith(message)
            await pilot.press("w")  # cut, not wrapped: the arrows scroll them
            await settle(pilot)
            assert not pane.wrap and len(pane.lines) == 30
            for _ in range(20):
                await pilot.press("right")
            await settle(pilot)
            assert pane.scroll_x > 0  # the rest of the lines, scrolled to
            await pilot.press("w")
            await settle(pilot)
            assert pane.wrap and [str(line) for line in pane.lines] == rows
            await pilot.press("l", "enter")  # no host in view: nothing happens
            await settle(pilot)
            assert screen.log_follow is None and script.app.screen is screen
            await pilot.press("slash")  # the logs' filter, not the hosts'
            await settle(pilot)
            assert isinstance(script.app.screen, LogFilterScreen)
            assert not screen.query_one(FilterBar).shown
            await pilot.press("escape")  # cleared, and back on the logs
            await settle(pilot)
            assert script.app.screen is screen and screen.maximized is pane
            assert pane.filter_text == "" and screen.focused is pane
            await pilot.press(back)
            await settle(pilot)
            assert screen.maximized is None and screen.focused is screen.grid, back
            assert pane.region.width == narrow and pane.scroll_x == 0
            await pilot.press("right")  # the grid's cursor moves again, not the pane
            await settle(pilot)
            assert screen.grid.cursor_host == "web-02"
            await pilot.press("left")
        assert script.engine.state.phase is ev.Phase.AWAITING_PROMOTION  # nothing else done


async def test_every_key_in_the_help_can_be_read_in_a_small_terminal(tmp_path: Path) -> None:
    """At 80x24 the help is taller than the screen: it scrolls (arrows, page keys, end), so
    the last keys and the notes below them come into view."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await passed_canary(pilot, script)
        await pilot.press("question_mark")
        await settle(pilot)
        help_screen = script.app.screen
        box = help_screen.query_one(VerticalScroll)
        note = help_screen.query_one("#close-note")
        assert box.max_scroll_y > 0 and help_screen.focused is box
        assert not box.content_region.contains_region(note.region)
        await pilot.press("end")
        await settle(pilot)
        assert box.scroll_y == box.max_scroll_y
        assert box.content_region.contains_region(note.region)
        await pilot.press("escape")
        await settle(pilot)
        assert script.app.screen is script.app.fleet_screen


async def test_a_failure_question_keeps_its_choices_in_view(tmp_path: Path) -> None:
    """on_failure: ask at 80x24, three hosts failed with long output: the title, the note
    and the choices stay on screen; the failures scroll in the rows left between them."""
    script = Script(tmp_path)
    output = "\n".join(f"line {i}: could not restart shop.service (exit {i})" for i in range(10))
    failures = [
        ev.HostFailure(host=h, step="restart", exit_status=1, output=output)
        for h in script.env.host_names[:3]
    ]
    question = ev.FailureQuestion(wave=1, waves=3, failures=failures, skippable=1)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await passed_canary(pilot, script)
        script.app.push_screen(FailureScreen(question, "1.1.0"))
        await settle(pilot)
        dialog = script.app.screen
        for part in ("#title", "#note", "#buttons"):
            region = dialog.query_one(part).region
            assert dialog.region.contains_region(region), (part, region)
        listed = dialog.query_one("#failures", VerticalScroll)
        assert listed.max_scroll_y > 0 and dialog.focused is listed
        await pilot.press("end")
        await settle(pilot)
        assert listed.scroll_y == listed.max_scroll_y  # the last host's output, scrolled to
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        assert listed.styles.max_height is not None and listed.styles.max_height.value == 20
        await pilot.press("h")
        await settle(pilot)
        assert script.app.screen is script.app.fleet_screen


@pytest.mark.parametrize("size", [(60, 16), (80, 24)])
async def test_a_deploy_question_keeps_its_answers_in_view(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """The deploy question with the filter on (the whole fleet's words, then the filtered
    hosts'): its title and answers stay on screen, the words scroll between them (at 60x16
    the answers were below the screen's last row)."""
    script = Script(tmp_path)
    async with script.app.run_test(size=size) as pilot:
        script.discovered("1.1.0")
        for name in ("web-05", "web-09"):
            script.host(name, ev.HostState.IDLE, "1.0.0")
        await settle(pilot)
        await pilot.press("slash", *"version=1.0", "enter", "d", *"1.1.0")
        await pilot.press("enter")
        await settle(pilot)
        dialog = script.app.screen
        assert isinstance(dialog, ChoiceScreen)
        for part in ("#title", "#buttons"):
            region = dialog.query_one(part).region
            assert dialog.region.contains_region(region), (part, region)
        words = dialog.query_one("#message-box", VerticalScroll)
        if size == (60, 16):
            assert words.max_scroll_y > 0 and dialog.focused is words
            await pilot.press("end")
            await settle(pilot)
            assert words.scroll_y == words.max_scroll_y  # the filtered hosts' words, last
        await pilot.press("n")
        await settle(pilot)
        assert script.app.screen is script.app.fleet_screen


@pytest.mark.parametrize("height", [14, 20, 24, 30])
async def test_in_a_short_terminal_the_logs_give_the_grid_their_rows(
    tmp_path: Path, height: int
) -> None:
    """The grid is what the screen is for: in a terminal under 40 rows the log pane takes a
    third of the left column, not its 12 rows, so the grid shows whole rows of tiles (at 14
    rows, one; 20, two; 24, three) where it showed none, one, two; the logs keep a line or
    more. From 40 rows on the logs have their 12 rows, as before."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(120, height)) as pilot:
        await passed_canary(pilot, script)
        screen = script.app.fleet_screen
        grid, logs = screen.grid, screen.query_one(LogPane)
        left = grid.region.height + logs.region.height
        assert 3 * logs.region.height <= left + 3, (grid.region, logs.region)  # a third
        assert logs.region.height >= 3 and screen.region.contains_region(logs.region)
        tile_rows = grid.scrollable_content_region.height // PITCH_Y
        two_thirds = 2 * (height - 2) // 3  # of the rows under the header, above the keys
        assert tile_rows >= (two_thirds - 2) // PITCH_Y, (height, grid.region)
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        assert logs.region.height == 12 and grid.region.height > 12
