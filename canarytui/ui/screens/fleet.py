"""The one screen an operator lives in: header, fleet grid, host panel, rollout, logs.

Engine events arrive as messages (``EngineEvents``, ``HealthBatch``, ``LogBatch``) posted by
the bridge; the handlers here own every change of what is shown. The rollout actions
(deploy, promote, roll back) and their workers are in ``fleet_actions``; the workers post an
``OperatorResult`` handled here. What a notification says comes from ``ui.notices``.
"""

from __future__ import annotations

import math

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget

from canarytui import events as ev
from canarytui.engine import Engine
from canarytui.monitor import Monitor
from canarytui.ui import notices
from canarytui.ui.bridge import EngineBridge
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.follow import FOLLOW_INTERVAL, JournalFollow
from canarytui.ui.messages import (
    AnalysisChanged,
    EngineEvents,
    HealthBatch,
    LogBatch,
    OperatorResult,
)
from canarytui.ui.repaint import Repaint
from canarytui.ui.safe_text import plain_title
from canarytui.ui.screens.analysis import AnalysisScreen
from canarytui.ui.screens.details import HostDetailsScreen
from canarytui.ui.screens.fleet_actions import OperatorActions
from canarytui.ui.screens.fleet_keys import FLEET_KEYS
from canarytui.ui.screens.help import HelpScreen
from canarytui.ui.screens.history import HistoryScreen
from canarytui.ui.widgets.filter_bar import FilterBar
from canarytui.ui.widgets.fleet_grid import COLUMN_GAP, PITCH_X, PITCH_Y, ROW_GAP, FleetGrid
from canarytui.ui.widgets.host_panel import HostPanel
from canarytui.ui.widgets.key_footer import KeyFooter
from canarytui.ui.widgets.log_pane import LogPane
from canarytui.ui.widgets.rollout_progress import RolloutProgress
from canarytui.ui.widgets.side_column import SideColumn, side_width
from canarytui.ui.widgets.status_header import StatusHeader


