"""The log pane's filter (``/`` on the logs, as in k9s's log view): the lines holding a
text, those the pane holds and those still to come; the lines are kept whole, so clearing
it shows them all again. The text is the operator's: data, never markup."""

from __future__ import annotations

from pathlib import Path

from test_ui_support import Script, canary_logging, settle, until
from textual.content import Content
from textual.pilot import Pilot

from canarytui.ui.screens.log_filter import LogFilterScreen
from canarytui.ui.widgets.log_pane import LogPane

SIZE = (120, 40)
LINES = [
    "2026-01-01T00:00:01.000Z INFO  shop[web-01] GET /api/cart 200 31ms",
    "2026-01-01T00:00:01.200Z ERROR shop[web-01] POST /api/checkout 500 upstream timeout",
    "2026-01-01T00:00:01.300Z WARN  shop[web-01] connection pool 80% busy [b]pool[/b]",
    "2026-01-01T00:00:01.400Z error shop[web-01] KeyError: 'sku' in cart.render",
]


def pane_lines(pane: LogPane) -> list[str]:
    return [line.split(" │ ", 1)[-1] for line in pane.shown_rows]


def title(pane: LogPane) -> str:
    """The title as the terminal shows it (the property gives it as markup)."""
    return Content.from_markup(str(pane.border_title)).plain


async def filter_opened(pilot: Pilot[int], script: Script) -> LogPane:
    """Deployment #1 of 1.2.0 on its canary web-01, whose four lines are in the pane;
    then L and /: the filter open over the logs. Returns the pane."""
    app = script.app
    pane = await canary_logging(pilot, script, *LINES)
    await pilot.press("L", "slash")
    await until(pilot, lambda: isinstance(app.screen, LogFilterScreen), 5, "the filter")
    return pane


async def test_the_filter_shows_the_lines_holding_the_text_and_clears(tmp_path: Path) -> None:
    """On the canary's logs: L, / and `Error`: only the two error lines (case ignored),
    the title says the filter and the count; a line that comes then is shown only if it
    holds the text, and the pane's own notice of skipped lines whatever it holds. Enter
    keeps the filter (/ again shows it typed); escape there clears it: every line is back,
    in order, with those that came meanwhile."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        pane = await filter_opened(pilot, script)
        await pilot.press(*"Error")
        await settle(pilot)
        assert pane_lines(pane) == [LINES[1], LINES[3]]
        assert title(pane) == "logs · canaries web-01 · /Error: 2 line(s)"

        script.log("web-01", "2026-01-01T00:00:02.000Z INFO  shop[web-01] GET / 200 9ms")
        script.log("web-01", "2026-01-01T00:00:02.100Z ERROR shop[web-01] GET / 500 9ms")
        app.fleet_screen.bridge.flush()
        await settle(pilot)
        pane.add_batch([], dropped=7)
        await settle(pilot)
        assert pane_lines(pane)[2] == "2026-01-01T00:00:02.100Z ERROR shop[web-01] GET / 500 9ms"
        assert pane.shown_rows[-1].startswith("[canarytui] 7 line(s) skipped")
        assert len(pane.shown_rows) == 4

        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, LogFilterScreen), 5, "closed")
        assert pane.filter_text == "Error" and len(pane.shown_rows) == 4
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, LogFilterScreen), 5, "again")
        assert app.screen.query_one("PlainInput").value == "Error"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogFilterScreen), 5, "cleared")
        assert pane.filter_text == ""
        assert len(pane.shown_rows) == 7 and pane_lines(pane)[:4] == LINES
        assert title(pane) == "logs · canaries web-01"


async def test_the_filter_text_is_data(tmp_path: Path) -> None:
    """A filter that looks like markup matches it as text, and the title shows it as
    typed; a pasted escape sequence is shown as a visible placeholder, never sent."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        pane = await filter_opened(pilot, script)
        await pilot.press(*"[b]pool")
        await settle(pilot)
        assert pane_lines(pane) == [LINES[2]]
        assert title(pane) == "logs · canaries web-01 · /[b]pool: 1 line(s)"
        field = app.screen.query_one("PlainInput")
        field.value = ""  # type: ignore[attr-defined]
        field.insert_text_at_cursor("\x1b[31mred")  # type: ignore[attr-defined]
        await settle(pilot)
        assert pane.filter_text == "␛red" and pane.shown_rows == [] and pane.lines == []
        assert "\x1b" not in title(pane)


async def test_the_palette_offers_the_logs_filter(tmp_path: Path) -> None:
    """ctrl+p: "Filter logs" opens the filter on the pane; "Logs full screen" is L."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.fleet_screen.is_mounted, 10, "screen mounted")
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        await commands["Logs full screen"].callback()  # (the palette awaits it too)
        await settle(pilot)
        pane = app.fleet_screen.query_one(LogPane)
        assert app.fleet_screen.maximized is pane
        commands["Filter logs"].callback()
        await until(pilot, lambda: isinstance(app.screen, LogFilterScreen), 5, "the filter")
        await pilot.press("x", "enter")
        await until(pilot, lambda: not isinstance(app.screen, LogFilterScreen), 5, "closed")
        assert pane.filter_text == "x"


async def test_escape_on_filtered_logs_clears_the_filter_first(tmp_path: Path) -> None:
    """L, /, a text, enter: escape on the full-screen logs left them with the filter kept
    (the docked pane went on hiding lines); it clears the filter first, as a pager's does,
    then leaves. On the docked pane, focused, the same; the grid's filter is not touched."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE) as pilot:
        pane = await filter_opened(pilot, script)
        screen = app.fleet_screen
        await pilot.press(*"Error", "enter")
        await until(pilot, lambda: not isinstance(app.screen, LogFilterScreen), 5, "closed")
        assert screen.maximized is pane and pane.filter_text == "Error"
        await pilot.press("escape")
        await until(pilot, lambda: pane.filter_text == "", 5, "cleared")
        assert screen.maximized is pane and len(pane.shown_rows) == 4
        await pilot.press("escape")
        await until(pilot, lambda: screen.maximized is None, 5, "back on the grid")

        pane.set_filter("cart")
        pane.focus()
        await settle(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: pane.filter_text == "", 5, "cleared on the docked pane")
