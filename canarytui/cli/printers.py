"""Printers: engine events as JSON lines or as human progress lines, and timestamps.

A human line carries a host's text (versions, step output, reasons, notices): each such
value goes through ``harmless`` so it stays on its own line, whatever it holds; the
stream behind (``cli.safeio``) makes every write harmless as well.

Human output is one line per host when it is done, with its steps' times on it (a
thousand hosts print a thousand lines, not five thousand); a failed step is printed as it
fails, with its output's last lines. While hosts are in flight and nothing was said for
``PROGRESS_EVERY`` seconds, a line names them (a long step is not silence).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import IO

from canarytui import events as ev
from canarytui.cli.reasons import reason_of
from canarytui.metrics import STOPPED
from canarytui.textsafe import harmless, listed


def _plain(text: str) -> str:
    """One line of a host's text, harmless (the stream bounds the length)."""
    return harmless(text, None)


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def column_widths(rows: Sequence[Sequence[str]], least: Sequence[int] = ()) -> list[int]:
    """A table's widths: every column but the last (left as it is) as wide as its widest
    cell, and at least ``least`` (column by column), so that every row lines up."""
    floor = [*least, *[0] * len(rows[0])]
    return [max([floor[i], *(len(r[i]) for r in rows)]) for i in range(len(rows[0]) - 1)]


FLUSH_AFTER = 0.05  # seconds a printed line may wait for the ones after it
# Above this many canaries the analysis is told per rule (its values' range), not per host.
MANY_CANARIES = 3
PROGRESS_EVERY = 15.0  # seconds of silence with hosts in flight before a line names them
_STARTED = (ev.HostState.DEPLOYING, ev.HostState.ROLLING_BACK)
_ARRIVED = (ev.HostState.DEPLOYED, ev.HostState.ROLLED_BACK)


def _many(ms: Sequence[ev.Measurement]) -> bool:
    return len({m.host for m in ms}) > MANY_CANARIES


def _by_rule(ms: Sequence[ev.Measurement]) -> dict[str, list[ev.Measurement]]:
    rules: dict[str, list[ev.Measurement]] = {}
    for m in ms:
        rules.setdefault(m.rule, []).append(m)
    return rules


def _span(ms: Sequence[ev.Measurement]) -> str:
    """The range of the canaries' values (``-``: none has one yet)."""
    values = [m.value for m in ms if m.value is not None]
    if not values:
        return "-"
    low, high = f"{min(values):.3g}", f"{max(values):.3g}"
    return low if low == high else f"{low}..{high}"


def _limit(ms: Sequence[ev.Measurement]) -> str:
    """The rule's limit; one a canary when each is judged against its own values before."""
    if len({m.limit for m in ms}) == 1:
        return f"limit {ms[0].limit}"
    return f"limit per canary, e.g. {ms[0].host}: {ms[0].limit}"


def _so_far(ms: Sequence[ev.Measurement]) -> str:
    """Each canary's value of each rule; with many canaries, each rule's range and how
    many canaries fail it (a line of a few rules, not of hundreds of values)."""
    if not ms:
        return "(no values yet)"
    # A canary that stopped answering: its values are what it said before (not judged).
    late = {m.host: m.note for m in ms if m.note.startswith(STOPPED)}
    said = "".join(f"; {host} {why}" for host, why in late.items())
    if not _many(ms):
        return (
            "; ".join(
                f"{m.host} {m.rule}=" + ("-" if m.value is None else f"{m.value:.3g}") for m in ms
            )
            + said
        )
    parts = []
    for rule, group in _by_rule(ms).items():
        failing = sum(1 for m in group if m.passed is False)
        parts.append(f"{rule}={_span(group)}" + (f" ({failing} failing)" if failing else ""))
    if late:
        parts.append(f"{listed(list(late), 3)} {STOPPED}")
    return f"{len({m.host for m in ms})} canaries: " + "; ".join(parts)


