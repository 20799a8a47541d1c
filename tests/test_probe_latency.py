"""A health probe on the demo fleet: one round trip, its latency the host's answer.

With every ``max_parallel`` slot taken (a deployment's hosts at scale), a probe waits for
one before anything is sent; the grid and the host panel show its latency, and a healthy
host must not read as seconds slow because the controller was busy. The check and the
metrics command go as one script (one session): the metrics are read whatever the check
said, and a metrics command that fails or hangs leaves the check's answer as it was.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from conftest import edit_env, wait_for

from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.metrics.page import picks
from canarytui.metrics.sources import Probe, probe
from canarytui.ssh import Fleet

SLOW = 1.0  # seconds web-02's check holds the only slot


async def test_latency_leaves_out_the_wait_for_a_slot(demo: DemoFleet, tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["ssh"]["max_parallel"] = 1
        # web-02's check says it started, then holds the slot; the others answer at once.
        data["health"]["check"] = f'[ "$DEMO_HOST" != web-02 ] || {{ : > started; sleep {SLOW}; }}'
        data["health"].pop("metrics", None)

    env = load_env(edit_env(demo.env_path, tmp_path / "one-slot.yaml", edit))
    fleet = Fleet(env)
    try:
        # Both connections first, so neither probe below pays for a handshake.
        await fleet.run("web-01", "true")
        await fleet.run("web-02", "true")
        holder = asyncio.ensure_future(probe(fleet, env, "web-02"))
        started = demo.sandbox_of("web-02") / "started"
        await wait_for(started.exists, 10)
        t0 = time.monotonic()
        waited = await asyncio.wait_for(probe(fleet, env, "web-01"), 10)
        wall = time.monotonic() - t0
        slow = await asyncio.wait_for(holder, 10)
    finally:
        await fleet.close()
    assert waited.sample.ok and slow.sample.ok
    assert wall >= SLOW * 0.5  # it did wait for web-02's slot...
    assert waited.sample.latency < SLOW * 0.5  # ...which its latency leaves out
    assert slow.sample.latency >= SLOW  # a slow check is still slow


async def probed(demo: DemoFleet, tmp_path: Path, **health: str) -> tuple[Probe, int, float]:
    """web-02 probed with the demo's health section changed by ``health`` (2 s timeout):
    the probe, the sessions the host received for it, and how long it took."""

    def edit(data: dict[str, Any]) -> None:
        data["health"].update(timeout="2s", **health)

    env = load_env(edit_env(demo.env_path, tmp_path / "probe.yaml", edit))
    wanted = picks(env.canary.analysis.rules)
    fleet = Fleet(env)
    try:
        await fleet.run("web-02", "true")  # connected: the handshake is no probe's
        before, t0 = demo.commands_received, time.monotonic()
        found = await asyncio.wait_for(probe(fleet, env, "web-02", wanted=wanted), 30)
        return found, demo.commands_received - before, time.monotonic() - t0
    finally:
        await fleet.close()


async def test_a_probe_is_one_session_with_the_check_and_the_metrics(
    demo: DemoFleet, tmp_path: Path
) -> None:
    found, sessions, _ = await probed(demo, tmp_path)
    assert sessions == 1
    assert found.sample.ok is True and found.sample.detail == ""
    assert found.page is not None and found.sample.metrics
    assert 0 < found.sample.latency < 2


async def test_a_failing_check_still_has_its_metrics_read(demo: DemoFleet, tmp_path: Path) -> None:
    found, sessions, _ = await probed(demo, tmp_path, check="echo not ready >&2; exit 3")
    assert sessions == 1
    assert found.sample.ok is False
    assert found.sample.detail == "health check exited 3: not ready"
    assert found.sample.metrics  # what the rules judge of a failing release


async def test_failing_metrics_leave_the_check_as_it_was(demo: DemoFleet, tmp_path: Path) -> None:
    found, _, _ = await probed(demo, tmp_path, metrics="exit 2")
    assert found.sample.ok is True
    assert found.sample.detail == "metrics exited 2"
    assert found.page is None and found.sample.metrics == {}
    hung, _, took = await probed(demo, tmp_path, metrics="sleep 30")
    assert hung.sample.ok is True and hung.page is None
    assert hung.sample.detail.startswith("metrics: command timed out after 2s"), hung.sample.detail
    assert "web-02" not in hung.sample.detail  # the sample is the host's already
    assert took < 15


async def test_a_check_that_hangs_is_no_answer(demo: DemoFleet, tmp_path: Path) -> None:
    found, _, took = await probed(demo, tmp_path, check="sleep 30")
    assert found.sample.ok is None and found.page is None
    assert "command timed out after 2s" in found.sample.detail
    assert took < 15


async def test_a_check_alone_goes_as_a_plain_command(demo: DemoFleet, tmp_path: Path) -> None:
    """Without a metrics command (or with ``health.prometheus``) there is no script to
    make: the check is sent as it is, without a subshell of the script's on the host."""

    def edit(data: dict[str, Any]) -> None:
        data["health"].pop("metrics", None)

    env = load_env(edit_env(demo.env_path, tmp_path / "check-only.yaml", edit))
    fleet = Fleet(env)
    scripts: list[str] = []
    run_steps = fleet.run_steps

    async def counted(name: str, *args: Any, **kwargs: Any) -> None:
        scripts.append(name)
        await run_steps(name, *args, **kwargs)

    fleet.run_steps = counted  # type: ignore[method-assign]
    try:
        before = demo.commands_received
        found = await asyncio.wait_for(probe(fleet, env, "web-02"), 30)
    finally:
        await fleet.close()
    assert found.sample.ok is True and found.page is None
    assert scripts == [] and demo.commands_received - before == 1
