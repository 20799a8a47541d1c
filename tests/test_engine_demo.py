"""The engine end to end on the demo fleet: real SSH (in-process asyncssh servers),
real shell steps in each host's sandbox, a simulated app whose metrics follow its release."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from pathlib import Path

import pytest
from conftest import edit_env, engine_for, wait_for

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import ActionRefused, Engine
from canarytui.engine.locks import LockHeld
from canarytui.journal import way_out
from canarytui.ssh import CommandTimeout


def short_timeouts(demo: DemoFleet, tmp_path: Path, command: str) -> Path:
    """The demo's environment file with a 1 s connect timeout, ``command`` for commands,
    and one failed host tolerated while promoting."""

    def short(data: dict) -> None:  # type: ignore[type-arg]
        data["ssh"].update({"connect_timeout": "1s", "command_timeout": command})
        data["promote"].update({"max_failures": 1})

    return edit_env(demo.env_path, tmp_path / "short.yaml", short)


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


async def test_good_release_promoted_in_waves(demo: DemoFleet, state_dir: Path) -> None:
    engine = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert set(versions(demo).values()) == {"1.1.0"}
    waves = [e for e in seen if isinstance(e, ev.WaveStarted)]
    # 5 non-canaries over [10%, 50%, 100%]: 1, then 2, then 2 hosts.
    assert [len(w.hosts) for w in waves] == [1, 2, 2]
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert verdict.verdict is ev.Verdict.PASS
    assert any(m.rule == "error-ratio" and m.value is not None for m in verdict.measurements)
    # One connection per host, reused for locks, discovery, steps, probes and unlock.
    assert engine.fleet.connects == len(demo.host_names)
    record = engine.journal.last_deployment("demo", "shop")
    assert record is not None and record.outcome == "complete" and not record.is_open
    hosts = engine.journal.hosts(record.id)
    assert {h.current for h in hosts.values()} == {"1.1.0"}
    assert {h.previous for h in hosts.values()} == {"1.0.0"}
    # The journal has every event the subscribers saw, in the same order.
    journaled = [e["event"] for e in engine.journal.events(record.id)]
    assert journaled == [e.kind for e in seen if e.journaled and e.deployment]
    # Locks are gone everywhere.
    assert not any(
        (demo.sandbox_of(h) / ".canarytui" / "lock.demo.shop" / "owner").exists()
        for h in demo.host_names
    )


async def test_bad_release_caught_on_canary_and_rolled_back(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    touched: list[str] = []
    engine.subscribe(
        # The traffic hooks run on the operator's machine ("(local)"), not on a host.
        lambda e: (
            touched.append(e.host)
            if isinstance(e, ev.StepResult) and e.action != "traffic"
            else None
        )
    )
    not_yet_journaled: list[str] = []

    def journal_first(e: ev.Event) -> None:
        # Each decision is stored before any consumer hears of it (a burst, the hosts
        # said pending at the start, is stored whole before the first of it is heard).
        if e.journaled and e.deployment is not None:
            stored = engine.journal.events(e.deployment)
            if not any(r["event"] == e.kind and r["at"] == e.at for r in stored):
                not_yet_journaled.append(e.kind)

    engine.subscribe(journal_first)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.3.0-bad", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.CANARY_FAILED
    assert not_yet_journaled == []
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert verdict.verdict is ev.Verdict.FAIL
    assert any("error-ratio" in r and "web-01" in r for r in verdict.reasons)
    failing = next(m for m in verdict.measurements if m.rule == "error-ratio")
    assert failing.value is not None and failing.value > 0.05
    assert set(versions(demo).values()) == {"1.0.0"}
    # No step ever ran on a non-canary host.
    assert set(touched) == {"web-01"}
    record = engine.journal.last_deployment("demo", "shop")
    assert record is not None and record.outcome == "canary failed"
    assert engine.journal.hosts(record.id)["web-01"].state == "rolled back"


async def test_dead_release_fails_health_and_is_rolled_back(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.4.0-dead"), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.CANARY_FAILED
    assert set(versions(demo).values()) == {"1.0.0"}
    assert engine.last_verdict is not None
    assert any("unhealthy" in r for r in engine.last_verdict.reasons)


async def test_slow_release_caught_by_latency_rule(demo: DemoFleet, state_dir: Path) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.5.0-slow"), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.CANARY_FAILED
    assert engine.last_verdict is not None
    assert any("p99-latency" in r for r in engine.last_verdict.reasons)


def lock_file(demo: DemoFleet, host: str) -> Path:
    return demo.sandbox_of(host) / ".canarytui" / "lock.demo.shop" / "owner"


def relocked(engine: Engine, d: int) -> list[str]:
    said = [e["message"] for e in engine.journal.events(d) if e["event"] == "notice"]
    return [m for m in said if "again for deployment" in m]


async def test_open_deployment_then_promote_wave_by_wave(demo: DemoFleet, state_dir: Path) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        assert await engine.deploy("1.2.0") is ev.Outcome.CANARY_PASSED
        assert engine.phase is ev.Phase.AWAITING_PROMOTION
        # Only the canary moved; the deployment is open and holds its locks.
        assert versions(demo)["web-01"] == "1.2.0"
        assert versions(demo)["web-02"] == "1.0.0"
        assert (demo.sandbox_of("web-03") / ".canarytui" / "lock.demo.shop" / "owner").is_file()
        with pytest.raises(ActionRefused, match="still open"):
            await engine.deploy("1.1.0")
        assert await engine.promote(all_waves=False) is ev.Outcome.PAUSED
        assert versions(demo)["web-02"] == "1.2.0" and versions(demo)["web-03"] == "1.0.0"
        assert await engine.promote(all_waves=False) is ev.Outcome.PAUSED
        assert await engine.promote(all_waves=False) is ev.Outcome.COMPLETE
        assert set(versions(demo).values()) == {"1.2.0"}
        with pytest.raises(ActionRefused, match="nothing to promote"):
            await engine.promote()
        record = engine.journal.last_deployment("demo", "shop")
        assert record is not None
        actions = [d["action"] for d in engine.journal.decisions(record.id)]
        assert actions == ["deploy", "promote", "promote", "promote"]
        assert relocked(engine, record.id) == []  # this process held them all along
        # Rolling back a completed deployment takes every host back where it was.
        assert await engine.rollback() is ev.Outcome.ROLLED_BACK
        # Its locks were released at the end: taken again first, and said so.
        assert relocked(engine, record.id) == ["locking 6 host(s) again for deployment #1"]
        assert set(versions(demo).values()) == {"1.0.0"}
        with pytest.raises(ActionRefused, match="already"):
            await engine.rollback()
    finally:
        await engine.fleet.close()


async def test_rollback_during_analysis_stops_it(demo: DemoFleet, state_dir: Path) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        run = asyncio.ensure_future(engine.deploy("1.1.0", auto_promote=True))
        await wait_for(lambda: engine.phase is ev.Phase.ANALYSIS, 30)
        assert await asyncio.wait_for(engine.rollback(), 30) is ev.Outcome.ROLLED_BACK
        assert await asyncio.wait_for(run, 10) is ev.Outcome.ABORTED
        assert set(versions(demo).values()) == {"1.0.0"}
        # The stopped deployment left its locks to the rollback: nothing says it was
        # interrupted or stays open, and no host was unlocked and locked again.
        said = [e["message"] for e in engine.journal.events(1) if e["event"] == "notice"]
        assert not [m for m in said if "interrupted" in m or "stays open" in m], said
        assert relocked(engine, 1) == []
        assert not any(lock_file(demo, h).exists() for h in demo.host_names)
    finally:
        await engine.fleet.close()


async def test_a_rollback_cancelled_as_it_starts_changes_nothing(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Ctrl-C (or a quit) while a rollback waits for the deployment it stopped: the
    rollback stops there; it does not go on to roll the hosts back."""
    engine = engine_for(demo.env_path, state_dir)
    try:
        run = asyncio.ensure_future(engine.deploy("1.1.0", auto_promote=True))
        await wait_for(lambda: engine.phase is ev.Phase.ANALYSIS, 30)
        back = asyncio.ensure_future(engine.rollback())
        await asyncio.sleep(0)  # one turn: it has stopped the deployment and waits for it
        assert not back.done() and not run.done()
        back.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(back, 30)
        assert await asyncio.wait_for(run, 10) is ev.Outcome.ABORTED
        assert versions(demo)["web-01"] == "1.1.0"  # the canary was not rolled back
        record = engine.journal.open_deployment("demo", "shop")
        assert record is not None  # still open: a later rollback takes it back
        assert "rollback" not in [d["action"] for d in engine.journal.decisions(record.id)]
        # Stopped as any deployment is: it says so, and its locks are freed.
        said = [e["message"] for e in engine.journal.events(record.id) if e["event"] == "notice"]
        assert any("interrupted during analysis" in m for m in said), said
        # What it says can be done later is what will be accepted: no verdict, so no
        # promotion; an analysis again (test_analyse_again.py) or a rollback.
        assert any("analyses its canaries again, or roll it back later" in m for m in said)
        assert not any("promote or roll" in m for m in said), said
        with pytest.raises(ActionRefused, match="nothing to retry or skip"):
            await engine.promote(retry=True)
        assert not any(lock_file(demo, h).exists() for h in demo.host_names)
    finally:
        await engine.fleet.close()


