"""The log pane's filter: a line at the bottom of the screen; the pane above shows the
lines holding what is typed as it is typed. Enter keeps the filter, escape clears it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input

from canarytui.ui.widgets.plain_input import PlainInput

if TYPE_CHECKING:
    from canarytui.ui.widgets.log_pane import LogPane

PLACEHOLDER = (
    "enter keeps, escape clears  ·  filter the log lines by the text they hold (case ignored)"
)


class LogFilterScreen(ModalScreen[None]):
    """Over the screen it filters, which stays in view (no dimming)."""

    DEFAULT_CSS = """
    LogFilterScreen {
        background: transparent;
    }
    LogFilterScreen > PlainInput {
        dock: bottom;
        border: tall $accent !important;
    }
    """

    BINDINGS = [Binding("escape", "clear", "Clear the filter")]

    def __init__(self, pane: LogPane) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield PlainInput(value=self.pane.filter_text, placeholder=PLACEHOLDER)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self.pane.set_filter(event.value)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.dismiss()

    def action_clear(self) -> None:
        self.pane.set_filter("")
        self.dismiss()
