"""An ``Input`` whose typed or pasted text is made harmless before it is kept."""

from __future__ import annotations

from textual.widgets import Input

from canarytui.textsafe import harmless

MAX_TYPED = 1000  # characters one paste may add


class PlainInput(Input):
    """Keys, a terminal paste and the clipboard all arrive through ``replace``: escape and
    control characters there become visible placeholders (``␛``, ``␇``), so the input never
    sends them back to the terminal when it draws its value."""

    def replace(self, text: str, start: int, end: int) -> None:
        super().replace(harmless(text, MAX_TYPED), start, end)