def test_a_phase_said_in_words_after_is() -> None:
    """Refusals and questions say "deployment #3 is ...": in words, not the bare label."""
    assert ev.phase_doing(ev.Phase.CANARY) == "deploying to its canaries"
    assert ev.phase_doing(ev.Phase.ANALYSIS) == "in its analysis"
    assert ev.phase_doing(ev.Phase.PROMOTING, 2, 3) == "promoting wave 2/3"
    assert ev.phase_doing(ev.Phase.AWAITING_PROMOTION) == "awaiting promotion"
    assert ev.phase_doing(ev.Phase.HALTED) == "halted"


def test_the_way_out_said_is_what_promote_and_rollback_accept() -> None:
    """What an open deployment's messages say is left (Ctrl-C, quit, status, refusals):
    promote refuses before a verdict and after a failed one; a stopped rollback is
    finished by rolling back again."""
    assert way_out(ev.Phase.AWAITING_PROMOTION) == "promote or roll it back"
    assert way_out(ev.Phase.HALTED, verdict="pass") == "promote or roll it back"
    assert way_out(ev.Phase.ANALYSIS) == "promote analyses its canaries again, or roll it back"
    assert way_out(ev.Phase.CANARY) == "promote analyses its canaries again, or roll it back"
    assert way_out(ev.Phase.HALTED, verdict="fail") == "its canary failed: roll it back"
    assert way_out(ev.Phase.ROLLING_BACK, verdict="fail") == "roll it back again"
    assert way_out(ev.Phase.PROMOTING, kind="rollback") == "promote it to finish putting it back"


