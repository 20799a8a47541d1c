"""Text widgets drawn from the fleet state, repainted only when their text changes.

Every ``Static.update`` re-lays the whole screen out by default, and a border title set
repaints the widget: on a big fleet, at ten repaints a second, that re-rendered every
widget on screen. Here an unchanged text or title is not sent again, and a new text asks
for a layout only when its height may differ from the last one's.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from canarytui.ui.fleet_state import FleetState
from canarytui.ui.safe_text import plain_title


def set_title(widget: Widget, text: str) -> None:
    """``widget.border_title`` showing ``text`` as it is, set only if it changed."""
    title = plain_title(text)
    if widget.border_title != title.markup:
        widget.border_title = title


def _shape(text: Text | str | None, width: int) -> tuple[int, bool] | None:
    """(lines, whether one may wrap at ``width``): equal shapes take equal heights."""
    if text is None:
        return None
    plain = text.plain if isinstance(text, Text) else text
    lines = plain.split("\n")
    if isinstance(text, Text) and text.no_wrap:
        return len(lines), False
    return len(lines), width <= 0 or any(cell_len(line) > width for line in lines)


class PanelText(Static):
    """A ``Static`` told its text with ``put``: sent on only if it changed, with a layout
    only if its height may have changed (a line more or less, or one that wraps). A
    ``fixed`` one has its height from its styles (its lines do not wrap): never a layout."""

    def __init__(self, *, id: str | None = None, fixed: bool = False) -> None:
        super().__init__(id=id)
        self._last_text: Text | str | None = None
        self._fixed = fixed

    def put(self, text: Text | str) -> None:
        last = self._last_text
        if last is not None and type(text) is type(last) and text == last:
            return
        if self._fixed:
            self._last_text = text
            self.update(text, layout=False)
            return
        width = self.content_region.width
        before = _shape(last, width)
        after = _shape(text, width)
        self._last_text = text
        self.update(text, layout=before is None or after != before or after[1])

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._last_text = None


class StateText(PanelText):
    """Subclasses build their text in ``redraw()`` and hand it to ``_put``; a theme change
    (new component styles) forces the next one through."""

    def __init__(self, state: FleetState, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        raise NotImplementedError

    def _put(self, text: Text) -> None:
        self.put(text)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self.redraw()


def key_lines(keys: list[tuple[str, str]], width: int, style: Style) -> Text:
    """``keys`` (key, what it does) after a blank line, on as many lines as ``width``
    needs, each key in ``style``."""
    text = Text("\n")
    used = 0
    for key, what in keys:
        size = len(key) + 2 + len(what)
        if used and used + 2 + size > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("  ")
            used += 2
        text.append(f" {key} ", style)
        text.append(what)
        used += size
    text.append("\n")
    return text
