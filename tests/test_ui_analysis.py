"""The analysis view (key a) and the analysis the fleet state keeps: its rows, its chart
points (bounded, reloaded from the journal), live updates, the last deployment's analysis
read back from the journal, and the rollout panel's verdict lines that fit its width."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.style import Style
from rich.text import Text
from test_ui_support import BAD_RATIO, Script, settle, until
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from canarytui import events as ev
from canarytui.ui.analysis_log import POINTS_KEPT, AnalysisLog, Point
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.screens.analysis import AnalysisScreen
from canarytui.ui.screens.fleet import FleetScreen
from canarytui.ui.widgets.analysis_chart import AnalysisChart, plot
from canarytui.ui.widgets.rollout_progress import RolloutProgress

SIZE = (120, 40)


def error_ratio(elapsed: float, recent: float, state: str = "fail") -> ev.AnalysisUpdate:
    m = ev.Measurement(
        rule="error-ratio",
        host="web-01",
        value=recent,
        baseline=0.005,
        limit="<= 0.05",
        passed={"pass": True, "fail": False}.get(state),
        status=state,
        recent=recent,
        band=[0.003, 0.008],
    )
    return ev.AnalysisUpdate(elapsed=elapsed, duration=30.0, measurements=[m])


def rolled_back(s: Script) -> None:
    """The bad canary's analysis, its FAIL verdict and the rollback, all in the journal."""
    ms = s.bad_canary_analysis()
    s.emit(
        ev.VerdictReached(
            verdict=ev.Verdict.FAIL,
            reasons=[m.describe() for m in ms if m.state == "fail"],
            measurements=ms,
        )
    )
    s.phase(ev.Phase.ROLLED_BACK)
    s.emit(ev.DeploymentFinished(outcome=ev.Outcome.CANARY_FAILED, summary="rolled back"))


# The fleet state's analysis -------------------------------------------------------------


def test_points_are_kept_per_rule_and_canary_bounded_and_reset(tmp_path: Path) -> None:
    script = Script(tmp_path)
    state = FleetState(script.engine)
    state.apply(
        ev.DeploymentStarted(
            version="1.3.0-bad", canaries=["web-01"], waves=[], previous={}, user="u", deployment=1
        )
    )
    state.apply(ev.AnalysisStarted(canaries=["web-01"], baseline=["web-04"], duration=30.0))
    for i in range(POINTS_KEPT + 50):
        state.apply(error_ratio(float(i), 0.2))
    points = state.analysis_log.series("error-ratio", "web-01")
    assert len(points) == POINTS_KEPT
    assert points[-1] == Point(float(POINTS_KEPT + 49), 0.2, 0.003, 0.008)
    assert state.analysis is not None and state.analysis.elapsed == POINTS_KEPT + 49
    # The health budget has nothing to draw: no points for it.
    state.apply(
        ev.AnalysisUpdate(
            elapsed=1.0,
            duration=30.0,
            measurements=[ev.Measurement("failed-checks", "web-01", 0.0, "<= 2", True)],
        )
    )
    assert state.analysis_log.series("failed-checks", "web-01") == []
    state.apply(
        ev.DeploymentStarted(
            version="1.4.0", canaries=["web-01"], waves=[], previous={}, user="u", deployment=2
        )
    )
    assert state.analysis_log.points == {} and state.analysis is None
    assert state.analysis_log.deployment == 2


def test_an_adopted_deployment_reloads_its_points_from_the_journal(tmp_path: Path) -> None:
    first = Script(tmp_path)
    live = FleetState(first.engine)
    unsubscribe = first.engine.subscribe(live.apply)
    first.bad_canary_analysis()
    unsubscribe()
    later = Script(tmp_path)
    record = later.engine.load_open()
    assert record is not None
    state = FleetState(later.engine)
    state.load_from_journal(record)
    log = state.analysis_log
    assert log.deployment == record.id and log.version == "1.3.0-bad"
    assert log.started is not None and log.started.baseline == ["web-04", "web-08"]
    assert [p.recent for p in log.series("error-ratio", "web-01")] == list(BAD_RATIO)
    assert log.series("error-ratio", "web-01") == live.analysis_log.series("error-ratio", "web-01")
    assert [m.state for m in log.measurements] == ["pass", "fail", "pass"]


