"""The monitor on the demo fleet: what is watched is probed fast, the rest slowly, versions
are discovered, log streams follow the watched hosts, and stop() leaves nothing running."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from conftest import run_cli, wait_for

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine
from canarytui.journal import Journal
from canarytui.monitor import SLOW_EVERY, Monitor
from canarytui.ui.fleet_state import OLD_AFTER


def _engine(demo: DemoFleet, state: object) -> Engine:
    env = load_env(demo.env_path)
    return Engine(env, Journal(state), user="tester")  # type: ignore[arg-type]


def _monitor_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("monitor-") and not t.done()]


async def test_watched_hosts_fast_the_rest_slowly(demo: DemoFleet, tmp_path: object) -> None:
    engine = _engine(demo, tmp_path)
    samples: Counter[str] = Counter()
    engine.subscribe(lambda e: samples.update([e.host]) if isinstance(e, ev.HealthSample) else None)
    monitor = Monitor(engine, slow_interval=60.0, slow_rate=1.0)
    monitor.focus("web-03")
    monitor.interest = {"web-05"}
    started = time.monotonic()
    await monitor.start()
    try:
        await wait_for(lambda: samples["web-03"] >= 5 and samples["web-05"] >= 5, 10)
        elapsed = time.monotonic() - started
        # Versions of the whole fleet were asked once at start.
        await wait_for(lambda: all(engine.versions.get(h) == "1.0.0" for h in demo.host_names), 10)
    finally:
        await monitor.stop()
        await engine.fleet.close()
    interval = engine.env.health.interval
    assert samples["web-03"] <= elapsed / (interval * 0.75) + 2
    others = sum(n for h, n in samples.items() if h not in ("web-03", "web-05"))
    # The slow refresh: about slow_rate hosts a second, whatever the fleet size.
    assert others <= 1.0 * elapsed + 2
    assert _monitor_tasks() == []


async def test_a_small_fleet_is_refreshed_before_its_tiles_would_say_an_age(
    demo: DemoFleet, tmp_path: object
) -> None:
    """Nothing watched, a small fleet is probed every SLOW_EVERY seconds (each host's tile
    then never says its probe's age, OLD_AFTER), not every minute; and no more often."""
    engine = _engine(demo, tmp_path)
    seen: dict[str, list[float]] = {h: [] for h in demo.host_names}
    engine.subscribe(
        lambda e: seen[e.host].append(time.monotonic()) if isinstance(e, ev.HealthSample) else None
    )
    monitor = Monitor(engine, initial_discovery=False)
    assert monitor.slow_interval == SLOW_EVERY < OLD_AFTER
    await monitor.start()
    try:
        await wait_for(lambda: all(len(times) >= 2 for times in seen.values()), 3 * SLOW_EVERY)
    finally:
        await monitor.stop()
        await engine.fleet.close()
    for host, times in seen.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= SLOW_EVERY - 0.1, (host, gaps)


async def test_a_host_that_answers_again_is_asked_its_version_at_once(
    demo: DemoFleet, tmp_path: object
) -> None:
    """A host marked unreachable (its version still known) that answers a probe again is
    asked its version and state at the next tick: its tile said "unreachable" for
    sweeps (minutes on a big fleet) while its health said it answered."""
    engine = _engine(demo, tmp_path)
    monitor = Monitor(engine, slow_interval=0.3, slow_rate=50.0)
    await monitor.start()
    try:
        await wait_for(lambda: all(engine.versions.get(h) == "1.0.0" for h in demo.host_names), 10)
        await demo.set_fault("web-03", "down")
        await wait_for(lambda: engine.host_states["web-03"] is ev.HostState.UNREACHABLE, 10)
        assert engine.versions["web-03"] == "1.0.0"
        await demo.set_fault("web-03", "up")
        await wait_for(lambda: engine.host_states["web-03"] is ev.HostState.IDLE, 10)
    finally:
        await monitor.stop()
        await engine.fleet.close()


async def test_what_a_host_runs_after_a_finished_deployment_is_asked_again(
    demo: DemoFleet, tmp_path: object
) -> None:
    """Once a deployment is over, its hosts ("deployed", "rolled back") are asked their
    version as the idle ones are: another machine's release, or a fix by hand, changed what
    web-04 runs, and the grid went on saying the deployment's version for the session (the
    host under the cursor, probed by the fast loop, was never asked at all)."""
    engine = _engine(demo, tmp_path)
    monitor = Monitor(engine, slow_interval=0.3, slow_rate=50.0)
    await monitor.start()  # as the UI's: watching before, during and after the deployment
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60) is (
            ev.Outcome.COMPLETE
        )
        monitor.focus("web-04")  # the host the operator looks at: probed fast, asked too
        for name in ("web-04", "web-05"):  # 1.2.0 put there by other means than this journal
            box = demo.sandbox_of(name)
            (box / "releases" / "1.2.0").mkdir(parents=True, exist_ok=True)
            (box / "releases" / "1.2.0" / "VERSION").write_text("1.2.0\n")
            (box / "current").unlink()
            (box / "current").symlink_to("releases/1.2.0")
        changed = ("web-04", "web-05")
        await wait_for(lambda: {engine.versions[h] for h in changed} == {"1.2.0"}, 10)
        assert engine.host_states["web-04"] is ev.HostState.DEPLOYED  # the deployment's word
        others = {engine.versions[h] for h in demo.host_names if h not in changed}
        assert others == {"1.1.0"}
    finally:
        await monitor.stop()
        await engine.fleet.close()


