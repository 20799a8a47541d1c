"""What a host's tile says, line by line: a full tile (three lines) or a compact one (one).

A full tile: the host's name (and its canary badge); its version and health; its state
(and, while it deploys, its last step). A compact tile, for a short terminal or a large
fleet, keeps on one line the name, the version (idle, deployed or pending; in any other
state, the state in words: deploying, failed, unreachable, locked, ..., so that a terminal
without colours still tells them apart), the health mark, and the canary badge as a mark.
Every text on a tile (a version is what a host printed) goes through ``fit``, which makes
it harmless and fits it in cells, not characters (wide characters).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.color import Color

from canarytui import events as ev
from canarytui.textsafe import harmless
from canarytui.ui.fleet_state import FleetState, TileKind

TILE_WIDTH = 22
CURSOR_MARK = "▌"
CANARY_BADGE = " ◆ canary "
PICKED_BADGE = " ◇ canary "
CANARY_MARK, PICKED_MARK = "◆", "◇"  # a compact tile's badge
FIT_LIMIT = 200  # characters of a tile text kept before fitting it in its cells
# A compact tile shows the host's version in these states, its state in words in any other.
AT_REST = frozenset(
    s.value for s in (ev.HostState.IDLE, ev.HostState.DEPLOYED, ev.HostState.PENDING)
)


class TilePainter:
    """The segments of a tile's lines, in the grid's component styles (``style_of``: a
    component class's rich style), cached until the styles change (``forget``)."""

    def __init__(self, state: FleetState, style_of: Callable[[str], Style]) -> None:
        self.state = state
        self.style_of = style_of
        self._styles: dict[str, tuple[Style, Style]] = {}

    def forget(self) -> None:
        self._styles.clear()

    def line(self, name: str, sub: int, is_cursor: bool) -> list[Segment]:
        """Line ``sub`` (0, 1 or 2) of the full tile of host ``name``."""
        state = self.state
        kind = state.tile_kind(name)
        text_style, dim_style = self._tile_styles(kind)
        mark = self._mark(text_style, is_cursor)
        inner = TILE_WIDTH - 1
        if sub == 0:
            badge = ""
            if state.is_canary(name):
                badge = CANARY_BADGE if state.active else PICKED_BADGE
            title = fit(name, inner - len(badge) - 1)
            name_style = text_style + Style(bold=True, underline=is_cursor)
            segments = [
                mark,
                Segment(title, name_style),
                Segment(" " * (inner - cell_len(title) - len(badge)), text_style),
            ]
            if badge:
                segments.append(Segment(badge, self._badge_style()))
            return segments
        if sub == 1:
            left = state.version_text(name)
            right = health_text(state, name)
        else:
            left = state.state_text(name)
            view = state.hosts[name]
            right = view.last_step if kind == TileKind.DEPLOYING and view.last_step else ""
        right = fit(right, inner // 2)
        left = fit(left, inner - cell_len(right) - 1)
        pad = inner - cell_len(left) - cell_len(right)
        return [
            mark,
            Segment(left, text_style),
            Segment(" " * pad, text_style),
            Segment(right, dim_style),
        ]

    def compact(self, name: str, is_cursor: bool) -> list[Segment]:
        """The one line of host ``name``'s compact tile: name, version (or state), health
        mark, and the canary mark."""
        state = self.state
        text_style, dim_style = self._tile_styles(state.tile_kind(name))
        badge = " "
        if state.is_canary(name):
            badge = CANARY_MARK if state.active else PICKED_MARK
        health = health_text(state, name)[:1]
        inner = TILE_WIDTH - 4  # the cursor mark, a space and the health mark, the badge
        title = fit(name, max(inner // 2, inner - 8))
        words = state.state_text(name)
        at_rest = words in AT_REST
        version = state.version_text(name)
        middle = version if at_rest else words
        if words == ev.HostState.ROLLED_BACK.value:  # the version it went back to, marked
            middle = f"↩ {version}"
        middle = fit(middle, inner - cell_len(title) - 1)
        pad = inner - cell_len(title) - cell_len(middle)
        return [
            self._mark(text_style, is_cursor),
            Segment(title, text_style + Style(bold=True, underline=is_cursor)),
            Segment(" " * pad, text_style),
            Segment(middle, dim_style if at_rest else text_style),
            Segment(" " + health, text_style),
            Segment(badge, self._badge_style() if badge.strip() else text_style),
        ]

    def _mark(self, text_style: Style, is_cursor: bool) -> Segment:
        if not is_cursor:
            return Segment(" ", text_style)
        colour = self.style_of("fleet-grid--cursor").color
        return Segment(CURSOR_MARK, Style(color=colour, bgcolor=text_style.bgcolor))

    def _tile_styles(self, kind: str) -> tuple[Style, Style]:
        """(text, dim text) on the tile's background, the text contrasting with it."""
        cached = self._styles.get(kind)
        if cached is None:
            base = self.style_of(f"fleet-grid--{kind}")
            bg = Color.from_rich_color(base.bgcolor) if base.bgcolor else Color(40, 40, 40)
            fg = bg.get_contrast_text(1.0)
            dim = bg.get_contrast_text(0.7)
            cached = (
                Style(color=fg.rich_color, bgcolor=bg.rich_color),
                Style(color=dim.rich_color, bgcolor=bg.rich_color),
            )
            self._styles[kind] = cached
        return cached

    def _badge_style(self) -> Style:
        cached = self._styles.get("canary")
        if cached is None:
            base = self.style_of("fleet-grid--canary")
            bg = Color.from_rich_color(base.bgcolor) if base.bgcolor else Color(245, 183, 0)
            style = Style(
                color=bg.get_contrast_text(1.0).rich_color, bgcolor=bg.rich_color, bold=True
            )
            cached = (style, style)
            self._styles["canary"] = cached
        return cached[0]


def fit(text: str, width: int) -> str:
    """``text`` made harmless and cut to ``width`` cells (with ``…`` if cut)."""
    if width <= 0:
        return ""
    text = harmless(text, FIT_LIMIT)
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1) + "…"


def health_text(state: FleetState, name: str, now: float | None = None) -> str:
    """A tile's health: the last probe's result and latency, or how long ago it was taken
    once that is long (a host not watched is probed only now and then: its tile said
    "✓ 11ms" for a minute after it went down, as if probed a moment ago)."""
    view = state.hosts[name]
    if not view.probed:
        return "· "
    if view.ok is None:
        return "✗ no reply"
    mark = "✓" if view.ok else "✗"
    age = (time.time() if now is None else now) - view.sampled_at
    if age >= state.old_after:
        return f"{mark} {_ago(age)} "
    latency = f"{view.latency * 1000:.0f}ms" if view.latency is not None else ""
    return f"{mark} {latency} "


def _ago(seconds: float) -> str:
    """``40s ago`` (in tens of seconds: the tiles are repainted every few), ``3m ago``,
    ``2h ago``."""
    if seconds < 60:
        return f"{int(seconds) // 10 * 10}s ago"
    if seconds < 3600:
        return f"{int(seconds) // 60}m ago"
    return f"{int(seconds) // 3600}h ago"
