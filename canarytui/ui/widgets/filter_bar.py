"""The filter box docked under the fleet: hidden until shown, it reports what is typed.

What the text selects is the screen's business: the bar posts ``FilterBar.Edited`` on
every change and ``FilterBar.Done`` on enter (hiding itself first if left empty). The text
is the operator's: pasted escapes are made harmless (``PlainInput``), and wherever the
screen shows it (the grid's title) it is shown as typed, never read as markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.message import Message
from textual.widgets import Input

from canarytui.ui.widgets.plain_input import PlainInput

# The keys first: a narrow terminal cuts the end (80 columns showed no "escape").
PLACEHOLDER = (
    "enter keeps, escape clears  ·  filter by name, role, label (zone=eu-1), state (failed, "
    "deploying, ...), canary, version=1.2"
)


class FilterBar(PlainInput):
    """An ``Input`` with ``show()``, ``hide()`` and (inherited) ``clear()``."""

    # The border is !important: one accent border whatever Input's own :focus and
    # .-invalid rules say.
    DEFAULT_CSS = """
    FilterBar {
        dock: bottom;
        display: none;
        border: tall $accent !important;
        &.-shown { display: block; }
    }
    """

    @dataclass
    class Edited(Message):
        """The filter text changed (typed, or set)."""

        filter_bar: FilterBar
        text: str

        @property
        def control(self) -> FilterBar:
            return self.filter_bar

    @dataclass
    class Done(Message):
        """Enter: the operator is done typing; the text stays in force."""

        filter_bar: FilterBar

        @property
        def control(self) -> FilterBar:
            return self.filter_bar

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder=PLACEHOLDER, id=id)

    @property
    def shown(self) -> bool:
        return self.has_class("-shown")

    def show(self) -> None:
        """Show the bar and type into it."""
        self.add_class("-shown")
        self.focus()

    def hide(self) -> None:
        self.remove_class("-shown")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Edited(self, event.value))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.hide()
        self.post_message(self.Done(self))
