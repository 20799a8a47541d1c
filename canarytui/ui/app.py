"""The application: wires the engine, the monitor, the themes and the fleet screen.

``run_app`` opens the UI on an environment; ``run_demo`` starts the embedded demo fleet in
a thread of its own (its servers never compete with the UI's loop) and opens the UI on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import threading
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import Notify, SeverityLevel
from textual.screen import Screen

from canarytui import events as ev
from canarytui.config import Environment, load_env
from canarytui.engine import Engine
from canarytui.engine.calls import signal_cause
from canarytui.journal import Journal, way_out
from canarytui.monitor import Monitor
from canarytui.ui.palette import PALETTE_ACTIONS
from canarytui.ui.replay import ReplayRequest
from canarytui.ui.safe_text import note_text, note_title
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.screens.fleet import FleetScreen
from canarytui.ui.screens.history import HistoryScreen
from canarytui.ui.screens.replay import ReplayScreen, start_replay
from canarytui.ui.themes import DEFAULT_THEME, STATE_VARIABLES, load_themes
from canarytui.ui.widgets.log_pane import LogPane

if TYPE_CHECKING:
    from textual.driver import Driver

    from canarytui.demo.fleet import DemoFleet

SHUTDOWN_TIMEOUT = 20.0  # a cancelled deployment frees its locks (remote calls bounded)
# Quit as on a confirmed quit, no question asked: SIGTERM (``kill``, a supervisor) and SIGHUP
# (the terminal closed: an SSH session to a jump host dropped). Exit status 128 + signal.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
DEMO_START_TIMEOUT = 60.0
GC_YOUNG = 10_000  # allocations between two young collections (Python's default: 700)


class CanaryApp(App[int]):
    """canarytui's terminal UI on one environment."""

    CSS_PATH = "app.tcss"
    TITLE = "canarytui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(
        self,
        env: Environment,
        journal: Journal,
        engine: Engine | None = None,
        theme: str | None = None,
        monitor: bool | Monitor = True,
        themes_folder: Path | None = None,
        replay: ReplayRequest | None = None,
    ) -> None:
        super().__init__()
        self.env = env
        self.journal = journal
        self.engine = engine or Engine(env, journal)
        if isinstance(monitor, Monitor):
            self.monitor: Monitor | None = monitor
        else:
            self.monitor = Monitor(self.engine) if monitor else None
        found = load_themes(themes_folder)
        self.theme_problems = list(found.problems)
        self.theme_names = found.names
        for t in found.themes:
            self.register_theme(t)
        wanted = theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.theme_problems.append(
                f"theme {wanted!r} not found: using {DEFAULT_THEME!r} "
                f"(themes: {', '.join(found.names)})"
            )
            wanted = DEFAULT_THEME
        self.theme = wanted
        if replay is not None:
            self.monitor = None  # canarytui replay: no host is contacted
        self.fleet_screen = FleetScreen(self.engine, self.monitor)
        self.replay_screen: ReplayScreen | None = None
        if replay is not None:
            self.replay_screen = ReplayScreen.standalone_on(env, journal, replay)
        self._quitting = False
        self._engine_closed = False  # the monitor stopped, the connections closed
        self._exit_status = 0

    def get_driver_class(self) -> type[Driver]:
        """On a Linux terminal, a driver whose screen never holds the loop (``ui.driver``):
        a terminal that stops reading must not stop the deployment running in it."""
        driver = super().get_driver_class()
        if driver.__name__ != "LinuxDriver":  # Windows, or one named by TEXTUAL_DRIVER
            return driver
        from canarytui.ui.driver import RelayedDriver

        return RelayedDriver if issubclass(RelayedDriver, driver) else driver

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification (widgets' and screens' ``notify`` end here): its text made
        harmless and bounded. canarytui's own calls pass ``markup=False``: what they say
        often carries a host's or the operator's text."""
        super().notify(
            note_text(message),
            title=note_title(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    def get_default_screen(self) -> Screen[None]:
        return self.replay_screen or self.fleet_screen

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(STATE_VARIABLES)

    async def on_mount(self) -> None:
        # Everything built so far (Textual, the stylesheet, the fleet's model) lives as
        # long as the app: keep it out of the collector's full passes, which otherwise
        # stall the UI for tens of milliseconds every second or two on a big fleet.
        gc.freeze()
        # The samples the UI keeps (every host's recent ones) outlive the young
        # generations, and Python starts a full pass once such survivors reach a quarter
        # of the rest: at 5,000 hosts at 1 Hz, a 40-140 ms stall every 1.5-5 s. A young
        # pass every GC_YOUNG allocations instead of 700 makes full passes ~15x rarer; the
        # young ones come every few seconds at 10-35 ms (measured: benches/ui_terminal.py).
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        self._catch_stop_signals()
        for problem in self.theme_problems:
            self.notify(problem, title="theme", severity="warning", timeout=12, markup=False)
        if self.monitor is not None:
            # After the first frame: the first probes open the first connections, which
            # import the SSH library (~0.2 s); the fleet is on the screen before that.
            self.call_after_refresh(self._start_monitor)

    def _on_notify(self, event: Notify) -> None:
        """The same words again (a key pressed over and over): the toast saying them goes,
        the new one comes (App's own handler, called after this one, adds it): one toast,
        its time anew, not a pile of them covering the grid."""
        new = event.notification
        said = (new.title, new.message, new.severity)
        for shown in list(self._notifications):
            if (shown.title, shown.message, shown.severity) == said:
                self._unnotify(shown, refresh=False)

    # Palette ------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        # The fleet screen in front: a replay's refuses what would touch a host.
        stack = reversed(self.screen_stack)
        fleet = next((s for s in stack if isinstance(s, FleetScreen)), self.fleet_screen)
        for action, title, help_text in PALETTE_ACTIONS:
            yield SystemCommand(title, help_text, partial(fleet.run_action, action))
        logs = fleet.query_one(LogPane)
        yield SystemCommand(
            "Filter logs", "Only the log lines holding a text (/ on them)", logs.action_filter_lines
        )
        yield SystemCommand(
            "Wrap or cut log lines",
            "Long log lines on rows or cut (w on them)",
            logs.action_toggle_wrap,
        )
        for name in self.theme_names:
            yield SystemCommand(
                f"Theme: {name}",
                f"Switch to the {name} theme",
                partial(setattr, self, "theme", name),
            )

    @on(HistoryScreen.Replay)
    def _replay(self, message: HistoryScreen.Replay) -> None:
        """``enter`` in history: that deployment replayed over the live grid."""
        start_replay(self.fleet_screen, message.deployment)

    @on(HistoryScreen.Restore)
    def _restore(self, message: HistoryScreen.Restore) -> None:
        """``b`` in history: a known-good version back on every host (confirmed first)."""
        self.fleet_screen.ask_restore(message.version)

    # Quitting ----------------------------------------------------------------------

    async def action_quit(self) -> None:
        if self._quitting:
            return
        engine = self.engine
        d = engine.deployment
        if d is not None and engine.finishing:
            # The deployment is over; its hooks and the release of its locks finish first.
            self.notify(
                f"deployment #{d.id} is {engine.phase.value}: quitting once its hosts' locks "
                "are released",
                title="quit",
                markup=False,
            )
        elif engine.busy:  # (restated: what runs moves on while it is asked)
            said = self._quit_question  # (a title that the restated message cannot belie)
            confirm = ConfirmScreen("Quit?", said(), yes="Quit", danger=True, restate=said)
            self.push_screen(confirm, self._quit_answered)
            return
        self.shut_down()

    def _quit_question(self) -> str:
        """What a quit would stop, as things are now."""
        engine, state = self.engine, self.fleet_screen.state
        d = engine.deployment
        if not engine.busy:
            return "Nothing runs any more: quitting stops nothing."
        if d is not None and engine.finishing:  # over: its hooks, then its locks released
            return f"deployment #{d.id} is {engine.phase.value}: quitting stops nothing."
        if d is None:
            return (
                "A deployment is starting (its hosts are being locked). Quitting now "
                "stops it before any host is changed."
            )
        if engine.phase is ev.Phase.ROLLING_BACK:
            return (
                f"deployment #{d.id} of {d.version} is rolling back. Quitting stops "
                "the rollback where it is; the deployment stays open and its hosts stay "
                "locked, to roll back again from the next start or the CLI."
            )
        doing = ev.phase_doing(engine.phase, state.wave, state.waves)
        return (
            f"deployment #{d.id} of {d.version} is {doing}. Quitting stops it where "
            f"it is; it stays open in the journal ({way_out(engine.phase, d.kind)}"
            ", from the next start or the CLI)."
        )

    def _catch_stop_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            # Not in the main thread (an app run by a test elsewhere): left as they are.
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                loop.add_signal_handler(signum, self._stop_signalled, signum)

    def _release_stop_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                loop.remove_signal_handler(signum)

    async def on_unmount(self) -> None:
        self._release_stop_signals()  # the loop may outlive the app (a test's)
        # However the app ended (not only a confirmed quit: an error, a test's end), the
        # monitor's loops and streams stop and the connections close before the loop does.
        await self.close_engine()

    def _stop_signalled(self, signum: int) -> None:
        """Shut down as a confirmed quit does (a running deployment stays open in the
        journal, one that is over releases its locks first, temp folders go). A second
        signal of either kind is the system's again: it ends the process at once."""
        self._release_stop_signals()
        self._exit_status = 128 + signum
        self.engine.stopped_by = signal_cause(signum)  # said in the journal
        if not self._quitting:
            self.shut_down()

    def _quit_answered(self, yes: bool | None) -> None:
        if yes:
            self.shut_down()

    @work(group="shutdown", exclusive=True, exit_on_error=False, description="shut down")
    async def shut_down(self) -> None:
        """Stop what runs (a running deployment stays open; one that is over releases its
        locks first), the monitor, the connections; exit."""
        self._quitting = True
        running = [
            w for w in self.workers if w.group in ("rollout", "rollback") and not w.is_finished
        ]
        # A deployment that is over is left to finish (bounded); one that runs is stopped.
        if not self.engine.finishing:
            for worker in running:
                worker.cancel()
            if running:
                # A hung host's command is stopped on the host first (its grace, then
                # KILL): seconds in which the screen would otherwise look frozen.
                self.notify(
                    "stopping what runs on the hosts before quitting (a command that does "
                    f"not end is killed on its host; at most {SHUTDOWN_TIMEOUT:.0f} s)",
                    title="quitting",
                    timeout=SHUTDOWN_TIMEOUT,
                    markup=False,
                )
        for worker in running:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await worker.wait()
        await self.close_engine()
        self.exit(self._exit_status)

    async def _start_monitor(self) -> None:
        if self.monitor is not None and not (self._quitting or self._engine_closed):
            await self.monitor.start()

    async def close_engine(self) -> None:
        if self._engine_closed:
            return
        self._engine_closed = True
        if self.monitor is not None:
            await self.monitor.stop()
        with contextlib.suppress(Exception):
            await self.engine.notifier.close()  # queued notifications sent, bounded
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5.0):
                await self.engine.fleet.close()


