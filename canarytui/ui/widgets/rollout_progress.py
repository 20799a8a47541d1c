"""Rollout progress: hosts done of total per wave, the analysis countdown, the verdict with
its reasons and measured values, and what the operator can do next."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from canarytui import events as ev
from canarytui.textsafe import harmless, harmless_block
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.safe_text import plain_title
from canarytui.ui.widgets.state_text import StateText

BAR_WIDTH = 12
REASONS_SHOWN = 4
MEASUREMENTS_SHOWN = 6


class RolloutProgress(StateText):
    """Rendered from the fleet state; ``redraw()`` after changes. Versions, users, host
    names, reasons and summaries are shown as they are (``harmless``, no markup)."""

    DEFAULT_CSS = """
    RolloutProgress {
        border: round $foreground 25%;
        border-title-color: $text;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
        height: 1fr;
        overflow-y: auto;
    }
    RolloutProgress > .rollout-progress--done { color: $state-deployed; }
    RolloutProgress > .rollout-progress--failed { color: $state-failing; }
    RolloutProgress > .rollout-progress--active { color: $state-deploying; }
    RolloutProgress > .rollout-progress--rolled-back { color: $state-rolled-back; }
    RolloutProgress > .rollout-progress--todo { color: $text-disabled; }
    RolloutProgress > .rollout-progress--label { color: $text-muted; }
    RolloutProgress > .rollout-progress--pass { color: $success; text-style: bold; }
    RolloutProgress > .rollout-progress--fail { color: $error; text-style: bold; }
    RolloutProgress > .rollout-progress--inconclusive { color: $warning; text-style: bold; }
    RolloutProgress > .rollout-progress--key { color: $accent; text-style: bold; }
    """

    COMPONENT_CLASSES = {
        "rollout-progress--done",
        "rollout-progress--failed",
        "rollout-progress--rolled-back",
        "rollout-progress--active",
        "rollout-progress--todo",
        "rollout-progress--label",
        "rollout-progress--pass",
        "rollout-progress--fail",
        "rollout-progress--inconclusive",
        "rollout-progress--key",
    }

    def __init__(self, state: FleetState, *, id: str | None = None) -> None:
        super().__init__(state, id=id)
        self.border_title = "rollout"

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"rollout-progress--{name}")

    def redraw(self) -> None:
        state = self.state
        d = state.deployment
        text = Text()
        label = self._style("label")
        if d is None:
            self.border_title = "rollout"
            text.append("No deployment yet.\n\n", label)
            picks = state.canaries_for_deploy()
            text.append("canaries ", label)
            text.append(harmless(", ".join(picks)) + ("" if state.picked else " (default)") + "\n")
            self._keys(
                text, [("space", "toggle canary"), ("c", "default canaries"), ("d", "deploy")]
            )
            self._put(text)
            return
        self.border_title = plain_title(f"rollout #{d.id} · {d.version}")
        text.append("by ", label)
        text.append(f"{harmless(d.user)}  ")
        text.append("phase ", label)
        text.append(state.phase_label() + "\n")
        for wave in state.wave_progress():
            self._bar(
                text, wave.label, wave.done, wave.failed, wave.active, wave.total, wave.rolled_back
            )
        self._analysis(text)
        self._verdict(text)
        if state.finished is not None and state.finished.deployment == d.id:
            text.append("\noutcome ", label)
            text.append(
                state.finished.outcome.value,
                self._style("pass" if state.finished.outcome is ev.Outcome.COMPLETE else "fail"),
            )
            text.append(f"\n{harmless_block(state.finished.summary)}\n")
        self._next_keys(text)
        self._put(text)

    def _bar(
        self,
        text: Text,
        label: str,
        done: int,
        failed: int,
        active: int,
        total: int,
        rolled_back: int = 0,
    ) -> None:
        text.append(f"{label:<8}", self._style("label"))
        if total:
            cells = [
                (done, "done", "█"),
                (failed, "failed", "█"),
                (active, "active", "▒"),
                (rolled_back, "rolled-back", "▓"),
            ]
            used = 0
            for count, style, char in cells:
                n = round(BAR_WIDTH * count / total)
                n = min(n, BAR_WIDTH - used)
                if count and n == 0 and used < BAR_WIDTH:
                    n = 1
                text.append(char * n, self._style(style))
                used += n
            text.append("░" * (BAR_WIDTH - used), self._style("todo"))
        extra = f", {failed} failed" if failed else ""
        extra += f", {rolled_back} rolled back" if rolled_back else ""
        text.append(f" {done}/{total}{extra}\n")

    def _analysis(self, text: Text) -> None:
        state = self.state
        label = self._style("label")
        a = state.analysis
        if a is None or a.deployment != (state.deployment.id if state.deployment else None):
            if state.engine.phase is ev.Phase.ANALYSIS:
                text.append("analysis ", label)
                text.append("starting\n")
            return
        left = max(0.0, a.duration - a.elapsed)
        text.append("analysis ", label)
        if state.verdict is None and state.engine.phase is ev.Phase.ANALYSIS:
            text.append(f"{a.elapsed:.0f}s of {a.duration:.0f}s, {left:.0f}s left\n")
        else:
            text.append(f"{a.elapsed:.0f}s of {a.duration:.0f}s\n")
        if state.verdict is None:
            for m in a.measurements[:MEASUREMENTS_SHOWN]:
                self._measurement(text, m, limit=m.passed is False)

    def _verdict(self, text: Text) -> None:
        state = self.state
        v = state.verdict
        if v is None or state.deployment is None or v.deployment != state.deployment.id:
            return
        text.append("verdict  ", self._style("label"))
        text.append(v.verdict.value.upper() + "\n", self._style(v.verdict.value))
        measured = {m.describe() for m in v.measurements}
        # Reasons that are not a measurement (a canary that failed its deploy, no data...).
        other = [r for r in v.reasons if r not in measured]
        for reason in other[:REASONS_SHOWN]:
            text.append(f" • {harmless(reason)}\n")
        if len(other) > REASONS_SHOWN:
            text.append(f" … {len(other) - REASONS_SHOWN} more\n", self._style("label"))
        if v.verdict is ev.Verdict.PASS:
            if state.engine.phase is ev.Phase.AWAITING_PROMOTION and not state.wave:
                for m in v.measurements[:MEASUREMENTS_SHOWN]:
                    self._measurement(text, m, limit=False)
            return
        failed = [m for m in v.measurements if m.passed is False]
        for m in (failed or v.measurements)[:MEASUREMENTS_SHOWN]:
            self._measurement(text, m, limit=True)

    def _measurement(self, text: Text, m: ev.Measurement, limit: bool) -> None:
        """``✗ web-01 error-ratio 0.21 (baseline 0.005)``, then its limit if asked."""
        mark, style = {True: ("✓", "done"), False: ("✗", "failed"), None: ("·", "todo")}[m.passed]
        value = "no data" if m.value is None else f"{m.value:.4g}"
        text.append(f" {mark} ", self._style(style))
        text.append(harmless(f"{m.host} {m.rule} {value}"))
        if m.baseline is not None:
            text.append(f" (baseline {m.baseline:.4g})", self._style("label"))
        text.append("\n")
        if limit:
            text.append(f"   limit {harmless(m.limit)}\n", self._style("label"))

    def _next_keys(self, text: Text) -> None:
        phase = self.state.engine.phase
        if phase in (ev.Phase.AWAITING_PROMOTION, ev.Phase.HALTED):
            self._keys(text, [("p", "promote"), ("r", "roll back")])
        elif phase in (ev.Phase.CANARY, ev.Phase.ANALYSIS, ev.Phase.PROMOTING):
            self._keys(text, [("r", "roll back")])
        elif phase is ev.Phase.COMPLETE:
            self._keys(text, [("d", "deploy"), ("r", "roll back")])
        else:
            self._keys(text, [("d", "deploy")])

    def _keys(self, text: Text, keys: list[tuple[str, str]]) -> None:
        text.append("\n")
        for i, (key, what) in enumerate(keys):
            if i:
                text.append("  ")
            text.append(f" {key} ", self._style("key"))
            text.append(what)
        text.append("\n")
