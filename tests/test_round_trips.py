"""What a host costs in SSH sessions during a release: its steps and a first health probe
go as one script, so a host that is healthy at once is done in one session; in the last
wave that script also stays to release the host's lock when the deployment ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import edit_env, engine_for, wait_for

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import Engine


async def deploy(
    demo: DemoFleet,
    state_dir: Path,
    edit: Any = None,
    version: str = "1.1.0",
    watch: Callable[[Engine], Callable[[ev.Event], None]] | None = None,
) -> tuple[ev.Outcome, Engine]:
    """Deploy ``version`` (auto-promoted) with ``edit`` applied to the demo's file;
    ``watch(engine)`` gives a subscriber to its events."""
    env_path = demo.env_path
    if edit is not None:
        env_path = edit_env(env_path, env_path.with_name("edited.yaml"), edit)
    engine = engine_for(env_path, state_dir)
    if watch is not None:
        engine.subscribe(watch(engine))
    try:
        outcome = await asyncio.wait_for(engine.deploy(version, auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    return outcome, engine


async def wave_sessions(demo: DemoFleet, state_dir: Path, edit: Any) -> tuple[int, int, int, Any]:
    """Deploy 1.1.0 with ``edit`` applied to the demo's file: (sessions the promotion
    waves opened, hosts they deployed, sessions the release of the locks opened in the
    hosts the last wave did not reach, the engine)."""
    counts: list[int] = []
    hosts = 0
    last: list[str] = []
    finished = 0

    def count(event: ev.Event) -> None:
        nonlocal hosts, finished
        if isinstance(event, ev.WaveStarted | ev.WaveFinished):
            counts.append(demo.commands_received)
        if isinstance(event, ev.WaveStarted):
            hosts += len(event.hosts)
            last[:] = event.hosts
        if isinstance(event, ev.DeploymentFinished):
            finished = demo.commands_received

    outcome, engine = await deploy(demo, state_dir, edit, watch=lambda _: count)
    released = demo.commands_received - finished
    assert outcome is ev.Outcome.COMPLETE
    assert not any(
        (demo.sandbox_of(h) / ".canarytui" / "lock.demo.shop").exists() for h in demo.host_names
    )
    sessions = sum(counts[i + 1] - counts[i] for i in range(0, len(counts), 2))
    return sessions, hosts, released - (len(demo.host_names) - len(last)), engine


async def test_healthy_at_once_is_one_session_per_host(demo: DemoFleet, state_dir: Path) -> None:
    # The demo's own file: its restart step returns once the app is up on the new release.
    sessions, hosts, last_released, engine = await wave_sessions(demo, state_dir, lambda d: None)
    assert hosts == len(demo.host_names) - 1
    assert sessions == hosts  # the steps and the probe: one script each
    # The last wave's scripts waited to release their hosts' locks: no session for that.
    assert last_released == 0
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
    # The probe is no step: the journal has the steps only.
    record = engine.journal.last_deployment("demo", "shop")
    events = engine.journal.events(record.id)
    steps = {e["step"] for e in events if e["event"] == "step" and e["action"] == "deploy"}
    assert steps == {"install", "switch", "restart"}
    assert {e["action"] for e in events if e["event"] == "step"} == {"deploy", "traffic"}


async def test_a_probe_failing_in_the_script_leaves_it_to_the_gate(
    demo: DemoFleet, state_dir: Path
) -> None:
    # Not ready at once (the probe in the script fails, once): the gate's next try passes.
    def edit(d: dict[str, Any]) -> None:
        d["deploy"]["steps"].append({"name": "arm", "run": "touch armed"})
        d["health"]["check"] = "if [ -e armed ]; then rm armed; exit 1; fi"

    sessions, hosts, last_released, _ = await wave_sessions(demo, state_dir, edit)
    assert sessions == 2 * hosts
    assert last_released == 2  # the last wave's two hosts: their scripts did not stay
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
    assert not any((demo.sandbox_of(h) / "armed").exists() for h in demo.host_names)


async def test_a_dead_release_never_passes_on_a_stale_probe(
    demo: DemoFleet, state_dir: Path
) -> None:
    seen: list[ev.Event] = []
    outcome, _ = await deploy(demo, state_dir, version="1.4.0-dead", watch=lambda _: seen.append)
    assert outcome is not ev.Outcome.COMPLETE
    failed = [e for e in seen if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.FAILED]
    assert failed and "unhealthy after deploy" in failed[0].detail
    assert not any(isinstance(e, ev.WaveStarted) for e in seen)


def failing_on(host: str, on_failure: str) -> Any:
    def edit(d: dict[str, Any]) -> None:
        # Fails there with the new release only: rolling back (the same steps with the
        # previous version) passes.
        check = f'test "$DEMO_HOST {{version}}" != "{host} 1.1.0"'
        d["deploy"]["steps"].append({"name": "check", "run": check})
        d["promote"]["on_failure"] = on_failure
        d["promote"]["max_failures"] = 0

    return edit


def lock_of(demo: DemoFleet, host: str) -> Path:
    return demo.sandbox_of(host) / ".canarytui" / "lock.demo.shop"


async def test_a_rollback_releases_through_the_waiting_scripts(
    demo: DemoFleet, state_dir: Path
) -> None:
    # The last wave: web-05 passes (its script waits), web-06 fails; everything is rolled
    # back, then every lock released, web-05's by its waiting script.
    outcome, engine = await deploy(demo, state_dir, failing_on("web-06", "rollback"))
    assert outcome is ev.Outcome.PROMOTION_ROLLED_BACK
    assert not engine.locks.held
    assert {demo.version_on(h) for h in demo.host_names} == {"1.0.0"}
    assert not any(lock_of(demo, h).exists() for h in demo.host_names)
    await wait_for(lambda: demo.live_processes == 0, timeout=10)


async def test_a_halt_keeps_the_locks_and_leaves_no_shell_waiting(
    demo: DemoFleet, state_dir: Path
) -> None:
    outcome, engine = await deploy(demo, state_dir, failing_on("web-06", "halt"))
    assert outcome is ev.Outcome.HALTED
    assert set(engine.locks.held) == {"web-05"}  # it waited for the deployment's end
    # The process let go: the waiting script read the end of its input and did nothing.
    await wait_for(lambda: demo.live_processes == 0, timeout=10)
    assert all(lock_of(demo, h).exists() for h in demo.host_names)
    assert demo.version_on("web-05") == "1.1.0"


async def test_a_script_lost_while_waiting_releases_in_a_session_of_its_own(
    demo: DemoFleet, state_dir: Path
) -> None:
    def cut(engine: Engine) -> Callable[[ev.Event], None]:
        def on(event: ev.Event) -> None:
            if isinstance(event, ev.WaveFinished) and event.wave == event.waves:
                engine.fleet.drop(event.succeeded[0])  # its connection, and the script, gone

        return on

    outcome, _ = await deploy(demo, state_dir, watch=cut)
    assert outcome is ev.Outcome.COMPLETE
    assert not any(lock_of(demo, h).exists() for h in demo.host_names)
