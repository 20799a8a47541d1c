"""What a change repaints: a moved cursor or a changed host repaints the rows of its tiles
(not the grid), a host out of view repaints nothing, a panel text asks for a layout only
when its height may change and log lines only when the log's scrollbar appears (a layout
repaints the whole screen); a host's view (the UI's memory of it) is made when first asked
for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_ui_support import Script, settle
from textual.app import App, ComposeResult

from canarytui import events as ev
from canarytui.ui.widgets.fleet_grid import PITCH_X, PITCH_Y, TILE_HEIGHT, TILE_WIDTH, FleetGrid
from canarytui.ui.widgets.log_pane import LogPane
from canarytui.ui.widgets.state_text import PanelText

SIZE = (120, 40)


def painted_lines(grid: FleetGrid) -> list[int]:
    """The grid's lines painted from now on (``y`` of each ``render_line``), in order."""
    lines: list[int] = []
    render_line = grid.render_line

    def recording(y: int) -> object:
        lines.append(y)
        return render_line(y)

    grid.render_line = recording  # type: ignore[method-assign,assignment]
    return lines


async def test_cursor_and_host_changes_repaint_only_the_rows_of_their_tiles(
    tmp_path: Path,
) -> None:
    script = Script(tmp_path, hosts=300)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        script.discovered()
        await settle(pilot)
        grid = app.fleet_screen.query_one(FleetGrid)
        lines = painted_lines(grid)
        first_row = set(range(TILE_HEIGHT))
        second_row = {PITCH_Y + y for y in range(TILE_HEIGHT)}

        await pilot.press("right")  # web-01 -> web-02, the same row
        await settle(pilot)
        assert grid.cursor_host == "web-02"
        assert lines and set(lines) <= first_row

        lines.clear()
        hidden = grid.state.shown[-1]
        assert hidden not in grid.visible_hosts()
        script.engine.emit(ev.HostUpdate(host=hidden, state=ev.HostState.FAILED))
        script.health(hidden, ok=False)
        await settle(pilot)
        assert lines == []

        below = grid.state.shown[grid.columns]  # the first tile of the second row
        script.engine.emit(ev.HostUpdate(host=below, state=ev.HostState.FAILED))
        await settle(pilot)
        assert lines and set(lines) <= second_row


class _OneText(App[None]):
    def compose(self) -> ComposeResult:
        yield PanelText(id="text")


async def test_panel_text_lays_out_only_when_its_height_may_change() -> None:
    app = _OneText()
    async with app.run_test(size=(40, 10)) as pilot:
        text = app.query_one(PanelText)
        layouts: list[bool] = []
        update = text.update

        def recording(content: str = "", *, layout: bool = True) -> None:
            layouts.append(layout)
            update(content, layout=layout)

        text.update = recording  # type: ignore[method-assign,assignment]
        text.put("a\nb")  # the first text: laid out
        text.put("a\nb")  # unchanged: not sent again
        text.put("c\nd")  # as many lines, none wraps: repainted in place
        text.put("c\nd\ne")  # a line more
        text.put("x" * 80)  # wraps at 40 cells
        await pilot.pause()
        assert layouts == [True, False, True, True]
        assert "x" * 30 in str(text.render())


class _OneLog(App[None]):
    def compose(self) -> ComposeResult:
        yield PanelText(id="text")
        yield LogPane()


