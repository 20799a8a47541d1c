"""A host's steps as one script over real OpenSSH: each step's exit status, output and
time come back separately and in order, the script stops at the first failure, a step past
its timeout is stopped on the host with everything it started, and the engine's journal
still holds one step event per step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_for
from sshd_fleet import FleetFactory, SshdFleet

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.ssh import CommandResult, CommandTimeout, Fleet, SessionRefused

pytestmark = pytest.mark.sshd


async def run(
    fleet: Fleet, steps: list[tuple[str, float | None]]
) -> list[tuple[int, CommandResult]]:
    seen: list[tuple[int, CommandResult]] = []
    await asyncio.wait_for(fleet.run_steps("h01", steps, lambda i, r: seen.append((i, r))), 30)
    return seen


async def run_read_late(
    fleet: SshdFleet,
    ssh: Fleet,
    running: str,
    hold: float,
    steps: list[tuple[str, float | None]],
    done: Callable[[int, CommandResult], None],
    settled: Callable[[], None] | None = None,
) -> None:
    """``steps`` on h01, the controller held on purpose (a busy one) for ``hold`` seconds
    once ``running`` runs there: the end marks that come meanwhile are read in one go."""
    await ssh.run("h01", "true")  # connected: the script goes at once

    async def busy_once_running() -> None:
        await fleet.until_running("h01", running)
        time.sleep(hold)  # noqa: ASYNC251

    busy = asyncio.ensure_future(busy_once_running())
    await asyncio.wait_for(ssh.run_steps("h01", steps, done, settled=settled), 30)
    await asyncio.wait_for(busy, 10)


async def test_each_step_comes_back_on_its_own(sshd_fleet: FleetFactory) -> None:
    ssh = Fleet(load_env(sshd_fleet(1).write_env()))
    try:
        seen = await run(
            ssh,
            [
                ("echo one; echo err-one >&2", None),
                ("printf 'no newline'; cd /; exit 0", None),
                ("pwd; printf 'x\\n\\n'", None),  # the cd above stayed in its own step
                ("echo last; exit 0", None),
            ],
        )
        assert [i for i, _ in seen] == [0, 1, 2, 3]
        first, second, third, last = (r for _, r in seen)
        assert (first.stdout, first.stderr, first.exit_status) == ("one\n", "err-one\n", 0)
        assert (second.stdout, second.stderr) == ("no newline", "")
        assert third.stdout != "/\n" and third.stdout.endswith("\nx\n\n")
        assert last.stdout == "last\n" and all(r.duration >= 0 for _, r in seen)
        assert ssh.connects == 1
    finally:
        await ssh.close()


async def test_a_step_takes_the_time_the_host_says_even_when_read_late(
    sshd_fleet: FleetFactory,
) -> None:
    """A busy controller reads several end marks at once: each step's time is still what
    it took on the host, not when its mark happened to be read."""
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    seen: list[tuple[int, CommandResult]] = []
    try:
        # Both steps end while the controller is held.
        steps = [("sleep 0.5", None), ("sleep 0.6", None), ("true", None)]
        await run_read_late(fleet, ssh, "sleep 0.5", 1.5, steps, lambda i, r: seen.append((i, r)))
        took = [round(r.duration, 2) for _, r in seen]
        assert 0.45 <= took[0] <= 0.9, took  # read ~1.5 s after it started
        assert 0.55 <= took[1] <= 0.9, took  # read in the same chunk as the first
        assert 0.0 <= took[2] <= 0.2, took
    finally:
        await ssh.close()


async def test_steps_that_end_in_one_read_are_settled_together(
    sshd_fleet: FleetFactory,
) -> None:
    """``settled()`` follows each run of steps told at once (their caller journals them in
    one transaction), and comes before the wait for a step still running: a step is never
    held back until the next one ends."""
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    calls: list[str] = []
    try:
        # Steps 1 and 2 end while the controller is held, and are read in one go.
        await run_read_late(
            fleet,
            ssh,
            "sleep 1",
            2.0,
            [("true", None), ("sleep 1", None), ("true", None), ("sleep 2", None)],
            lambda i, r: calls.append(f"done {i}"),
            settled=lambda: calls.append("settled"),
        )
        assert calls == [
            "done 0",
            "settled",  # before the wait for step 1
            "done 1",
            "done 2",
            "settled",  # both in one go, before the wait for step 3
            "done 3",
            "settled",
        ]
    finally:
        await ssh.close()


async def test_a_step_is_journaled_while_the_next_still_runs(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    """The engine journals (and shows) a host's step as it ends, not once the host's
    script is over: the second step here waits until the test has seen the first."""
    fleet = sshd_fleet(1)
    go = fleet.host("h01").home / "go"
    waiting = "i=0; while [ ! -e go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done"

    def edit(doc: dict[str, Any]) -> None:
        steps = doc["deploy"]["steps"]
        doc["deploy"]["steps"] = [steps[0], {"name": "wait", "run": waiting}, *steps[1:]]

    engine = engine_for(fleet.write_env(edit=edit), state_dir)
    installed = asyncio.Event()
    engine.subscribe(
        lambda e: installed.set() if isinstance(e, ev.StepResult) and e.step == "install" else None
    )
    deploy = asyncio.ensure_future(engine.deploy("2.1.0", auto_promote=True))
    try:
        await asyncio.wait_for(installed.wait(), 20)
        assert not go.exists() and engine.deployment is not None
        journaled = [
            e["step"] for e in engine.journal.events(engine.deployment.id) if e["event"] == "step"
        ]
        assert journaled == ["install"]
        go.touch()
        assert await asyncio.wait_for(deploy, 60) is ev.Outcome.COMPLETE
    finally:
        go.touch()
        await asyncio.wait_for(deploy, 60)
        await engine.fleet.close()


async def test_the_script_stops_at_the_first_failure(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    marker = fleet.host("h01").home / "never-made"
    try:
        seen = await run(
            ssh,
            [("echo fine", None), ("echo broke >&2; exit 7", None), (f"touch {marker}", None)],
        )
        assert [(i, r.exit_status) for i, r in seen] == [(0, 0), (1, 7)]
        assert seen[1][1].stderr == "broke\n"
        assert not marker.exists()
        # A step that ends the shell itself: what it printed, and ssh's 255.
        seen = await run(ssh, [("echo before; kill -9 $$; sleep 5", None), ("echo no", None)])
        assert [(i, r.exit_status) for i, r in seen][:1] == [(0, 255)]
        assert len(seen) == 1 and seen[0][1].stdout.startswith("before")
    finally:
        await ssh.close()


async def test_a_hung_step_is_stopped_and_the_steps_before_it_kept(
    sshd_fleet: FleetFactory,
) -> None:
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    seen: list[tuple[int, CommandResult]] = []
    try:
        # Each step has its own timeout: 2 s of work under a 3 s bound each is fine.
        await asyncio.wait_for(
            ssh.run_steps(
                "h01",
                [("sleep 2; echo a", 3.0), ("sleep 2; echo b", 3.0)],
                lambda i, r: seen.append((i, r)),
            ),
            30,
        )
        assert [r.stdout for _, r in seen] == ["a\n", "b\n"]
        seen.clear()
        with pytest.raises(
            CommandTimeout,
            match=r"after 1s; stopped on the host \(process group \d+ ended on SIGTERM\)",
        ):
            await asyncio.wait_for(
                ssh.run_steps(
                    "h01",
                    [
                        ("echo quick", 5.0),
                        ("sleep 41 & sleep 42; echo never", 1.0),
                        ("echo x", 5.0),
                    ],
                    lambda i, r: seen.append((i, r)),
                ),
                30,
            )
        assert [(i, r.stdout) for i, r in seen] == [(0, "quick\n")]
        assert not [c for c in fleet.commands_running("h01") if "sleep 4" in c]
        assert (await ssh.run("h01", "echo ok")).stdout == "ok\n"
    finally:
        await ssh.close()


async def test_a_cancelled_script_is_stopped_on_the_host(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    try:
        task = asyncio.ensure_future(
            ssh.run_steps("h01", [("echo a", None), ("sleep 43", None)], lambda i, r: None)
        )
        await fleet.until_running("h01", "sleep 43")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await ssh.run("h01", "echo ok")).stdout == "ok\n"
        assert not [c for c in fleet.commands_running("h01") if "sleep 43" in c]
    finally:
        await ssh.close()


async def test_the_journal_keeps_one_event_per_step_in_order(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(2)

    def hooks(doc: dict[str, Any]) -> None:
        doc["deploy"]["hooks"] = {"before_host": "echo before", "after_host": "echo after"}

    engine = engine_for(fleet.write_env(edit=hooks), state_dir)
    try:
        outcome = await asyncio.wait_for(engine.deploy("2.0.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE and engine.deployment is not None
    steps = [e for e in engine.journal.events(engine.deployment.id) if e["event"] == "step"]
    names = ["before_host", *(s["name"] for s in fleet.env_dict()["deploy"]["steps"]), "after_host"]
    for host in fleet.host_names:
        mine = [e for e in steps if e["host"] == host]
        assert [e["step"] for e in mine] == names
        assert [e["exit_status"] for e in mine] == [0] * len(names)
        assert mine[0]["output"] == "before\n" and mine[-1]["output"] == "after\n"


async def test_a_report_that_fails_stops_the_steps_left(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    marker = fleet.host("h01").home / "made-later"

    def done(i: int, result: CommandResult) -> None:
        raise RuntimeError("report failed")

    try:
        with pytest.raises(RuntimeError, match="report failed"):
            await asyncio.wait_for(
                ssh.run_steps("h01", [("echo a", None), (f"sleep 3; touch {marker}", None)], done),
                30,
            )
        # The next command waits for the stop; what was left never ran to its end.
        assert (await ssh.run("h01", "echo ok")).stdout == "ok\n"
        assert not [c for c in fleet.commands_running("h01") if "sleep 3" in c]
        assert not marker.exists()
    finally:
        await ssh.close()


async def test_a_cancel_as_a_step_ends_is_not_lost(sshd_fleet: FleetFactory) -> None:
    """The caller gives up in the very turn a step's end marks come in: the cancel wins
    (the steps after it never start), it is not taken for the step's end and lost."""
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    shell = ssh.shell()
    try:
        await ssh.run_steps("h01", [("true", None)], lambda i, r: None, shell=shell)
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            ssh.run_steps(
                "h01", [("true", None), ("sleep 44", 3.0)], lambda i, r: None, shell=shell
            )
        )

        def feeding(tails: Any) -> Any:
            feed = tails.feed

            def fed(data: bytes) -> None:
                feed(data)
                if shell.stdout.ended and shell.stderr.ended and not task.cancelling():
                    loop.call_soon(task.cancel)  # before the step's waiter wakes

            return fed

        shell.stdout.feed = feeding(shell.stdout)  # type: ignore[method-assign]
        shell.stderr.feed = feeding(shell.stderr)  # type: ignore[method-assign]
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), 20)
        assert (await ssh.run("h01", "echo ok")).stdout == "ok\n"
        assert not [c for c in fleet.commands_running("h01") if "sleep 44" in c]
    finally:
        await ssh.close()


