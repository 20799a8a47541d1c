"""A text widget drawn from the fleet state, repainted only when its text changes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from canarytui.ui.fleet_state import FleetState


class StateText(Static):
    """Subclasses build their text in ``redraw()`` and hand it to ``_put``.

    An update re-lays the screen out, so an unchanged text is not sent again; a theme
    change (new component styles) forces the next one through.
    """

    def __init__(self, state: FleetState, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        self._last_text: Text | None = None

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        raise NotImplementedError

    def _put(self, text: Text) -> None:
        if text != self._last_text:
            self._last_text = text
            self.update(text)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._last_text = None
        if self.is_mounted:
            self.redraw()
