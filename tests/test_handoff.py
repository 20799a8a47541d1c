"""On-call handoff and lock hygiene: another machine sees and rolls back an open deployment
from the hosts' locks, the first machine records it on return, unlock refuses to break an
open deployment's locks, a lock reply that cannot be read is a host failure with nothing
left behind, and locks a finished deployment (or a refused start) left are released by the
next process of the same journal (the local one with them, or a host's alone, that was
unreachable when it ended)."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    dead_pid,
    edit_env,
    engine_for,
    release_leaving_a_lock,
    run_cli,
    switch_to,
    wait_for,
)

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import ActionRefused, lockscripts
from canarytui.engine.locks import left_behind, local_lock_path
from canarytui.journal import Journal
from canarytui.ssh import CommandResult


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def locks_on_hosts(fleet: DemoFleet) -> list[str]:
    return [
        h
        for h in fleet.host_names
        if (fleet.sandbox_of(h) / ".canarytui" / "lock.demo.shop" / "owner").exists()
    ]


async def test_a_colleague_takes_over_an_open_deployment(demo: DemoFleet, tmp_path: Path) -> None:
    env = str(demo.env_path)
    first, second = tmp_path / "first-machine", tmp_path / "second-machine"
    started = await run_cli("deploy", env, "1.2.0", state_dir=first)
    assert started.code == 0, started.err
    assert locks_on_hosts(demo) == demo.host_names

    # The colleague's machine has no journal of it, but the hosts' locks say it all.
    status = await run_cli("status", env, state_dir=second)
    assert status.code == 0, status.err
    assert "deployment #1 of 1.2.0" in status.out
    assert "holds 6 host(s), not in this journal" in status.out, status.out
    assert status.out.count("deployment #1 of 1.2.0") == 1, status.out  # said once
    assert "--take-over" in status.out
    row = next(line for line in status.out.splitlines() if line.startswith("web-01"))
    assert row.split()[:3] == ["web-01", "1.2.0", "1.0.0"]
    assert row.split()[-4:] == ["locked", "#1", "of", "1.2.0"], row  # whose lock, not a role
    # Breaking the locks is refused: it would let another deployment in mid-way.
    unlock = await run_cli("unlock", env, state_dir=second)
    assert unlock.code == 1 and "NOT broken" in unlock.out
    assert locks_on_hosts(demo) == demo.host_names
    # A rollback without --take-over has nothing of its own to roll back: it says how.
    plain = await run_cli("rollback", env, state_dir=second)
    assert plain.code == 1 and "rollback --take-over" in plain.err, plain.err
    assert "nothing to roll back: this journal has no deployment of this environment" in plain.err

    taken = await run_cli("rollback", env, "--take-over", state_dir=second)
    assert taken.code == 0, taken.err + taken.out
    # The number the hosts' locks carry is said (this journal numbers it anew).
    assert "rolled back from 1.2.0 (taken over from the hosts' locks: their #1)" in taken.out
    # What the hosts ran when taken over is said as found, not as if just deployed.
    assert "   web-01: deployed 1.2.0  (as found, taking it over)" in taken.out.splitlines()
    assert set(versions(demo).values()) == {"1.0.0"}
    assert locks_on_hosts(demo) == []
    journal = Journal(second)
    record = journal.last_deployment("demo", "shop")
    assert record is not None and record.outcome == "rolled back" and not record.is_open
    decided = [(d["action"], d["detail"]) for d in journal.decisions(record.id)]
    assert [a for a, _ in decided] == ["take over", "rollback"], decided
    took = decided[0][1]
    assert "@" in took.split(" (")[0] and took.count("deployment #1 of 1.2.0") == 1, took
    assert took.endswith(", from the hosts' locks"), took
    assert decided[1][1] == "as taken over", decided  # it said "from idle"
    assert record.taken_over and record.what_went(3) == "(taken over)"
    journal.close()
    # Its history row: taken over, not "(no canary phase)" (it had one, on the first machine).
    history = await run_cli("history", env, state_dir=second)
    row = next(line for line in history.out.splitlines() if " 1.2.0 " in line)
    assert row.endswith("(taken over)") and "no canary" not in row, history.out

    # The first machine returns: its next action learns what happened and records it.
    promote = await run_cli("promote", env, state_dir=first)
    assert promote.code == 1
    assert "taken over and rolled back by" in promote.err
    journal = Journal(first)
    record = journal.last_deployment("demo", "shop")
    assert record is not None and not record.is_open and record.outcome == "rolled back"
    assert any(d["action"] == "taken over" for d in journal.decisions(record.id))
    journal.close()
    assert set(versions(demo).values()) == {"1.0.0"}
    # Nothing is left to take over.
    again = await run_cli("rollback", env, "--take-over", state_dir=second)
    assert again.code == 1 and "nothing to take over" in again.err


async def test_status_on_the_first_machine_records_a_take_over(
    demo: DemoFleet, tmp_path: Path
) -> None:
    env = str(demo.env_path)
    first, second = tmp_path / "first", tmp_path / "second"
    assert (await run_cli("deploy", env, "1.1.0", state_dir=first)).code == 0
    assert (await run_cli("rollback", env, "--take-over", state_dir=second)).code == 0
    status = await run_cli("status", env, state_dir=first)
    assert status.code == 0
    assert "no open deployment" in status.out
    assert "last: #1 1.1.0 rolled back" in status.out


async def test_an_unreadable_lock_reply_is_a_host_failure_with_no_lock_left(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    real_run = engine.fleet.run

    async def run(
        name: str, command: str, timeout: float | None = None, **kw: int
    ) -> CommandResult:
        result = await real_run(name, command, timeout, **kw)
        if name == "web-03" and "mkdir" in command:
            # The lock was taken, but the reply came back as noise.
            return CommandResult(0, "Welcome!\nsomething else\n", "", result.duration)
        return result

    engine.fleet.run = run  # type: ignore[method-assign]
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.1.0"), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.CANARY_PASSED
    assert engine.host_states["web-03"] is ev.HostState.UNREACHABLE
    assert "reply to the lock command could not be read" in engine.details["web-03"]
    assert "web-03" not in locks_on_hosts(demo)


async def test_locks_left_by_a_finished_deployment_are_released_next_time(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Killed between "complete" and the release: the next process finishes the job."""
    engine = engine_for(demo.env_path, state_dir)

    async def killed_before_release(token: str) -> None:
        return None

    try:
        engine.locks.release = killed_before_release  # type: ignore[method-assign]
        assert await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60) is (
            ev.Outcome.COMPLETE
        )
    finally:
        await engine.fleet.close()
    assert locks_on_hosts(demo) == demo.host_names
    local = local_lock_path(state_dir, "demo", "shop")
    # Killed: its process is gone (this one, alive, would be releasing them still).
    held = json.loads(local.read_text())
    local.write_text(json.dumps({**held, "pid": dead_pid()}))

    status = await run_cli("status", str(demo.env_path))
    assert status.code == 0, status.err
    assert "released the locks deployment #1 left" in status.out
    assert locks_on_hosts(demo) == []
    assert not local_lock_path(state_dir, "demo", "shop").exists()


