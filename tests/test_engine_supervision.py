"""Host work is supervised: a bug in one host's work halts the deployment (journaled, locks
kept, siblings stopped), and a failing event consumer is reported rather than forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_for, wait_for

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.journal import JournalError
from canarytui.ssh import CommandResult


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def lock_dirs(fleet: DemoFleet) -> set[str]:
    return {
        h
        for h in fleet.host_names
        if (fleet.sandbox_of(h) / ".canarytui" / "lock.demo.shop" / "owner").exists()
    }


async def test_error_in_one_hosts_work_halts_the_wave_and_rollback_restores(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    sibling_started = asyncio.Event()
    halted = asyncio.Event()
    sibling_cancelled = False
    engine.subscribe(
        lambda e: (
            halted.set() if isinstance(e, ev.PhaseChanged) and e.phase is ev.Phase.HALTED else None
        )
    )
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        real_run = engine.fleet.run_steps

        # Wave 2 is web-03 and web-04: web-04's install waits until the deployment is
        # halted, then goes on (as it would if nobody stopped it); web-03's work hits a
        # bug once web-04 is under way. (A host's steps go to it as one script.)
        async def run(
            name: str,
            steps: list[tuple[str, float | None]],
            done: Callable[[int, CommandResult], None],
            **kw: Any,
        ) -> None:
            nonlocal sibling_cancelled
            command = "\n".join(c for c, _ in steps)
            if "releases/" in command and name == "web-04":
                kw["started"]()  # it has its slot: deploying, as the fleet would say
                sibling_started.set()
                try:
                    await halted.wait()
                except asyncio.CancelledError:
                    sibling_cancelled = True
                    raise
            if "releases/" in command and name == "web-03":
                await sibling_started.wait()
                raise RuntimeError("injected bug")
            return await real_run(name, steps, done, **kw)

        engine.fleet.run_steps = run  # type: ignore[method-assign, assignment]
        outcome = await asyncio.wait_for(engine.promote(), 60)
        # Unsupervised, web-04 would now go on with its steps after the halt.
        await wait_for(
            lambda: (
                sibling_cancelled
                or any(isinstance(e, ev.StepResult) and e.host == "web-04" for e in seen)
            ),
            10,
        )
        engine.fleet.run_steps = real_run  # type: ignore[method-assign]
    finally:
        await engine.fleet.close()

    assert outcome is ev.Outcome.ERROR
    assert sibling_cancelled
    assert not engine.busy
    # The error is in the journal, with the host whose work raised it, and the
    # deployment is halted and open, its locks kept for the rollback.
    record = engine.journal.last_deployment("demo", "shop")
    assert record is not None and record.is_open and record.phase == "halted"
    kinds = [e["event"] for e in engine.journal.events(record.id)]
    assert "internal_error" in kinds
    error = next(e for e in engine.journal.events(record.id) if e["event"] == "internal_error")
    assert error["host"] == "web-03" and "injected bug" in error["message"]
    assert "RuntimeError" in error["traceback"]
    notices = [e for e in seen if isinstance(e, ev.Notice) and e.level == "error"]
    assert any("internal error" in n.message and "halted" in n.message for n in notices)
    assert lock_dirs(demo) == set(demo.host_names)
    # Nothing kept deploying after the halt: no step, no host deploying, no wave 3.
    halt = next(
        i
        for i, e in enumerate(seen)
        if isinstance(e, ev.PhaseChanged) and e.phase is ev.Phase.HALTED
    )
    after = seen[halt:]
    assert not [e for e in after if isinstance(e, ev.StepResult)]
    assert not [
        e
        for e in after
        if isinstance(e, ev.HostUpdate)
        and e.state in (ev.HostState.DEPLOYING, ev.HostState.DEPLOYED)
    ]
    assert not [e for e in seen if isinstance(e, ev.WaveStarted) and e.wave == 3]
    # The stopped sibling is marked, not left "deploying".
    assert engine.host_states["web-04"] is ev.HostState.FAILED
    assert engine.details["web-04"] == "stopped: internal error"
    assert versions(demo)["web-05"] == "1.0.0" and versions(demo)["web-06"] == "1.0.0"

    # A later process rolls it back: every host is on 1.0.0 again, no lock left.
    later = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(later.rollback(), 60) is ev.Outcome.ROLLED_BACK
    finally:
        await later.fleet.close()
    assert set(versions(demo).values()) == {"1.0.0"}
    assert lock_dirs(demo) == set()


async def test_a_failing_consumer_is_reported_and_the_rollout_goes_on(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    failures = 0

    def broken(event: ev.Event) -> None:
        nonlocal failures
        if isinstance(event, ev.WaveStarted):
            failures += 1
            raise ValueError("consumer bug")

    engine.subscribe(broken)
    engine.subscribe(seen.append)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert set(versions(demo).values()) == {"1.1.0"}
    reports = [e for e in seen if isinstance(e, ev.Notice) and "consumer" in e.message]
    assert len(reports) == failures == 3
    assert all("wave_started" in r.message and "consumer bug" in r.message for r in reports)
    record = engine.journal.last_deployment("demo", "shop")
    assert record is not None
    journaled = [e["message"] for e in engine.journal.events(record.id) if e["event"] == "notice"]
    assert sum("consumer bug" in m for m in journaled) == 3


async def test_a_journal_that_fails_mid_wave_stops_every_host(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A full disk in wave 2: the error is clear, and no host changes after it."""
    engine = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        real_record = engine.journal.record_many
        failed_at: list[ev.Event] = []

        def record(events: Iterable[ev.Event]) -> None:
            events = list(events)
            hit = [e for e in events if isinstance(e, ev.StepResult) and e.host == "web-03"]
            if failed_at or hit:
                failed_at.extend(events)
                raise JournalError(engine.journal.path, "could not record an event", "free space")
            real_record(events)

        engine.journal.record_many = record  # type: ignore[method-assign]
        with pytest.raises(JournalError, match="could not record"):
            await asyncio.wait_for(engine.promote(), 60)
        engine.journal.record_many = real_record  # type: ignore[method-assign]
        assert not engine.busy
    finally:
        await engine.fleet.close()
    # Wave 3 never started; wave 2's other host stopped where it was.
    assert versions(demo)["web-05"] == "1.0.0" and versions(demo)["web-06"] == "1.0.0"
    record = engine.journal.last_deployment("demo", "shop")
    assert record is not None and record.is_open
    # What the journal has is enough for a later process to roll everything back.
    later = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(later.rollback(), 60) is ev.Outcome.ROLLED_BACK
    finally:
        await later.fleet.close()
    assert set(versions(demo).values()) == {"1.0.0"}
    assert lock_dirs(demo) == set()
