"""The fleet grid: one tile per host, drawn by one line-API widget.

Only the lines in view are rendered, so 1,000 hosts cost what the ~40 visible tiles cost
(a widget per tile froze input for ~0.5 s a second at that size). Tile colours come from
component classes whose CSS reads the theme's state variables. Segments reach the terminal
as they are: every text on a tile (a version is what a host printed) goes through ``_fit``,
which makes it harmless and fits it in cells, not characters (wide characters).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.color import Color
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from canarytui.textsafe import harmless
from canarytui.ui.fleet_state import FleetState, TileKind

TILE_WIDTH = 22
TILE_HEIGHT = 3
COLUMN_GAP = 1
ROW_GAP = 1
PITCH_X = TILE_WIDTH + COLUMN_GAP
PITCH_Y = TILE_HEIGHT + ROW_GAP
CURSOR_MARK = "▌"
CANARY_BADGE = " ◆ canary "
PICKED_BADGE = " ◇ canary "
FIT_LIMIT = 200  # characters of a tile text kept before fitting it in its cells


AGES_EVERY = 5.0  # seconds between repaints of the tiles that show a probe's age


class FleetGrid(ScrollView, can_focus=True):
    """Tiles for the hosts in ``state.shown``; a cursor tile the keys and mouse move."""

    DEFAULT_CSS = """
    FleetGrid {
        background: $surface;
        border: round $foreground 25%;
        border-title-color: $text-muted;
        padding: 0 0 0 1;
        scrollbar-size-vertical: 1;
    }
    FleetGrid:focus {
        border: round $primary;
        border-title-color: $text;
    }
    FleetGrid > .fleet-grid--healthy { background: $state-healthy; }
    FleetGrid > .fleet-grid--deployed { background: $state-deployed; }
    FleetGrid > .fleet-grid--failing { background: $state-failing; }
    FleetGrid > .fleet-grid--deploying { background: $state-deploying; }
    FleetGrid > .fleet-grid--pending { background: $state-pending; }
    FleetGrid > .fleet-grid--rolled-back { background: $state-rolled-back; }
    FleetGrid > .fleet-grid--unreachable { background: $state-unreachable; }
    FleetGrid > .fleet-grid--unknown { background: $state-unknown; }
    FleetGrid > .fleet-grid--canary { background: $state-canary; text-style: bold; }
    FleetGrid > .fleet-grid--cursor { color: $tile-cursor; }
    FleetGrid > .fleet-grid--empty { color: $text-muted; }
    """

    COMPONENT_CLASSES = {
        *(f"fleet-grid--{kind}" for kind in TileKind.ALL),
        "fleet-grid--canary",
        "fleet-grid--cursor",
        "fleet-grid--empty",
    }

    BINDINGS = [
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("down,j", "move(0, 1)", "Down", show=False),
        Binding("left,h", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First host", show=False),
        Binding("end", "jump(-1)", "Last host", show=False),
    ]

    class HostFocused(Message):
        """The cursor moved to another host (or to none: the filter shows nothing)."""

        def __init__(self, grid: FleetGrid, name: str | None) -> None:
            super().__init__()
            self.grid = grid
            self.name = name

        @property
        def control(self) -> FleetGrid:
            return self.grid

    def __init__(
        self,
        state: FleetState,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.state = state
        self.cursor_host: str | None = state.shown[0] if state.shown else None
        self._styles: dict[str, tuple[Style, Style]] = {}
        self._base_style: Style | None = None  # the grid's own, asked of the DOM once
        self._columns = 1

    # Layout ------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return self._columns

    def _layout(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        self._columns = max(1, (width + COLUMN_GAP) // PITCH_X)
        rows = math.ceil(len(self.state.shown) / self._columns) if self.state.shown else 1
        self.virtual_size = Size(
            self._columns * PITCH_X - COLUMN_GAP, max(1, rows * PITCH_Y - ROW_GAP)
        )

    def on_mount(self) -> None:
        self.set_interval(AGES_EVERY, self._repaint_ages)

    def _repaint_ages(self) -> None:
        """Repaint the tiles in view whose probe is old, or about to be: their age moves
        with the clock, not with an event."""
        soon = time.time() - self.state.old_after + AGES_EVERY
        hosts = self.state.hosts
        self.refresh_hosts(
            name
            for name in self.visible_hosts()
            if (view := hosts[name]).probed and view.ok is not None and view.sampled_at < soon
        )

    def on_resize(self, event: events.Resize) -> None:
        self._layout()
        self._scroll_to_cursor()
        self.refresh()

    def hosts_changed(self) -> None:
        """The shown hosts changed (filter): keep the cursor on its host if still shown."""
        shown = self.state.shown
        previous = self.cursor_host
        if self.cursor_host not in shown:
            self.cursor_host = shown[0] if shown else None
        self._layout()
        self._scroll_to_cursor()
        self.refresh()
        if self.cursor_host != previous:
            self.post_message(self.HostFocused(self, self.cursor_host))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._base_style = None

    # Cursor ------------------------------------------------------------------------

    @property
    def cursor_index(self) -> int:
        try:
            return self.state.shown.index(self.cursor_host) if self.cursor_host else -1
        except ValueError:
            return -1

    def tile_region(self, index: int) -> Region:
        """Where a tile is in the virtual (scrollable) space."""
        row, col = divmod(index, self._columns)
        return Region(col * PITCH_X, row * PITCH_Y, TILE_WIDTH, TILE_HEIGHT)

    def move_cursor_to(self, name: str | None) -> None:
        if name == self.cursor_host or (name is not None and name not in self.state.shown):
            return
        previous = self.cursor_host
        self.cursor_host = name
        if self._scroll_to_cursor():
            self.refresh()
        else:  # only the two tiles change: the other lines stay cached
            self.refresh_hosts([h for h in (previous, name) if h is not None])
        self.post_message(self.HostFocused(self, name))

    def _scroll_to_cursor(self) -> bool:
        """Scroll the cursor's tile into view; True if the view moved."""
        index = self.cursor_index
        if index < 0:
            return False
        before = self.scroll_offset
        self.scroll_to_region(
            self.tile_region(index), animate=False, immediate=True, spacing=None, force=True
        )
        return self.scroll_offset != before

    def refresh_hosts(self, names: Iterable[str]) -> None:
        """Repaint the rows of these hosts' tiles that are in view, not the whole grid:
        the other lines stay as the styles cache has them."""
        first = self._first_visible()
        in_view = {name: first + i for i, name in enumerate(self.visible_hosts())}
        rows = {in_view[name] // self._columns for name in names if name in in_view}
        width = max(self.virtual_size.width, self.size.width)
        for row in sorted(rows):
            y = row * PITCH_Y - self.scroll_offset.y
            self.refresh(Region(0, y, width, TILE_HEIGHT))

    def action_move(self, dx: int, dy: int) -> None:
        shown = self.state.shown
        if not shown:
            return
        index = max(0, self.cursor_index)
        if dx:
            index = min(max(0, index + dx), len(shown) - 1)
        if dy:
            target = index + dy * self._columns
            if 0 <= target < len(shown):
                index = target
            elif dy > 0 and index // self._columns < (len(shown) - 1) // self._columns:
                index = len(shown) - 1  # a short last row: land on its last tile
        self.move_cursor_to(shown[index])

    def action_page(self, direction: int) -> None:
        rows = max(1, self.scrollable_content_region.height // PITCH_Y)
        self.action_move(0, direction * rows)

    def action_jump(self, index: int) -> None:
        if self.state.shown:
            self.move_cursor_to(self.state.shown[index])

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x = offset.x + self.scroll_offset.x
        y = offset.y + self.scroll_offset.y
        col, col_off = divmod(x, PITCH_X)
        row = y // PITCH_Y
        if col_off >= TILE_WIDTH or col >= self._columns:
            return
        index = row * self._columns + col
        if 0 <= index < len(self.state.shown):
            self.focus()
            self.move_cursor_to(self.state.shown[index])

    # Rendering ---------------------------------------------------------------------

    def _first_visible(self) -> int:
        return (self.scroll_offset.y // PITCH_Y) * self._columns

    def visible_hosts(self) -> list[str]:
        """Hosts whose tiles are (at least partly) in view."""
        bottom = (self.scroll_offset.y + self.scrollable_content_region.height) // PITCH_Y
        return self.state.shown[self._first_visible() : (bottom + 1) * self._columns]

    def _tile_styles(self, kind: str) -> tuple[Style, Style]:
        """(text, dim text) on the tile's background, the text contrasting with it."""
        cached = self._styles.get(kind)
        if cached is None:
            base = self.get_component_rich_style(f"fleet-grid--{kind}")
            bg = Color.from_rich_color(base.bgcolor) if base.bgcolor else Color(40, 40, 40)
            fg = bg.get_contrast_text(1.0)
            dim = bg.get_contrast_text(0.7)
            cached = (
                Style(color=fg.rich_color, bgcolor=bg.rich_color),
                Style(color=dim.rich_color, bgcolor=bg.rich_color),
            )
            self._styles[kind] = cached
        return cached

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self._base_style
        if base is None:
            base = self._base_style = self.rich_style
        shown = self.state.shown
        if not shown:
            if y == 1:
                style = self.get_component_rich_style("fleet-grid--empty")
                text = (
                    f" no host matches {harmless(self.state.filter_text)!r}"
                    if self.state.filter_text
                    else " no hosts"
                )
                return Strip([Segment(text, style)]).crop_extend(0, width, base)
            return Strip.blank(width, base)
        row, sub = divmod(scroll_y + y, PITCH_Y)
        if sub >= TILE_HEIGHT:
            return Strip.blank(width, base)
        start = row * self._columns
        if start >= len(shown):
            return Strip.blank(width, base)
        segments: list[Segment] = []
        gap = Segment(" " * COLUMN_GAP, base)
        for index in range(start, min(start + self._columns, len(shown))):
            if index > start:
                segments.append(gap)
            segments.extend(self._tile_line(shown[index], sub))
        strip = Strip(segments)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _tile_line(self, name: str, sub: int) -> list[Segment]:
        state = self.state
        kind = state.tile_kind(name)
        text_style, dim_style = self._tile_styles(kind)
        is_cursor = name == self.cursor_host
        if is_cursor:
            cursor_colour = self.get_component_rich_style("fleet-grid--cursor").color
            mark = Segment(CURSOR_MARK, Style(color=cursor_colour, bgcolor=text_style.bgcolor))
        else:
            mark = Segment(" ", text_style)
        inner = TILE_WIDTH - 1
        if sub == 0:
            badge = ""
            if state.is_canary(name):
                badge = CANARY_BADGE if state.active else PICKED_BADGE
            title = _fit(name, inner - len(badge) - 1)
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
            left = state.engine.versions.get(name) or "?"
            right = _health_text(state, name)
        else:
            left = state.state_text(name)
            view = state.hosts[name]
            right = view.last_step if kind == TileKind.DEPLOYING and view.last_step else ""
        right = _fit(right, inner // 2)
        left = _fit(left, inner - cell_len(right) - 1)
        pad = inner - cell_len(left) - cell_len(right)
        return [
            mark,
            Segment(left, text_style),
            Segment(" " * pad, text_style),
            Segment(right, dim_style),
        ]

    def _badge_style(self) -> Style:
        cached = self._styles.get("canary")
        if cached is None:
            base = self.get_component_rich_style("fleet-grid--canary")
            bg = Color.from_rich_color(base.bgcolor) if base.bgcolor else Color(245, 183, 0)
            style = Style(
                color=bg.get_contrast_text(1.0).rich_color, bgcolor=bg.rich_color, bold=True
            )
            cached = (style, style)
            self._styles["canary"] = cached
        return cached[0]


def _fit(text: str, width: int) -> str:
    """``text`` made harmless and cut to ``width`` cells (with ``…`` if cut)."""
    if width <= 0:
        return ""
    text = harmless(text, FIT_LIMIT)
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1) + "…"


def _health_text(state: FleetState, name: str, now: float | None = None) -> str:
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