async def test_a_lock_left_on_a_host_unreachable_at_the_end_is_released_next_time(
    demo: DemoFleet, state_dir: Path
) -> None:
    """web-06 went down as the release began: it kept its lock. Back up, the next deployment
    from the same journal frees that lock and goes on (the dry run said it would), where it
    was refused; a lock that only looks like it (another machine's, or newer) is not freed."""
    outcome = await release_leaving_a_lock(demo, state_dir, "web-06")
    assert outcome is ev.Outcome.COMPLETE
    assert locks_on_hosts(demo) == ["web-06"]
    assert not local_lock_path(state_dir, "demo", "shop").exists()

    # Only this journal's finished deployment, from this machine, before it ended.
    owner_file = demo.sandbox_of("web-06") / ".canarytui" / "lock.demo.shop" / "owner"
    owner = json.loads(owner_file.read_text())
    journal = Journal(state_dir)
    try:
        record = left_behind(journal, owner)
        assert record is not None and record.id == 1
        assert left_behind(journal, {**owner, "machine": "colleagues-laptop"}) is None
        assert left_behind(journal, {**owner, "deployment": 7}) is None
        assert left_behind(journal, {**owner, "since": (record.finished_at or 0) + 60}) is None
        assert left_behind(journal, {**owner, "token": "f" * 32}) is None
    finally:
        journal.close()

    await demo.set_fault("web-06", "up")
    # status from the same journal says the lock it left (it said web-06 was idle, while
    # another journal's status called the same lock an open deployment).
    status = await run_cli("status", str(demo.env_path))
    assert status.code == 0, status.out + status.err
    row = next(line for line in status.out.splitlines() if line.startswith("web-06"))
    assert "locked (left)" in row, status.out
    said = next(line for line in status.out.splitlines() if line.startswith("   web-06: locked"))
    assert "(deployment #1 " in said and said.endswith(
        "which this journal left there (unreachable then): its next deployment frees it; "
        "canarytui unlock breaks it now"
    ), said
    as_json = json.loads((await run_cli("status", str(demo.env_path), "--json")).out)
    web06 = next(h for h in as_json["hosts"] if h["host"] == "web-06")
    assert web06["state"] == "locked (left)" and "deployment #1" in web06["left_lock"]
    dry = await run_cli("deploy", str(demo.env_path), "1.2.0", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert "web-06: a finished deployment's lock: it would be released" in dry.out
    result = await run_cli("deploy", str(demo.env_path), "1.2.0", "--auto-promote", timeout=90)
    assert result.code == 0, result.out + result.err
    assert "released the lock deployment #1 left on web-06 (unreachable when it ended)" in (
        result.out
    )
    assert set(versions(demo).values()) == {"1.2.0"}
    assert locks_on_hosts(demo) == []
    journal = Journal(state_dir)
    try:  # Deployment #1's record says its lock stayed on web-06, and when it was freed.
        notes = [e["message"] for e in journal.events(1) if e["event"] == "notice"]
    finally:
        journal.close()
    assert any(n.startswith("the lock on web-06 could not be released") for n in notes)
    assert any(n.startswith("released the lock deployment #1 left on web-06") for n in notes)


async def refused_start_leaving_a_lock(demo: DemoFleet, state_dir: Path) -> list[str]:
    """The canary (web-01) down: the start of 1.1.0 is refused, nothing changed. web-06,
    locked meanwhile, goes down as the locks taken are freed, and keeps its lock, whose
    deployment never opened. Both are back on return. Returns the notices said."""
    await demo.set_fault("web-01", "down")
    engine = engine_for(demo.env_path, state_dir)
    release = engine.locks.release

    async def down_first(token: str) -> None:
        await demo.set_fault("web-06", "down")
        await release(token)

    engine.locks.release = down_first  # type: ignore[method-assign]
    notices: list[str] = []
    engine.subscribe(lambda e: notices.append(e.message) if isinstance(e, ev.Notice) else None)
    try:
        with pytest.raises(ActionRefused, match=r"^canary unreachable, nothing was changed") as no:
            await asyncio.wait_for(engine.deploy("1.1.0"), 60)
        # What to do next: said (it stopped at the host's error).
        assert str(no.value).endswith("; pick other canaries, or fix it and deploy again")
    finally:
        await engine.fleet.close()
    assert locks_on_hosts(demo) == ["web-06"]
    assert set(versions(demo).values()) == {"1.0.0"}
    await demo.set_fault("web-01", "up")
    await demo.set_fault("web-06", "up")
    return notices


async def test_a_lock_left_by_a_refused_start_is_released_next_time(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A refused start's lock on web-06: the next deployment from the same journal frees it
    and completes, where it was refused by its own past until `canarytui unlock`; another
    journal's is still refused by it; the refused start is in no history."""
    env = str(demo.env_path)
    notices = await refused_start_leaving_a_lock(demo, state_dir)
    assert any(
        n.startswith(
            "the lock on web-06 could not be released (unreachable): the next "
            "deployment from this journal frees it"
        )
        for n in notices
    ), notices

    other = await run_cli("deploy", env, "1.2.0", state_dir=tmp_path / "colleague")
    assert other.code == 1 and "web-06" in other.err, other.out + other.err
    assert locks_on_hosts(demo) == ["web-06"]  # another journal's: left as it is
    dry = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert "web-06: a refused start's lock: it would be released" in dry.out
    result = await run_cli("deploy", env, "1.2.0", "--auto-promote", timeout=90)
    assert result.code == 0, result.out + result.err
    assert (
        "released the lock a start refused earlier (#1, never opened) left on web-06" in result.out
    )
    assert set(versions(demo).values()) == {"1.2.0"}
    assert locks_on_hosts(demo) == []
    journal = Journal(state_dir)
    try:
        assert [(r.id, r.version) for r in journal.history("demo", "shop")] == [(2, "1.2.0")]
        # What the engine did is in the record of the deployment that did it.
        said = [e.get("message", "") for e in journal.events(2) if e["event"] == "notice"]
        assert any(m.startswith("released the lock a start refused earlier (#1") for m in said)
    finally:
        journal.close()


async def test_a_refused_starts_lock_is_this_journals_to_status_take_over_and_unlock(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A refused start's lock on web-06 is no other machine's open deployment: `status`
    does not offer to take it over, `rollback --take-over` says whose it is and changes
    nothing, the UI's discovery knows it for this journal's, and `unlock` breaks it without
    --force (it never opened)."""
    env = str(demo.env_path)
    await refused_start_leaving_a_lock(demo, state_dir)
    status = await run_cli("status", env)
    assert status.code == 0, status.out + status.err
    assert "not in this journal" not in status.out and "--take-over" not in status.out
    taken = await run_cli("rollback", env, "--take-over")
    assert taken.code == 1, taken.out + taken.err
    assert "left by a start of this journal, refused before anything changed" in taken.err
    assert locks_on_hosts(demo) == ["web-06"]
    assert set(versions(demo).values()) == {"1.0.0"}
    ui = engine_for(demo.env_path, state_dir)  # what the UI's rollout panel says at rest
    try:
        await asyncio.wait_for(ui.discover(locks=True), 30)
    finally:
        await ui.fleet.close()
    assert list(ui.state.locked_by) == ["web-06"] and ui.state.locked_by["web-06"].left_here
    broken = await run_cli("unlock", env)
    assert broken.code == 0, broken.out + broken.err
    assert locks_on_hosts(demo) == []


async def test_take_over_refused_for_this_journals_own_deployment(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        with pytest.raises(ActionRefused, match="without --take-over"):
            await engine.rollback(take_over=True)
    finally:
        await engine.fleet.close()


async def test_a_take_over_of_a_deployment_that_changed_no_host_says_so(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """The first machine dies while its canary's first step runs (nothing changed yet):
    the take-over frees the locks and says nothing was put back, not "0 host(s) rolled
    back" as if a rollback had happened."""

    def waits(d: dict[str, Any]) -> None:
        d["deploy"]["steps"].insert(0, {"name": "wait", "run": "sleep 30"})

    env = str(edit_env(demo.env_path, tmp_path / "waits.yaml", waits))
    first, second = tmp_path / "first-machine", tmp_path / "second-machine"
    started: list[asyncio.subprocess.Process] = []

    async def keep(proc: asyncio.subprocess.Process) -> None:
        started.append(proc)

    def canary_started() -> bool:
        if not (first / "journal.sqlite3").exists():
            return False
        journal = Journal(first)
        try:
            return any(
                e.get("event") == "host" and e.get("state") == "deploying"
                for e in (journal.events(1) if journal.deployment(1) else [])
            )
        finally:
            journal.close()

    run = asyncio.create_task(run_cli("deploy", env, "1.2.0", state_dir=first, started=keep))
    await wait_for(canary_started, 30)
    started[0].kill()  # as a machine that dies: nothing of it runs its way out
    await asyncio.wait_for(run, 30)
    assert locks_on_hosts(demo) == demo.host_names

    taken = await run_cli("rollback", env, "--take-over", state_dir=second)
    assert taken.code == 0, taken.err + taken.out
    assert "1.2.0 had reached no host: nothing to put back" in taken.out, taken.out
    assert "0 host(s) rolled back" not in taken.out
    assert locks_on_hosts(demo) == []
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_a_take_over_while_the_first_machine_still_runs_stops_it_at_its_next_host(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """A colleague takes the deployment over while the first machine's ``--auto-promote``
    still runs (here: as its first wave starts, from its ``wave_start`` hook): the first
    machine's next script on a host finds the take-over and stops, changing nothing more,
    rather than promote the release the colleague rolled back to every other host."""
    first, second = tmp_path / "first-machine", tmp_path / "second-machine"
    path = tmp_path / "handoff.yaml"

    def colleague_at_the_wave(d: dict[str, Any]) -> None:
        take = [sys.executable, "-m", "canarytui", "rollback", str(path), "--take-over"]
        d.setdefault("traffic", {})["wave_start"] = (
            f"CANARYTUI_STATE_DIR={shlex.quote(str(second))} {shlex.join(take)} >/dev/null 2>&1"
        )

    env = str(edit_env(demo.env_path, path, colleague_at_the_wave))
    ran = await run_cli("deploy", env, "1.2.0", "--auto-promote", state_dir=first, timeout=120)
    assert "taken over and rolled back by" in ran.out + ran.err, ran.out + ran.err
    assert ran.code != 0
    assert set(versions(demo).values()) == {"1.0.0"}, versions(demo)
    assert locks_on_hosts(demo) == []
    journal = Journal(first)
    record = journal.last_deployment("demo", "shop")
    assert record is not None and not record.is_open and record.outcome == "rolled back"
    journal.close()


async def test_a_rollback_stopped_before_a_host_was_locked_again_names_it(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Ctrl-C while a finished deployment's rollback takes its locks again, a slow host not
    locked yet: it said "its hosts stay locked", but that one was not (a colleague's
    take-over, which finds a deployment by its locks, then left it on the release)."""
    env = str(demo.env_path)
    assert (await run_cli("deploy", env, "1.1.0", "--auto-promote")).code == 0
    await demo.set_fault("web-06", "slow")
    others = [h for h in demo.host_names if h != "web-06"]
    started: list[asyncio.subprocess.Process] = []

    async def keep(proc: asyncio.subprocess.Process) -> None:
        started.append(proc)

    run = asyncio.create_task(run_cli("rollback", env, started=keep))
    await wait_for(lambda: locks_on_hosts(demo) == others, 30)
    started[0].send_signal(signal.SIGINT)
    stopped = await asyncio.wait_for(run, 30)
    assert stopped.code == 130, stopped.out + stopped.err
    said = stopped.out + stopped.err
    assert "its hosts stay locked but web-06, not (surely) locked again;" in said, said
    assert locks_on_hosts(demo) == others
    # A colleague takes it over from the locks: web-06, on the release without one, is said.
    await demo.set_fault("web-06", "up")
    taken = await run_cli("rollback", env, "--take-over", state_dir=state_dir.parent / "other")
    assert taken.code == 0, taken.out + taken.err
    assert (
        "web-06 run(s) 1.1.0 without a lock of it: left as it is (what it ran before is not "
        f"known here); if the deployment reached it, put it back after with canarytui "
        f"rollback {env} --to 1.0.0"
    ) in taken.out, taken.out
    assert versions(demo) == {**{h: "1.0.0" for h in others}, "web-06": "1.1.0"}


async def test_a_take_over_says_so_on_the_hosts_before_it_rolls_any_back(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """The take-over's note is on every host it takes before the first is rolled back
    ("rolling back"): a first machine still running stops at its next script there, not
    once the rollback is over (it went on with waves meanwhile, on hosts the rollback
    had found untouched). Its own locks are not refused by its own note; at the end the
    note says "rolled back"."""
    env = str(demo.env_path)
    first, second = tmp_path / "first-machine", tmp_path / "second-machine"
    assert (await run_cli("deploy", env, "1.2.0", state_dir=first)).code == 0
    engine = engine_for(demo.env_path, second)
    rollback_many = engine.hosts.rollback_many
    seen: dict[str, str] = {}

    async def noted_first(names: Any) -> Any:
        for name in demo.host_names:
            note = demo.sandbox_of(name) / ".canarytui" / "taken.demo.shop"
            seen[name] = json.loads(note.read_text())["outcome"] if note.exists() else "-"
        return await rollback_many(names)

    engine.hosts.rollback_many = noted_first  # type: ignore[method-assign]
    try:
        assert await asyncio.wait_for(engine.rollback(take_over=True), 60) is (
            ev.Outcome.ROLLED_BACK
        )
    finally:
        await engine.fleet.close()
    assert seen == dict.fromkeys(demo.host_names, "rolling back")
    assert set(versions(demo).values()) == {"1.0.0"} and locks_on_hosts(demo) == []
    for name in demo.host_names:
        note = demo.sandbox_of(name) / ".canarytui" / "taken.demo.shop"
        assert json.loads(note.read_text())["outcome"] == "rolled back"
    # The first machine learns it, as before.
    promote = await run_cli("promote", env, state_dir=first)
    assert promote.code == 1 and "taken over and rolled back by" in promote.err


async def test_a_first_machine_that_finds_a_take_over_under_way_leaves_its_locks_be(
    demo: DemoFleet, state_dir: Path
) -> None:
    """The first machine, continuing, finds a colleague's take-over under way (its note:
    "rolling back"): it stops, changing nothing, and leaves the hosts' locks (the same
    token: the colleague's now, mid-rollback) where freeing them let anyone in."""
    engine = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(engine.deploy("1.2.0"), 60) is ev.Outcome.CANARY_PASSED
        d = engine.deployment
        assert d is not None
        note = {"token": d.token, "user": "cy", "machine": "desk", "outcome": "rolling back"}
        command = lockscripts.taking_note_command("shop", "demo", note)
        for name in demo.host_names:
            assert (await engine.fleet.run(name, command)).ok
        with pytest.raises(ActionRefused, match=r"taken over by cy@desk at .*, who rolls it back"):
            await asyncio.wait_for(engine.promote(all_waves=True), 60)
    finally:
        await engine.fleet.close()
    assert locks_on_hosts(demo) == demo.host_names  # the colleague's, mid-rollback
    assert [h for h, v in versions(demo).items() if v == "1.2.0"] == ["web-01"]  # no more


async def test_a_take_over_rolls_back_a_host_the_first_machine_changed_meanwhile(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """web-04 had not been reached as the take-over began (its lock, the release not on
    it): the first machine, still running, changed it before it found the take-over's
    note. The take-over ended "rolled back" with web-04 on the release; it asks the hosts
    it found untouched again once the others are back, and rolls back those on it."""
    env = str(demo.env_path)
    first, second = tmp_path / "first-machine", tmp_path / "second-machine"
    switch_to(demo, "web-05", "1.2.0")  # on the release before it: not changed by it
    assert (await run_cli("deploy", env, "1.2.0", state_dir=first)).code == 0
    engine = engine_for(demo.env_path, second)
    rollback_many = engine.hosts.rollback_many
    calls: list[list[str]] = []

    async def first_machine_meanwhile(names: Any) -> Any:
        if not calls:
            switch_to(demo, "web-04", "1.2.0")  # its wave, as the canary is rolled back
        calls.append(sorted(names))
        return await rollback_many(names)

    engine.hosts.rollback_many = first_machine_meanwhile  # type: ignore[method-assign]
    notices: list[str] = []
    engine.subscribe(lambda e: notices.append(e.message) if isinstance(e, ev.Notice) else None)
    try:
        outcome = await asyncio.wait_for(engine.rollback(take_over=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.ROLLED_BACK
    assert calls == [["web-01"], ["web-04"]]
    assert (
        "web-04 run(s) 1.2.0 now, changed by its first machine after the take-over began: "
        "rolled back too"
    ) in notices, notices
    assert versions(demo) == {h: "1.2.0" if h == "web-05" else "1.0.0" for h in demo.host_names}
    assert locks_on_hosts(demo) == []


async def test_a_take_over_during_the_analysis_stops_the_first_machine_before_its_users_move(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """Taken over during the analysis (here: from the canary_start hook), the first
    machine ran its wave_start hook (the balancer told 25 % on the release no host ran any
    more) before its first host found the take-over. One host of the wave is checked before
    the hook: the first machine stops there, its users untold."""
    first, second = tmp_path / "first-machine", tmp_path / "second-machine"
    path, told = tmp_path / "analysed.yaml", tmp_path / "told.txt"

    def colleague_in_the_analysis(d: dict[str, Any]) -> None:
        take = [sys.executable, "-m", "canarytui", "rollback", str(path), "--take-over"]
        d["traffic"] = {
            "canary_start": f"CANARYTUI_STATE_DIR={shlex.quote(str(second))} "
            f"{shlex.join(take)} >/dev/null 2>&1",
            "wave_start": f"echo wave {{wave}} >> {shlex.quote(str(told))}",
            "rolled_back": "true",
            "complete": "true",
        }

    env = str(edit_env(demo.env_path, path, colleague_in_the_analysis))
    ran = await run_cli("deploy", env, "1.2.0", "--auto-promote", state_dir=first, timeout=120)
    assert "taken over and rolled back by" in ran.out + ran.err, ran.out + ran.err
    assert not told.exists()  # no wave_start: nobody sent to the release
    assert set(versions(demo).values()) == {"1.0.0"} and locks_on_hosts(demo) == []


async def test_a_rollback_after_the_fleet_moved_on_changes_nothing(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """This machine's deployment completed; a colleague's machine deployed a later release
    since (not in this journal). Rolling the first back would put an older release over the
    newer one: refused with what the hosts run, nothing changed, the first deployment
    closed again as complete."""
    env = str(demo.env_path)
    first, second = tmp_path / "first", tmp_path / "second"
    done = await run_cli("deploy", env, "1.1.0", "--auto-promote", state_dir=first)
    assert done.code == 0, done.err
    later = await run_cli("deploy", env, "1.2.0", "--auto-promote", state_dir=second)
    assert later.code == 0, later.err
    assert set(versions(demo).values()) == {"1.2.0"}

    refused = await run_cli("rollback", env, state_dir=first)
    assert refused.code == 1, refused.out + refused.err
    assert (
        "not rolled back: web-01, web-02, web-03 and 3 more run 1.2.0 now, not 1.1.0: the "
        "fleet moved on since deployment #1" in refused.err
    )
    assert "Nothing was changed" in refused.err
    assert f"canarytui rollback {env} --to VERSION (b in the UI's history)" in refused.err
    assert "Traceback" not in refused.err
    assert set(versions(demo).values()) == {"1.2.0"}
    assert locks_on_hosts(demo) == []
    assert not local_lock_path(first, "demo", "shop").exists()
    journal = Journal(first)
    try:
        record = journal.last_deployment("demo", "shop")
        assert record is not None and not record.is_open and record.outcome == "complete"
        assert any(d["action"] == "not rolled back" for d in journal.decisions(record.id))
    finally:
        journal.close()
    history = await run_cli("history", env, state_dir=first)
    assert history.code == 0 and "rolling back" not in history.out

    # In a running UI's engine, the grid then shows what the hosts run.
    engine = engine_for(demo.env_path, first)
    try:
        await asyncio.wait_for(engine.discover(), 30)
        assert set(engine.versions.values()) == {"1.2.0"}
        engine.state.versions.update(dict.fromkeys(demo.host_names, "1.1.0"))  # as it knew
        with pytest.raises(ActionRefused, match="the fleet moved on since deployment #1"):
            await asyncio.wait_for(engine.rollback(), 60)
    finally:
        await engine.fleet.close()
    assert set(engine.versions.values()) == {"1.2.0"}
    assert set(versions(demo).values()) == {"1.2.0"} and locks_on_hosts(demo) == []


async def test_a_rollback_refused_on_a_held_lock_leaves_no_way_past_the_moved_on_check(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """A rollback of this machine's finished deployment, refused on a colleague's lock,
    left it open ("rolling back, stopped"): the colleague's deploy completed, and the
    rollback asked again skipped the fleet-moved-on check and put an older release over
    theirs. Refused, it is closed again as it was; asked again, it is refused again."""
    env = str(demo.env_path)
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    done = await run_cli("deploy", env, "1.1.0", "--auto-promote", state_dir=mine)
    assert done.code == 0, done.err
    opened = await run_cli("deploy", env, "1.2.0", state_dir=theirs)  # canary passed: open
    assert opened.code == 0, opened.err
    held = await run_cli("rollback", env, state_dir=mine)
    assert held.code == 1 and "locked by" in held.err, held.out + held.err
    # Which deployment a plain rollback takes is said before anything (the last may be old).
    assert "   [info] deployment #1 of 1.1.0, complete since 20" in held.out, held.out
    status = await run_cli("status", env, state_dir=mine)
    assert "no open deployment in this journal (last: #1 1.1.0 complete)" in status.out, status.out
    finished = await run_cli("promote", env, state_dir=theirs)
    assert finished.code == 0, finished.err
    again = await run_cli("rollback", env, state_dir=mine)
    assert again.code == 1, again.out + again.err
    assert "run 1.2.0 now, not 1.1.0: the fleet moved on since deployment #1" in again.err
    assert set(versions(demo).values()) == {"1.2.0"} and locks_on_hosts(demo) == []
    # Stopped (Ctrl-C) while it locked them again, it stays open, rolling back with no host
    # begun: asked again, what the hosts run is checked as for a finished one.
    journal = Journal(mine)
    try:
        journal.reopen(1)
        journal.record_many([ev.PhaseChanged(phase=ev.Phase.ROLLING_BACK, deployment=1)])
    finally:
        journal.close()
    stopped = await run_cli("rollback", env, state_dir=mine)
    assert stopped.code == 1, stopped.out + stopped.err
    assert "the fleet moved on since deployment #1" in stopped.err
    assert set(versions(demo).values()) == {"1.2.0"} and locks_on_hosts(demo) == []


async def test_a_host_locked_late_that_finds_a_take_over_is_left_as_it_is(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """A host the first machine locks only at its turn (unreachable until then) finds the
    colleague's take-over note: it is left as it is and the take-over is said as such, as
    a host whose lock check finds it; not an internal error that halts the deployment."""
    env = str(demo.env_path)
    first, second = tmp_path / "first-machine", tmp_path / "second-machine"
    started = await run_cli("deploy", env, "1.2.0", state_dir=first)
    assert started.code == 0, started.err
    taken = await run_cli("rollback", env, "--take-over", state_dir=second)
    assert taken.code == 0, taken.err + taken.out
    # The number the hosts' locks carry is said (this journal numbers it anew).
    assert "rolled back from 1.2.0 (taken over from the hosts' locks: their #1)" in taken.out
    # What the hosts ran when taken over is said as found, not as if just deployed.
    assert "   web-01: deployed 1.2.0  (as found, taking it over)" in taken.out.splitlines()
    engine = engine_for(demo.env_path, first)
    try:
        assert engine.load_open() is not None
        before = engine.host_states["web-04"]
        await engine.hosts.deploy("web-04", "1.2.0")  # its lock taken now, as late() does
        assert engine.host_states["web-04"] is before
        assert engine.locks.taken is not None and not engine.locks.untaken()
    finally:
        await engine.fleet.close()
    assert demo.version_on("web-04") == "1.0.0"