@contextlib.asynccontextmanager
async def _tailing(
    demo: DemoFleet, tmp_path: object, host: str
) -> AsyncIterator[tuple[Monitor, list[ev.LogLine]]]:
    """A monitor with only ``host``'s logs streamed, once its first line came; the lines."""
    engine = _engine(demo, tmp_path)
    lines: list[ev.LogLine] = []
    engine.subscribe(lambda e: lines.append(e) if isinstance(e, ev.LogLine) else None)
    monitor = Monitor(engine, slow_rate=0.0, initial_discovery=False)
    await monitor.start()
    try:
        monitor.watch_logs([host])
        await wait_for(lambda: any(x.host == host for x in lines), 10)
        yield monitor, lines
    finally:
        await monitor.stop()
        await engine.fleet.close()


async def test_log_streams_follow_the_watched_hosts(demo: DemoFleet, tmp_path: object) -> None:
    async with _tailing(demo, tmp_path, "web-02") as (monitor, lines):
        monitor.watch_logs(["web-04"])
        await wait_for(lambda: monitor.streaming == {"web-04"}, 5)
        mark = len(lines)
        await wait_for(lambda: any(x.host == "web-04" for x in lines[mark:]), 10)
        assert monitor.log_hosts == ["web-04"]
    assert _monitor_tasks() == []
    assert all("shop[" in x.line or x.line.startswith("[canarytui]") for x in lines)


async def test_a_lost_log_stream_is_said_on_the_hosts_own_lines_once(
    demo: DemoFleet, tmp_path: object
) -> None:
    """The host's log pane said "[canarytui] log stream lost: web-02 (127.0.0.1:PORT): log
    stream lost: Connection lost; ...": its own name and the loss twice."""
    try:
        async with _tailing(demo, tmp_path, "web-02") as (_, lines):
            await demo.set_fault("web-02", "down")
            await wait_for(lambda: any(x.line.startswith("[canarytui]") for x in lines), 10)
    finally:
        await demo.set_fault("web-02", "up")
    said = next(x.line for x in lines if x.line.startswith("[canarytui]"))
    assert said == "[canarytui] log stream lost; retrying in 1s", said


async def test_a_failure_in_background_watching_is_reported(
    demo: DemoFleet, tmp_path: object, monkeypatch: object
) -> None:
    """A bug in a probe task is a notice to every consumer, not an exception nobody reads."""
    engine = _engine(demo, tmp_path)
    notices: list[ev.Notice] = []
    engine.subscribe(lambda e: notices.append(e) if isinstance(e, ev.Notice) else None)
    monitor = Monitor(engine, slow_rate=0.0, initial_discovery=False)

    async def broken(name: str, rest: bool = False) -> None:
        raise KeyError(f"probe bug on {name}")

    monitor._probe = broken  # type: ignore[method-assign]
    monitor.focus("web-02")
    await monitor.start()
    try:
        await wait_for(lambda: bool(notices), 10)
    finally:
        await monitor.stop()
        await engine.fleet.close()
    assert notices[0].level == "error"
    assert "monitor-probe-web-02" in notices[0].message
    assert "probe bug on web-02" in notices[0].message