class _Lines:
    """Lines to a stream, flushed within ``FLUSH_AFTER`` (at once outside an event loop):
    the lines of a busy moment (a wave's hosts) go out together, not one write each."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._flushing: asyncio.TimerHandle | None = None

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        if self._flushing is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.out.flush()
            return
        self._flushing = loop.call_later(FLUSH_AFTER, self._flush)

    def _flush(self) -> None:
        self._flushing = None
        self.out.flush()


class JsonPrinter(_Lines):
    """One JSON object per event per line."""

    def __call__(self, event: ev.Event) -> None:
        self._say(event.to_json())


class HumanPrinter(_Lines):
    """Progress lines, for people watching a terminal or reading a CI log: a line per host
    once it is done (or failed), the phases, waves, verdicts and decisions."""

    def __init__(
        self,
        out: IO[str],
        progress_every: float = PROGRESS_EVERY,
        endpoints: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(out)
        # Where each host is reached: a host's line says an SSH error without its name
        # again ("web-05: unreachable  (127.0.0.1:2222: connection refused)").
        self._endpoints = endpoints or {}
        self._last_analysis = 0.0
        # Hosts deploying or rolling back: since when, and their steps done (name, time).
        self._flight: dict[str, tuple[float, list[str]]] = {}
        self._progress_every = progress_every
        self._said_at = time.monotonic()
        self._ticking: asyncio.TimerHandle | None = None
        self._unreachable: set[str] = set()  # hosts last said unreachable

    def _say(self, text: str) -> None:
        self._said_at = time.monotonic()
        super()._say(text)

    def _host(self, name: str, state: ev.HostState, version: str, detail: str) -> None:
        if state in _STARTED:
            self._flight[name] = (time.monotonic(), [])
            self._tick()
            return
        _, steps = self._flight.pop(name, (0.0, []))
        line = f"   {name}: {state.value}"
        if version and state in _ARRIVED:  # "rolled back 1.0.0" read as 1.0.0 undone
            line += f" to {version}" if state is ev.HostState.ROLLED_BACK else f" {version}"
        line += f" ({', '.join(steps)})" if steps else ""
        if detail and name in self._endpoints:
            where, why = reason_of(name, self._endpoints[name], detail, state.value)
            detail = why if where == name else f"{where}: {why}"
        self._say(_plain(line + (f"  ({detail})" if detail else "")))

    def _tick(self, after: float | None = None) -> None:
        """Look again in ``after`` seconds whether hosts in flight went unmentioned."""
        if self._ticking is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop, no waiting: nothing to look back on later
        self._ticking = loop.call_later(after or self._progress_every, self._progress)

    def _progress(self) -> None:
        self._ticking = None
        if not self._flight:
            return
        now = time.monotonic()
        quiet = now - self._said_at
        if quiet >= self._progress_every:
            names = sorted(self._flight, key=lambda h: self._flight[h][0])
            longest = now - self._flight[names[0]][0]
            self._say(_plain(f"   in flight: {listed(names)} (the longest for {longest:.0f}s)"))
            quiet = 0.0
        self._tick(self._progress_every - quiet)

    def __call__(self, event: ev.Event) -> None:
        match event:
            case ev.DeploymentStarting(version=v, hosts=n):
                self._say(
                    _plain(f"{event.doing} {v}: locking {n} host(s) and reading their versions")
                )
            case ev.LocksWaiting() if time.monotonic() - self._said_at >= self._progress_every:
                self._say(_plain(f"   {event.said}"))
            case ev.DeploymentStarted(version=v, canaries=c, waves=w):
                sizes = ", ".join(str(len(x)) for x in w)
                after = f"waves of {sizes} host(s) after" if w else "no wave after"
                if c:
                    said = f"to canaries {_plain(listed(c, 8))}; {after}"
                else:  # a rollback --to, or a file without a canary section
                    said = f"in waves of {sizes} host(s), no canary phase"
                self._say(f"deployment #{event.deployment}: {_plain(v)} {said}")
            case ev.PhaseChanged() if not event.phase.is_final:
                # A final phase (complete, rolled back) comes with the outcome's line.
                self._say(f"-- {event.label}")
            case ev.HostUpdate(host=h, state=s, version=v, detail=d) if event.deployment:
                if s is ev.HostState.UNREACHABLE:
                    self._unreachable.add(h)
                else:
                    self._unreachable.discard(h)
                if s not in (ev.HostState.PENDING, ev.HostState.IDLE):
                    self._host(h, s, v or "", d or "")
            case ev.StepResult(host=h, step=st, exit_status=code, duration=dur, output=out):
                if code == 0 and h in self._flight:
                    self._flight[h][1].append(f"{st} {dur:.2f}s")  # said when the host is done
                    return
                # No exit status: the step was stopped past its timeout (said in its output).
                mark = (
                    "ok" if code == 0 else "FAILED " + (f"(exit {code})" if code else "(stopped)")
                )
                self._say(_plain(f"   {h}: {st} {mark} {dur:.2f}s"))
                if code != 0 and out.strip():
                    # Lines end at "\n" only: any other break (NEL, VT...) is shown as it is.
                    for line in out.replace("\r\n", "\n").strip().split("\n")[-5:]:
                        self._say(f"      | {_plain(line)}")
            case ev.AnalysisStarted(canaries=c, baseline=b, duration=dur):
                self._say(
                    _plain(
                        f"   watching {listed(c, 8)} for {dur:g}s; "
                        f"baseline: {listed(b, 8) or 'none'}"
                    )
                )
            case ev.AnalysisUpdate(elapsed=el, duration=dur, measurements=ms):
                now = time.monotonic()
                if now - self._last_analysis < 2.0 and el < dur:
                    return
                self._last_analysis = now
                self._say(_plain(f"   analysis {el:4.0f}s/{dur:g}s  {_so_far(ms)}"))
            case ev.VerdictReached(verdict=v, reasons=rs, measurements=ms):
                self._say(f"   verdict: {v.value.upper()}")
                if v is ev.Verdict.PASS and _many(ms):
                    rs = [  # every measurement passed: one line a rule, not one a canary
                        f"{rule}: ok on {len(group)} canaries ({_span(group)}), {_limit(group)}"
                        for rule, group in _by_rule(ms).items()
                    ]
                for r in rs:
                    self._say(f"      {_plain(r)}")
            case ev.WaveStarted(wave=i, waves=n, hosts=hs):
                self._say(f"   wave {i}/{n}: {len(hs)} host(s)")
            case ev.WaveFinished(wave=i, waves=n, succeeded=ok, failed=bad, not_started=left):
                # A host never reached failed nothing: said apart, as the UI's wave row does.
                lost = [h for h in bad if h in self._unreachable]
                bad = [h for h in bad if h not in self._unreachable]
                parts = [f"{len(ok)} ok"]
                if bad or not lost:
                    parts.append(f"{len(bad)} failed" + (f" ({listed(bad, 8)})" if bad else ""))
                if lost:
                    parts.append(f"{len(lost)} unreachable ({listed(lost, 8)})")
                if left:
                    parts.append(f"{len(left)} not started")
                self._say(_plain(f"   wave {i}/{n} done: " + ", ".join(parts)))
            case ev.Notice(level=lv, message=m):
                self._say(_plain(f"   [{lv}] {m}"))
            case ev.TrafficShifted(phase=ph, percent=pc, ok=good, version=v):
                # The share on the deployment's version (a rollback --to's: the one it
                # puts back, never "the new version") the balancer was told: as planned,
                # once the phase is done (a host of the wave may be down), not a count.
                on = f"told {pc} % of the fleet on {_plain(v) or 'the release'}"
                said = on if good else "FAILED"
                self._say(f"   traffic.{ph}: {said}")
            case ev.Decision(action=a, user=u, detail=d):
                self._say(_plain(f"   decision: {a} by {u}" + (f" ({d})" if d else "")))
            case ev.DeploymentFinished(outcome=o, summary=s):
                self._flight.clear()
                self._say(_plain(f"-- {o.value}: {s}"))
            case _:
                return
