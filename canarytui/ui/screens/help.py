"""Every key, what it does, and when it is allowed."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str]] = [
    ("← ↓ ↑ →  h j k", "move on the fleet grid (l is logs, so → moves right)"),
    ("click", "focus a host"),
    ("space", "toggle the focused host as canary for the next deployment"),
    ("c", "pick the environment's default canaries"),
    (
        "d",
        "deploy: asks the version, then confirms version and canaries; with the filter on, "
        "o deploys to the hosts it shows only (enter too, with a canary among them), a to "
        "every host",
    ),
    (
        "p",
        "promote the next wave (after a passing canary, or between waves); stopped before "
        "its canary's verdict: analyse it again",
    ),
    ("P", "promote through every remaining wave (one confirmation)"),
    ("s", "hold the rollout after the wave in flight / resume it"),
    ("r", "roll back the open (or last) deployment; stops what is running"),
    ("l", "follow the focused host's logs (again: back to the canaries)"),
    ("L", "the logs over the whole screen (L or esc: back)"),
    ("w on the logs", "long lines wrapped (the default) or cut, ← → scrolling them"),
    ("/ on the logs", "only the log lines holding a text, as typed (L, then /); esc clears"),
    ("enter", "host details"),
    ("a", "analysis: each rule on each canary vs the baseline, and a chart"),
    ("/", "filter hosts: name, role=web, zone=eu-1, state=failed, version=1.2, canary"),
    ("escape", "clear the filter"),
    ("z", "compact tiles (a line a host) or full ones; chosen by the grid's size until then"),
    ("H", "deployment history from the journal; enter there replays one on the grid"),
    ("b in history", "a completed one's version back on every host, in waves (confirmed)"),
    ("replay: space + - . 0", "pause, faster (]), slower ([), next event, restart; esc: back"),
    ("ctrl+p", "command palette: every action and theme"),
    ("?", "this help"),
    ("q", "quit (asks while a deployment runs; it stays open in the journal)"),
]

CONFIRM = "In every confirmation: y or enter = yes, n or escape = no."


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        border-title-style: bold;
        background: $panel;
        padding: 1 2;
    }
    HelpScreen #confirm-note { color: $text-muted; margin-top: 1; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        # Scrolls (arrows, page keys) where the terminal is shorter than the keys (80x24).
        with VerticalScroll() as box:
            box.border_title = "canarytui keys"
            yield Static(table)
            yield Static(CONFIRM, id="confirm-note", markup=False)
            yield Static("escape closes this help", id="close-note", markup=False)

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
