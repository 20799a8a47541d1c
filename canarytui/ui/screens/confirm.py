"""A yes/no question: ``y`` or ``enter`` accepts, ``n`` or ``escape`` refuses."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from canarytui.textsafe import harmless, harmless_block

MESSAGE_LINES = 20


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (confirmed) or False. The title and message often carry a
    version or host names: they are shown as they are (sanitised, no markup)."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > #dialog {
        width: 70;
        max-width: 90%;
        height: auto;
        border: thick $primary;
        background: $panel;
        padding: 1 2;
    }
    ConfirmScreen #title { text-style: bold; margin-bottom: 1; }
    ConfirmScreen #message { margin-bottom: 1; }
    ConfirmScreen #buttons { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 2; min-width: 14; }
    ConfirmScreen.-danger > #dialog { border: thick $error; }
    """

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(
        self, title: str, message: str, *, yes: str = "Yes", no: str = "No", danger: bool = False
    ) -> None:
        super().__init__(classes="-danger" if danger else None)
        self.title_text = harmless(title)
        self.message = harmless_block(message, max_lines=MESSAGE_LINES)
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="title", markup=False)
            yield Static(self.message, id="message", markup=False)
            with Horizontal(id="buttons"):
                # Not focusable: enter must mean "yes" whatever had focus.
                yes = Button(f"{self.yes} (y)", id="yes", variant="primary")
                no = Button(f"{self.no} (n)", id="no")
                yes.can_focus = False
                no.can_focus = False
                yield yes
                yield no

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")
