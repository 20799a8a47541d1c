"""The analysis view (key ``a``): each rule on each canary against its reference, charted.

A table has one row per rule and canary (the health budget's last); under it, a chart of
the focused row's rule over the analysis window. It shows the fleet state's analysis (this
session's deployment, or the adopted open one) and, when nothing ran in this session, the
journal's last deployment's. The fleet screen posts ``AnalysisChanged`` when the analysis
moves, so the view is live while it is open. Rule names, hosts, limits and notes come from
the env file and the hosts: each is shown as it is (``harmless``, ``Text`` cells,
``Content`` titles), never read as markup.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from canarytui import events as ev
from canarytui.config import Rule
from canarytui.journal import JournalError
from canarytui.textsafe import harmless, listed
from canarytui.ui.analysis_log import HEALTH_BUDGET, AnalysisLog
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.messages import AnalysisChanged
from canarytui.ui.safe_text import plain_cell, plain_title
from canarytui.ui.widgets.analysis_chart import AnalysisChart, ChartData
from canarytui.ui.widgets.key_footer import KeyFooter

# The verdict right after whose it is: at 80 columns the limit and what follows it scroll.
COLUMNS = ("rule", "canary", "verdict", "value", "baseline", "limit", "effect", "confidence")
NOTE = "note"
LIMIT_CELL = 40  # characters of a limit in the table (the detail line has all of it)
NOTE_CELL = 60
REASONS_SHOWN = 3
REFERENCE_HOSTS = 4  # baseline hosts named in the chart's title and legend, then a count
# A measurement's state -> (what the verdict cell says, its style).
STATES = {
    "pass": ("pass", "pass"),
    "fail": ("FAIL", "fail"),
    "undecided": ("undecided", "undecided"),
    "no data": ("no data", "no-data"),
}
_STYLES = ("pass", "fail", "undecided", "no-data", "inconclusive", "label")
# Where the cursor starts: the first row in the worst state.
_WORST_FIRST = ("fail", "undecided", "no data")


def _cut(text: str, limit: int) -> str:
    shown = harmless(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


class AnalysisScreen(Screen[None]):
    """Pushed from the fleet screen; reads (never changes) its ``FleetState``."""

    DEFAULT_CSS = """
    AnalysisScreen #title {
        dock: top;
        height: 1;
        background: $panel;
        text-style: bold;
        padding: 0 1;
    }
    AnalysisScreen #summary { height: auto; max-height: 5; padding: 0 1; }
    AnalysisScreen DataTable {
        height: auto;
        max-height: 40%;
        min-height: 4;
        border: round $foreground 25%;
    }
    AnalysisScreen DataTable:focus { border: round $primary; }
    AnalysisScreen AnalysisChart {
        height: 1fr;
        min-height: 8;
        border: round $foreground 25%;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 1;
    }
    AnalysisScreen #detail { height: auto; max-height: 4; padding: 0 1; }
    AnalysisScreen > .analysis--pass { color: $text-success; }
    AnalysisScreen > .analysis--fail { color: $text-error; text-style: bold; }
    AnalysisScreen > .analysis--undecided { color: $text-warning; text-style: bold; }
    AnalysisScreen > .analysis--no-data { color: $text-warning; }
    AnalysisScreen > .analysis--inconclusive { color: $text-warning; text-style: bold; }
    AnalysisScreen > .analysis--label { color: $text-muted; }
    """

    COMPONENT_CLASSES = {
        "analysis--pass",
        "analysis--fail",
        "analysis--undecided",
        "analysis--no-data",
        "analysis--inconclusive",
        "analysis--label",
    }

    BINDINGS = [Binding("escape,a,q", "close", "Back")]

    def __init__(self, state: FleetState) -> None:
        super().__init__()
        self.state = state
        self.rules: dict[str, Rule] = {r.name: r for r in state.env.canary.analysis.rules}
        self.past: AnalysisLog | None = None  # the journal's last deployment's
        self.problem = ""  # why the journal could not be read
        self.rows: list[ev.Measurement] = []
        self._keys: list[tuple[str, str]] = []  # (rule, canary) of each row
        self._focused: tuple[str, str] | None = None
        self._drawn_with: tuple[Style, ...] = ()  # the styles the table's cells have

    @property
    def current(self) -> AnalysisLog:
        """This session's (or the adopted deployment's) analysis, else the journal's last."""
        live = self.state.analysis_log
        if live.deployment is not None or self.past is None:
            return live
        return self.past

    def compose(self) -> ComposeResult:
        env = self.state.env
        yield Static(harmless(f" analysis · {env.name} / {env.app}"), id="title", markup=False)
        yield Static(id="summary")
        yield DataTable(cursor_type="row", zebra_stripes=True, id="measurements")
        yield AnalysisChart(id="chart")
        yield Static(id="detail")
        yield KeyFooter()

    def on_mount(self) -> None:
        if self.state.analysis_log.deployment is None:
            self._load_past()
        table = self.query_one(DataTable)
        for column in (*COLUMNS, NOTE):
            table.add_column(column, key=column)
        self.refresh_view()
        table.focus()

    def _load_past(self) -> None:
        env = self.state.env
        journal = self.state.engine.journal
        try:
            record = journal.last_deployment(env.name, env.app)
            if record is not None:
                self.past = AnalysisLog.from_journal(
                    record.id, record.version, journal.events(record.id)
                )
        except JournalError as exc:
            self.problem = str(exc)

    # Redrawing --------------------------------------------------------------------------

    @on(AnalysisChanged)
    def _analysis_changed(self) -> None:
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # A new theme: the verdict cells carry the old one's colours, so they are rebuilt.
        if self.is_mounted and self._palette() != self._drawn_with:
            self._keys = []
            self.call_later(self.refresh_view)

    def _palette(self) -> tuple[Style, ...]:
        return tuple(self._style(name) for name in _STYLES)

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        log = self.current
        self.query_one("#summary", Static).update(self._summary(log))
        measured = log.measurements
        rows = [m for m in measured if m.rule != HEALTH_BUDGET]
        rows += [m for m in measured if m.rule == HEALTH_BUDGET]
        keys = [(m.rule, m.host) for m in rows]
        table = self.query_one(DataTable)
        before, self.rows = self.rows, rows
        if keys != self._keys:
            focused = self._focused
            self._drawn_with = self._palette()
            table.clear()
            for i, m in enumerate(rows):
                table.add_row(*self._cells(m), key=str(i))
            self._keys = keys
            if rows:
                table.move_cursor(row=keys.index(focused) if focused in keys else _worst(rows))
        else:  # the same rows: only the cells of those that changed
            for i, (old, m) in enumerate(zip(before, rows, strict=True)):
                if old == m:
                    continue
                for column, cell in zip((*COLUMNS, NOTE), self._cells(m), strict=True):
                    table.update_cell(str(i), column, cell, update_width=True)
        self._show_focused()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._show_focused()

    def _show_focused(self) -> None:
        chart = self.query_one(AnalysisChart)
        detail = self.query_one("#detail", Static)
        row = self.query_one(DataTable).cursor_row
        if not 0 <= row < len(self.rows):
            chart.border_title = plain_title("chart")
            chart.show(None, self._unmeasured(self.current))
            detail.update("")
            return
        m = self.rows[row]
        self._focused = (m.rule, m.host)
        log = self.current
        reference = self._reference(m, log)
        chart.border_title = plain_title(f"{m.rule} · {m.host} against the {reference}")
        points = log.series(m.rule, m.host)
        if m.rule == HEALTH_BUDGET:
            chart.show(
                None,
                f"{m.host}: {_number(m.value)} failed health check(s), limit {m.limit}: "
                "the health budget counts failures, it has no chart",
            )
        elif not points:
            chart.show(None, "no points yet: the chart fills in as the analysis runs")
        else:
            chart.show(
                ChartData(
                    canary=m.host,
                    reference=reference,
                    points=points,
                    end=log.duration,
                    limits=self._limits(m.rule),
                )
            )
        text = Text(
            harmless(m.describe()), style=self._style(STATES.get(m.state, ("", "label"))[1])
        )
        detail.update(text)

    # What the parts say -----------------------------------------------------------------

    def _style(self, name: str, *, cell: bool = False) -> Style:
        """A component's style; for a table cell without its background (the cursor's
        shows through), else blended on the screen's (colours with alpha need it)."""
        return self.get_component_rich_style(f"analysis--{name}", partial=cell)

    def _summary(self, log: AnalysisLog) -> Text:
        label = self._style("label")
        text = Text()
        if log.deployment is None:
            text.append(self.problem or self._nothing(), label)
            return text
        text.append("deployment ", label)
        text.append(harmless(f"#{log.deployment} {log.version}"))
        if log.started is not None:
            text.append("  canaries ", label)
            text.append(harmless(listed(log.started.canaries, 8), 200))
            text.append("  baseline ", label)
            text.append(harmless(listed(log.started.baseline, 8) or "none", 200))
        text.append("\nanalysis ", label)
        live = log is self.state.analysis_log and self.state.engine.phase is ev.Phase.ANALYSIS
        if log.started is None and log.update is None:
            text.append("starting" if live else "not run")
        elif log.verdict is None and live:
            left = max(0.0, log.duration - log.elapsed)
            text.append(f"{log.elapsed:.0f}s of {log.duration:.0f}s, {left:.0f}s left")
        else:
            text.append(f"{log.elapsed:.0f}s of {log.duration:.0f}s")
        if log.verdict is not None:
            verdict = log.verdict.verdict.value
            text.append("  verdict ", label)
            text.append(verdict.upper(), self._style(verdict))
            measured = {m.describe() for m in log.verdict.measurements}
            other = [r for r in log.verdict.reasons if r not in measured]
            for reason in other[:REASONS_SHOWN]:
                text.append("\n • " + harmless(reason, 300))
        return text

    def _unmeasured(self, log: AnalysisLog) -> str:
        """Why there is no row to chart."""
        if log.deployment is None:  # the summary says there is none: what will be drawn
            return "" if self.problem else self._to_judge()
        if log.verdict is not None:
            return "no rule was measured: the verdict's reasons are above"
        return "nothing measured yet (warm-up, first probes): rows come as the analysis runs"

    def _to_judge(self) -> str:
        env = self.state.env
        rules = [r.name for r in env.canary.analysis.rules]
        if not env.canary.enabled:
            return "This file has no canary phase: its releases go straight to the waves."
        if not rules:
            return "The file has no analysis rules: a canary is judged by its health checks."
        return (
            "Each rule's values over the analysis are drawn here, canaries against the "
            f"baseline. The file's rules: {harmless(', '.join(rules), 300)}."
        )

    def _nothing(self) -> str:
        return (
            "No analysis yet: deploy a release (d) and its canary analysis shows here, "
            "live; afterwards the last deployment's, from the journal."
        )

    def _cells(self, m: ev.Measurement) -> list[Text]:
        shown, style = STATES.get(m.state, (harmless(m.state, 20), "no-data"))
        baseline = _number(m.baseline)
        if m.baseline is not None and m.reference != "baseline":
            baseline += f" ({m.reference})"
        return [
            plain_cell(m.rule),
            plain_cell(m.host),
            Text(shown, style=self._style(style, cell=True), no_wrap=True, end=""),
            plain_cell(_number(m.value)),
            plain_cell(baseline),
            plain_cell(_cut(m.limit, LIMIT_CELL)),
            plain_cell(self._effect(m)),
            plain_cell("" if m.confidence is None else f"{m.confidence:.3f}"),
            plain_cell(_cut(m.note, NOTE_CELL)),
        ]

    def _effect(self, m: ev.Measurement) -> str:
        if m.effect is None:
            return ""
        if m.relative:
            return m.effect_text
        # Measured before its kind was recorded (an older journal's): as its rule says.
        rule = self.rules.get(m.rule)
        changes = (rule.max_increase, rule.max_decrease) if rule is not None else ()
        if any(c is not None and c.percent for c in changes):
            return f"{m.effect * 100:+.3g}%"
        return m.effect_text

    def _reference(self, m: ev.Measurement, log: AnalysisLog) -> str:
        if m.reference == "before":
            return f"{m.host} before the deployment"
        if log.started is not None and log.started.baseline:
            return "baseline " + listed(log.started.baseline, REFERENCE_HOSTS)
        return "baseline"

    def _limits(self, rule_name: str) -> list[tuple[str, float]]:
        rule = self.rules.get(rule_name)
        if rule is None or rule.statistical:
            return []
        return [(name, v) for name, v in (("max", rule.max), ("min", rule.min)) if v is not None]

    def action_close(self) -> None:
        self.dismiss(None)


def _worst(rows: list[ev.Measurement]) -> int:
    for state in _WORST_FIRST:
        for i, m in enumerate(rows):
            if m.state == state:
                return i
    return 0