class FleetScreen(OperatorActions):
    """The main screen. ``engine`` does the work; ``monitor`` (optional) keeps it live."""

    LIVE = True  # its keys act on what it shows (a replay's say what happened, no more)
    BINDINGS = FLEET_KEYS  # (and which the footer offers now: ``fleet_keys``)

    DEFAULT_CSS = """
    FleetScreen #body { height: 1fr; }
    FleetScreen #left { width: 1fr; }
    FleetScreen #right { width: 46; }
    FleetScreen #host { height: auto; max-height: 24; }  /* SideColumn fits it */
    FleetScreen #progress { height: 1fr; min-height: 12; }
    FleetScreen #grid { height: 2fr; min-height: 6; }
    /* The logs give the grid their rows in a short terminal: 12 rows from 40 up. */
    FleetScreen #logs { height: 1fr; max-height: 12; min-height: 4; }
    FleetScreen #logs.-maximized { height: 1fr; max-height: 100%; width: 1fr; overflow-x: auto; }
    """
    # The logs full screen (L) keep the header and the keys; escape there clears their
    # filter first (``action_clear_filter``).
    ALLOW_IN_MAXIMIZED_VIEW = "StatusHeader, KeyFooter"
    ESCAPE_TO_MINIMIZE = False

    def __init__(self, engine: Engine, monitor: Monitor | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.monitor = monitor
        self.state = FleetState(engine)
        self.bridge = EngineBridge(self)
        self.log_follow: str | None = None  # a host; None: the canaries
        self._log_hosts: list[str] = []
        self.journal_follow: JournalFollow | None = None  # on a live screen: from mount
        # Subscribed from the start: events sent before the screen runs wait in its queue.
        self._unsubscribe: object = engine.subscribe(self.bridge)
        self.repaint = Repaint(self)
        self._mark = self.repaint.mark

    # Layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.state, id="status")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield FleetGrid(self.state, id="grid")
                yield LogPane(id="logs")
            with SideColumn(id="right"):
                yield HostPanel(self.state, id="host")
                yield RolloutProgress(self.state, id="progress")
        yield FilterBar(id="filter")
        yield KeyFooter(compact=True)

    @property
    def grid(self) -> FleetGrid:
        return self.query_one(FleetGrid)

    def on_mount(self) -> None:
        record = self.engine.load_open()
        if record is not None:
            self.state.load_from_journal(record)
            elsewhere = self.engine.driven_elsewhere(record)
            if elsewhere is not None:
                elsewhere += "; this screen shows it as it goes"
            self._tell(notices.for_open(record, elsewhere or self.engine.cannot_continue(record)))
        else:
            self.state.recall_last()
        if self.LIVE:  # what another process of this machine drives, shown as it goes

            def everything() -> None:  # (the keys that act now too)
                self._mark(grid=True, panel=True, status=True)
                self.refresh_bindings()

            self.journal_follow = JournalFollow(self, self.engine, everything, self.state)
            self.set_interval(FOLLOW_INTERVAL, self.journal_follow)
        grid = self.grid
        grid.focus()
        grid.border_title = self._grid_title()
        self.query_one(HostPanel).show(grid.cursor_host)
        if self.monitor is not None:
            self.monitor.focus(grid.cursor_host)
        self._sync_watch()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_columns)

    def _fit_columns(self) -> None:
        """The right column (host, rollout, verdict) gets what the grid does not need."""
        rows = max(1, (self.grid.size.height - 2 + ROW_GAP) // PITCH_Y)
        columns = math.ceil(len(self.state.env.hosts) / rows)
        right = side_width(self.size.width, columns * PITCH_X - COLUMN_GAP + 4)
        column = self.query_one("#right")
        if column.styles.width is None or column.styles.width.value != right:
            column.styles.width = right

    def on_unmount(self) -> None:
        self.bridge.close()
        if callable(self._unsubscribe):
            self._unsubscribe()
            self._unsubscribe = None

    def repaint_now(self) -> None:  # (tests call it to skip the wait)
        self.repaint.now()

    # Engine messages ------------------------------------------------------------------

    @on(EngineEvents)
    def _engine_events(self, message: EngineEvents) -> None:
        grid = self.grid
        focused = grid.cursor_host
        visible: set[str] | None = None
        revision, phase_changed, updated = self.state.analysis_log.revision, False, []
        for event in message.events:
            self.state.apply(event)
            phase_changed |= isinstance(event, ev.PhaseChanged | ev.DeploymentFinished)
            if isinstance(event, ev.HostUpdate):
                if visible is None:
                    visible = set(grid.visible_hosts())
                self._mark(
                    hosts=(event.host,) if event.host in visible else (),
                    panel=event.host == focused,
                    status=event.version is not None or self.state.active,
                )
                updated.append(event.host)
                continue
            if isinstance(event, ev.StepResult):
                self._mark(panel=event.host == focused)
                continue
            self._mark(
                grid=isinstance(
                    event, ev.DeploymentStarted | ev.DeploymentFinished | ev.PhaseChanged
                ),
                panel=isinstance(event, ev.DeploymentStarted),
                status=True,
            )
            if isinstance(event, ev.DeploymentStarted | ev.DeploymentFinished | ev.PhaseChanged):
                self.grid.border_title = self._grid_title()  # picks are for the next one
            if isinstance(event, ev.DeploymentStarted | ev.DeploymentFinished):
                self._sync_watch()
            self._tell(notices.for_event(event, live=self.LIVE and not message.followed))
        self._refilter(self.state.env.host_names if phase_changed else updated)
        if phase_changed:
            self.refresh_bindings()  # the keys that act now (``fleet_keys.offered``)
        if phase_changed or self.state.analysis_log.revision != revision:
            for screen in self.app.screen_stack:
                if isinstance(screen, AnalysisScreen):
                    screen.post_message(AnalysisChanged())

    @on(HealthBatch)
    def _health_batch(self, message: HealthBatch) -> None:
        touched = self.state.add_samples(message.samples)
        grid = self.grid
        visible = set(grid.visible_hosts())
        self._mark(hosts=touched & visible, panel=grid.cursor_host in touched)
        self._refilter(touched)

    @on(LogBatch)
    def _log_batch(self, message: LogBatch) -> None:
        self.query_one(LogPane).add_batch(
            message.lines, message.dropped, hosts=set(self._log_hosts)
        )

    @on(OperatorResult)
    def _operator_result(self, message: OperatorResult) -> None:
        question = self.engine.state.question
        if message.outcome is ev.Outcome.HALTED and question is not None:
            self.ask_failure(question)
        if message.error is not None:
            # Refused before it opened (one that opened has said so: ``DeploymentStarted``).
            self.state.starting = None
            self.state.recall_last()
            self._tell(notices.for_refusal(message.action, message.error))
        elif message.outcome is not None:
            d = self.state.deployment
            self._tell(
                notices.for_outcome(
                    message.action,
                    message.outcome,
                    version=d.version if d is not None else "",
                    wave=self.state.wave,
                    waves=self.state.waves,
                    short_of=notices.short_of(self.engine.state),
                )
            )
        self._mark(grid=True, panel=True, status=True)
        self.refresh_bindings()  # the call has ended: the keys that act now again

    def _tell(self, note: notices.Announcement | None) -> None:
        """Show what ``ui.notices`` made of an event or outcome (None: nothing to say)."""
        if (n := note) is not None:  # a replay's own said as such (they looked live)
            title = n.title if self.LIVE else f"replay {n.title}".strip()
            self.notify(
                n.message, title=title, severity=n.severity, timeout=n.timeout, markup=False
            )

    @on(FleetGrid.HostFocused)
    def _host_focused(self, message: FleetGrid.HostFocused) -> None:
        self.query_one(HostPanel).show(message.name)
        if self.monitor is not None:
            self.monitor.focus(message.name)

    # What is watched ------------------------------------------------------------------

    def _sync_watch(self) -> None:
        """Tell the monitor which hosts to probe fast and whose logs to stream."""
        d = self.state.deployment
        if self.log_follow is not None:
            hosts, title = [self.log_follow], self.log_follow
        else:
            live = d is not None and self.state.active
            hosts = list(d.canaries) if d is not None and live else self.state.canaries_for_deploy()
            title = "canaries " + ", ".join(hosts)
        self._log_hosts = hosts
        self.query_one(LogPane).set_source(title if len(title) < 60 else title[:59] + "…")
        if self.monitor is not None:
            self.monitor.interest = set(self.state.picked)
            self.monitor.watch_logs(hosts)

    def _grid_title(self) -> Content:
        total = len(self.state.env.hosts)
        shown = len(self.state.shown)
        title = f"fleet · {total} hosts"
        if self.state.filter_text:
            title += f" · filter {self.state.filter_text!r}: {shown} shown"
        if (n := len(self.state.picked)) and not self.state.active:
            title += f" · {n} canar{'y' if n == 1 else 'ies'} picked"
        return plain_title(title)

    # Keys (d, p and r are the rollout actions, in ``OperatorActions``) -------------------

    def _canaries_fixed(self) -> bool:
        if self.state.active:
            self.notify(
                "canaries are fixed while a deployment is open", severity="warning", markup=False
            )
        return self.state.active

    def action_toggle_canary(self) -> None:
        name = self.grid.cursor_host
        if name is None or self._canaries_fixed():
            return
        said = "picked" if self.state.toggle_pick(name) else "no longer picked"
        self.notify(f"{name} {said} as canary", timeout=3, markup=False)
        self._after_pick()

    def action_default_canaries(self) -> None:
        if self._canaries_fixed():
            return
        picked = self.state.pick_defaults()
        self.notify(f"default canaries: {', '.join(picked)}", timeout=3, markup=False)
        self._after_pick()

    def _after_pick(self) -> None:
        self._refilter(self.state.env.host_names)  # a filter by ``canary`` follows picks
        self.grid.border_title = self._grid_title()
        self._sync_watch()
        self._mark(grid=True, panel=True, status=True)

    def action_logs(self) -> None:
        name = self.grid.cursor_host
        if name is None:
            return
        self.log_follow = None if self.log_follow == name else name
        self._sync_watch()
        self.notify(f"logs: {self.log_follow or 'the canaries'}", timeout=2, markup=False)

    def action_logs_full(self) -> None:
        """The log pane over the whole screen (more of each line in a narrow terminal, the
        arrows scrolling the rest), and back (L again, or escape)."""
        pane = self.query_one(LogPane)
        if self.maximized is pane:
            self.minimize()
        elif self.maximize(pane, container=False):
            pane.focus()  # the arrows and page keys scroll the logs, both ways
        self.refresh_bindings()  # (the footer's way back)

    def watch_maximized(self, maximized: Widget | None) -> None:
        if maximized is None and self.is_mounted:
            # Back on the grid (escape comes here too), the pane's lines from their start.
            # (Set, not scrolled to: a pane that does not scroll sideways ignores scroll_to.)
            pane = self.query_one(LogPane)
            pane.scroll_target_x = pane.scroll_x = 0
            self.grid.focus()

    def action_details(self) -> None:
        name = self.grid.cursor_host
        if name is not None:
            self.app.push_screen(HostDetailsScreen(self.state, name))

    def action_analysis(self) -> None:
        self.app.push_screen(AnalysisScreen(self.state))

    def action_tiles(self) -> None:
        self.grid.compact = not self.grid.compact

    def action_history(self) -> None:
        env = self.state.env
        self.app.push_screen(HistoryScreen(self.engine.journal, env.name, env.app))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    # Filter (the bar reports, this applies) ---------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).show()

    def action_clear_filter(self) -> None:
        pane = self.query_one(LogPane)
        if pane in (self.maximized, self.focused) and pane.escape():
            return
        if self.maximized is not None:
            return self.minimize()
        bar = self.query_one(FilterBar)
        if bar.shown or self.state.filter_text:
            bar.clear()
            bar.hide()
            self._apply_filter("")
            self.grid.focus()

    @on(FilterBar.Edited)
    def _filter_edited(self, message: FilterBar.Edited) -> None:
        self._apply_filter(message.text)

    @on(FilterBar.Done)
    def _filter_done(self) -> None:
        self.grid.focus()

    def _apply_filter(self, text: str) -> None:
        self.state.apply_filter(text)
        grid = self.grid
        grid.hosts_changed()
        grid.border_title = self._grid_title()

    def _refilter(self, hosts: list[str] | set[str]) -> None:
        """Hosts whose state changed: only they can enter or leave the filter."""
        if self.state.refilter(hosts):
            self.grid.hosts_changed()
            self.grid.border_title = self._grid_title()
