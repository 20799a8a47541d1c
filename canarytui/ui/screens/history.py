"""Past deployments from the journal: outcome, canaries, who decided what; enter replays one,
``b`` puts a completed one's version back on every host.

``enter`` closes the screen and asks the app (``HistoryScreen.Replay``) to replay the
chosen deployment on the grid (``ui.screens.replay``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from canarytui import events as ev
from canarytui.journal import DeploymentRecord, Journal
from canarytui.textsafe import harmless, harmless_block, listed
from canarytui.ui.journal_guard import journal_guarded
from canarytui.ui.safe_text import plain_cell, plain_title
from canarytui.ui.widgets.key_footer import KeyFooter

# States of a host a deployment has not changed (waiting, at rest, never reached).
_UNTOUCHED = {
    str(s)
    for s in (
        ev.HostState.PENDING,
        ev.HostState.IDLE,
        ev.HostState.UNREACHABLE,
        ev.HostState.SKIPPED,
    )
}


def when(ts: float | None) -> str:
    """UTC, so the same journal reads the same everywhere."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else "-"


class HistoryScreen(Screen[None]):
    DEFAULT_CSS = """
    HistoryScreen #title {
        dock: top;
        height: 1;
        background: $panel;
        text-style: bold;
        padding: 0 1;
    }
    HistoryScreen DataTable {
        height: auto;
        max-height: 45%;
        min-height: 5;
        border: round $foreground 25%;
    }
    HistoryScreen DataTable:focus { border: round $primary; }
    HistoryScreen #detail {
        height: 1fr;
        border: round $foreground 25%;
        border-title-style: bold;
        padding: 0 1;
    }
    """

    @dataclass
    class Replay(Message):
        """The operator chose a deployment to replay on the grid."""

        deployment: int

    @dataclass
    class Restore(Message):
        """The operator chose a known-good version to put back on every host."""

        version: str

    BINDINGS = [
        Binding("enter", "replay", "Replay on the grid", priority=True),
        Binding("b", "restore", "Back to this version"),
        Binding("escape,H,q", "close", "Back"),
    ]

    def __init__(self, journal: Journal, env_name: str, app_name: str) -> None:
        super().__init__()
        self.journal = journal
        self.env_name = env_name
        self.app_name = app_name
        self.records: list[DeploymentRecord] = []

    def compose(self) -> ComposeResult:
        yield Static(
            harmless(f" history · {self.env_name} / {self.app_name}"), id="title", markup=False
        )
        yield DataTable(cursor_type="row", zebra_stripes=True, id="deployments")
        with VerticalScroll(id="detail"):
            yield Static(id="detail-text")
        yield KeyFooter()

    @journal_guarded
    def on_mount(self) -> None:
        self.records = self.journal.history(self.env_name, self.app_name)
        table = self.query_one(DataTable)
        # How each ended first: a narrow terminal cuts the last columns (it cut the outcome).
        table.add_columns(
            "#", "version", "started (UTC)", "outcome", "phase", "verdict", "by", "canaries"
        )
        for r in self.records:  # a str cell would be read as markup
            table.add_row(
                *map(
                    plain_cell,
                    (
                        r.id,
                        r.version,
                        when(r.started_at),
                        (r.outcome or ("open" if r.is_open else "-"))
                        + r.ended_short(self.journal.hosts),
                        r.phase_label,
                        r.verdict or "-",
                        r.user,
                        r.what_went(3),
                    ),
                ),
                key=str(r.id),
            )
        table.focus()
        if not self.records:
            self.query_one("#detail-text", Static).update(
                "No deployment in the journal yet for this environment."
            )
        else:
            self.show(self.records[0])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        for r in self.records:
            if str(r.id) == key:
                self.show(r)

    @journal_guarded
    def show(self, record: DeploymentRecord) -> None:
        detail = self.query_one("#detail", VerticalScroll)
        detail.border_title = plain_title(f"deployment #{record.id} · {record.version}")
        # What the journal holds came from hosts and operators: each value as it is.
        text = Text()
        text.append("summary   ", "dim")
        text.append(harmless_block(record.summary or "-") + "\n")
        text.append("finished  ", "dim")
        text.append(when(record.finished_at) + "\n")
        text.append("plan      ", "dim")
        text.append(
            harmless(
                (f"canaries {listed(record.canaries, 10)}" if record.canaries else "no canary")
                + "; "
                + "; ".join(f"wave {i}: {len(w)} host(s)" for i, w in enumerate(record.plan, 1))
                + (f"; only {record.scope}" if record.scope is not None else "")
            )
            + "\n\n"
        )
        text.append("decisions\n", "bold")
        for d in self.journal.decisions(record.id):
            text.append(harmless(f" {when(d['at'])}  {d['user']}@{d['machine']}  "), "dim")
            text.append(harmless(f"{d['action']}"), "bold")
            text.append(harmless(f"  {d['detail']}") + "\n")
        text.append("\nhosts\n", "bold")
        for h in self.journal.hosts(record.id).values():
            text.append(harmless(f" {h.host:<14} {h.role:<8} "), "dim")
            # A host the deployment never changed: its version, not "1.0.0 → 1.0.0".
            unchanged = h.current == h.previous and h.state in _UNTOUCHED
            versions = (
                h.current or "?" if unchanged else f"{h.previous or '?'} → {h.current or '?'}"
            )
            text.append(harmless(f"{versions}  {h.state}"))
            if h.last_step:
                text.append(harmless(f"  (last: {h.last_step}, exit {h.exit_status})"), "dim")
            text.append("\n")
        self.query_one("#detail-text", Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """A click on the highlighted row: replay that deployment (``enter`` too)."""
        self._replay(event.row_key.value)

    def action_replay(self) -> None:
        table = self.query_one(DataTable)
        if self.records and table.row_count:
            self._replay(str(self.records[table.cursor_row].id))

    def _replay(self, key: str | None) -> None:
        chosen = next((r for r in self.records if str(r.id) == key), None)
        if chosen is not None:
            self.dismiss(None)
            self.app.post_message(self.Replay(chosen.id))

    @journal_guarded
    def action_restore(self) -> None:
        """``b``: this deployment's version back on every host (``rollback --to``)."""
        table = self.query_one(DataTable)
        if not self.records or not table.row_count:
            return
        chosen = self.records[table.cursor_row]
        if chosen.outcome != "complete":
            self.notify(
                f"#{chosen.id} of {chosen.version} did not complete "
                f"({chosen.outcome or chosen.phase_label}): only a release that reached "
                "every host is a known-good one to go back to",
                severity="warning",
                markup=False,
            )
            return
        if self.journal.open_deployment(self.env_name, self.app_name) is not None:
            # Said here, the history still open (it closed first, then said it).
            self.notify(
                "a deployment is open: roll it back (r) or finish it first",
                severity="warning",
                markup=False,
            )
            return
        self.dismiss(None)
        self.app.post_message(self.Restore(chosen.version))

    def action_close(self) -> None:
        self.dismiss(None)
