"""The header: environment, app, phase (held by whom), traffic, stable and candidate versions."""

from __future__ import annotations

import time

from rich.text import Text

from canarytui import events as ev
from canarytui.textsafe import harmless
from canarytui.ui.widgets.state_text import StateText

# Phase -> component class (its colour comes from the theme).
_PHASE_CLASS = {
    ev.Phase.IDLE: "idle",
    ev.Phase.CANARY: "running",
    ev.Phase.ANALYSIS: "running",
    ev.Phase.AWAITING_PROMOTION: "waiting",
    ev.Phase.PROMOTING: "running",
    ev.Phase.COMPLETE: "good",
    ev.Phase.ROLLING_BACK: "bad",
    ev.Phase.ROLLED_BACK: "bad",
    ev.Phase.HALTED: "bad",
}


class StatusHeader(StateText):
    """One line at the top; ``redraw()`` after state changes."""

    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
    }
    StatusHeader > .status-header--app { color: $text; text-style: bold; }
    StatusHeader > .status-header--label { color: $text-muted; }
    StatusHeader > .status-header--idle { color: $text-muted; text-style: bold; }
    StatusHeader > .status-header--running {
        background: $state-deploying; color: auto 95%; text-style: bold;
    }
    StatusHeader > .status-header--waiting {
        background: $state-canary; color: auto 95%; text-style: bold;
    }
    StatusHeader > .status-header--good {
        background: $state-deployed; color: auto 95%; text-style: bold;
    }
    StatusHeader > .status-header--bad {
        background: $state-failing; color: auto 95%; text-style: bold;
    }
    """

    COMPONENT_CLASSES = {
        "status-header--app",
        "status-header--label",
        "status-header--idle",
        "status-header--running",
        "status-header--waiting",
        "status-header--good",
        "status-header--bad",
    }

    def redraw(self) -> None:
        text = self._line(compact=False)
        if text.cell_len > self.size.width > 0:
            # A narrow terminal (80 columns) keeps the phase and both versions in view.
            text = self._line(compact=True)
        self._put(text)

    def on_resize(self) -> None:
        self.redraw()

    def _line(self, compact: bool) -> Text:
        """The header's line; ``compact``: without the name and labels, ``env/app`` and
        ``stable → candidate``."""
        state = self.state
        env = state.env
        style = self.get_component_rich_style
        phase = state.engine.phase
        stable, candidate = state.versions()
        text = Text(no_wrap=True, overflow="ellipsis")
        if compact:
            text.append(f" {harmless(env.name)}/{harmless(env.app)}", style("status-header--app"))
            text.append("  ")
        else:
            text.append(" canarytui ", style("status-header--app"))
            text.append(" env ", style("status-header--label"))
            text.append(harmless(env.name), style("status-header--app"))
            text.append("  app ", style("status-header--label"))
            text.append(harmless(env.app), style("status-header--app"))
            text.append("  phase ", style("status-header--label"))
        text.append(
            f" {state.phase_label()} ", style(f"status-header--{_PHASE_CLASS.get(phase, 'idle')}")
        )
        d = state.deployment
        if d is not None and state.active:
            text.append(f" #{d.id}", style("status-header--label"))
            held = state.engine.state.held
            if held is not None:
                who, since = held
                clock = time.strftime("%H:%M", time.localtime(since))
                text.append("  ")
                text.append(
                    f" HELD by {harmless(who)} since {clock} ",
                    style("status-header--waiting"),
                )
        if state.traffic is not None and (state.active or state.traffic.phase == "complete"):
            shift = state.traffic
            text.append("  traffic ", style("status-header--label"))
            text.append(
                f"{shift.percent} % new" if shift.ok else f"{shift.phase} hook FAILED",
                style("status-header--app" if shift.ok else "status-header--bad"),
            )
        # What the hosts run (as they print it) and the release typed: shown as they are.
        if compact:
            text.append("  ")
            text.append(harmless(stable or "?"), style("status-header--app"))
            if candidate:
                text.append(" → ", style("status-header--label"))
                text.append(harmless(candidate), style("status-header--app"))
        else:
            text.append("  stable ", style("status-header--label"))
            text.append(harmless(stable or "?"), style("status-header--app"))
            text.append("  candidate ", style("status-header--label"))
            text.append(harmless(candidate or "-"), style("status-header--app"))
        text.append(f"  {len(env.hosts)} hosts", style("status-header--label"))
        return text
