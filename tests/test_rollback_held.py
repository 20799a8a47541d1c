"""An operator's rollback (or promote) by the process that holds the deployment's locks:
no round of lock commands before the first host is changed; each host's lock is taken
again at the head of its own script, which changes nothing on a host that is no longer
the deployment's (another machine rolled it back, or another lock holds it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import edit_env, engine_for, run_cli
from test_handoff import locks_on_hosts, versions

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import ActionRefused, Engine
from canarytui.engine.locks import Owner
from canarytui.journal import Journal
from canarytui.ssh import CommandResult

LOCK = ".canarytui/lock.demo.shop"


def lock_rounds(engine: Engine) -> list[str]:
    """The hosts sent a lock command of its own (not as part of their steps), as it goes."""
    sent: list[str] = []
    real_run = engine.fleet.run

    async def run(name: str, command: str, *args: object, **kw: object) -> CommandResult:
        if "CANARYTUI-LOCKED" in command:
            sent.append(name)
        return await real_run(name, command, *args, **kw)  # type: ignore[arg-type]

    engine.fleet.run = run  # type: ignore[method-assign]
    return sent


async def test_a_rollback_while_holding_the_locks_changes_hosts_without_locking_them_again(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        assert await asyncio.wait_for(engine.promote(all_waves=False), 60) is ev.Outcome.PAUSED
        touched = [h for h, v in versions(demo).items() if v == "1.1.0"]
        assert len(touched) > 1
        sent = lock_rounds(engine)
        outcome = await asyncio.wait_for(engine.rollback(), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.ROLLED_BACK
    assert sent == []  # the locks were checked in the hosts' own rollback scripts
    assert set(versions(demo).values()) == {"1.0.0"}
    assert locks_on_hosts(demo) == []
    assert all(s is ev.HostState.ROLLED_BACK for h, s in engine.host_states.items() if h in touched)


async def taken_over_meanwhile(demo: DemoFleet, engine: Engine, tmp_path: Path) -> None:
    """``engine``'s canary passes (it holds every lock); then a colleague's machine takes
    the deployment over and rolls it back (leaving its note on the hosts)."""
    assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
    env = str(demo.env_path)
    taken = await run_cli("rollback", env, "--take-over", state_dir=tmp_path / "colleague")
    assert taken.code == 0, taken.err + taken.out
    assert set(versions(demo).values()) == {"1.0.0"} and locks_on_hosts(demo) == []


async def test_a_take_over_found_by_the_rollback_changes_nothing(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A colleague rolled the deployment back from another machine while this process
    held it: the rollback finds the note at the head of each host's script, changes no
    host and records the take-over."""
    engine = engine_for(demo.env_path, state_dir)
    try:
        await taken_over_meanwhile(demo, engine, tmp_path)
        canaries = [h for h, s in engine.host_states.items() if s is ev.HostState.DEPLOYED]
        with pytest.raises(ActionRefused, match="taken over and rolled back by"):
            await asyncio.wait_for(engine.rollback(), 60)
        assert canaries and all(engine.host_states[h] is ev.HostState.DEPLOYED for h in canaries)
        assert locks_on_hosts(demo) == []
        # What the take-over left in this process does not hold up its next deployment.
        outcome = await asyncio.wait_for(engine.deploy("1.2.0", auto_promote=True), 90)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert set(versions(demo).values()) == {"1.2.0"}
    journal = Journal(state_dir)
    try:
        record = journal.deployment(1)
        assert record is not None and not record.is_open and record.outcome == "rolled back"
        assert any(d["action"] == "taken over" for d in journal.decisions(record.id))
        steps = [e for e in journal.events(record.id) if e["event"] == "step"]
        assert steps and all(e["action"] != "rollback" for e in steps)  # nothing ran here
    finally:
        journal.close()


