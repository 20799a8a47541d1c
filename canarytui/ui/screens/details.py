"""Everything about one host: configuration, state, last step's full output, health, metrics."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Sparkline, Static

from canarytui.metrics.page import series_text
from canarytui.textsafe import harmless, harmless_block
from canarytui.ui.fleet_state import FleetState, left_note
from canarytui.ui.widgets.key_footer import KeyFooter

SERIES_SHOWN = 60  # series of a host listed at most


class HostDetailsScreen(Screen[None]):
    DEFAULT_CSS = """
    HostDetailsScreen #title {
        dock: top;
        height: 1;
        background: $panel;
        text-style: bold;
        padding: 0 1;
    }
    HostDetailsScreen VerticalScroll { padding: 0 1; }
    HostDetailsScreen .caption { color: $text-muted; margin-top: 1; }
    HostDetailsScreen Sparkline { height: 3; }
    HostDetailsScreen Sparkline > .sparkline--max-color { color: $primary; }
    HostDetailsScreen Sparkline > .sparkline--min-color { color: $primary 40%; }
    """

    BINDINGS = [Binding("escape,enter,q", "close", "Back")]

    def __init__(self, state: FleetState, host: str) -> None:
        super().__init__()
        self.state = state
        self.host = host

    def compose(self) -> ComposeResult:
        yield Static(harmless(f" host · {self.host}"), id="title", markup=False)
        with VerticalScroll():
            yield Static(self._info(), id="info")
            yield Static("health history: latency (ms), 0 = failed", classes="caption")
            yield Sparkline(list(self.state.hosts[self.host].latencies), id="health")
            yield Static(self._metrics(), id="metrics")
            yield Static(self._step(), id="step")
        yield KeyFooter()

    def on_mount(self) -> None:
        # Live while open: what the fleet screen learns shows here within a second.
        self.set_interval(1.0, self.refresh_details)

    def refresh_details(self) -> None:
        self.query_one("#info", Static).update(self._info())
        self.query_one("#health", Sparkline).data = list(self.state.hosts[self.host].latencies)
        self.query_one("#metrics", Static).update(self._metrics())
        self.query_one("#step", Static).update(self._step())

    def _info(self) -> Text:
        state = self.state
        engine = state.engine
        host = state.env.host(self.host)
        view = state.hosts[self.host]
        text = Text()
        rows = [
            ("address", host.address + (f":{host.port}" if host.port else "")),
            ("user", host.user or state.env.ssh.user or "(default)"),
            ("roles", ", ".join(host.roles) or "-"),
            ("labels", ", ".join(f"{k}={v}" for k, v in host.labels.items()) or "-"),
            ("version", _version_said(state, self.host)),
            ("previous", engine.previous.get(self.host) or "-"),
            ("state", state.state_text(self.host)),
            ("canary", "yes" if state.is_canary(self.host) else "no"),
        ]
        if view.probed:
            health = {True: "ok", False: "failing", None: "no answer"}[view.ok]
            if view.latency is not None:
                health += f" ({view.latency * 1000:.0f} ms)"
            rows.append(("health", health))
            if view.health_detail:
                rows.append(("probe", view.health_detail))
        held = state.lock_of(self.host)
        if held is not None:  # whose the host is, whole (the side panel cuts it)
            rows.append(("lock", f"held by {held.owner}{left_note(held)}"))
        detail = engine.details.get(self.host)
        if detail:
            rows.append(("detail", detail))
        for label, value in rows:  # a host's and the env file's text: shown as it is
            text.append(f"{label:<10}", "dim")
            text.append(harmless_block(value) + "\n")
        return text

    def _metrics(self) -> Text:
        values = self.state.hosts[self.host].metrics
        text = Text()
        rules = self.state.key_metrics(self.host)
        if rules:
            text.append("analysis rules on this host (recent samples)\n", "bold")
            for name, value in rules:
                text.append(f" {harmless(name):<48}", "dim")
                text.append(("no data" if value is None else f"{value:.4g}") + "\n")
            text.append("\n")
        if values:
            text.append("series the rules read (latest)\n", "bold")
            shown = 0
            for reading, series in sorted(values.items()):  # names and labels from the host
                listed = sorted((series_text(key), value) for key, value in series.items())
                for (*_, label), value in listed:
                    if shown >= SERIES_SHOWN:
                        text.append(f" ... and more ({reading})\n", "dim")
                        return text
                    text.append(f" {harmless(label):<60}", "dim")
                    text.append(f"{value:>14.6g}\n")
                    shown += 1
        return text

    def _step(self) -> Text:
        view = self.state.hosts[self.host]
        text = Text()
        if view.last_step is None:
            text.append("no step run on this host in this session\n", "dim")
            return text
        status = "timed out" if view.last_exit is None else f"exit {view.last_exit}"
        step = harmless(f"{view.last_action or ''} {view.last_step}")
        text.append(f"last step: {step} ({status})\n", "bold")
        text.append(harmless_block(view.last_output) or "(no output)")
        return text

    def action_close(self) -> None:
        self.dismiss(None)


def _version_said(state: FleetState, name: str) -> str:
    """The version as last known, and, when its release failed part way, that it may not
    be what the host runs now (what the grid marks with ``?``)."""
    shown = state.version_text(name)
    d = state.deployment
    if not shown.endswith("?") or shown == "?" or d is None:
        return shown
    return f"{shown[:-1]} as last known: its release stopped part way, it may run {d.version} now"
