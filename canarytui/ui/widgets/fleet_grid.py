"""The fleet grid: one tile per host, drawn by one line-API widget.

Only the lines in view are rendered, so 1,000 hosts cost what the ~40 visible tiles cost
(a widget per tile froze input for ~0.5 s a second at that size). Tile colours come from
component classes whose CSS reads the theme's state variables; what a tile says is drawn by
``tiles.TilePainter``. Tiles are full (three lines) or compact (one line, no gap): compact
when fewer than ``AUTO_COMPACT`` full tiles would be in view of a larger fleet (an 80x24
terminal showed 3 hosts of 24), until the operator picks with ``z``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from canarytui.textsafe import harmless
from canarytui.ui.fleet_state import FleetState, TileKind
from canarytui.ui.widgets.tiles import TILE_WIDTH, TilePainter

TILE_HEIGHT = 3  # a full tile's lines (a compact one has one, and no gap under it)
COLUMN_GAP = 1
ROW_GAP = 1
PITCH_X = TILE_WIDTH + COLUMN_GAP
PITCH_Y = TILE_HEIGHT + ROW_GAP  # a full tile's
AUTO_COMPACT = 12  # fewer full tiles in view than this, of a larger fleet: compact ones


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
        self.painter = TilePainter(state, self.get_component_rich_style)
        self._base_style: Style | None = None  # the grid's own, asked of the DOM once
        self._columns = 1
        self._compact = False
        self._chosen = False  # the operator picked the tiles' size (z): no more by size

    # Layout ------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        return self._columns

    @property
    def compact(self) -> bool:
        """One-line tiles (the grid chooses by its size until the operator does)."""
        return self._compact

    @compact.setter
    def compact(self, value: bool) -> None:
        self._chosen = True
        if value != self._compact:
            self._compact = value
            self._relaid()

    @property
    def tile_height(self) -> int:
        return 1 if self._compact else TILE_HEIGHT

    @property
    def pitch_y(self) -> int:
        return 1 if self._compact else PITCH_Y

    def _layout(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        self._columns = max(1, (width + COLUMN_GAP) // PITCH_X)
        if not self._chosen:
            height = self.scrollable_content_region.height or self.size.height
            in_view = self._columns * ((height + ROW_GAP) // PITCH_Y)
            self._compact = in_view < min(AUTO_COMPACT, len(self.state.hosts))
        rows = math.ceil(len(self.state.shown) / self._columns) if self.state.shown else 1
        gap = 0 if self._compact else ROW_GAP
        self.virtual_size = Size(
            self._columns * PITCH_X - COLUMN_GAP, max(1, rows * self.pitch_y - gap)
        )

    def _relaid(self) -> None:
        self._layout()
        self._scroll_to_cursor()
        self.refresh()

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
        self._relaid()

    def hosts_changed(self) -> None:
        """The shown hosts changed (filter): keep the cursor on its host if still shown."""
        shown = self.state.shown
        previous = self.cursor_host
        if self.cursor_host not in shown:
            self.cursor_host = shown[0] if shown else None
        self._relaid()
        if self.cursor_host != previous:
            self.post_message(self.HostFocused(self, self.cursor_host))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.painter.forget()
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
        return Region(col * PITCH_X, row * self.pitch_y, TILE_WIDTH, self.tile_height)

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
            y = row * self.pitch_y - self.scroll_offset.y
            self.refresh(Region(0, y, width, self.tile_height))

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
        rows = max(1, self.scrollable_content_region.height // self.pitch_y)
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
        row = y // self.pitch_y
        if col_off >= TILE_WIDTH or col >= self._columns:
            return
        index = row * self._columns + col
        if 0 <= index < len(self.state.shown):
            self.focus()
            self.move_cursor_to(self.state.shown[index])

    # Rendering ---------------------------------------------------------------------

    def _first_visible(self) -> int:
        return (self.scroll_offset.y // self.pitch_y) * self._columns

    def visible_hosts(self) -> list[str]:
        """Hosts whose tiles are (at least partly) in view."""
        bottom = (self.scroll_offset.y + self.scrollable_content_region.height) // self.pitch_y
        return self.state.shown[self._first_visible() : (bottom + 1) * self._columns]

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
        row, sub = divmod(scroll_y + y, self.pitch_y)
        if sub >= self.tile_height:
            return Strip.blank(width, base)
        start = row * self._columns
        if start >= len(shown):
            return Strip.blank(width, base)
        segments: list[Segment] = []
        gap = Segment(" " * COLUMN_GAP, base)
        paint, cursor = self.painter, self.cursor_host
        for index in range(start, min(start + self._columns, len(shown))):
            if index > start:
                segments.append(gap)
            name = shown[index]
            if self._compact:
                segments.extend(paint.compact(name, name == cursor))
            else:
                segments.extend(paint.line(name, sub, name == cursor))
        strip = Strip(segments)
        return strip.crop_extend(scroll_x, scroll_x + width, base)
