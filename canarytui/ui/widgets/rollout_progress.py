"""Rollout progress: hosts done per wave, the analysis, the verdict, the keys that apply.

The analysis shows its countdown, the verdict one line per failing or undecided rule. These
lines fit the panel: a longer one ends in ``…`` (the analysis view, ``a``, has the whole
table). The panel redraws when its width changes.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.style import Style
from rich.text import Text
from textual.timer import Timer

from canarytui import events as ev
from canarytui.metrics import STOPPED
from canarytui.textsafe import harmless, harmless_block, listed
from canarytui.ui.fleet_state import FleetState
from canarytui.ui.keys_now import keys_now
from canarytui.ui.waves import WaveProgress
from canarytui.ui.widgets.state_text import StateText, key_lines, set_title

BAR_WIDTH = 12
DEFAULT_WIDTH = 42  # characters a line has before the panel is laid out
REASONS_SHOWN = 4
MEASUREMENTS_SHOWN = 6
VERSIONS_SHOWN = 3  # versions a fleet at rest on several is said to run, the most run first
VERSION_SHOWN = 40  # characters of one of them
COUNTS_EVERY = 1.0  # seconds between two counts of the versions the fleet runs
LOCKS_SHOWN = 2  # owners of locks held at rest said (hosts another deployment holds)
LOCK_SHOWN = 160  # characters of one owner
# A measurement's state -> (its mark, the style of the mark).
_MARKS = {"pass": ("✓", "done"), "fail": ("✗", "failed"), "undecided": ("?", "inconclusive")}
_MARKS["no data"] = ("·", "todo")
_STATE_STYLES = {state: style for state, (_, style) in _MARKS.items()}


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
        # The fleet's versions, counted at most once in COUNTS_EVERY s (a fleet whose
        # hosts' versions change many times a second drew the panel anew each time), and
        # again that long after the last count, so what it says is never older.
        self._counts: list[tuple[str, int]] = []
        self._counted_at = -COUNTS_EVERY
        self._recount: Timer | None = None
        self._offered: tuple[str, ...] = ()  # the keys its last key line named

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"rollout-progress--{name}")

    def redraw(self) -> None:
        state = self.state
        d = state.deployment
        text = Text()
        label = self._style("label")
        if state.starting is not None:
            starting = state.starting
            set_title(self, f"rollout · starting {harmless(starting.version)}")
            text.append(f"{starting.doing.capitalize()} {harmless(starting.version)}: ")
            text.append(f"locking {starting.hosts} host(s) and reading what each runs…\n", label)
            self._waiting(text)
            self._put(text)
            return
        if d is None and state.replaying:  # (the journal's last and the live keys: not its)
            set_title(self, "rollout · replay")
            self._put(Text("Its deployment starts at its first event (space plays).\n", label))
            return
        if d is None:
            set_title(self, "rollout")
            self._last(text)
            if self._locks(text) | self._versions(text):
                text.append("\n")
            picks = state.canaries_for_deploy()
            text.append("canaries ", label)
            text.append(harmless(listed(picks, 10)) + ("" if state.picked else " (default)") + "\n")
            self._keys(
                text, [("space", "toggle canary"), ("c", "default canaries"), ("d", "deploy")]
            )
            self._put(text)
            return
        set_title(self, f"rollout #{d.id} · {d.version}" + d.limited(len(state.env.hosts), " · "))
        user, phase = harmless(d.user), state.phase_label()
        if len(f"by {user}  phase {phase}") <= self._width():  # narrow: the phase, one line
            text.append("by ", label)
            text.append(f"{user}  ")
        text.append("phase ", label)
        text.append(phase + "\n")
        top = len(text)  # where the keys go when they would not be seen at the end
        self._waiting(text)  # a promote's locks taken again (another process's)
        for wave in state.wave_progress():
            self._bar(text, wave)
        self._analysis(text)
        self._verdict(text)
        if state.finished is not None and state.finished.deployment == d.id:
            text.append("\noutcome ", label)
            text.append(
                state.finished.outcome.value,
                self._style("pass" if state.finished.outcome is ev.Outcome.COMPLETE else "fail"),
            )
            text.append(f"\n{harmless_block(state.finished.summary)}\n")
        if not state.active:
            locked = self._locks(text, "\n")
            if self._versions(text, "" if locked else "\n") or locked:
                text.append("\n")
        keys = Text()
        self._next_keys(keys)
        room = self.scrollable_content_region.height
        lines = len((text + keys).wrap(self.app.console, self._width()))
        self._put(text + keys if not room or lines <= room else text[:top] + keys + text[top:])

    def _waiting(self, text: Text) -> None:
        waiting = self.state.locks_waiting
        if waiting is not None:
            text.append(harmless(waiting.said, 300) + "\n")

    def _version_counts(self) -> list[tuple[str, int]]:
        now = time.monotonic()
        if now - self._counted_at >= COUNTS_EVERY:
            self._counts, self._counted_at = self.state.version_counts(), now
        elif self._recount is None:
            self._recount = self.set_timer(COUNTS_EVERY - (now - self._counted_at), self._again)
        return self._counts

    def _again(self) -> None:
        self._recount = None
        self.redraw()

    def _locks(self, text: Text, lead: str = "") -> bool:
        """At rest, hosts another deployment or a maintenance lock holds (a colleague's
        release from another machine): whose, on how many (after ``lead``)."""
        held = self.state.locks_held()
        if not held:
            return False
        text.append(lead)
        for who, count, note in held[:LOCKS_SHOWN]:
            text.append("locked ", self._style("label"))
            text.append(f"{count} host(s) by {harmless(who, LOCK_SHOWN)}{note}\n")
        if len(held) > LOCKS_SHOWN:
            text.append(f"(and {len(held) - LOCKS_SHOWN} more locks)\n", self._style("label"))
        return True

    def _versions(self, text: Text, lead: str = "") -> bool:
        """A fleet at rest on more than one version (a host a rollout could not reach, a
        deployment stopped part way): how many hosts run each, and how to find them (two
        lines, after ``lead``). False: one version, nothing said."""
        counts = self._version_counts()
        if len(counts) < 2:
            return False
        label = self._style("label")
        text.append(lead)
        shown = [f"{harmless(v, VERSION_SHOWN)} on {n}" for v, n in counts[:VERSIONS_SHOWN]]
        more = len(counts) - VERSIONS_SHOWN
        text.append("versions ", label)
        text.append(", ".join(shown) + (f" and {more} more" if more > 0 else "") + "\n")
        fewest = harmless(counts[-1][0], VERSION_SHOWN)
        text.append(f"(/ version={fewest} shows its hosts; then d, o: a release to them)\n", label)
        return True

    def _last(self, text: Text) -> None:
        """None open: the journal's last deployment, if any (what a CLI run or the last
        session left), and where its story is."""
        last, label = self.state.last, self._style("label")
        if last is None:
            text.append("No deployment yet.\n\n", label)
            return
        what = "rollback" if last.kind == "rollback" else "deployment"
        text.append(f"No deployment open. Last {what} ", label)
        text.append(f"#{last.id} {harmless(last.version)}")
        end = last.outcome or last.phase_label
        style = self._style("pass" if last.outcome == ev.Outcome.COMPLETE.value else "fail")
        text.append(": ", label)
        text.append(end, style)
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(last.finished_at or last.updated_at))
        text.append(f"\n{stamp} UTC, by {harmless(last.user)} ", label)
        text.append("(H history)\n\n", label)

    def _bar(self, text: Text, wave: WaveProgress) -> None:
        """A row's bar; ``unreachable`` hosts are part of ``failed`` (a host marked
        unreachable at the start counts against the budget), said apart: none failed yet;
        so are hosts whose rollback failed (they still run the release). Counts that would
        not fit after the bar go on a line of their own, under it."""
        label, done, failed, active, total = (
            wave.label, wave.done, wave.failed, wave.active, wave.total
        )  # fmt: skip
        rolled_back, unreachable, cut_off = wave.rolled_back, wave.unreachable, wave.cut_off
        steps = failed - unreachable - wave.rollback_failed
        said = [f"{steps} failed"] if steps > 0 else []
        said += [f"{unreachable} unreachable"] if unreachable else []
        said += [f"{wave.rollback_failed} rollback failed"] if wave.rollback_failed else []
        said += [f"{rolled_back} rolled back"] if rolled_back else []
        said += [f"{cut_off} cut off"] if cut_off else []
        tail = f" {done}/{total}" + "".join(f", {s}" for s in said)
        if said and 8 + BAR_WIDTH + len(tail) > self._width():
            tail = f" {done}/{total}\n{'':<8}" + ", ".join(said)
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
        text.append(f"{tail}\n")

    def _analysis(self, text: Text) -> None:
        state = self.state
        label = self._style("label")
        a = state.analysis
        if a is None or a.deployment != (state.deployment.id if state.deployment else None):
            if state.engine.phase is ev.Phase.ANALYSIS:
                text.append("analysis ", label)
                text.append("stopped\n" if state.engine.state.stopped else "starting\n")
            return
        left = max(0.0, a.duration - a.elapsed)
        text.append("analysis ", label)
        running = state.engine.phase is ev.Phase.ANALYSIS and not state.engine.state.stopped
        counting = state.verdict is None and running  # (stopped: where it stopped, no countdown)
        text.append(f"{a.elapsed:.0f}s of {a.duration:.0f}s{f', {left:.0f}s left' * counting}\n")
        if counting and left <= 0:  # time up: the verdict waits for silent canaries' probes
            silent = sorted({m.host for m in a.measurements if m.note.startswith(STOPPED)})
            if silent:
                said = f" verdict waits: {listed(silent, 3)} stopped answering"
                self._line(text, [(harmless(said), self._style("fail"))])
        if state.verdict is None:
            self._tally(text, a.measurements)
            self._measurements(text, [m for m in a.measurements if m.state != "pass"])

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
            self._line(text, [(f" • {harmless(reason)}", None)])
        if len(other) > REASONS_SHOWN:
            text.append(f" … {len(other) - REASONS_SHOWN} more\n", self._style("label"))
        if v.verdict is ev.Verdict.PASS:
            if state.engine.phase is ev.Phase.AWAITING_PROMOTION and not state.wave:
                self._measurements(text, v.measurements)
            return
        failed = [m for m in v.measurements if m.state == "fail"]
        failed += [m for m in v.measurements if m.state not in ("pass", "fail")]
        self._measurements(text, failed)

    def _tally(self, text: Text, measurements: list[ev.Measurement]) -> None:
        """`` 5 pass · 1 fail · 1 undecided`` over every rule and canary so far."""
        if not measurements:
            return
        counts = Counter(m.state for m in measurements)
        parts: list[tuple[str, Style | None]] = []
        for state, style in _STATE_STYLES.items():
            if state in counts:
                parts.append((" · " if parts else " ", self._style("label")))
                parts.append((f"{counts[state]} {state}", self._style(style)))
        self._line(text, parts)

    def _measurements(self, text: Text, shown: list[ev.Measurement]) -> None:
        for m in shown[:MEASUREMENTS_SHOWN]:
            self._measurement(text, m)
        if len(shown) > MEASUREMENTS_SHOWN:
            more = f" … {len(shown) - MEASUREMENTS_SHOWN} more: a shows them all"
            self._line(text, [(more, self._style("label"))])

    def _measurement(self, text: Text, m: ev.Measurement) -> None:
        """``✗ web-01 error-ratio 0.21 vs 0.005, <= 0.05 and <= 3x baseline (0.015)``."""
        mark, style = _MARKS.get(m.state, _MARKS["no data"])
        value = "no data" if m.value is None else f"{m.value:.4g}"
        label = self._style("label")
        parts: list[tuple[str, Style | None]] = [
            (f" {mark} ", self._style(style)),
            (harmless(f"{m.host} {m.rule} {value}"), None),
        ]
        if m.baseline is not None:
            reference = "" if m.reference == "baseline" else f"{m.reference} "
            parts.append((harmless(f" vs {reference}{m.baseline:.4g}"), label))
        parts.append((harmless(f", {m.limit}"), label))
        self._line(text, parts)

    def _line(self, text: Text, parts: list[tuple[str, Style | None]]) -> None:
        """One line of ``parts``, cut with ``…`` to the panel's width."""
        line = Text(end="")
        for part, style in parts:
            line.append(part, style)
        line.truncate(self._width(), overflow="ellipsis")
        text.append_text(line)
        text.append("\n")

    def _width(self) -> int:
        return self.scrollable_content_region.width or DEFAULT_WIDTH

    def _next_keys(self, text: Text) -> None:
        state, d = self.state, self.state.deployment
        if state.driven_by is not None and not state.engine.busy:  # (refused here)
            pid = harmless(str(state.driven_by), 20)
            said = f"act on it there, or stop it (kill -INT {pid}) and act here"
            text.append(f"\n driven by another canarytui (pid {pid}): {said}\n")
        keys = keys_now(state)
        offered = tuple(key for key, _ in keys)
        if offered != self._offered and self.is_attached:
            # The footer offers what this line says (``fleet_keys``): a call that started
            # or ended (a promote taking its locks again) changes them with no new phase.
            self._offered = offered
            self.screen.refresh_bindings()
        log = state.analysis_log
        if d is not None and log.deployment == d.id and not log.empty:
            keys.append(("a", "analysis"))
        self._keys(text, keys)

    def _keys(self, text: Text, keys: list[tuple[str, str]]) -> None:
        """The keys that apply now, on as many lines as the panel's width needs."""
        text.append_text(key_lines(keys, self._width(), self._style("key")))

    def on_resize(self) -> None:
        self.redraw()
