"""Guided failure (``on_failure: ask``): what failed in the wave, and the operator's choice."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from canarytui import events as ev
from canarytui.textsafe import harmless, harmless_block, listed

OUTPUT_LINES = 8  # of each failed host's output
FAILURES_ROWS = 20  # the failures' rows at most; fewer where the terminal is short
CHOICES = ("retry", "skip", "rollback", "halt")


def describe(failure: ev.HostFailure) -> str:
    """One host: the step, how it ended, the end of its output (sanitised later)."""
    if failure.step:
        ended = "did not finish" if failure.exit_status is None else f"exited {failure.exit_status}"
        head = f"{failure.host}: step {failure.step} {ended}"
    elif failure.detail.startswith(f"{failure.host} ("):  # a host's error names it already
        head = failure.detail
    else:
        head = f"{failure.host}: {failure.detail or 'failed'}"
    tail = failure.output_lines(OUTPUT_LINES)
    if not tail and failure.step and not failure.output.strip():  # a step that said nothing
        tail = failure.detail.strip().splitlines()[-OUTPUT_LINES:]
    return "\n".join([head, *(f"  | {line}" for line in tail)])


class FailureScreen(ModalScreen[str]):
    """Dismisses with ``retry``, ``skip``, ``rollback`` or ``halt`` (escape: halt)."""

    DEFAULT_CSS = """
    FailureScreen { align: center middle; }
    FailureScreen > #dialog {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $error;
        background: $panel;
        padding: 1 2;
    }
    FailureScreen #title { text-style: bold; margin-bottom: 1; }
    /* max-height: FAILURES_ROWS, lowered by _fit in a short terminal */
    FailureScreen #failures { height: auto; max-height: 20; margin-bottom: 1; }
    FailureScreen #note { color: $text-muted; margin-bottom: 1; }
    FailureScreen #buttons { height: auto; align-horizontal: right; }
    FailureScreen Button { margin-left: 1; min-width: 14; }
    """

    BINDINGS = [
        Binding("r", "answer('retry')", "Retry"),
        Binding("s", "answer('skip')", "Skip"),
        Binding("b", "answer('rollback')", "Roll back"),
        Binding("h,escape", "answer('halt')", "Halt"),
    ]

    def __init__(self, question: ev.FailureQuestion, version: str, undo: bool = True) -> None:
        super().__init__()
        self.question = question
        self.version = version
        self.can_skip = question.skippable >= len(question.failures)
        # A rollback --to's: rolling it back would put back the release it escaped.
        self.can_undo = undo

    def compose(self) -> ComposeResult:
        q = self.question
        hosts = listed([f.host for f in q.failures], 6)
        with Vertical(id="dialog"):
            yield Static(
                harmless(f"{hosts} failed in wave {q.wave}/{q.waves} of {self.version}"),
                id="title",
                markup=False,
            )
            with VerticalScroll(id="failures"):
                for failure in q.failures:
                    yield Static(harmless_block(describe(failure), max_lines=12), markup=False)
            note = (
                f"skip leaves them as they are and goes on without them (up to "
                f"{q.skippable} may be skipped within max_failures)"
                if self.can_skip
                else f"skipping them would exceed max_failures ({q.skippable} may be skipped)"
            )
            if q.waiting:
                note += (
                    f"\nthe wave stopped there: {q.waiting} of its hosts were not started; "
                    "retry or skip goes on with them, roll back leaves them as they are"
                )
            yield Static(note, id="note", markup=False)
            with Horizontal(id="buttons"):
                for choice, label, variant in (
                    ("retry", "Retry (r)", "primary"),
                    ("skip", "Skip (s)", "default"),
                    ("rollback", "Roll back (b)", "error"),
                    ("halt", "Halt (h)", "default"),
                ):
                    button = Button(label, id=choice, variant=variant)  # type: ignore[arg-type]
                    button.can_focus = False
                    button.disabled = (choice == "skip" and not self.can_skip) or (
                        choice == "rollback" and not self.can_undo
                    )
                    yield button

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The failures scroll in the rows the dialog has left once its title, note and
        choices are in view: at 80x24 three hosts' output pushed the choices off screen."""
        dialog = self.query_one("#dialog")
        failures = self.query_one("#failures")
        others = dialog.styles.gutter.height + failures.styles.margin.height
        for part in ("#title", "#note", "#buttons"):
            widget = self.query_one(part)
            others += widget.outer_size.height + widget.styles.margin.height
        room = int(self.size.height * 0.9) - others  # the dialog's max-height
        rows = max(3, min(FAILURES_ROWS, room))
        if failures.styles.max_height is None or failures.styles.max_height.value != rows:
            failures.styles.max_height = rows

    def action_answer(self, choice: str) -> None:
        if choice == "rollback" and not self.can_undo:
            self.notify(
                f"{self.version} is being put back (rollback --to): rolling it back would put "
                "back the release it escaped; retry, skip or halt",
                severity="warning",
                markup=False,
            )
            return
        if choice == "skip" and not self.can_skip:
            self.notify(
                "skipping would exceed max_failures: retry, roll back or halt",
                severity="warning",
                markup=False,
            )
            return
        self.dismiss(choice)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id in CHOICES:
            self.action_answer(event.button.id)
