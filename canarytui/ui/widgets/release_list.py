"""The deploy dialog's list of releases: newest first, each version with its marks."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from canarytui.engine.releases import ROLLED_BACK, ROLLED_BACK_BEFORE, STABLE, Release
from canarytui.textsafe import harmless

MAX_SHOWN_CHARS = 48  # a version's column at most; longer ones are cut on screen only
_MARK_STYLE = {
    STABLE: "bold",
    ROLLED_BACK: "bold italic",
    ROLLED_BACK_BEFORE: "italic",
}


class ReleaseList(OptionList, can_focus=False):
    """Never focused: the dialog's input keeps the keys (typing filters) and moves the
    highlight here with the arrows; a click picks an entry (``OptionSelected``)."""

    DEFAULT_CSS = """
    ReleaseList {
        height: auto;
        max-height: 10;
        min-width: 16;  /* Its options are wrapped to its width: at 0 cells they cannot be. */
        border: round $primary 50%;
        padding: 0 1;
        background: $panel;
    }
    ReleaseList.-empty { display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: list[str] = []

    def show(self, releases: Sequence[Release], highlight: str | None) -> None:
        """List ``releases`` (already in order); highlight ``highlight`` if it is one."""
        self.shown = [r.version for r in releases]
        width = min(MAX_SHOWN_CHARS, max((len(v) for v in self.shown), default=0))
        self.set_options(Option(_prompt(r, width)) for r in releases)
        self.set_class(not releases, "-empty")
        self.highlighted = self.shown.index(highlight) if highlight in self.shown else None

    @property
    def highlighted_version(self) -> str | None:
        index = self.highlighted
        return self.shown[index] if index is not None and index < len(self.shown) else None

    def move(self, step: int) -> None:
        if step < 0:
            self.action_cursor_up()
        else:
            self.action_cursor_down()


def _prompt(release: Release, width: int) -> Text:
    version = harmless(release.version, width)
    text = Text(version.ljust(width))
    for mark in release.marks:
        text.append("  ")
        text.append(mark, style=_MARK_STYLE.get(mark, "italic"))
    return text