async def test_operator_actions_refused_when_invalid(demo: DemoFleet, state_dir: Path) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        with pytest.raises(ActionRefused, match="nothing to promote"):
            await engine.promote()
        with pytest.raises(ActionRefused, match="no deployment"):
            await engine.rollback()
        with pytest.raises(ActionRefused, match="nothing to hold"):
            engine.hold()
        with pytest.raises(ActionRefused, match="nothing to resume"):
            await engine.resume()
    finally:
        await engine.fleet.close()
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_host_down_mid_promotion_counts_against_budget(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    # max_failures 0 and on_failure halt: one host down stops the promotion, open.
    def strict(data: dict) -> None:  # type: ignore[type-arg]
        data["promote"].update({"max_failures": 0, "on_failure": "halt"})
        data["ssh"]["connect_timeout"] = "1s"

    env_path = edit_env(demo.env_path, tmp_path / "strict.yaml", strict)
    engine = engine_for(env_path, state_dir)
    try:
        assert await engine.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        await demo.set_fault("web-04", "down")
        engine.fleet.drop("web-04")
        outcome = await asyncio.wait_for(engine.promote(), 60)
        assert outcome is ev.Outcome.HALTED
        assert engine.host_states["web-04"] is ev.HostState.UNREACHABLE
        record = engine.journal.open_deployment("demo", "shop")
        assert record is not None and record.phase == "halted"
        # The operator decides to roll back: the canary and the hosts reached go back.
        await demo.set_fault("web-04", "up")
        assert await asyncio.wait_for(engine.rollback(), 60) is ev.Outcome.ROLLED_BACK
        assert set(versions(demo).values()) == {"1.0.0"}
    finally:
        await engine.fleet.close()


async def test_a_host_left_unreachable_by_a_finished_deployment_is_at_rest_when_found(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The engine's record of a deployment it finished said it was still open, so a host
    the rollout could not reach, found again after it, stayed "unreachable" (discovery
    keeps the state of an open deployment's hosts): the UI's tile said so while the host
    answered. The record is closed with the deployment."""
    env_path = short_timeouts(demo, tmp_path, "10s")
    engine = engine_for(env_path, state_dir)
    try:
        await demo.set_fault("web-05", "down")
        outcome = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
        assert outcome is ev.Outcome.COMPLETE
        assert engine.host_states["web-05"] is ev.HostState.UNREACHABLE
        d = engine.deployment
        assert d is not None and not d.is_open and d.outcome == "complete"
        journaled = engine.journal.deployment(d.id)
        assert journaled is not None  # as the journal has it (touched since: updated_at)
        assert dataclasses.replace(d, updated_at=0) == dataclasses.replace(journaled, updated_at=0)
        await demo.set_fault("web-05", "up")
        assert await engine.discover(["web-05"]) == {"web-05": "1.0.0"}
        assert engine.host_states["web-05"] is ev.HostState.IDLE
    finally:
        await engine.fleet.close()


async def test_failure_budget_exceeded_rolls_back_everywhere(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    def strict(data: dict) -> None:  # type: ignore[type-arg]
        data["promote"].update({"max_failures": 0, "on_failure": "rollback"})
        data["ssh"]["connect_timeout"] = "1s"

    env_path = edit_env(demo.env_path, tmp_path / "strict.yaml", strict)
    engine = engine_for(env_path, state_dir)
    try:
        assert await engine.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        await demo.set_fault("web-05", "down")
        engine.fleet.drop("web-05")
        outcome = await asyncio.wait_for(engine.promote(), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.PROMOTION_ROLLED_BACK
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_hung_host_is_bounded_and_does_not_hold_up_others(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env_path = short_timeouts(demo, tmp_path, "2s")
    await demo.set_fault("web-06", "hang")
    engine = engine_for(env_path, state_dir)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        outcome = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
        elapsed = loop.time() - started
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert engine.host_states["web-06"] is ev.HostState.UNREACHABLE
    assert "timed out" in engine.details["web-06"]
    assert [demo.version_on(h) for h in demo.host_names[:5]] == ["1.1.0"] * 5
    assert demo.version_on("web-06") == "1.0.0"
    assert elapsed < 40


def waits_three_seconds(demo: DemoFleet, tmp_path: Path) -> Path:
    """The demo's file with 3 s to connect or run a command: a hung host is waited for
    three times as long as the first word of it (a second in)."""

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["ssh"].update({"connect_timeout": "3s", "command_timeout": "3s"})
        data["promote"].update({"max_failures": 1})

    return edit_env(demo.env_path, tmp_path / "three.yaml", edit)


async def test_a_start_says_which_hosts_its_locks_wait_for(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """While a hung host's lock is waited for, the start says every second how many hosts
    answered and which did not; nothing once it has started."""
    await demo.set_fault("web-06", "hang")
    engine = engine_for(waits_three_seconds(demo, tmp_path), state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
    finally:
        await engine.fleet.close()
    waits = [e for e in seen if isinstance(e, ev.LocksWaiting)]
    assert waits, [e.kind for e in seen]
    assert (waits[-1].answered, waits[-1].total, waits[-1].waiting) == (5, 6, ["web-06"])
    assert waits[-1].said.startswith("5 of 6 answered; waiting "), waits[-1].said
    assert waits[-1].said.endswith("s for web-06"), waits[-1].said
    started = next(i for i, e in enumerate(seen) if isinstance(e, ev.DeploymentStarted))
    assert not any(isinstance(e, ev.LocksWaiting) for e in seen[started:])
    assert engine.host_states["web-06"] is ev.HostState.UNREACHABLE


async def in_a_later_process(
    demo: DemoFleet,
    env_path: Path,
    state_dir: Path,
    hung: str,
    canaries: list[str] | None = None,
) -> tuple[Engine, list[ev.Event]]:
    """1.1.0's canaries passed in a first process (gone since), then ``hung`` hung: a
    later process's engine on the same journal, and the list its events go to."""
    first = engine_for(env_path, state_dir)
    try:
        passed = await asyncio.wait_for(first.deploy("1.1.0", canaries=canaries), 60)
        assert passed is ev.Outcome.CANARY_PASSED
    finally:
        await first.fleet.close()
    await demo.set_fault(hung, "hang")
    later = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    later.subscribe(seen.append)
    return later, seen


async def test_a_promote_from_another_process_says_which_lock_it_waits_for(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A later process takes the deployment's locks again before it promotes: a hung host
    holds that for its command timeout, and each second says which host it waits for."""
    env_path = waits_three_seconds(demo, tmp_path)
    later, seen = await in_a_later_process(demo, env_path, state_dir, hung="web-06")
    try:
        outcome = await asyncio.wait_for(later.promote(), 60)
    finally:
        await later.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    waits = [e for e in seen if isinstance(e, ev.LocksWaiting)]
    assert waits and waits[-1].waiting == ["web-06"], [e.kind for e in seen]
    assert waits[-1].answered == waits[-1].total - 1
    assert seen.index(waits[-1]) < next(
        i for i, e in enumerate(seen) if isinstance(e, ev.WaveStarted)
    )


def slow_to_give_up(demo: DemoFleet, tmp_path: Path) -> Path:
    """The demo's file with 8 s to connect or run a command: a hung host is given up late."""

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["ssh"].update({"connect_timeout": "8s", "command_timeout": "8s"})

    return edit_env(demo.env_path, tmp_path / "slow.yaml", edit)


async def rolled_back_when(engine: Engine) -> tuple[ev.Outcome, dict[str, float]]:
    """``engine.rollback()``, and when each host it rolled back was back (seconds)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    back: dict[str, float] = {}

    def seen(e: ev.Event) -> None:
        if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.ROLLED_BACK:
            back[e.host] = loop.time() - started

    engine.subscribe(seen)
    try:
        outcome = await asyncio.wait_for(engine.rollback(), 60)
    finally:
        await engine.fleet.close()
    return outcome, back


async def test_a_rollback_does_not_wait_for_a_hung_host_it_never_reached(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A later process rolls the canary back: it does not take the locks of every host
    first (a hung host the deployment never changed held the rollback of the canary for its
    whole connect timeout); that host's lock is freed at the end, when it can be."""
    env_path = slow_to_give_up(demo, tmp_path)
    later, seen = await in_a_later_process(demo, env_path, state_dir, hung="web-06")
    outcome, back = await rolled_back_when(later)
    assert outcome is ev.Outcome.ROLLED_BACK
    assert demo.version_on("web-01") == "1.0.0"
    assert list(back) == ["web-01"] and back["web-01"] < 5.0, back  # not after web-06's 8 s
    assert not any(isinstance(e, ev.LocksWaiting) for e in seen)
    notices = [e.message for e in seen if isinstance(e, ev.Notice)]
    assert any("web-06" in n and "could not be released" in n for n in notices), notices


async def test_a_hung_canary_does_not_hold_the_rollback_of_the_others(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Two canaries, one hung since: a later process rolls the other back at once (each
    host's lock is taken at its turn), and the hung one fails its rollback when it is given
    up: the deployment stays open, for a rollback again once it is back."""
    env_path = slow_to_give_up(demo, tmp_path)
    later, _ = await in_a_later_process(
        demo, env_path, state_dir, hung="web-02", canaries=["web-01", "web-02"]
    )
    outcome, back = await rolled_back_when(later)
    assert outcome is ev.Outcome.ERROR
    assert list(back) == ["web-01"] and back["web-01"] < 5.0, back  # not after web-02's 8 s
    assert demo.version_on("web-01") == "1.0.0" and demo.version_on("web-02") == "1.1.0"
    assert later.host_states["web-02"] is ev.HostState.ROLLBACK_FAILED
    record = later.journal.last_deployment("demo", "shop")
    assert record is not None and record.is_open


async def test_a_host_that_hangs_mid_release_fails_in_bounded_time(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Hung once its lock is taken (its shell already open on it): its wave's steps time
    out, it fails against the budget and keeps its release; the others go on."""

    env_path = short_timeouts(demo, tmp_path, "2s")
    engine = engine_for(env_path, state_dir)
    loop = asyncio.get_running_loop()
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        assert "web-06" in engine.locks.shells
        await demo.set_fault("web-06", "hang")
        started = loop.time()
        outcome = await asyncio.wait_for(engine.promote(), 60)
        elapsed = loop.time() - started
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert engine.host_states["web-06"] in (ev.HostState.FAILED, ev.HostState.UNREACHABLE)
    assert "timed out" in engine.details["web-06"]
    assert demo.version_on("web-06") == "1.0.0"
    assert [demo.version_on(h) for h in demo.host_names[:5]] == ["1.1.0"] * 5
    assert elapsed < 40


async def test_a_host_whose_connection_drops_mid_script_says_so(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Its connection dropped while its wave's script waits on the host (a health probe
    that timed out drops it): the host failed because the connection was lost, not
    because a reply could not be read or a step exited 255; and why it was dropped."""

    env_path = short_timeouts(demo, tmp_path, "20s")
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        await demo.set_fault("web-06", "hang")
        promoting = asyncio.ensure_future(engine.promote())
        await wait_for(lambda: engine.host_states["web-06"] is ev.HostState.DEPLOYING, 30)
        # A probe of the hung host (a new session) times out before its process id
        # came back: the connection is dropped under the script.
        with pytest.raises(CommandTimeout):
            await engine.fleet.run("web-06", "true", 0.5)
        outcome = await asyncio.wait_for(promoting, 30)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    detail = engine.details["web-06"]
    assert "connection lost during a command" in detail, detail
    assert "(dropped: the host stopped answering: a command timed out, not stoppable)" in detail
    # It may have run some of it: failed (counted, and rolled back with the others).
    assert engine.host_states["web-06"] is ev.HostState.FAILED
    assert not [e for e in seen if isinstance(e, ev.StepResult) and e.host == "web-06"]
    assert demo.version_on("web-06") == "1.0.0"


async def test_a_rollback_whose_connection_drops_once_is_rolled_back_again(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A flaky host's connection dropped during its rollback: the rollback failed there
    and halted ("fix the host(s) and roll back again"), the way out of a bad release left
    to a lossy network. The host is rolled back again (bounded), said in a notice."""
    engine = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)

    class DropOnce(random.Random):
        """The flaky host's dice: its first command once it is rolling back is dropped
        (the rollback's script), none other."""

        dropped = False

        def random(self) -> float:
            if not self.dropped and engine.host_states["web-03"] is ev.HostState.ROLLING_BACK:
                self.dropped = True
                return 0.0
            return 1.0

    try:
        done = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
        assert done is ev.Outcome.COMPLETE
        dice = DropOnce()
        demo._host("web-03").rng = dice
        await demo.set_fault("web-03", "flaky")
        outcome = await asyncio.wait_for(engine.rollback(), 60)
    finally:
        await engine.fleet.close()
    assert dice.dropped
    assert outcome is ev.Outcome.ROLLED_BACK, engine.details.get("web-03")
    assert set(versions(demo).values()) == {"1.0.0"}
    said = [e.message for e in seen if isinstance(e, ev.Notice) and e.host == "web-03"]
    assert (
        "web-03: its connection dropped during its rollback: rolling it back again "
        "(2 of 3 tries) in 1s"
    ) in said, said


async def test_a_slow_baseline_host_does_not_starve_the_canary_of_samples(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A baseline host whose every command starts 2 s late: the canary is still probed
    every interval (0.25 s here) through the 2 s analysis; the slow host is sampled as
    its probes come back, and its last probe does not outlive the analysis."""

    def every_host_in_the_baseline(data: dict) -> None:  # type: ignore[type-arg]
        data["canary"]["analysis"]["baseline"] = len(demo.host_names)

    env_path = edit_env(demo.env_path, tmp_path / "all.yaml", every_host_in_the_baseline)
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    await demo.set_fault("web-04", "slow")
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is not ev.Outcome.ERROR
    finally:
        await engine.fleet.close()
    started = next(i for i, e in enumerate(seen) if isinstance(e, ev.AnalysisStarted))
    ended = next(i for i, e in enumerate(seen) if isinstance(e, ev.VerdictReached))
    assert "web-04" in seen[started].baseline  # type: ignore[attr-defined]
    canary = seen[started].canaries[0]  # type: ignore[attr-defined]
    samples = [e for e in seen[started:ended] if isinstance(e, ev.HealthSample)]
    sampled = [e.host for e in samples]
    # 2 s at 0.25 s: 8 rounds; held back by web-04, the canary had 1 or 2.
    assert sampled.count(canary) >= 5, sampled
    assert sampled.count("web-04") <= 1
    # The last round waits for its probes too: the window's end is read as it is then.
    last = [e for e in samples if e.host == canary][-1]
    window = seen[started]
    assert last.at >= window.at + window.duration - 0.05  # type: ignore[attr-defined]


async def test_second_deployment_is_locked_out(demo: DemoFleet, tmp_path: Path) -> None:
    first = engine_for(demo.env_path, tmp_path / "alice", user="alice")
    second = engine_for(demo.env_path, tmp_path / "bob", user="bob")
    try:
        assert await first.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        with pytest.raises(LockHeld) as refused:
            await second.deploy("1.2.0")
        message = str(refused.value)
        assert "alice@" in message and "since" in message and "1.1.0" in message
        # Bob changed nothing and left no lock of his own.
        assert versions(demo)["web-01"] == "1.1.0"
        assert set(list(versions(demo).values())[1:]) == {"1.0.0"}
        assert await first.rollback() is ev.Outcome.ROLLED_BACK
        # Once Alice's deployment is over, Bob can deploy.
        assert await second.deploy("1.2.0") is ev.Outcome.CANARY_PASSED
        assert await second.rollback() is ev.Outcome.ROLLED_BACK
    finally:
        await first.fleet.close()
        await second.fleet.close()


async def test_hostile_version_refused_before_any_connection(
    demo: DemoFleet, state_dir: Path
) -> None:
    from canarytui.config import VersionError

    engine = engine_for(demo.env_path, state_dir)
    for version in ["1.0;touch pwned", "$(touch pwned)", "../../etc", "", "-rf", "a b"]:
        with pytest.raises(VersionError, match="does not match version_pattern"):
            await engine.deploy(version)
    assert engine.fleet.connects == 0
    assert not any((demo.sandbox_of(h) / "pwned").exists() for h in demo.host_names)
    assert engine.journal.last_deployment("demo", "shop") is None


async def test_history_lists_every_deployment_with_its_outcome(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir, user="carol")
    try:
        assert await engine.deploy("1.4.0-dead") is ev.Outcome.CANARY_FAILED
        assert await engine.deploy("1.3.0-bad") is ev.Outcome.CANARY_FAILED
        assert await engine.deploy("1.2.0") is ev.Outcome.CANARY_PASSED
    finally:
        await engine.fleet.close()
    rows = [
        (r.version, r.outcome, r.is_open, r.phase, r.user)
        for r in engine.journal.history("demo", "shop")
    ]
    assert rows == [
        ("1.2.0", None, True, "awaiting promotion", "carol"),
        ("1.3.0-bad", "canary failed", False, "rolled back", "carol"),
        ("1.4.0-dead", "canary failed", False, "rolled back", "carol"),
    ]


async def test_host_down_at_start_is_locked_and_learned_when_it_returns(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    def short(data: dict) -> None:  # type: ignore[type-arg]
        data["ssh"]["connect_timeout"] = "1s"
        # No failure tolerated: web-06 counts only if it is still down when its wave comes.
        data["promote"]["max_failures"] = 0

    env_path = edit_env(demo.env_path, tmp_path / "short.yaml", short)
    await demo.set_fault("web-06", "down")
    engine = engine_for(env_path, state_dir)
    try:
        assert await engine.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        assert engine.host_states["web-06"] is ev.HostState.UNREACHABLE
        record = engine.journal.open_deployment("demo", "shop")
        assert record is not None
        assert engine.journal.hosts(record.id)["web-06"].previous is None
        await demo.set_fault("web-06", "up")
        assert await engine.promote() is ev.Outcome.COMPLETE
        assert demo.version_on("web-06") == "1.1.0"
        # What it ran before was learned with its lock, so it can be rolled back too.
        assert engine.journal.hosts(record.id)["web-06"].previous == "1.0.0"
        assert await engine.rollback() is ev.Outcome.ROLLED_BACK
        assert set(versions(demo).values()) == {"1.0.0"}
    finally:
        await engine.fleet.close()


async def test_more_hosts_down_at_start_than_tolerated_is_said_before_the_canary(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Hosts unreachable at the start count against max_failures if they still are when
    their wave comes: more of them than it tolerates is a warning before the canary is
    touched, naming them and the wave where the rollout would stop; as many as it
    tolerates, none."""

    def short(data: dict) -> None:  # type: ignore[type-arg]
        data["ssh"]["connect_timeout"] = "1s"
        data["promote"]["max_failures"] = 1

    env_path = edit_env(demo.env_path, tmp_path / "short.yaml", short)
    await demo.set_fault("web-04", "down")  # wave 2/3 (web-02; web-03, web-04; web-05, web-06)
    await demo.set_fault("web-06", "down")
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)

    def warnings() -> list[str]:
        return [
            e.message for e in seen if isinstance(e, ev.Notice) and "unreachable now" in e.message
        ]

    try:
        assert await engine.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        assert warnings() == [
            "web-04, web-06 unreachable now, more than promote.max_failures (1): if they do "
            "not answer by wave 3/3, the rollout stops there (on_failure: rollback)"
        ]
        said = next(i for i, e in enumerate(seen) if isinstance(e, ev.Notice))
        first_change = next(
            i
            for i, e in enumerate(seen)
            if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.DEPLOYING
        )
        assert said < first_change
        assert await engine.rollback() is ev.Outcome.ROLLED_BACK
        seen.clear()
        await demo.set_fault("web-04", "up")  # one down, one tolerated: nothing to say
        assert await engine.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
        assert warnings() == []
    finally:
        await engine.fleet.close()


def one_at_a_time(data: dict) -> None:  # type: ignore[type-arg]
    """One host worked on at a time (the events' and the connections' order is the slots'),
    a short connect timeout, one failure tolerated."""
    data["ssh"]["connect_timeout"] = "1s"
    data["ssh"]["max_parallel"] = 1
    data["promote"]["max_failures"] = 1


async def test_a_host_down_at_start_is_tried_first_in_its_wave(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A host marked unreachable takes its wave's first slot, so the connect timeout it may
    cost passes while the others are worked on, not after them; the wave's outcome lists
    its hosts as the plan does."""
    env_path = edit_env(demo.env_path, tmp_path / "serial.yaml", one_at_a_time)
    await demo.set_fault("web-06", "down")  # last of wave 3/3 (web-05, web-06)
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        assert await engine.deploy("1.1.0", auto_promote=True) is ev.Outcome.COMPLETE
        last = max(i for i, e in enumerate(seen) if isinstance(e, ev.WaveStarted))
        wave = [(e.host, e.state) for e in seen[last:] if isinstance(e, ev.HostUpdate)]
        assert wave[0] == ("web-06", ev.HostState.UNREACHABLE)
        assert ("web-05", ev.HostState.DEPLOYING) in wave[1:]
        finished = next(e for e in seen[last:] if isinstance(e, ev.WaveFinished))
        assert (finished.succeeded, finished.failed) == (["web-05"], ["web-06"])
        assert demo.version_on("web-05") == "1.1.0" and demo.version_on("web-06") == "1.0.0"
    finally:
        await engine.fleet.close()


async def test_a_later_process_locks_hosts_marked_unreachable_first(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Continuing a deployment (promote, rollback) from another process takes every lock
    again: the hosts the journal has as unreachable are tried first, so their connect
    timeouts pass while the others are locked."""
    env_path = edit_env(demo.env_path, tmp_path / "serial.yaml", one_at_a_time)
    await demo.set_fault("web-06", "down")
    first = engine_for(env_path, state_dir)
    try:
        assert await first.deploy("1.1.0") is ev.Outcome.CANARY_PASSED
    finally:
        await first.fleet.close()
    later = engine_for(env_path, state_dir)  # what `canarytui promote` starts with
    tried: list[str] = []
    connect = later.fleet.connection

    async def recorded(name: str) -> object:
        tried.append(name)
        return await connect(name)

    later.fleet.connection = recorded  # type: ignore[method-assign]
    try:
        assert await later.promote() is ev.Outcome.COMPLETE
        assert tried[0] == "web-06" and "web-01" in tried[1:]
    finally:
        await later.fleet.close()


async def test_ssh_config_supplies_what_the_file_leaves_out(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No port, user or identity in the environment file: ~/.ssh/config's are used."""
    async with DemoFleet(hosts=1) as fleet:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "config").write_text(
            f"Host 127.0.0.1\n  Port {fleet.port_of('web-01')}\n  User demo\n"
            f"  IdentityFile {fleet.client_key_path}\n"
        )
        monkeypatch.setenv("HOME", str(home))

        def bare(data: dict) -> None:  # type: ignore[type-arg]
            data["ssh"] = {"known_hosts": str(fleet.known_hosts_path)}
            data["hosts"] = [{"name": "web-01", "address": "127.0.0.1"}]

        env_path = edit_env(fleet.env_path, tmp_path / "bare.yaml", bare)
        engine = engine_for(env_path, state_dir)
        try:
            assert await asyncio.wait_for(engine.discover(), 20) == {"web-01": "1.0.0"}
        finally:
            await engine.fleet.close()


async def test_max_parallel_bounds_concurrent_commands(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    def narrow(data: dict) -> None:  # type: ignore[type-arg]
        data["ssh"]["max_parallel"] = 2
        data["promote"]["waves"] = ["100%"]

    env_path = edit_env(demo.env_path, tmp_path / "narrow.yaml", narrow)
    engine = engine_for(env_path, state_dir)
    peak = 0
    deploying: list[int] = []  # hosts said to be deploying, at each look
    queued = False  # a host of the wave seen waiting (pending) while others deploy
    try:
        await engine.deploy("1.1.0")
        run = asyncio.ensure_future(engine.promote())
        while not run.done():
            # A host's shell that waits for its next script (it lives from the lock to
            # the release) is not worked on: what it is sent counts, within the bound.
            waiting = sum(1 for shell in engine.locks.shells.values() if shell.waiting)
            peak = max(peak, demo.live_processes - waiting)
            states = list(engine.host_states.values())
            deploying.append(states.count(ev.HostState.DEPLOYING))
            queued = queued or (deploying[-1] > 0 and ev.HostState.PENDING in states)
            await asyncio.sleep(0.005)
        assert await run is ev.Outcome.COMPLETE
    finally:
        await engine.fleet.close()
    assert peak == 2  # used, and never more
    # A host is deploying once it has its slot: never more than the bound at once, and the
    # hosts behind them wait as they were (the grid and the journal say what runs now).
    assert max(deploying) == 2
    assert queued


async def test_hung_step_times_out_and_the_host_is_rolled_back(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    def hanging(data: dict) -> None:  # type: ignore[type-arg]
        data["ssh"]["command_timeout"] = "1s"
        steps = data["deploy"]["steps"]
        data["deploy"]["rollback"] = [
            {
                "name": "switch",
                "run": "ln -sfn releases/{previous} current.new && mv -Tf current.new current",
            },
            dict(steps[2]),
        ]
        steps[0]["run"] = "case {version} in *hang*) sleep 30;; esac; " + steps[0]["run"]

    env_path = edit_env(demo.env_path, tmp_path / "hang.yaml", hanging)
    engine = engine_for(env_path, state_dir)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.6.0-hang"), 30)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.CANARY_FAILED
    assert loop.time() - started < 15
    assert engine.last_verdict is not None
    assert "command timed out after 1s" in engine.last_verdict.reasons[0]
    assert set(versions(demo).values()) == {"1.0.0"}
    # The abandoned command was stopped on the host, not left running.
    await wait_for(lambda: demo.live_processes == 0, 10)


async def test_hooks_run_around_each_host(demo: DemoFleet, state_dir: Path, tmp_path: Path) -> None:
    def hooked(data: dict) -> None:  # type: ignore[type-arg]
        data["deploy"]["hooks"] = {
            "before_host": "echo before {host} {version} >> hooks.log",
            "after_host": "echo after {host} {version} >> hooks.log",
        }

    env_path = edit_env(demo.env_path, tmp_path / "hooks.yaml", hooked)
    engine = engine_for(env_path, state_dir)
    steps: list[tuple[str, str]] = []
    engine.subscribe(
        lambda e: steps.append((e.host, e.step)) if isinstance(e, ev.StepResult) else None
    )
    try:
        assert await engine.deploy("1.3.0-bad") is ev.Outcome.CANARY_FAILED
    finally:
        await engine.fleet.close()
    log = (demo.sandbox_of("web-01") / "hooks.log").read_text().splitlines()
    # Around the deploy, then around the rollback (run with the previous version).
    assert log == [
        "before web-01 1.3.0-bad",
        "after web-01 1.3.0-bad",
        "before web-01 1.0.0",
        "after web-01 1.0.0",
    ]
    assert [s for h, s in steps if h == "web-01"][:5] == [
        "before_host",
        "install",
        "switch",
        "restart",
        "after_host",
    ]
    assert not (demo.sandbox_of("web-02") / "hooks.log").exists()
