"""The log pane: live log lines of the watched hosts, newest last, bounded memory.

Lines arrive in batches (one ``LogBatch`` message per ~100 ms): one ``write_lines`` per
batch is what keeps up with 5,000 lines/s (``RichLog`` fell behind at 2,000).
``/`` on the pane (focused: ``L``, or tab) filters its lines, those it holds and those to
come, as k9s's log view does: the lines are kept whole, so clearing the filter shows them
all again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Log

from canarytui import events as ev
from canarytui.textsafe import harmless
from canarytui.ui.safe_text import plain_title

MAX_LINES = 2_000
SKIPPED = "[canarytui] "  # the pane's own lines: shown whatever the filter


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

    BINDINGS = [Binding("slash", "filter_lines", "Filter logs")]

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
        super().__init__(max_lines=max_lines, auto_scroll=True, id=id)
        self.shown_lines = 0  # lines written since start (benches read these two)
        self.dropped_lines = 0  # lines shed by the bridge under overload
        self.rows: deque[str] = deque(maxlen=max_lines)  # every line kept, filtered or not
        self.filter_text = ""  # as typed (shown in the title); matched case-blind
        self._source = ""

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
                self.write_lines(shown, scroll_end=False)
                if follow:
                    self.scroll_end(animate=False, x_axis=False)
            if self.filter_text:
                self._retitle()
        return len(rows)

    def set_filter(self, text: str) -> None:
        """Show only the lines holding ``text`` (case-blind; empty: every line)."""
        if text == self.filter_text:
            return
        self.filter_text = text
        self.clear()
        self.write_lines(self._matching(self.rows), scroll_end=False)
        self.scroll_end(animate=False, x_axis=False)
        self._retitle()

    def action_filter_lines(self) -> None:
        from canarytui.ui.screens.log_filter import LogFilterScreen

        self.app.push_screen(LogFilterScreen(self))

    def _matching(self, rows: Iterable[str]) -> list[str]:
        if not self.filter_text:
            return list(rows)
        wanted = self.filter_text.casefold()
        return [r for r in rows if wanted in r.casefold() or r.startswith(SKIPPED)]

    def watch_virtual_size(self, size: Size) -> None:
        # What a layout would do for the pane alone (Widget._size_updated, layout=False).
        if self.is_scrollable:
            self._scroll_update(size)

    def set_source(self, title: str) -> None:
        self._source = title
        self._retitle()

    def _retitle(self) -> None:
        title = f"logs · {self._source}"
        if self.filter_text:
            title += f" · /{self.filter_text}: {self.line_count:,} line(s)"
        self.border_title = plain_title(title)
