"""The replay screen: the fleet screen on a past deployment, its events re-sent from the journal.

It is a ``FleetScreen`` whose engine is a ``ReplayEngine`` (``ui.replay``): the replayed
events take the live events' path (engine -> bridge -> ``EngineEvents`` -> the fleet
screen's handlers), so the grid, the panels and the analysis view (``a``) show the
deployment as it went. A banner says it is a replay, of what, at which speed, playing or
paused. Every operator action of the fleet screen that would touch a host is refused with
a notice; the live monitor is stopped and the live connections closed while it runs (from
history), and started again on the way back. Keys: space pauses, ``+``/``]`` and
``-``/``[`` change the speed, ``.`` sends the next event, ``0`` starts again (paused),
escape (or q) leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Mount
from textual.message import Message
from textual.widgets import Static

from canarytui.config import Environment
from canarytui.engine import Engine
from canarytui.journal import Journal, JournalError
from canarytui.monitor import Monitor
from canarytui.textsafe import harmless
from canarytui.ui.replay import (
    DEFAULT_SPEED,
    NOTHING_SENT,
    Recording,
    ReplayEngine,
    Replayer,
    ReplayError,
    ReplayRequest,
    load_recording,
    speed_label,
)
from canarytui.ui.screens.fleet import FleetScreen
from canarytui.ui.widgets.filter_bar import FilterBar
from canarytui.ui.widgets.log_pane import LogPane

# The fleet screen's actions that only look: allowed in a replay. Every other action bound
# on the fleet screen (deploy, promote, roll back, canary picks, hold, ...) is refused.
ALLOWED = frozenset({"details", "analysis", "logs", "filter", "clear_filter", "help", "app.quit"})


def _action(binding: BindingType) -> str:
    action = binding.action if isinstance(binding, Binding) else binding[1]
    return action.split("(", 1)[0]


def _as_binding(binding: BindingType) -> Binding:
    return binding if isinstance(binding, Binding) else Binding(*binding)


OWN_BINDINGS = [
    Binding("space", "toggle_pause", "Pause/play"),
    Binding("plus,right_square_bracket", "faster", "Faster"),
    Binding("minus,left_square_bracket", "slower", "Slower"),
    Binding("full_stop", "step", "Next event", show=False),
    Binding("0", "restart", "From the start", show=False),
    Binding("escape,q", "leave", "Back"),
]
_OWN_KEYS = {key.strip() for b in OWN_BINDINGS for key in b.key.split(",")}
REFUSED = {
    _action(b): _as_binding(b).description or _action(b)
    for b in FleetScreen.BINDINGS
    if _action(b) not in ALLOWED
}
# The fleet screen's operator keys stay bound (so they are refused with a notice) but leave
# the footer, which shows what a replay offers.
_HIDDEN = [
    Binding(b.key, b.action, b.description, show=False)
    for b in map(_as_binding, FleetScreen.BINDINGS)
    if _action(b) in REFUSED and b.key not in _OWN_KEYS
]


class ReplayMoved(Message, bubble=False):
    """The replay sent an event or changed speed or pause: the banner redraws."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ReplayMoved)