def run_app(env: Environment, state_dir: str | Path | None = None, theme: str | None = None) -> int:
    """The UI on ``env`` until the operator quits; returns the exit status."""
    journal = Journal(state_dir)
    try:
        app = CanaryApp(env, journal, theme=theme)
        result = app.run()
    finally:
        journal.close()
    return int(result or 0) if app.return_code in (None, 0) else int(app.return_code)


class _DemoThread(threading.Thread):
    """The demo fleet in its own thread and loop, until ``stop()``."""

    def __init__(self, hosts: int) -> None:
        super().__init__(name="canarytui-demo-fleet", daemon=True)
        self.hosts = hosts
        self.ready = threading.Event()
        self.fleet: DemoFleet | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by run_demo
            self.error = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        from canarytui.demo import serve

        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()

        def ready(fleet: DemoFleet) -> None:
            self.fleet = fleet
            self.ready.set()

        # client: the UI connects to every host from this process too.
        await serve(self.hosts, ready=ready, stop=self._stop_event, control=True, client=True)

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout)


def run_demo(hosts: int = 12, state_dir: str | Path | None = None, theme: str | None = None) -> int:
    """Start the demo fleet (its own thread), open the UI on it, stop it on exit."""
    import sys

    from canarytui.demo import journal_folder

    demo = _DemoThread(hosts)
    demo.start()
    try:
        if not demo.ready.wait(DEMO_START_TIMEOUT) or demo.fleet is None:
            print(
                f"canarytui: the demo fleet could not start: {demo.error or 'timed out'}",
                file=sys.stderr,
            )
            return 1
        env = load_env(demo.fleet.env_path)
        with journal_folder(state_dir) as state:
            return run_app(env, state_dir=state, theme=theme)
    finally:
        demo.stop()
