"""The log pane: live log lines of the watched hosts, newest last, bounded memory.

Lines arrive in batches (one ``LogBatch`` message per ~100 ms): one ``write_lines`` per
batch is what keeps up with 5,000 lines/s (``RichLog`` fell behind at 2,000).
``/`` on the pane (focused: ``L``, or tab) filters its lines, those it holds and those to
come, as k9s's log view does: the lines are kept whole, so clearing the filter shows them
all again. Long lines are wrapped to the pane's width (``w``: or cut, the arrows of the
full-screen pane scrolling them sideways): a docked pane half a terminal wide showed each
line's host and timestamp, never its message. A line's next rows keep its host column.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.cells import cell_len, chop_cells
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Log

from canarytui import events as ev
from canarytui.textsafe import harmless
from canarytui.ui.safe_text import plain_title

MAX_LINES = 2_000
SKIPPED = "[canarytui] "  # the pane's own lines: shown whatever the filter
ROWS_PER_LINE = 4  # the pane's rows kept per line kept (wrapped lines take several)
HOST_RULE = " │ "  # between a row's host and its line


class LogPane(Log):
    """A ``Log`` fed with sanitised ``host │ line`` rows.

    Each batch makes the pane's scrollable height grow (until ``max_lines``), and the
    height is a layout reactive on every widget: the whole screen was laid out again
    (~15 ms on a 1,000-host grid, then every widget repainted) each time a watched host
    logged, for the first 2,000 lines. The pane's size never depends on its lines, only its
    scrollbar does: the scrollbar is brought up to date here, and the screen laid out only
    when the scrollbar appears or goes (``show_vertical_scrollbar`` asks for it).
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    BINDINGS = [
        Binding("slash", "filter_lines", "Filter logs"),
        Binding("w", "toggle_wrap", "Wrap lines"),
    ]

    DEFAULT_CSS = """
    LogPane {
        height: 12;
        border: round $foreground 25%;
        border-title-color: $text-muted;
        background: $surface;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
        overflow-y: auto;
    }
    LogPane:focus {
        border: round $primary;
    }
    """

    def __init__(self, *, max_lines: int = MAX_LINES, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines * ROWS_PER_LINE, auto_scroll=True, id=id)
        self.wrap = True  # long lines on several rows (``w``: cut)
        self._wrapped_at = 0  # the width the shown rows were wrapped to
        self.shown_lines = 0  # lines written since start (benches read these two)
        self.dropped_lines = 0  # lines shed by the bridge under overload
        self.rows: deque[str] = deque(maxlen=max_lines)  # every line kept, filtered or not
        self.filter_text = ""  # as typed (shown in the title); matched case-blind
        self._source = ""
        self.unseen = 0  # lines come below while the operator reads higher up (paused)

    def add_batch(
        self, lines: Iterable[ev.LogLine], dropped: int = 0, hosts: set[str] | None = None
    ) -> int:
        """Write one batch; lines of hosts no longer followed (``hosts``) are skipped."""
        lines = list(lines)
        width = (
            max((len(line.host) for line in lines), default=0)
            if hosts is None
            else max((len(h) for h in hosts), default=0)
        )
        # One ``harmless`` per row: plain rows (nearly all) cost one isprintable() check.
        rows = [
            harmless(f"{line.host:<{width}} │ {line.line}")
            for line in lines
            if hosts is None or line.host in hosts
        ]
        if dropped:
            self.dropped_lines += dropped
            rows.append(f"{SKIPPED}{dropped} line(s) skipped: logs came faster than shown")
        if rows:
            self.rows.extend(rows)
            self.shown_lines += len(rows)
            shown = self._matching(rows)
            if shown:
                # Follow the newest lines unless the operator scrolled up to read. Scrolling
                # after the refresh, when the new size is known (Log's own auto-scroll can
                # stick at the top if the first batch is taller than the pane).
                follow = self.scroll_offset.y >= self.max_scroll_y - 1
                self.write_lines(self._wrapped(shown), scroll_end=False)
                if follow:
                    self.scroll_end(animate=False, x_axis=False)
                else:
                    self._paused(self.unseen + len(shown))
            if self.filter_text:
                self._retitle()
        return len(rows)

    def set_filter(self, text: str) -> None:
        """Show only the lines holding ``text`` (case-blind; empty: every line)."""
        if text == self.filter_text:
            return
        self.filter_text = text
        self._show_again()
        self._retitle()

    def escape(self) -> bool:
        """Escape on the logs (focused, or over the whole screen) clears their filter first,
        as a pager's does; False when there was none to clear."""
        if not self.filter_text:
            return False
        self.set_filter("")
        self.notify("logs: filter cleared (escape again: back)", timeout=2, markup=False)
        return True

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self._show_again()
        said = "logs: " + ("long lines wrapped" if self.wrap else "long lines cut")
        self.notify(said, timeout=2, markup=False)

    def on_resize(self, event: events.Resize) -> None:
        if self.wrap and self._wrap_width() != self._wrapped_at:
            self._show_again()

    def _show_again(self) -> None:
        """Show the kept lines again (a new filter, width or wrapping), the newest in view."""
        self.clear()
        self.write_lines(self._wrapped(self.shown_rows), scroll_end=False)
        self.scroll_end(animate=False, x_axis=False)
        self._paused(0)

    def _wrap_width(self) -> int:
        # The scrollbar's column left free whether it shows yet or not.
        return self.size.width - 1

    def _wrapped(self, rows: list[str]) -> list[str]:
        """``rows`` as the pane shows them: each wider than the pane on several, the next
        ones indented past the host column."""
        width = self._wrap_width()
        self._wrapped_at = width
        if not self.wrap or width < 12:
            return rows
        out: list[str] = []
        for row in rows:
            if cell_len(row) <= width:
                out.append(row)
                continue
            rule = row.find(HOST_RULE)
            indent = " " * rule + HOST_RULE if 0 < rule <= width // 2 else "  "
            first, rest = _cut(row, width)
            out.append(first)
            while rest:
                part, rest = _cut(rest, width - len(indent))
                out.append(indent + part)
        return out

    def action_filter_lines(self) -> None:
        from canarytui.ui.screens.log_filter import LogFilterScreen

        self.app.push_screen(LogFilterScreen(self))

    @property
    def shown_rows(self) -> list[str]:
        """The kept lines the pane shows (those the filter lets through), each whole."""
        return self._matching(self.rows)

    def _matching(self, rows: Iterable[str]) -> list[str]:
        if not self.filter_text:
            return list(rows)
        wanted = self.filter_text.casefold()
        return [r for r in rows if wanted in r.casefold() or r.startswith(SKIPPED)]

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self.unseen and new_value >= self.max_scroll_y - 1:
            self._paused(0)  # back at the newest lines: following again

    def _paused(self, unseen: int) -> None:
        """Say, under the pane, that it stopped following: how many lines came below."""
        self.unseen = unseen
        said = f"paused · {unseen:,} new line(s) below · end: follow" if unseen else ""
        self.border_subtitle = plain_title(said)

    def watch_virtual_size(self, size: Size) -> None:
        # What a layout would do for the pane alone (Widget._size_updated, layout=False).
        if self.is_scrollable:
            self._scroll_update(size)

    def set_source(self, title: str) -> None:
        if title != self._source and self._source and self.rows:
            # The lines above are another host's: said where the new ones begin (their
            # stream starts with the host's last lines, older than those above).
            row = f"{SKIPPED}── {title} from here ──"
            self.rows.append(row)
            self.write_lines(self._wrapped([row]), scroll_end=False)
            self.scroll_end(animate=False, x_axis=False)
        self._source = title
        self._retitle()

    def _retitle(self) -> None:
        title = f"logs · {self._source}"
        if self.filter_text:
            title += f" · /{self.filter_text}: {len(self.shown_rows):,} line(s)"
        self.border_title = plain_title(title)


def _cut(text: str, width: int) -> tuple[str, str]:
    """The first row of ``text`` at most ``width`` cells wide, and the rest: cut after a
    space in the row's last third if there is one (a word kept whole), else at the width
    (wide characters: at the cell that does not fit)."""
    cells = cell_len(text)
    if cells <= width:
        return text, ""
    if cells == len(text):  # a character a cell, nearly every line
        space = text.rfind(" ", width * 2 // 3, width)
        cut = space + 1 if space > 0 else width
        return text[:cut], text[cut:]
    first = chop_cells(text, max(width, 2))[0] or text[:1]  # never nothing: it would loop
    return first, text[len(first) :]
