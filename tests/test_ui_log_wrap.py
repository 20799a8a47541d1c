"""The log pane wraps long lines to its width: docked beside the grid, half a terminal
wide, it showed each line's host and timestamp and never its message. A line's next rows
keep the host column; ``w`` on the logs cuts them instead (and back)."""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len
from test_ui_support import Script, canary_logging, settle, until
from textual.content import Content

from canarytui.ui.widgets.log_pane import LogPane

STAMP = "2026-12-07T00:15:02.754Z ERROR shop[web-01] "
MESSAGE = "POST /api/checkout 500 upstream timeout (payments) after 3000ms req=66a3caac"
WIDE = "注文の処理に失敗しました: 在庫サービスが応答しません (タイムアウト) req=77b4dbbd"


def rows(pane: LogPane) -> list[str]:
    return [str(line) for line in pane.lines]


def joined(parts: list[str]) -> str:
    """A wrapped line's rows put back together (the host column taken off each)."""
    return "".join(part.split(" │ ", 1)[1] for part in parts)


async def test_long_lines_wrap_to_the_pane_keeping_the_host_column(tmp_path: Path) -> None:
    """At 100x30 the docked pane is ~50 columns: a line of ~120 is on three rows or more, none
    wider than the pane (its scrollbar's column left free), the next ones indented past
    the host column, words whole, and nothing of the line lost. A line of wide characters
    (two cells each) and one with an escape sequence wrap by their cells, harmless."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(100, 30)) as pilot:
        pane = await canary_logging(
            pilot, script, STAMP + MESSAGE, STAMP + WIDE, STAMP + "\x1b[31mred\x1b[0m " * 12
        )
        width = pane.size.width - 1
        shown = rows(pane)
        assert 40 < width < 60 and len(shown) >= 8
        assert all(cell_len(row) <= width for row in shown), shown
        starts = [i for i, row in enumerate(shown) if row.startswith("web-01 │ ")]
        assert len(starts) == 3 and starts[0] == 0
        first, second, third = (
            shown[a:b] for a, b in zip(starts, [*starts[1:], len(shown)], strict=True)
        )
        assert len(first) >= 3 and all(r.startswith("       │ ") for r in first[1:])
        assert joined(first) == STAMP + MESSAGE
        for row in first:  # cut after a space, never inside a word
            assert row.endswith(" ") or row == first[-1]
        assert joined(second) == STAMP + WIDE
        assert "\x1b" not in joined(third) and joined(third).count("␛red␛") == 12


async def test_w_cuts_or_wraps_and_a_resize_wraps_again(tmp_path: Path) -> None:
    """w on the logs: a row a line, cut at the pane's edge (said in a notice); w again:
    wrapped; the palette's "Wrap or cut log lines" the same. A wider terminal wraps them
    again to the new width (fewer rows); a filter counts lines, not rows."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=(100, 30)) as pilot:
        lines = [f"{STAMP}{MESSAGE} #{i}" for i in range(5)]
        pane = await canary_logging(pilot, script, *lines)
        narrow = rows(pane)
        assert len(narrow) >= 15 and pane.wrap

        pane.focus()
        await pilot.press("w")
        await settle(pilot)
        assert not pane.wrap and rows(pane) == [f"web-01 │ {line}" for line in lines]
        assert any("long lines cut" in str(n.message) for n in app._notifications)
        await pilot.press("w")
        await settle(pilot)
        assert pane.wrap and rows(pane) == narrow
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Wrap or cut log lines"].callback()  # the palette's, the same
        await settle(pilot)
        assert not pane.wrap and len(rows(pane)) == 5
        await pilot.press("w")
        await settle(pilot)

        await pilot.resize_terminal(160, 30)

        def wrapped_again() -> bool:  # to the final width (the layout may pass by another)
            shown = rows(pane)
            return len(shown) < len(narrow) and all(cell_len(r) < pane.size.width for r in shown)

        await until(pilot, wrapped_again, 5, lambda: f"{pane.size}: {rows(pane)}")
        await settle(pilot)
        assert wrapped_again()
        assert joined(rows(pane)[:2]) == lines[0]

        await pilot.press("slash", *"#3")
        await settle(pilot)
        title = Content.from_markup(str(pane.border_title)).plain
        assert title.endswith("/#3: 1 line(s)") and len(rows(pane)) == 2
        await pilot.press("escape")
        await settle(pilot)
        assert pane.filter_text == "" and len(pane.shown_rows) == 5


async def test_a_pane_scrolled_up_says_it_is_paused_and_how_many_lines_came(
    tmp_path: Path,
) -> None:
    """Scrolled up to read, the pane stops following (as before) and now says so under it,
    with the lines come since; end (or scrolling down to the newest) follows again and the
    sign goes. Following, it never shows."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(100, 30)) as pilot:
        pane = await canary_logging(pilot, script, *(f"line {i}" for i in range(40)))
        assert pane.border_subtitle == "" and pane.unseen == 0

        def subtitle() -> str:
            return Content.from_markup(str(pane.border_subtitle)).plain

        pane.focus()
        await pilot.press("home")
        await settle(pilot)
        for i in range(3):
            script.log("web-01", f"new {i}")
        await until(pilot, lambda: pane.unseen == 3, 5, subtitle)
        assert subtitle() == "paused · 3 new line(s) below · end: follow"
        assert pane.scroll_offset.y == 0  # still where the operator reads

        await pilot.press("end")
        await until(pilot, lambda: pane.unseen == 0, 5, subtitle)
        assert subtitle() == ""
        script.log("web-01", "followed")
        await until(pilot, lambda: "followed" in rows(pane)[-1], 5, lambda: str(rows(pane)[-3:]))
        await settle(pilot)
        assert pane.unseen == 0 and subtitle() == ""
        assert pane.scroll_offset.y >= pane.max_scroll_y - 1
