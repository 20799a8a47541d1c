"""Host and operator text on screen: made harmless by textsafe, never read as markup.

Textual parses markup where a ``str`` is given: ``notify()`` by default, a ``str``
``border_title``, a ``Static``'s string, a ``DataTable``'s string cell, the palette's
prompts. ``[/]`` there raises while drawing (the app closes), ``[@click=app.quit]x[/]``
becomes a live action. The helpers below hand Textual ``Content``/``Text`` objects of
sanitised text instead; notifications go through ``CanaryApp.notify`` with
``markup=False`` (a test checks every call).
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from canarytui.textsafe import harmless, harmless_block

TITLE_LIMIT = 200  # characters of a border title
CELL_LIMIT = 200  # characters of a table cell
NOTE_LIMIT = 500  # characters of a notification's line
NOTE_LINES = 12  # lines of a notification


def plain_title(text: str) -> Content:
    """A border title or subtitle showing ``text`` as it is."""
    return Content(harmless(text, TITLE_LIMIT))


def plain_cell(value: object) -> Text:
    """A ``DataTable`` cell showing ``value`` as it is (a ``str`` cell is markup)."""
    return Text(harmless(str(value), CELL_LIMIT), no_wrap=True, end="")


def note_text(message: str) -> str:
    """A notification's message: sanitised lines, bounded."""
    return harmless_block(message, NOTE_LIMIT, NOTE_LINES)


def note_title(title: str) -> str:
    return harmless(title, TITLE_LIMIT)