async def test_a_promote_that_finds_a_take_over_deploys_nothing(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        await taken_over_meanwhile(demo, engine, tmp_path)
        with pytest.raises(ActionRefused, match="taken over and rolled back by"):
            await asyncio.wait_for(engine.promote(all_waves=True), 60)
    finally:
        await engine.fleet.close()
    assert set(versions(demo).values()) == {"1.0.0"}
    assert locks_on_hosts(demo) == []
    assert not any(s is ev.HostState.DEPLOYING for s in engine.host_states.values())


async def test_a_host_locked_by_another_is_left_as_it_is_and_the_rest_roll_back(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A host whose lock was broken and taken by another deployment while this process held
    it: its rollback is refused there (nothing runs, the other lock stays); the others roll
    back, and the deployment stays open for that one."""
    engine = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        assert await asyncio.wait_for(engine.promote(all_waves=False), 60) is ev.Outcome.PAUSED
        touched = sorted(h for h, v in versions(demo).items() if v == "1.1.0")
        other = Owner("f" * 32, 9, "9.9.9", "bo", "desk").as_dict()
        (demo.sandbox_of(touched[-1]) / LOCK / "owner").write_text(json.dumps(other) + "\n")
        outcome = await asyncio.wait_for(engine.rollback(), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.ERROR
    assert engine.phase is ev.Phase.HALTED
    assert engine.host_states[touched[-1]] is ev.HostState.ROLLBACK_FAILED
    assert "its lock is held by bo@desk" in engine.details[touched[-1]]
    assert demo.version_on(touched[-1]) == "1.1.0"
    owner = json.loads((demo.sandbox_of(touched[-1]) / LOCK / "owner").read_text())
    assert owner["token"] == "f" * 32  # the other lock is left alone
    assert all(demo.version_on(h) == "1.0.0" for h in touched[:-1])
    assert locks_on_hosts(demo) == demo.host_names  # open: its locks stay for a rollback
    # The hosts the release never reached are idle, not "pending" a release to come.
    never = [h for h in demo.host_names if h not in touched]
    assert never and all(engine.host_states[h] is ev.HostState.IDLE for h in never)
    journal = Journal(state_dir)
    try:
        assert {journal.hosts(1)[h].state for h in never} == {"idle"}
    finally:
        journal.close()


async def test_hosts_that_cannot_be_locked_again_are_one_notice(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A rollback from a later process, with part of the fleet down: one notice names how
    many could not be locked (a few of them), not one notice a host; each such host then
    fails its own rollback with its reason."""
    done = await run_cli("deploy", str(demo.env_path), "1.1.0", "--auto-promote")
    assert done.code == 0, done.err
    down = ["web-02", "web-04", "web-05"]
    for name in down:
        await demo.set_fault(name, "down")
    engine = engine_for(demo.env_path, state_dir)
    notices: list[str] = []
    engine.subscribe(lambda e: notices.append(e.message) if isinstance(e, ev.Notice) else None)
    try:
        outcome = await asyncio.wait_for(engine.rollback(), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.ERROR
    lock_notices = [m for m in notices if "could not lock" in m]
    assert len(lock_notices) == 1, notices
    # The first one's reason, without its name and address again.
    assert lock_notices[0] == (
        "could not lock 3 host(s): web-02, web-04, web-05 (unreachable: connection refused); "
        "each is tried again at its turn"
    )
    assert all(engine.host_states[h] is ev.HostState.ROLLBACK_FAILED for h in down)
    assert all(engine.details[h] for h in down)
    assert {demo.version_on(h) for h in demo.host_names if h not in down} == {"1.0.0"}
    # Once they are back, rolling back again finishes it: the summary counts every host
    # the deployment rolled back, not only the last run's.
    for name in down:
        await demo.set_fault(name, "up")
    again = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(again.rollback(), 60) is ev.Outcome.ROLLED_BACK
    finally:
        await again.fleet.close()
    record = again.journal.last_deployment("demo", "shop")
    assert record is not None and not record.is_open
    assert record.summary == f"{len(demo.host_names)} host(s) rolled back from 1.1.0"
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_a_host_not_locked_again_by_a_later_process_is_released_at_the_end(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A promote from a later process could not lock a host again (down then): the host
    still carries the deployment's lock from the first. Once the deployment ends, its
    release tries that host too: freed if it is back, else a warning names it."""

    def paced(data: dict) -> None:  # type: ignore[type-arg]
        data["promote"].update({"pause": "1s", "max_failures": 2})

    env_path = edit_env(demo.env_path, tmp_path / "paced.yaml", paced)
    first = engine_for(env_path, state_dir)
    try:
        assert await asyncio.wait_for(first.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
    finally:
        await first.fleet.close()
    await demo.set_fault("web-03", "down")
    await demo.set_fault("web-06", "down")
    later = engine_for(env_path, state_dir)
    notices: list[str] = []
    revived: list[asyncio.Future[str]] = []

    def watch(e: ev.Event) -> None:
        if isinstance(e, ev.Notice):
            notices.append(e.message)
        # web-03 (wave 2 of 3) comes back after its turn, before the deployment ends.
        failed = (ev.HostState.UNREACHABLE, ev.HostState.FAILED)
        if isinstance(e, ev.HostUpdate) and e.host == "web-03" and e.state in failed:
            revived.append(asyncio.ensure_future(demo.set_fault("web-03", "up")))

    later.subscribe(watch)
    try:
        outcome = await asyncio.wait_for(later.promote(all_waves=True), 60)
    finally:
        await later.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert revived and all(f.done() for f in revived)
    assert any(m.startswith("could not lock 2 host(s): web-03, web-06") for m in notices)
    assert demo.version_on("web-03") == "1.0.0"
    # web-03's lock was freed; web-06, still down, keeps it, and the operator is told.
    assert locks_on_hosts(demo) == ["web-06"]
    kept = [m for m in notices if "could not be released" in m]
    assert len(kept) == 1 and kept[0].startswith("the lock on web-06 could not be released")


async def test_a_rollback_that_failed_on_a_host_is_only_rolled_back_again(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A complete release rolled back by the operator, one host down: the rollback halts
    there. A promote then would deploy the release again to the hosts the operator had just
    rolled back: it is refused before anything runs, every way out says to roll back again,
    and rolling back again finishes it."""
    env = str(demo.env_path)
    done = await run_cli("deploy", env, "1.1.0", "--auto-promote")
    assert done.code == 0, done.err
    await demo.set_fault("web-05", "down")
    back = await run_cli("rollback", env)
    assert back.code == 1, back.out + back.err
    assert "rollback failed on web-05" in back.out
    await demo.set_fault("web-05", "up")
    before = versions(demo)
    assert before["web-05"] == "1.1.0" and before["web-01"] == "1.0.0"

    promoted = await run_cli("promote", env)
    assert promoted.code == 1, promoted.out
    assert (
        "deployment #1 is rolling back (its rollback failed on a host): "
        "roll it back again to finish it" in promoted.err
    )
    assert versions(demo) == before  # nothing ran
    status = await run_cli("status", env)
    assert "what is left: roll it back again" in status.out, status.out
    assert "   next: canarytui rollback " in status.out and "next: canarytui promote" not in (
        status.out
    )
    again = await run_cli("deploy", env, "1.2.0")
    assert again.code == 1 and "roll it back again first" in again.err, again.err

    finished = await run_cli("rollback", env)
    assert finished.code == 0, finished.out + finished.err
    assert set(versions(demo).values()) == {"1.0.0"}
    assert locks_on_hosts(demo) == []


async def test_a_host_down_since_the_start_is_not_said_to_keep_a_lock(
    demo: DemoFleet, state_dir: Path
) -> None:
    """web-05 was down when the deployment started (never locked); a later process rolls
    the canary back while it still is: nothing says a lock was left on web-05 (the operator
    was told to unlock a lock that never was), and there is none."""
    await demo.set_fault("web-05", "down")
    first = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(first.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
    finally:
        await first.fleet.close()
    later = engine_for(demo.env_path, state_dir)
    notices: list[str] = []
    later.subscribe(lambda e: notices.append(e.message) if isinstance(e, ev.Notice) else None)
    try:
        assert await asyncio.wait_for(later.rollback(), 60) is ev.Outcome.ROLLED_BACK
    finally:
        await later.fleet.close()
    assert not any("could not be released" in m for m in notices), notices
    assert versions(demo)["web-01"] == "1.0.0"
    await demo.set_fault("web-05", "up")
    assert locks_on_hosts(demo) == []
