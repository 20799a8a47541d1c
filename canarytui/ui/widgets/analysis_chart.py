"""The analysis chart: one rule on one canary over the analysis window, against its reference.

The canary's value over each interval is a braille line (2x4 dots a cell), the baseline
hosts' range over the same intervals a shaded band, an absolute limit of the rule a dashed
line; time runs left to right over the whole window, so a live analysis fills it in. The
plot is computed in plain Python (``plot``) and drawn with the line API, once per size and
data. Host names are shown as they are (``harmless``).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from canarytui.textsafe import harmless
from canarytui.ui.analysis_log import Point

GUTTER = 9  # the y axis: a value, a space, the axis line
HEADROOM = 1.08  # the highest value sits below the top row
ZERO_BASED = 0.5  # the axis starts at zero when the lowest value is under half the highest
# Braille dot bits by (column in the cell, row in the cell from the top).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_BRAILLE = 0x2800

CANARY = "canary"
LIMIT = "limit"
AXIS = "axis"
PLAIN = "plain"


@dataclass(frozen=True)
class ChartData:
    """What to draw: the points of one rule on one canary."""

    canary: str
    reference: str  # "baseline web-04, web-08", "web-01 before the deployment"
    points: Sequence[Point]
    end: float  # the window's length in seconds (the x axis)
    limits: Sequence[tuple[str, float]] = field(default_factory=tuple)  # ("max", 0.05)


@dataclass(frozen=True)
class Plot:
    """The plot area, top row first: each cell (character, what it shows, in the band?)."""

    cells: list[list[tuple[str, str, bool]]]
    bottom: float
    top: float
    end: float

    def label(self, row: int) -> float:
        """The value a row's axis label shows (top row 0): the top of the scale on the
        top row, its bottom on the bottom row, the middle of the row elsewhere."""
        rows = len(self.cells)
        if row <= 0:
            return self.top
        if row >= rows - 1:
            return self.bottom
        sub = (rows - 1 - row) * 4 + 1.5
        return self.bottom + sub / max(1, 4 * rows - 1) * (self.top - self.bottom)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def plot(
    points: Sequence[Point], width: int, height: int, end: float, limits: Sequence[float] = ()
) -> Plot:
    """Lay the points out on ``width`` x ``height`` cells, time 0..end left to right."""
    values = [v for p in points for v in (p.recent, p.low, p.high) if v is not None]
    values = [v for v in values if math.isfinite(v)] + [x for x in limits if math.isfinite(x)]
    bottom, top = scale(values)
    end = max([end, *(p.elapsed for p in points)]) or 1.0
    xs, ys = 2 * width, 4 * height

    def sx(t: float) -> int:
        return min(xs - 1, max(0, round(t / end * (xs - 1))))

    def sy(v: float) -> int:  # sub-rows from the bottom
        return min(ys - 1, max(0, round((v - bottom) / (top - bottom) * (ys - 1))))

    dots = [[0] * width for _ in range(height)]

    def dot(x: int, y: int) -> None:
        dots[height - 1 - y // 4][x // 2] |= _DOTS[x % 2][3 - y % 4]

    previous: tuple[int, int] | None = None
    for p in points:
        if p.recent is None or not math.isfinite(p.recent):
            previous = None  # a gap in the line
            continue
        x, y = sx(p.elapsed), sy(p.recent)
        if previous is None:
            dot(x, y)
        else:
            x0, y0 = previous
            last_y = y0
            for xi in range(x0, x + 1):
                yi = y if x == x0 else round(y0 + (y - y0) * (xi - x0) / (x - x0))
                for yy in range(min(last_y, yi), max(last_y, yi) + 1):
                    dot(xi, yy)
                last_y = yi
        previous = (x, y)

    band = [[False] * width for _ in range(height)]
    for column, (low, high) in enumerate(_band_columns(points, width, end)):
        if low is None or high is None:
            continue
        for row in range(sy(low) // 4, sy(high) // 4 + 1):
            band[height - 1 - row][column] = True

    limit_rows = {height - 1 - sy(x) // 4 for x in limits if math.isfinite(x)}
    cells = []
    for r in range(height):
        line = []
        for c in range(width):
            bits = dots[r][c]
            if bits:
                line.append((chr(_BRAILLE + bits), CANARY, band[r][c]))
            elif r in limit_rows:
                line.append(("╌", LIMIT, band[r][c]))
            else:
                line.append((" ", PLAIN, band[r][c]))
        cells.append(line)
    return Plot(cells, bottom, top, end)


def scale(values: Sequence[float]) -> tuple[float, float]:
    """The value axis: from zero when the values are near it (a ratio far above its
    baseline keeps its proportions), else around the values (a latency that moves a few
    percent is still seen moving); the highest value sits below the top row."""
    low, high = min(values, default=0.0), max(values, default=0.0)
    if 0.0 <= low <= high * ZERO_BASED:
        low = 0.0
    else:
        low -= (high - low) * 0.25 or abs(low) * 0.1 or 1.0
    if high <= low:
        high = low + (abs(low) or 1.0)
    return low, low + (high - low) * HEADROOM


def _band_columns(
    points: Sequence[Point], width: int, end: float
) -> list[tuple[float | None, float | None]]:
    """The band over each cell column: the widest range of the points in it, else the
    range interpolated between the points on either side (none outside them)."""
    banded = [p for p in points if _finite(p.low) and _finite(p.high)]
    out: list[tuple[float | None, float | None]] = []
    xs = 2 * width
    for column in range(width):
        t0 = (2 * column - 0.5) / max(1, xs - 1) * end
        t1 = (2 * column + 1.5) / max(1, xs - 1) * end
        inside = [p for p in banded if t0 <= p.elapsed < t1]
        if inside:
            out.append(
                (
                    min(p.low for p in inside if p.low is not None),
                    max(p.high for p in inside if p.high is not None),
                )
            )
            continue
        t = (t0 + t1) / 2
        before = next((p for p in reversed(banded) if p.elapsed <= t), None)
        after = next((p for p in banded if p.elapsed >= t), None)
        if before is None or after is None or after.elapsed <= before.elapsed:
            out.append((None, None))
            continue
        share = (t - before.elapsed) / (after.elapsed - before.elapsed)
        assert before.low is not None and before.high is not None
        assert after.low is not None and after.high is not None
        out.append(
            (
                before.low + (after.low - before.low) * share,
                before.high + (after.high - before.high) * share,
            )
        )
    return out


def _number(v: float) -> str:
    return f"{v:.3g}"


class AnalysisChart(Widget):
    """``show(data)`` draws a rule on a canary; ``show(None, message)`` says why not."""

    DEFAULT_CSS = """
    AnalysisChart { height: 1fr; }
    AnalysisChart > .analysis-chart--canary { color: $state-canary; text-style: bold; }
    AnalysisChart > .analysis-chart--band { background: $primary 30%; color: $text; }
    AnalysisChart > .analysis-chart--limit { color: $text-error; }
    AnalysisChart > .analysis-chart--axis { color: $text-muted; }
    """

    COMPONENT_CLASSES = {
        "analysis-chart--canary",
        "analysis-chart--band",
        "analysis-chart--limit",
        "analysis-chart--axis",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: ChartData | None = None
        self.message = ""
        self._lines: list[Strip] | None = None
        self._built_for: tuple[int, int] = (0, 0)

    def show(self, data: ChartData | None, message: str = "") -> None:
        if data == self.data and message == self.message:
            return
        self.data = data
        self.message = message
        self._lines = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines = None

    def render_line(self, y: int) -> Strip:
        size = (self.size.width, self.size.height)
        if self._lines is None or self._built_for != size:
            self._lines = self._build(*size)
            self._built_for = size
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(size[0], self.rich_style)

    # Drawing --------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"analysis-chart--{name}")

    def _build(self, width: int, height: int) -> list[Strip]:
        base = self.rich_style
        axis = self._style("axis")
        data = self.data
        plot_width, plot_height = width - GUTTER - 1, height - 3
        if data is None or not data.points or plot_width < 8 or plot_height < 2:
            message = self.message if data is None or data.points else "no points yet"
            if data is not None and plot_width < 8:
                message = "too small for a chart"
            said = textwrap.wrap(harmless(message), max(10, width - 1)) or [""]
            return [self._strip([(line, axis)], width) for line in said]
        canary, band, limit = self._style("canary"), self._style("band"), self._style("limit")
        on_band = Style(bgcolor=band.bgcolor)
        styles = {CANARY: canary, LIMIT: limit, PLAIN: base}
        p = plot(data.points, plot_width, plot_height, data.end, [v for _, v in data.limits])
        lines = [self._strip(self._legend(data, canary, band, limit, axis), width)]
        labelled = {0, plot_height // 2, plot_height - 1}
        for r, row in enumerate(p.cells):
            label = _number(p.label(r)) if r in labelled else ""
            parts: list[tuple[str, Style]] = [
                (f"{label:>{GUTTER - 2}} {'┤' if label else '│'}", axis)
            ]
            for char, what, in_band in row:
                style = styles[what]
                parts.append((char, style + on_band if in_band else style))
            lines.append(self._strip(parts, width))
        lines.append(self._strip([(" " * (GUTTER - 1) + "└" + "─" * plot_width, axis)], width))
        lines.append(self._strip(self._x_labels(data, p, plot_width, axis), width))
        return lines

    def _legend(
        self, data: ChartData, canary: Style, band: Style, limit: Style, axis: Style
    ) -> list[tuple[str, Style]]:
        parts: list[tuple[str, Style]] = [
            (" ⠒⠒ ", canary),
            (harmless(data.canary, 40), canary),
            (" over each interval   ", axis),
            ("    ", band),
            (" " + harmless(data.reference, 60) + ": lowest to highest", axis),
        ]
        for name, value in data.limits:
            parts += [("   ╌╌ ", limit), (f"{name} {_number(value)}", axis)]
        return parts

    def _x_labels(
        self, data: ChartData, p: Plot, width: int, axis: Style
    ) -> list[tuple[str, Style]]:
        row = [" "] * width
        right = f"{p.end:.0f}s"
        for i, ch in enumerate("0s"):
            row[i] = ch
        for i, ch in enumerate(right):
            row[width - len(right) + i] = ch
        last = data.points[-1].elapsed
        mark = f"▲ {last:.0f}s"
        x = round(last / p.end * (width - 1)) if p.end else 0
        if last < p.end and 3 <= x and x + len(mark) < width - len(right) - 1:
            for i, ch in enumerate(mark):
                row[x + i] = ch
        return [(" " * GUTTER + "".join(row), axis)]

    def _strip(self, parts: list[tuple[str, Style]], width: int) -> Strip:
        segments = [Segment(text, style) for text, style in parts if text]
        return Strip(segments).simplify().crop_extend(0, width, self.rich_style)