async def test_log_lines_lay_the_screen_out_only_when_the_scrollbar_appears() -> None:
    """A watched host's lines grow the log's scrollable height batch after batch; the
    pane's scrollbar follows them, and the newest line is in view, with no layout of the
    screen after the one that brought the scrollbar."""
    app = _OneLog()
    async with app.run_test(size=(60, 30)) as pilot:
        pane = app.query_one(LogPane)
        layouts: list[int] = []
        refresh_layout = app.screen._refresh_layout

        def recording(*args: object, **kwargs: object) -> None:
            layouts.append(pane.line_count)
            refresh_layout(*args, **kwargs)  # type: ignore[arg-type]

        app.screen._refresh_layout = recording  # type: ignore[method-assign]
        line = 0

        async def batch(rows: int) -> None:
            nonlocal line
            pane.add_batch(ev.LogLine(host="web-01", line=f"line {line + i}") for i in range(rows))
            line += rows
            await pilot.pause()

        await batch(3)  # fits the pane: no scrollbar
        assert not pane.show_vertical_scrollbar
        await batch(20)  # taller than the pane: the scrollbar comes, a layout with it
        assert pane.show_vertical_scrollbar and layouts and layouts[-1] == 23
        layouts.clear()
        for _ in range(5):
            await batch(7)
        assert layouts == []
        assert pane.vertical_scrollbar.window_virtual_size == pane.line_count == 58
        assert pane.lines[-1].endswith("line 57")
        assert pane.max_scroll_y > 0 and pane.scroll_offset.y == pane.max_scroll_y


def test_a_hosts_view_is_made_when_first_asked_for_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI's per-host memory is made for a host when something first asks for it (a
    drawn tile, an event about it), not for all 5,000 up front; once made it is the one
    kept. Hosts outside the file have none."""
    from canarytui.ui import fleet_state, host_views

    made: list[str] = []

    class Counted(host_views.HostView):
        def __init__(self) -> None:
            super().__init__()
            made.append("view")

    monkeypatch.setattr(host_views, "HostView", Counted)
    script = Script(tmp_path, hosts=300)
    state = fleet_state.FleetState(script.engine)
    assert made == []
    assert len(state.hosts) == 300 and list(state.hosts)[:2] == ["web-01", "web-02"]
    assert "web-300" in state.hosts and "web-301" not in state.hosts
    assert state.hosts.get("web-301") is None
    with pytest.raises(KeyError):
        state.hosts["web-301"]

    state.add_samples([ev.HealthSample(host="web-07", ok=False, latency=0.2)])
    assert len(made) == 1
    assert state.hosts["web-07"].ok is False  # the view the sample went to, kept
    assert state.hosts.get("web-07") is state.hosts["web-07"]
    assert len(made) == 1


async def test_tiles_whose_probe_is_old_say_its_age_and_are_repainted_as_it_grows(
    tmp_path: Path,
) -> None:
    """A host not watched is probed only now and then (each host every minute or so, every
    twenty on a 5,000-host fleet): its tile said "✓ 11ms" all that while, a host that went
    down as well, as if probed a moment ago. Past ``old_after`` the tile says how long ago
    its probe was, and the tiles in view that say an age are repainted as it grows (no event
    comes), not the others."""
    import time

    script = Script(tmp_path, hosts=12)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        script.discovered()
        await settle(pilot)
        grid = app.fleet_screen.query_one(FleetGrid)
        old, fresh = grid.state.shown[0], grid.state.shown[grid.columns]  # rows 1 and 2
        now = time.time()
        for name in grid.state.shown:  # every tile probed just now ...
            script.engine.emit(ev.HealthSample(host=name, ok=True, latency=0.011, at=now))
        # ... but one, 45 s ago.
        script.engine.emit(ev.HealthSample(host=old, ok=True, latency=0.011, at=now - 45))
        await settle(pilot)

        def tile(name: str) -> str:
            index = grid.state.shown.index(name)
            row, col = divmod(index, grid.columns)
            line = grid.render_line(row * PITCH_Y + 1 - grid.scroll_offset.y).text
            return line[col * PITCH_X : col * PITCH_X + TILE_WIDTH]

        # 45 s old when sent: "40s ago" (or "50s ago" on a machine slow enough to take 5 s)
        assert re.search(r"✓ [45]0s ago", tile(old)) and "11ms" not in tile(old), tile(old)
        assert "✓ 11ms" in tile(fresh)
        lines = painted_lines(grid)
        grid._repaint_ages()
        await settle(pilot)
        assert lines and set(lines) <= set(range(TILE_HEIGHT))  # the old tile's row only