async def test_the_monitor_stops_however_the_app_ends(demo: DemoFleet, tmp_path: object) -> None:
    """Not only a confirmed quit: an app that ends otherwise (here, its test's end) leaves
    no loop, probe or log stream running, and no connection open, on a loop that goes on."""
    from test_ui_stories import SIZE, make_app

    app = make_app(demo, tmp_path)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        engine = app.engine
        await wait_for(lambda: engine.versions.get(demo.host_names[0]) == "1.0.0", 15)
        await wait_for(lambda: any(t.get_name() == "monitor-fast" for t in _monitor_tasks()), 5)
        await pilot.pause()
    assert _monitor_tasks() == []
    assert engine.fleet.open_connections == 0


async def test_the_refresh_at_rest_reads_versions_and_locks_in_its_probes(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """Nothing watched and no discovery sweep: each background probe asks the host's
    version and lock in its own script (one session a probe, nothing more), so a release
    or a maintenance lock made from another machine shows on the tiles by the next probe,
    not every few sweeps (twenty minutes at 1,000 hosts)."""
    engine = _engine(demo, tmp_path)
    samples: list[str] = []
    engine.subscribe(lambda e: samples.append(e.host) if isinstance(e, ev.HealthSample) else None)
    monitor = Monitor(engine, slow_interval=0.3, slow_rate=50.0, initial_discovery=False)
    await monitor.start()
    try:
        await wait_for(lambda: all(engine.versions.get(h) == "1.0.0" for h in demo.host_names), 10)
        box = demo.sandbox_of("web-05")  # 1.2.0 put there by other means than this journal
        (box / "releases" / "1.2.0").mkdir(parents=True, exist_ok=True)
        (box / "releases" / "1.2.0" / "VERSION").write_text("1.2.0\n")
        (box / "current").unlink()
        (box / "current").symlink_to("releases/1.2.0")
        await wait_for(lambda: engine.versions["web-05"] == "1.2.0", 10)
        elsewhere = tmp_path / "another-machine"
        held = await run_cli("lock", str(demo.env_path), "-m", "disk swap", state_dir=elsewhere)
        assert held.code == 0, held.err
        await wait_for(lambda: set(engine.state.locked_by) == set(demo.host_names), 10)
        assert all(h.maintenance for h in engine.state.locked_by.values())
        samples.clear()
        before = demo.commands_received
        await wait_for(lambda: len(samples) >= 12, 10)
        sessions, probed = demo.commands_received - before, len(samples)
    finally:
        await monitor.stop()
        await engine.fleet.close()
    # One session a probe (a host's probe may be in flight at either end of the count).
    assert abs(sessions - probed) <= len(demo.host_names), (sessions, probed)


async def test_the_host_looked_at_has_its_version_read_in_its_own_probes(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """No background refresh, no discovery sweep: the focused host's fast probe asks its
    version and lock too, every ``slow_interval`` (the host under the cursor was the one
    whose tile lagged: it is no sweep's)."""
    engine = _engine(demo, tmp_path)
    monitor = Monitor(engine, slow_interval=0.5, slow_rate=0.0, initial_discovery=False)
    monitor.focus("web-04")
    await monitor.start()
    try:
        await wait_for(lambda: engine.versions.get("web-04") == "1.0.0", 10)
        box = demo.sandbox_of("web-04")
        (box / "releases" / "1.2.0").mkdir(parents=True, exist_ok=True)
        (box / "releases" / "1.2.0" / "VERSION").write_text("1.2.0\n")
        (box / "current").unlink()
        (box / "current").symlink_to("releases/1.2.0")
        await wait_for(lambda: engine.versions["web-04"] == "1.2.0", 10)
    finally:
        await monitor.stop()
        await engine.fleet.close()
    assert all(engine.versions.get(h) is None for h in demo.host_names if h != "web-04")
