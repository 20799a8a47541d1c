"""The side panel: the focused host's address, roles, labels, version, last step and output,
health history (sparkline) and key metrics.

Each part has a fixed height (its most lines; a longer line ends in ``…``, the details view,
Enter, has it whole), so the panel keeps its size from host to host: moving the cursor
repaints it and never lays the screen out again, which on a big fleet under a release
cost a key 10-30 ms more (a layout, then another for the sizes it changed)."""

from __future__ import annotations

import time

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline

from canarytui.ssh import without_host
from canarytui.textsafe import harmless
from canarytui.ui.fleet_state import FleetState, left_note
from canarytui.ui.widgets.state_text import PanelText, set_title

VALUE_LIMIT = 200  # characters of one value shown

OUTPUT_LINES = 4
METRICS_SHOWN = 6
INFO_LINES = 7  # address, roles, labels, version, state, health, note
STEP_LINES = 1 + OUTPUT_LINES


class HostPanel(Vertical):
    """Shows one host; ``show(name)`` to switch, ``refresh_host()`` after it changed."""

    DEFAULT_CSS = f"""
    HostPanel {{
        border: round $foreground 25%;
        border-title-color: $text;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
        height: 1fr;
    }}
    HostPanel > PanelText {{ text-wrap: nowrap; text-overflow: ellipsis; }}
    HostPanel > #host-info {{ height: {INFO_LINES}; }}
    HostPanel > #host-caption {{ color: $text-muted; height: 1; }}
    HostPanel > Sparkline {{ height: 2; margin: 0; }}
    HostPanel > Sparkline > .sparkline--max-color {{ color: $primary; }}
    HostPanel > Sparkline > .sparkline--min-color {{ color: $primary 40%; }}
    HostPanel > #host-metrics {{ color: $text; }}
    HostPanel > #host-step {{ height: {STEP_LINES}; color: $text; }}
    HostPanel > .host-panel--error {{ color: $error; text-style: bold; }}
    """

    COMPONENT_CLASSES = {"host-panel--error"}

    def __init__(self, state: FleetState, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = state
        self.host: str | None = None

    def compose(self) -> ComposeResult:
        yield PanelText(id="host-info", fixed=True)
        yield PanelText(id="host-caption", fixed=True)
        yield Sparkline([], id="host-health")
        metrics = PanelText(id="host-metrics", fixed=True)
        rules = len(self.state.env.canary.analysis.rules)
        # The heading and a line per rule, as many as shown; none without rules.
        metrics.styles.height = 1 + min(rules, METRICS_SHOWN) if rules else 0
        yield metrics
        yield PanelText(id="host-step", fixed=True)

    def show(self, name: str | None) -> None:
        self.host = name
        self.refresh_host()

    def refresh_host(self) -> None:
        if not self.is_mounted:
            return
        name = self.host
        info = self.query_one("#host-info", PanelText)
        caption = self.query_one("#host-caption", PanelText)
        metrics = self.query_one("#host-metrics", PanelText)
        step = self.query_one("#host-step", PanelText)
        spark = self.query_one(Sparkline)
        if name is None or name not in self.state.hosts:
            set_title(self, "no host")
            info.put("No host selected.")
            caption.put("")
            metrics.put("")
            step.put("")
            spark.data = []
            spark.visible = False  # an empty sparkline draws a flat line: no history
            return
        state = self.state
        host = state.env.host(name)
        view = state.hosts[name]
        engine = state.engine
        # The tile's badge: ◆ a canary of the deployment open, ◇ picked for the next one.
        badge = ("  ◆ canary" if state.active else "  ◇ canary") if state.is_canary(name) else ""
        set_title(self, name + badge)
        text = Text()
        _row(text, "address", host.address + (f":{host.port}" if host.port else ""))
        _row(text, "roles", ", ".join(host.roles) or "-")
        _row(text, "labels", ", ".join(f"{k}={v}" for k, v in host.labels.items()) or "-")
        _row(text, "version", state.version_text(name))
        _row(text, "state", state.state_text(name))
        if view.probed:
            health = {True: "ok", False: "failing", None: "no answer"}[view.ok]
            if view.latency is not None:
                health += f" ({view.latency * 1000:.0f} ms)"
            _row(text, "health", health)
        detail = engine.details.get(name) or (view.health_detail if view.ok is not True else "")
        held = state.lock_of(name)
        if held is not None:  # at rest, what matters first: whose the host is now
            _row(text, "note", f"locked by {held.owner}{left_note(held)}")
        elif detail:  # without the host and address the panel says above it
            _row(text, "note", (without_host(host, detail).strip().splitlines() or [""])[-1])
        info.put(text)
        samples = list(view.latencies)
        failed = sum(1 for x in samples if x == 0.0)
        if samples:
            caption.put(f"health: {len(samples) - failed} ok, {failed} failed; latency")
        else:
            caption.put("health: no sample yet")
        shown = samples if len(samples) >= 2 else []  # one sample draws no history
        if spark.data != shown:
            spark.data = shown
        spark.visible = bool(shown)
        measured = next((x.at for x in reversed(view.series.samples) if x.metrics), None)
        age = time.time() - measured if measured is not None else 0.0
        metrics.put(
            _metrics_text(state.key_metrics(name), len(view.series.samples), age, state.old_after)
        )
        now = state.deployment.id if state.deployment is not None else None
        of = view.last_of if view.last_of not in (None, now) else None  # an older one's
        step.put(
            _step_text(
                view.last_step,
                of,
                view.last_action,
                view.last_exit,
                view.last_output,
                view.last_duration,
                self.get_component_rich_style("host-panel--error"),
            )
        )


def _row(text: Text, label: str, value: str) -> None:
    """One ``label value`` line; the value (a host's or the env file's text) as it is."""
    text.append(f"{label:<8}", "dim")
    text.append(harmless(value, VALUE_LIMIT) + "\n")


def _metrics_text(
    values: list[tuple[str, float | None]], samples: int, age: float, old_after: float
) -> Text:
    text = Text()
    if not values:
        return text
    # Last measured long ago (a host that stopped answering): said, not shown as now.
    if age >= old_after:
        text.append(f"key metrics, {samples} sample(s), {age:.0f}s old\n", "dim")
    else:
        text.append(f"key metrics, last {samples} sample(s)\n", "dim")
    for key, value in values[:METRICS_SHOWN]:
        text.append(f" {harmless(key)[:24]:<24} ", "dim")
        text.append(("no data" if value is None else f"{value:.4g}") + "\n")
    return text


def _step_text(
    step: str | None,
    of: int | None,
    action: str | None,
    exit_status: int | None,
    output: str,
    duration: float | None,
    error: Style,
) -> Text:
    text = Text()
    if step is None:
        return text
    status = "timed out" if exit_status is None else f"exit {exit_status}"
    style: Style | str = "bold" if exit_status == 0 else error
    text.append("last step " if of is None else f"last step of #{of} ", "dim")
    text.append(harmless(f"{action} {step}" if action else step, VALUE_LIMIT) + ": ", "bold")
    text.append(status, style)
    if duration is not None:
        text.append(f" ({duration:.1f}s)", "dim")
    text.append("\n")
    # Lines end at "\n" only: any other break (NEL, VT...) is shown as a placeholder.
    lines = [line for line in output.replace("\r\n", "\n").split("\n") if line.strip()]
    lines = lines[-OUTPUT_LINES:]
    for line in lines:
        text.append(" " + harmless(line, VALUE_LIMIT) + "\n", "dim")
    return text