class ReplayScreen(FleetScreen):
    """A past deployment replayed on its own grid; ``standalone``: started by
    ``canarytui replay`` (leaving quits), else pushed from history over the live grid."""

    BINDINGS = [*OWN_BINDINGS, *_HIDDEN]
    LIVE = False

    DEFAULT_CSS = """
    ReplayScreen #replay-banner {
        height: 1;
        background: $warning;
        color: auto 95%;
        text-style: bold;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        env: Environment,
        journal: Journal,
        recording: Recording,
        *,
        speed: float = DEFAULT_SPEED,
        paused: bool = False,
        standalone: bool = False,
        live_engine: Engine | None = None,
        live_monitor: Monitor | None = None,
    ) -> None:
        self.replay_engine = ReplayEngine(env, journal, recording)
        super().__init__(self.replay_engine, None)
        self.state.replaying = True
        self.recording = recording
        self.standalone = standalone
        self.live_engine = live_engine
        self.live_monitor = live_monitor
        self.started = False  # the live session is quiet and the replay's driver runs
        self.replayer = Replayer(self.replay_engine, speed, paused=paused, changed=self._moved)
        # The analysis view (a) shows this deployment's analysis, never the journal's last.
        self.state.analysis_log.reset(recording.record.id, recording.record.version)

    @classmethod
    def standalone_on(cls, env: Environment, journal: Journal, request: ReplayRequest) -> Self:
        """The screen ``canarytui replay`` opens on (leaving it quits)."""
        return cls(
            env,
            journal,
            request.recording,
            speed=request.speed,
            paused=request.paused,
            standalone=True,
        )

    def compose(self) -> ComposeResult:
        yield Static(id="replay-banner", markup=False)
        yield from super().compose()

    @on(Mount)
    async def _start(self) -> None:
        # Runs before the fleet screen's own on_mount (Textual walks the class tree), when
        # the screen is not counted as mounted yet: the banner is drawn once it is (a replay
        # started paused sends nothing to draw it by: it stayed blank, the grid passing for
        # the live one).
        self._draw_banner()
        self.call_after_refresh(self._draw_banner)
        if self.live_monitor is not None:
            await self.live_monitor.stop()
        if self.live_engine is not None:
            await self.live_engine.fleet.close()  # waits for abandoned commands' stops
        self.started = True
        self.play()

    @work(exclusive=True, group="replay", exit_on_error=False, description="replay")
    async def play(self) -> None:
        await self.replayer.run()

    def _moved(self) -> None:
        self.post_message(ReplayMoved())

    @on(ReplayMoved)
    def _replay_moved(self) -> None:
        self._draw_banner()

    def banner_text(self) -> str:
        """``REPLAY of #3 1.3.0-bad · 10x · paused · event 25/35 · 0:11 of 0:20 · ...``"""
        r, record = self.replayer, self.recording.record
        if r.finished:
            state = "finished"
        else:
            state = "paused" if r.paused else "playing"
        back = "q quits" if self.standalone else "esc: back to live"
        return (
            f"REPLAY of #{record.id} {harmless(record.version, 40)} · {speed_label(r.speed)} · "
            f"{state} · event {r.position}/{len(r.events)} · {_clock(r.elapsed)} of "
            f"{_clock(r.duration)} · nothing is sent to any host · {back}"
        )

    def _draw_banner(self) -> None:
        if self.is_mounted:
            text = Text(self.banner_text(), no_wrap=True, overflow="ellipsis")
            self.query_one("#replay-banner", Static).update(text)

    def _sync_watch(self) -> None:
        super()._sync_watch()
        self.query_one(LogPane).set_source("logs are not kept in the journal: none replayed")

    # Replay keys ------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.replayer.toggle_pause()

    def action_faster(self) -> None:
        self.replayer.faster()

    def action_slower(self) -> None:
        self.replayer.slower()

    def action_step(self) -> None:
        if not self.replayer.step():
            self.notify("the replay is at its end", timeout=3, markup=False)

    def action_restart(self) -> None:
        """The same replay again from its first event, paused (a fresh screen and state)."""
        self.app.switch_screen(
            ReplayScreen(
                self.replay_engine.env,
                self.replay_engine.journal,
                self.recording,
                speed=self.replayer.speed,
                paused=True,
                standalone=self.standalone,
                live_engine=self.live_engine,
                live_monitor=self.live_monitor,
            )
        )

    async def action_leave(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.shown or self.state.filter_text:
            self.action_clear_filter()
            return
        if self.standalone:
            await self.app.action_quit()
            return
        self.workers.cancel_group(self, "replay")
        if self.live_monitor is not None:
            await self.live_monitor.start()
        # What the replay said (a verdict, "stays open") is no word on the live grid.
        self.app.clear_notifications()
        self.dismiss(None)

    def refuse(self, what: str) -> None:
        where = "q quits" if self.standalone else "escape goes back to the live grid"
        self.notify(
            f"{what}: refused in the replay of #{self.recording.record.id}; "
            f"{NOTHING_SENT} ({where})",
            title="replay",
            severity="warning",
            timeout=6,
            markup=False,
        )


def _refusal(what: str) -> Callable[[ReplayScreen], None]:
    def refused(self: ReplayScreen) -> None:
        self.refuse(what)

    return refused


for _name, _what in REFUSED.items():
    setattr(ReplayScreen, f"action_{_name}", _refusal(_what))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    return f"{minutes}:{secs:02d}"


def start_replay(screen: FleetScreen, deployment: int, speed: float = DEFAULT_SPEED) -> None:
    """From history (``enter``): replay ``deployment`` over the live grid, or say why not."""
    engine = screen.engine
    if engine.busy:
        screen.notify(
            "a deployment is running: replay a past one when it has finished",
            severity="warning",
            markup=False,
        )
        return
    try:
        recording = load_recording(engine.journal, engine.env, deployment)
    except (ReplayError, JournalError) as exc:
        screen.notify(str(exc), title="replay", severity="warning", markup=False)
        return
    screen.app.push_screen(
        ReplayScreen(
            engine.env,
            engine.journal,
            recording,
            speed=speed,
            live_engine=engine,
            live_monitor=screen.monitor,
        )
    )
