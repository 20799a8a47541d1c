"""Asks which version to deploy; versions the environment refuses are refused here."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from canarytui.config import Environment, VersionError
from canarytui.textsafe import harmless, harmless_block
from canarytui.ui.widgets.plain_input import PlainInput


class VersionScreen(ModalScreen[str | None]):
    """Dismisses with a valid version, or None (escape)."""

    DEFAULT_CSS = """
    VersionScreen {
        align: center middle;
    }
    VersionScreen > #dialog {
        width: 70;
        max-width: 90%;
        height: auto;
        border: thick $primary;
        background: $panel;
        padding: 1 2;
    }
    VersionScreen #title { text-style: bold; margin-bottom: 1; }
    VersionScreen #hint { color: $text-muted; margin-top: 1; }
    VersionScreen #error { color: $error; height: auto; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, env: Environment, canaries: list[str], hint: str = "") -> None:
        super().__init__()
        self.env = env
        self.canaries = canaries
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                harmless(f"Deploy to {self.env.name} / {self.env.app}"), id="title", markup=False
            )
            yield Static(harmless(f"canaries: {', '.join(self.canaries)}"), markup=False)
            yield PlainInput(placeholder="version, e.g. 1.1.0", id="version")
            yield Static("", id="error", markup=False)
            yield Static(
                harmless_block(self.hint) or "enter: continue   escape: cancel",
                id="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        version = event.value.strip()
        error = self.query_one("#error", Static)
        if not version:
            error.update("type a version first")
            return
        try:
            self.env.validate_version(version)
        except VersionError as exc:  # it echoes what was typed
            error.update(harmless_block(str(exc), max_lines=5))
            return
        self.dismiss(version)

    def action_cancel(self) -> None:
        self.dismiss(None)