async def test_a_host_that_caps_sessions_gets_spare_connections(sshd_fleet: FleetFactory) -> None:
    """sshd's MaxSessions 1 (a hardened host): with a deployment's kept shell holding the
    one session, a command and a log stream go over spare connections, and the kept shell
    lives on (a refused session was taken for a lost connection, which dropped it)."""
    fleet = sshd_fleet(1)
    fleet.limit_sessions("h01", 1)
    ssh = Fleet(load_env(fleet.write_env()))
    shell = ssh.shell()
    said: list[str] = []
    try:
        await ssh.run_steps(
            "h01", [("echo $$", None)], lambda i, r: said.append(r.stdout), shell=shell
        )
        lines = ssh.stream("h01", "echo streamed; sleep 30")
        assert await asyncio.wait_for(anext(lines), 10) == "streamed"
        assert (await ssh.run("h01", "echo probe")).stdout == "probe\n"
        # The kept shell is the same one: the next steps go down it, in the same process.
        await ssh.run_steps(
            "h01", [("echo $$", None)], lambda i, r: said.append(r.stdout), shell=shell
        )
        assert len(said) == 2 and said[0] == said[1], said
        assert ssh.connects == 3  # its own, and one spare for each session held at once
        await lines.aclose()
        assert (await ssh.run("h01", "echo again")).stdout == "again\n"
        assert ssh.connects == 3  # spares are reused
    finally:
        await ssh.close()


async def test_a_host_that_refuses_every_session_says_so(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(1)
    fleet.limit_sessions("h01", 0)
    ssh = Fleet(load_env(fleet.write_env()))
    try:
        with pytest.raises(SessionRefused) as caught:
            await asyncio.wait_for(ssh.run("h01", "echo hi"), 20)
        assert "h01 (" in str(caught.value)
        assert "refuses every session (open failed), even on a new connection" in str(caught.value)
        assert ssh.connects == 2  # its own and one new one, no more
    finally:
        await ssh.close()
