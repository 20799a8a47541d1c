"""Compact tiles: one line a host (name, version, health mark, canary mark), no gap.

The grid chooses them when fewer than ``AUTO_COMPACT`` full tiles would be in view of a
larger fleet (an 80x24 terminal showed 3 hosts of 24, now 11), full ones otherwise, until
the operator picks with ``z`` (or the palette), a choice the grid then keeps. The cursor,
the mouse and the host text on them work as on full tiles.
"""

from __future__ import annotations

from pathlib import Path

from test_ui_hostile import HOSTILE, assert_shown_as_data, started
from test_ui_support import Script, settle

from canarytui import events as ev
from canarytui.ui.widgets.fleet_grid import PITCH_Y, FleetGrid
from canarytui.ui.widgets.host_panel import HostPanel


def grid_lines(grid: FleetGrid) -> list[str]:
    """The grid's lines in view, as text."""
    return [grid.render_line(y).text for y in range(grid.scrollable_content_region.height)]


async def test_a_short_terminal_shows_a_line_a_host_a_tall_one_full_tiles(
    tmp_path: Path,
) -> None:
    script = Script(tmp_path, hosts=24)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await started(pilot, script)
        script.discovered()
        script.canary_passed("1.1.0", ["web-01"])
        await settle(pilot)
        grid = script.app.fleet_screen.grid
        assert grid.compact
        lines = grid_lines(grid)
        assert len(lines) >= 10  # full tiles: 2 whole hosts and a name
        for i, line in enumerate(lines):
            name = f"web-{i + 1:02d}"
            marks = "✓◆" if i == 0 else "✓"  # the health mark, the canary's
            assert line[1:].split() == [name, "1.1.0" if i == 0 else "1.0.0", marks], line
        await pilot.resize_terminal(160, 50)
        await settle(pilot)
        assert not grid.compact  # 6 columns of 11 rows: every host in full
        first = grid_lines(grid)[:PITCH_Y]
        assert first[0].split()[:3] == ["▌web-01", "◆", "canary"]
        assert first[1].split()[0] == "▌1.1.0" and first[2].split()[0] == "▌deployed"


async def test_z_picks_the_tiles_and_the_choice_holds(tmp_path: Path) -> None:
    script = Script(tmp_path, hosts=24)
    async with script.app.run_test(size=(160, 50)) as pilot:
        await started(pilot, script)
        grid = script.app.fleet_screen.grid
        assert not grid.compact
        await pilot.press("z")
        await settle(pilot)
        assert grid.compact and grid.virtual_size.height == 24 // grid.columns
        for size in ((80, 24), (160, 50)):
            await pilot.resize_terminal(*size)
            await settle(pilot)
            assert grid.compact, size
        await pilot.press("z")
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert not grid.compact  # full tiles, as asked, in a short terminal


async def test_the_cursor_keys_and_the_mouse_on_compact_tiles(tmp_path: Path) -> None:
    script = Script(tmp_path, hosts=24)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await started(pilot, script)
        grid = script.app.fleet_screen.grid
        panel = script.app.fleet_screen.query_one(HostPanel)
        assert grid.compact and grid.columns == 1
        await pilot.click(FleetGrid, offset=(4, 1 + 4))  # the border, then the fifth line
        await settle(pilot)
        assert grid.cursor_host == "web-05" == panel.host
        await pilot.press("down", "down")
        assert grid.cursor_host == "web-07"
        await pilot.press("end")
        await settle(pilot)
        assert grid.cursor_host == "web-24"
        lines = grid_lines(grid)
        assert lines[-1].startswith("▌web-24")  # scrolled a line at a time to it
        await pilot.press("pageup")
        assert grid.cursor_host == f"web-{24 - len(lines):02d}"


async def test_host_text_on_compact_tiles_is_data(tmp_path: Path) -> None:
    script = Script(tmp_path, hosts=24)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await started(pilot, script)
        script.discovered(version=f"1.0.0{HOSTILE}")
        script.health("web-01", ok=False, detail=HOSTILE)  # the panel's note: ESC shown
        script.engine.emit(ev.HostUpdate(host="web-02", state=ev.HostState.IDLE, version="é" * 40))
        await settle(pilot)
        grid = script.app.fleet_screen.grid
        assert grid.compact
        assert_shown_as_data(script.app, "1.0.0[/]")
        lines = grid_lines(grid)
        assert "é" * 8 + "…" in lines[1]
        assert {len(line) for line in lines} == {grid.scrollable_content_region.width}


async def test_a_compact_tile_says_a_state_not_at_rest_in_words(tmp_path: Path) -> None:
    """Idle, deployed or pending (in a wave to come), the version; any other state in
    words (the colour alone would leave a terminal without colours no way to tell a
    failed host from a deployed one)."""
    script = Script(tmp_path, hosts=24)
    async with script.app.run_test(size=(80, 24)) as pilot:
        await started(pilot, script)
        script.discovered()
        script.start("1.1.0", ["web-01"])
        script.phase(ev.Phase.CANARY)
        script.host("web-01", ev.HostState.DEPLOYED, version="1.1.0")
        script.host("web-02", ev.HostState.FAILED)
        script.host("web-03", ev.HostState.DEPLOYING)
        script.host("web-04", ev.HostState.UNREACHABLE)
        script.host("web-05", ev.HostState.ROLLED_BACK)
        await settle(pilot)
        grid = script.app.fleet_screen.grid
        assert grid.compact
        said = [line[1:].split()[1:-1] for line in grid_lines(grid)[:6]]
        assert said == [
            ["1.1.0"],
            ["failed"],
            ["deploying"],
            ["unreachable"],
            ["↩", "1.0.0"],  # rolled back: the version it went back to, marked
            ["1.0.0"],
        ], said
