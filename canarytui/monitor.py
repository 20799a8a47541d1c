"""Background watching for a live view: health, versions and log tails (no Textual here).

The cost of watching grows with what is watched, not with the fleet (one remote command
costs ~3-5 ms of controller CPU, so probing 1,000 hosts every second is out of reach):

- the *watched* hosts (the engine's canaries, baseline and wave in flight, the host the
  operator looks at, the canaries the operator picked) are probed every ``health.interval``;
- the rest of the fleet is refreshed in the background at a bounded rate
  (``slow_rate`` hosts per second, each host at most every ``slow_interval`` seconds: by
  default ``SLOW_EVERY`` or ``health.interval`` if longer, so a small fleet's tiles stay
  fresher than the age a tile starts to show, and a large one costs the same rate); while
  no deployment runs, each of those probes asks the host's version and lock too, in the
  same script (no round trip added), as a watched host's probe does every
  ``slow_interval``; a host marked unreachable that answers a probe again is asked apart,
  at once (``engine.discover``);
- a log tailer streams ``engine.tail(host)`` for the hosts whose logs are shown.

Everything goes out as ordinary engine events (``HealthSample``, ``HostUpdate``, ``LogLine``)
through ``engine.emit``, so every consumer sees it the same way. Every probe runs as its own
task: a hung host delays nobody, and every command is bounded by the engine's timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from canarytui import cancels
from canarytui import events as ev
from canarytui.engine import Engine, discovery
from canarytui.metrics.page import picks
from canarytui.metrics.sources import probe
from canarytui.ssh import SshError, without_host

# Host states in which a step may be running on a host: its version is not asked then. Any
# other is at rest once no deployment is open (``_rest_allowed``): a host a finished
# deployment left "deployed" or "rolled back" is asked again too, as what it runs can
# change after it (another machine's release, a hand-made fix), and its tile must say so.
_IN_FLIGHT = {ev.HostState.DEPLOYING, ev.HostState.ROLLING_BACK}
_STOP_TIMEOUT = 5.0
# Seconds between a host's background probes at the most (its tile says the age of a probe
# older than ui.fleet_state.OLD_AFTER, 10 s): 20 hosts at 4 probes a second.
SLOW_EVERY = 5.0
# A log stream that ends or is lost is started again after this long, doubled each time
# it fails again, up to the second figure (`canarytui logs -f` follows the same way).
TAIL_RETRY = (1.0, 10.0)


class Monitor:
    """Probes what is watched at ``health.interval`` and the rest slowly; tails logs."""

    def __init__(
        self,
        engine: Engine,
        *,
        slow_interval: float | None = None,
        slow_rate: float = 4.0,
        concurrency: int = 8,
        max_log_streams: int = 8,
        initial_discovery: bool = True,
    ) -> None:
        self.engine = engine
        self.env = engine.env
        if slow_interval is None:
            slow_interval = max(SLOW_EVERY, self.env.health.interval)
        self.slow_interval = slow_interval
        self.slow_rate = slow_rate
        self.max_log_streams = max_log_streams
        self.initial_discovery = initial_discovery
        self.focused: str | None = None
        self.interest: set[str] = set()  # e.g. the canaries the operator picked
        self._log_hosts: list[str] = []
        self._slots = asyncio.Semaphore(concurrency)
        self._wanted = picks(self.env.canary.analysis.rules)
        self._last_sample: dict[str, float] = {}
        self._read_at: dict[str, float] = {}  # when a probe last read a host's version
        self._probing: dict[str, asyncio.Task[None]] = {}
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._discovering: asyncio.Task[None] | None = None
        self._back: set[str] = set()  # marked unreachable, answered a probe since: ask again
        self._unsubscribe: object = None
        self._cursor = 0
        self._running = False

    # Control ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._unsubscribe = self.engine.subscribe(self._seen)
        self._loops = [
            self._spawn(self._fast_loop(), "monitor-fast"),
            self._spawn(self._slow_loop(), "monitor-slow"),
        ]
        if self.initial_discovery and self.engine.open_deployment() is None:
            self._discovering = self._spawn(self._discover_all(), "monitor-discover")
        self._sync_tails()

    async def stop(self) -> None:
        """Cancel every loop, probe and log stream, waiting a bounded time for them."""
        self._running = False
        if callable(self._unsubscribe):
            with contextlib.suppress(ValueError):
                self._unsubscribe()
        self._unsubscribe = None
        tasks = [*self._loops, *self._probing.values(), *self._tails.values()]
        if self._discovering is not None:
            tasks.append(self._discovering)
        self._loops, self._probing, self._tails = [], {}, {}
        self._discovering = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_TIMEOUT)

    def focus(self, name: str | None) -> None:
        """The host the operator looks at: probed at ``health.interval``."""
        self.focused = name

    def watch_logs(self, names: Iterable[str]) -> None:
        """Stream these hosts' logs (at most ``max_log_streams``); others are stopped."""
        wanted = list(dict.fromkeys(names))[: self.max_log_streams]
        if wanted == self._log_hosts:
            return
        self._log_hosts = wanted
        self._sync_tails()

    @property
    def log_hosts(self) -> list[str]:
        return list(self._log_hosts)

    @property
    def streaming(self) -> set[str]:
        """Hosts whose log stream task is running now."""
        return {name for name, task in self._tails.items() if not task.done()}

    def fast_targets(self) -> set[str]:
        """Hosts probed at ``health.interval`` right now."""
        targets = set(self.engine.watched) | self.interest
        if self.focused:
            targets.add(self.focused)
        d = self.engine.deployment
        if d is not None and not self.engine.phase.is_final:
            targets.update(d.canaries)
        return {t for t in targets if t in self.engine.host_states}

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A background task whose unexpected failure is reported, never lost."""
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._report_failure)
        return task

    def _report_failure(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None or not self._running:
            return
        exc = task.exception()
        self.engine.emit(
            ev.Notice(
                level="error",
                message=f"background watching failed ({task.get_name()}): "
                f"{type(exc).__name__}: {exc}",
            )
        )

    # Health -------------------------------------------------------------------------

    def _seen(self, event: ev.Event) -> None:
        # The engine probes canaries and baseline itself during an analysis: count those,
        # so a host is never probed twice in one interval.
        if isinstance(event, ev.HealthSample):
            self._last_sample[event.host] = time.monotonic()
            # Back: its version and state are asked at the next tick, not sweeps later.
            state = self.engine.host_states.get(event.host)
            if event.ok is not None and state is ev.HostState.UNREACHABLE:
                self._back.add(event.host)

    def _due(self, name: str, period: float) -> bool:
        last = self._last_sample.get(name)
        return name not in self._probing and (last is None or time.monotonic() - last >= period)

    def _start_probe(self, name: str, rest: bool = False) -> None:
        task = self._spawn(self._probe(name, rest), f"monitor-probe-{name}")
        self._probing[name] = task

        def done(_task: asyncio.Task[None], name: str = name) -> None:
            self._probing.pop(name, None)

        task.add_done_callback(done)

    async def _probe(self, name: str, rest: bool = False) -> None:
        """``rest``: the probe asks the host's version and lock too while no deployment
        runs (``discovery.asking``, in the probe's script): the background refresh's, and a
        watched host's every ``slow_interval``."""
        ctx = self.engine.ctx
        also = None
        if rest and self._at_rest(name):
            also = discovery.asking(ctx, name, locks=True)
        async with self._slots:
            # probe() catches SshError itself (the sample says unreachable); commands are
            # bounded by health.timeout and connecting by ssh.connect_timeout.
            found = await probe(ctx.fleet, self.env, name, wanted=self._wanted, also=also)
        if not self._running:
            return
        self.engine.emit(found.sample)
        # Recorded only if still at rest: a deployment that started meanwhile holds the
        # host now, and what it said of its lock is no longer news.
        if also is None or not self._at_rest(name):
            return
        if found.also is not None:
            discovery.answered(ctx, name, found.also, locks=True)
            self._back.discard(name)  # asked already
            self._read_at[name] = time.monotonic()
        elif found.error is not None:  # as a discovery says a host it could not reach
            discovery.unanswered(ctx, name, found.error)

    async def _fast_loop(self) -> None:
        interval = self.env.health.interval
        while True:
            started = time.monotonic()
            for name in sorted(self.fast_targets()):
                if self._due(name, interval * 0.75):
                    read = self._read_at.get(name)
                    due = read is None or time.monotonic() - read >= self.slow_interval
                    self._start_probe(name, rest=due)
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))

    async def _slow_loop(self) -> None:
        """The rest of the fleet, a few hosts per second, each at most every slow_interval."""
        names = self.env.host_names
        tick = 0.5
        budget = 0.0
        while True:
            await asyncio.sleep(tick)
            budget = min(budget + self.slow_rate * tick, max(1.0, self.slow_rate))
            count = math.floor(budget)
            if count <= 0 or not names:
                continue
            chosen: list[str] = []
            fast = self.fast_targets()  # probed by the fast loop (their versions too)
            for _ in range(len(names)):
                if len(chosen) >= count:
                    break
                name = names[self._cursor]
                self._cursor = (self._cursor + 1) % len(names)
                if name not in fast and self._due(name, self.slow_interval):
                    chosen.append(name)
            budget -= len(chosen)
            for name in chosen:
                self._start_probe(name, rest=True)
            self._ask_back()

    # Versions -------------------------------------------------------------------------

    def _rest_allowed(self) -> bool:
        """Versions are asked only when no deployment is running or open."""
        if self.engine.busy:
            return False
        return self.engine.deployment is None or self.engine.phase.is_final

    def _at_rest(self, name: str) -> bool:
        """``name`` may be asked its version and lock now (no step may run there)."""
        return self._rest_allowed() and self.engine.host_states.get(name) not in _IN_FLIGHT

    def _ask_back(self) -> None:
        """The version and state of any host marked unreachable that has answered a probe
        since, asked now (its tile would say unreachable until a probe of it reads them).
        Every other host's are read by its probes at rest."""
        if not self._back or not self._rest_allowed():
            return
        if self._discovering is not None and not self._discovering.done():
            return
        due = [n for n in sorted(self._back) if self.engine.host_states.get(n) not in _IN_FLIGHT]
        self._back.clear()
        if due:
            self._discovering = self._spawn(self._discover(due), "monitor-discover")

    async def _discover(self, names: list[str]) -> None:
        with contextlib.suppress(SshError):
            await self.engine.discover(names, locks=True)

    async def _discover_all(self, chunk: int = 50) -> None:
        """Every host's version once at start, in chunks so a big fleet is not one burst."""
        names = self.env.host_names
        for i in range(0, len(names), chunk):
            if not self._rest_allowed():
                return
            await self._discover(names[i : i + chunk])

    # Logs -----------------------------------------------------------------------------

    def _sync_tails(self) -> None:
        if not self._running or not self.env.logs:
            return
        for name in list(self._tails):
            if name not in self._log_hosts:
                self._tails.pop(name).cancel()
        for name in self._log_hosts:
            if name not in self._tails:
                self._tails[name] = self._spawn(self._tail(name), f"monitor-tail-{name}")

    async def _tail(self, name: str) -> None:
        """One host's log stream, restarted (with a bounded back-off) when it ends."""
        backoff, before = TAIL_RETRY[0], cancels.asked()
        while True:
            try:
                async for line in self.engine.tail(name):
                    backoff = TAIL_RETRY[0]
                    self.engine.emit(ev.LogLine(host=name, line=line))
                reason = "log stream ended"
            except SshError as exc:  # said on the host's own log lines: without it again
                reason = without_host(self.env.host(name), str(exc))
            cancels.resume(before)  # a stop a library dropped ends the loop all the same
            self.engine.emit(
                ev.LogLine(host=name, line=f"[canarytui] {reason}; retrying in {backoff:g}s")
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, TAIL_RETRY[1])
