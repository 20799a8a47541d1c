"""What a host costs in SSH sessions during a release: its steps and a first health probe
go as one script, so a host that is healthy at once is done in one session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import edit_env, engine_for

from canarytui import events as ev
from canarytui.demo import DemoFleet


async def wave_sessions(demo: DemoFleet, state_dir: Path, edit: Any) -> tuple[int, int, Any]:
    """Deploy 1.1.0 with ``edit`` applied to the demo's file: (sessions the promotion
    waves opened, hosts they deployed, the engine)."""
    env_path = edit_env(demo.env_path, demo.env_path.with_name("edited.yaml"), edit)
    engine = engine_for(env_path, state_dir)
    counts: list[int] = []
    hosts = 0

    def count(event: ev.Event) -> None:
        nonlocal hosts
        if isinstance(event, ev.WaveStarted | ev.WaveFinished):
            counts.append(demo.commands_received)
        if isinstance(event, ev.WaveStarted):
            hosts += len(event.hosts)

    engine.subscribe(count)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    sessions = sum(counts[i + 1] - counts[i] for i in range(0, len(counts), 2))
    return sessions, hosts, engine


async def test_healthy_at_once_is_one_session_per_host(demo: DemoFleet, state_dir: Path) -> None:
    # The demo's own file: its restart step returns once the app is up on the new release.
    sessions, hosts, engine = await wave_sessions(demo, state_dir, lambda d: None)
    assert hosts == len(demo.host_names) - 1
    assert sessions == hosts  # the steps and the probe: one script each
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

    sessions, hosts, _ = await wave_sessions(demo, state_dir, edit)
    assert sessions == 2 * hosts
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
    assert not any((demo.sandbox_of(h) / "armed").exists() for h in demo.host_names)


async def test_a_dead_release_never_passes_on_a_stale_probe(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.4.0-dead", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is not ev.Outcome.COMPLETE
    failed = [e for e in seen if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.FAILED]
    assert failed and "unhealthy after deploy" in failed[0].detail
    assert not any(isinstance(e, ev.WaveStarted) for e in seen)
