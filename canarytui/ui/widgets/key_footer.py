"""The footer of keys, built again only when the keys it shows change.

Textual's ``Footer`` rebuilds all its key widgets (each styled and laid out anew) every
time the screen says its bindings were updated: three times, with the same keys, while the
first screen is drawn, and twice on every focus move. Here the keys, their descriptions and
whether each is enabled are compared first; the same keys, no rebuild.
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    """A ``Footer`` that is rebuilt only when what it shows differs."""

    # Compact, the palette's key keeps every key's one-cell margin on its right, and the
    # keys scrolled under it showed through there ("^p palettea" at 80 columns): a cell of
    # its own padding instead.
    DEFAULT_CSS = """
    KeyFooter.-compact FooterKey.-command-palette { margin-right: 0; padding-right: 1; }
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._shown: Hashable | None = None  # the keys of the last rebuild asked for

    def bindings_changed(self, screen: Screen[object]) -> None:
        shown = _keys_shown(screen)
        will_rebuild = screen.app.app_focus and self.is_attached and screen is self.screen
        if will_rebuild and shown == self._shown:
            return
        if will_rebuild:
            self._shown = shown
        super().bindings_changed(screen)


def _keys_shown(screen: Screen[object]) -> Hashable:
    """Everything of the screen's bindings a footer draws, as one comparable value: the
    bindings it shows and the command palette's (a focus move that only brings hidden
    bindings, as a text input's, changes nothing drawn)."""
    app = screen.app
    return tuple(
        (
            key,
            binding.key,
            binding.action,
            binding.description,
            binding.group,
            app.get_key_display(binding),
            enabled,
            tooltip,
        )
        for key, (_node, binding, enabled, tooltip) in screen.active_bindings.items()
        if binding.show or key == app.COMMAND_PALETTE_BINDING
    )
