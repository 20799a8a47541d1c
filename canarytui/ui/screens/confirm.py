"""Questions: yes/no (``y`` or ``enter`` accepts, ``n`` or ``escape`` refuses), or a few answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from canarytui.textsafe import harmless, harmless_block

MESSAGE_LINES = 20
RESTATE_EVERY = 0.5  # seconds between two looks at what a question asks about

AnswerT = TypeVar("AnswerT")


class Question(ModalScreen[AnswerT], Generic[AnswerT]):
    """A title, a message and a button per answer, each with its key. The title and
    message often carry a version or host names: they are shown as they are (sanitised,
    no markup)."""

    DEFAULT_CSS = """
    Question {
        align: center middle;
    }
    Question > #dialog {
        width: 70;
        max-width: 90%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $panel;
        padding: 1 2;
    }
    Question #title { text-style: bold; margin-bottom: 1; }
    Question #message-box { height: auto; margin-bottom: 1; }
    Question #buttons { height: auto; align-horizontal: right; }
    Question Button { margin-left: 2; min-width: 14; }
    Question.-danger > #dialog { border: thick $error; }
    """

    def __init__(
        self,
        title: str,
        message: str,
        answers: list[tuple[str, str, AnswerT]],
        danger: bool = False,
    ) -> None:
        """``answers``: (key, label, value) each, the first the primary one."""
        super().__init__(classes="-danger" if danger else None)
        self.title_text = harmless(title)
        self.message = harmless_block(message, max_lines=MESSAGE_LINES)
        self.answers = answers

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="title", markup=False)
            # Scrolls in the rows the title and the answers leave (a small terminal).
            with VerticalScroll(id="message-box"):
                yield Static(self.message, id="message", markup=False)
            with Horizontal(id="buttons"):
                for index, (key, label, _) in enumerate(self.answers):
                    button = Button(
                        f"{label} ({key})",
                        id=f"answer-{index}",
                        variant="primary" if index == 0 else "default",
                    )
                    # Not focusable: enter must mean the first answer whatever had focus.
                    button.can_focus = False
                    yield button

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The message scrolls in the rows the dialog has left once its title and answers
        are in view: at 60x16 a deploy question pushed its answers off screen."""
        dialog, box = self.query_one("#dialog"), self.query_one("#message-box")
        others = dialog.styles.gutter.height + box.styles.margin.height
        for part in ("#title", "#buttons"):
            widget = self.query_one(part)
            others += widget.outer_size.height + widget.styles.margin.height
        rows = max(2, int(self.size.height * 0.9) - others)  # the dialog's max-height
        if box.styles.max_height is None or box.styles.max_height.value != rows:
            box.styles.max_height = rows

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        index = int((event.button.id or "answer-0").removeprefix("answer-"))
        self.dismiss(self.answers[index][2])


class ConfirmScreen(Question[bool]):
    """Dismisses with True (confirmed) or False."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(
        self,
        title: str,
        message: str,
        *,
        yes: str = "Yes",
        no: str = "No",
        danger: bool = False,
        restate: Callable[[], str] | None = None,
    ) -> None:
        """``restate``: the message as things are now, asked again while the question is
        up (what it asks about moves on: a quit's deployment that ends meanwhile)."""
        super().__init__(title, message, [("y", yes, True), ("n", no, False)], danger)
        self._restate = restate

    def on_mount(self) -> None:
        if self._restate is not None:
            self.set_interval(RESTATE_EVERY, self._restated)

    def _restated(self) -> None:
        assert self._restate is not None
        message = harmless_block(self._restate(), max_lines=MESSAGE_LINES)
        if message != self.message:
            self.message = message
            self.query_one("#message", Static).update(message)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChoiceScreen(Question[str]):
    """Dismisses with the value of the answer chosen by its key (``enter``: the first,
    unless ``by_enter`` is False: then each answer needs its own key), or "" (``escape``:
    none)."""

    def __init__(
        self, title: str, message: str, answers: list[tuple[str, str, str]], by_enter: bool = True
    ) -> None:
        super().__init__(title, message, answers)
        self.by_enter = by_enter

    def on_key(self, event: events.Key) -> None:
        chosen = {key: value for key, _, value in self.answers}
        if event.key == "enter" and self.by_enter:
            chosen["enter"] = self.answers[0][2]
        if event.key == "escape" or event.key in chosen:
            event.stop()
            self.dismiss(chosen.get(event.key, ""))