def test_journal_events_this_version_cannot_read_are_skipped() -> None:
    good = error_ratio(2.0, 0.1).to_dict()
    newer = dict(good, measurements=[dict(good["measurements"][0], future_field=1)])
    log = AnalysisLog.from_journal(
        7,
        "1.0.0",
        [
            {"event": "analysis", "at": 1.0},  # fields missing
            {"event": "verdict", "at": 1.0, "verdict": "maybe", "reasons": [], "measurements": []},
            {"event": "step", "at": 1.0},
            good,
            newer,
        ],
    )
    assert log.verdict is None
    assert len(log.series("error-ratio", "web-01")) == 2


def test_the_plot_puts_the_line_above_the_band_and_the_limit_between() -> None:
    points = [Point(2.0 * (i + 1), r, 0.003, 0.008) for i, r in enumerate(BAD_RATIO)]
    p = plot(points, width=40, height=10, end=30.0, limits=[0.05])
    rows = ["".join(c for c, _, _ in row) for row in p.cells]
    band_rows = {r for r, row in enumerate(p.cells) if any(b for _, _, b in row)}
    limit_rows = {r for r, row in enumerate(p.cells) if any(w == "limit" for _, w, _ in row)}
    line_rows = {r for r, row in enumerate(p.cells) if any(w == "canary" for _, w, _ in row)}
    assert band_rows == {9} and limit_rows == {7}, rows
    assert min(line_rows) <= 2 and max(line_rows) == 9  # from inside the band to the top
    # Time runs over the whole window: nothing drawn after the last point (16 s of 30 s).
    assert all(c == " " for row in p.cells for c, _, _ in row[23:] if c != "╌")
    assert p.bottom == 0.0 and p.top > max(BAD_RATIO)


# The view ----------------------------------------------------------------------------------


async def test_analysis_view_is_live_and_closes_with_escape_a_or_q(tmp_path: Path) -> None:
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        script.discovered()
        script.bad_canary_analysis(updates=3)
        await settle(pilot)
        await pilot.press("a")
        assert isinstance(app.screen, AnalysisScreen)
        view = app.screen
        await settle(pilot)
        assert [(m.rule, m.host, m.state) for m in view.rows] == [
            ("error-ratio", "web-01", "undecided"),
            ("p99-latency", "web-01", "pass"),
            ("failed-checks", "web-01", "pass"),
        ]
        chart = view.query_one(AnalysisChart)
        assert chart.data is not None and len(chart.data.points) == 3  # the focused row's
        assert chart.data.reference == "baseline web-04, web-08"

        script.emit(error_ratio(8.0, 0.21))  # a new update while the view is open
        await until(
            pilot,
            lambda: chart.data is not None and len(chart.data.points) == 4,
            5,
            "the chart took the new point",
        )
        assert view.rows[0].state == "fail"
        table_text = str(view.query_one("#summary").render())
        assert "8s of 30s" in table_text
        script.emit(ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=[], measurements=view.rows))
        await until(
            pilot,
            lambda: "FAIL" in str(view.query_one("#summary").render()),
            5,
            "the summary shows the verdict",
        )
        for key in ("escape", "a", "q"):
            if key != "escape":
                await pilot.press("a")
                assert isinstance(app.screen, AnalysisScreen)
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), 5, f"{key} closed")
        assert app.is_running


async def test_a_large_baseline_is_named_by_its_first_hosts_and_a_count(tmp_path: Path) -> None:
    """Ten baseline hosts: the chart's title and legend name four, then how many more (the
    legend once cut the list mid-name, "… (+40 chars)")."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        script.discovered()
        script.start("1.1.0", ["web-01"])
        script.phase(ev.Phase.ANALYSIS)
        baseline = script.env.host_names[2:]
        script.emit(ev.AnalysisStarted(canaries=["web-01"], baseline=baseline, duration=30.0))
        script.emit(error_ratio(2.0, 0.01))
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        chart = app.screen.query_one(AnalysisChart)
        said = "baseline web-03, web-04, web-05, web-06 and 6 more"
        assert chart.data is not None and chart.data.reference == said
        assert str(chart.border_title).endswith(f"against the {said}")
        summary = str(app.screen.query_one("#summary").render())
        eight = ", ".join(baseline[:8])
        assert f"baseline {eight} and 2 more" in summary, summary
        legend = chart._legend(chart.data, *[Style()] * 4)
        assert said in "".join(text for text, _ in legend)


async def test_analysis_view_reads_the_last_deployment_from_the_journal(tmp_path: Path) -> None:
    rolled_back(Script(tmp_path))  # an earlier session (or the CLI) did it
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert script.engine.deployment is None
        await pilot.press("a")
        view = app.screen
        assert isinstance(view, AnalysisScreen)
        await settle(pilot)
        assert view.past is not None and view.current is view.past
        row = view.rows[0]
        assert (row.rule, row.host, row.state) == ("error-ratio", "web-01", "fail")
        assert row.baseline is not None and row.value is not None
        summary = str(view.query_one("#summary").render())
        assert "#1 1.3.0-bad" in summary and "FAIL" in summary
        chart = view.query_one(AnalysisChart)
        assert chart.data is not None
        assert [p.recent for p in chart.data.points] == list(BAD_RATIO)
        assert chart.data.end == 30.0 and chart.data.limits == [("max", 0.05)]


async def test_each_rows_verdict_is_in_view_in_a_small_terminal(tmp_path: Path) -> None:
    """At 80x24 the rule, the canary and its verdict are in view in every row; the limit and
    what follows it may need scrolling (the line under the chart has the focused row whole)."""
    rolled_back(Script(tmp_path))
    script = Script(tmp_path)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        view = script.app.screen
        assert isinstance(view, AnalysisScreen)
        await settle(pilot)
        table = view.query_one(DataTable)
        columns = list(table.columns.values())
        assert [c.label.plain for c in columns[:3]] == ["rule", "canary", "verdict"]
        shown = sum(c.get_render_width(table) for c in columns[:3])
        assert shown <= table.scrollable_content_region.width, (shown, table.size)
        assert table.get_cell_at(Coordinate(0, 2)).plain == "FAIL"


async def test_analysis_view_without_any_analysis_says_so(tmp_path: Path) -> None:
    script = Script(tmp_path)
    async with script.app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        view = script.app.screen
        assert isinstance(view, AnalysisScreen)
        await settle(pilot)
        assert view.rows == []
        assert "No analysis yet" in str(view.query_one("#summary").render())
        # The chart does not say it again (it did): what it will draw, by which rules.
        chart = view.query_one(AnalysisChart).message
        assert "No analysis yet" not in chart
        assert chart.startswith("Each rule's values over the analysis are drawn here")
        rules = ", ".join(r.name for r in script.env.canary.analysis.rules)
        assert rules == "error-ratio, p99-latency"
        assert chart.endswith(f"The file's rules: {rules}."), chart


# The rollout panel -----------------------------------------------------------------------


@pytest.mark.parametrize(("size", "right"), [((120, 40), 48), ((200, 50), 100)])
async def test_verdict_lines_fit_the_panel_and_the_panel_widens_on_wide_terminals(
    tmp_path: Path, size: tuple[int, int], right: int
) -> None:
    """Each verdict line is one line cut with … to the panel's width, whatever the width;
    the right column takes the width the grid of 12 hosts does not need (48 at 120
    columns, where the grid needs three tile columns; half of a wide terminal)."""
    script = Script(tmp_path)
    async with script.app.run_test(size=size) as pilot:
        await settle(pilot)
        script.discovered()
        long = ev.Measurement(
            rule="error-ratio-" + "x" * 80,
            host="web-01",
            value=0.2,
            baseline=0.005,
            limit="<= 0.05 and <= 3x baseline (0.015) " + "y" * 80,
            passed=False,
        )
        script.start("1.3.0-bad", ["web-01"])
        script.emit(
            ev.VerdictReached(
                verdict=ev.Verdict.FAIL, reasons=["web-01: " + "z" * 200], measurements=[long]
            )
        )
        await settle(pilot)
        screen = script.app.fleet_screen
        assert screen.query_one("#right").size.width == right
        # ... and the room it takes is room the grid did not need: every tile still shows.
        assert screen.grid.virtual_size.height <= screen.grid.scrollable_content_region.height
        progress = screen.query_one(RolloutProgress)
        width = progress.scrollable_content_region.width
        lines = str(progress.render()).splitlines()
        cut = [line for line in lines if line.endswith("…")]
        assert len(cut) == 2, lines  # the reason and the measurement, one line each
        assert all(len(line) <= width for line in lines), (width, lines)
        assert any("a analysis" in line for line in lines)


async def test_verdict_cells_take_the_new_theme_colours(tmp_path: Path) -> None:
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        script.bad_canary_analysis()
        await settle(pilot)
        await pilot.press("a")
        view = app.screen
        assert isinstance(view, AnalysisScreen)
        await settle(pilot)
        table = view.query_one(DataTable)
        verdict = Coordinate(1, 2)  # p99-latency: pass
        before = table.get_cell_at(verdict)
        assert isinstance(before, Text) and before.plain == "pass"
        app.theme = "light"
        await until(
            pilot,
            lambda: table.get_cell_at(verdict).style != before.style,
            5,
            "the pass cell recoloured",
        )
        assert table.cursor_row == 0  # the cursor stayed on the failing row
