"""What a host costs in SSH sessions during a release: one. The session that takes its
lock stays open as the host's shell; its steps (with a first health probe), the health
gate's tries, a rollback and the release of its lock go down that shell; a shell that was
lost is opened again by the next script."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env, engine_for, wait_for

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import Engine, lockcheck, lockscripts


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


class Sessions:
    """Sessions the demo hosts received at each phase's start (and at the end)."""

    def __init__(self, demo: DemoFleet) -> None:
        self.demo = demo
        self.at: dict[str, int] = {}
        self.wave_hosts = 0

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.PhaseChanged):
            self.at.setdefault(event.phase.value, self.demo.commands_received)
        if isinstance(event, ev.WaveStarted):
            self.wave_hosts += len(event.hosts)
        if isinstance(event, ev.DeploymentFinished):
            self.at["finished"] = self.demo.commands_received

    def since(self, phase: str) -> int:
        return self.demo.commands_received - self.at[phase]


async def counted(demo: DemoFleet, state_dir: Path, edit: Any) -> tuple[Sessions, Engine]:
    """Deploy 1.1.0 with ``edit`` (auto-promoted, completed), counting sessions."""
    sessions = Sessions(demo)
    outcome, engine = await deploy(demo, state_dir, edit, watch=lambda _: sessions)
    assert outcome is ev.Outcome.COMPLETE
    assert not any(lock_of(demo, h).exists() for h in demo.host_names)
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
    return sessions, engine


async def test_a_release_is_one_session_per_host(demo: DemoFleet, state_dir: Path) -> None:
    # The demo's own file: its restart step returns once the app is up on the new release.
    sessions, engine = await counted(demo, state_dir, None)
    hosts = len(demo.host_names)
    assert sessions.wave_hosts == hosts - 1
    assert sessions.at["canary"] == hosts  # the locks (with the versions): one each
    assert sessions.at["analysis"] == hosts  # the canary's steps went down its shell
    assert sessions.since("promoting") == 0  # so did every wave's, and every release
    assert sessions.since("finished") == 0
    assert not engine.locks.shells
    await wait_for(lambda: demo.live_processes == 0, timeout=10)  # each shell ended
    # The probe is no step: the journal has the steps only.
    record = engine.journal.last_deployment("demo", "shop")
    events = engine.journal.events(record.id)
    steps = {e["step"] for e in events if e["event"] == "step" and e["action"] == "deploy"}
    assert steps == {"install", "switch", "restart"}
    assert {e["action"] for e in events if e["event"] == "step"} == {"deploy", "traffic"}


async def test_a_probe_failing_in_the_script_leaves_it_to_the_gate(
    demo: DemoFleet, state_dir: Path
) -> None:
    # Not ready at once (the probe in the script fails, once): the gate's next try passes,
    # down the same shell.
    def edit(d: dict[str, Any]) -> None:
        d["deploy"]["steps"].append({"name": "arm", "run": "touch armed"})
        d["health"]["check"] = "if [ -e armed ]; then rm armed; exit 1; fi"

    sessions, _ = await counted(demo, state_dir, edit)
    assert sessions.since("promoting") == 0
    assert not any((demo.sandbox_of(h) / "armed").exists() for h in demo.host_names)


async def test_a_dead_release_never_passes_on_a_stale_probe(
    demo: DemoFleet, state_dir: Path
) -> None:
    seen: list[ev.Event] = []
    outcome, _ = await deploy(demo, state_dir, version="1.4.0-dead", watch=lambda _: seen.append)
    assert outcome is not ev.Outcome.COMPLETE
    failed = [e for e in seen if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.FAILED]
    assert failed and "unhealthy after deploy" in failed[0].detail
    # Its steps ran: the failed canary is said to run the release (the grid showed 1.0.0),
    # and a health check that printed nothing leaves no dangling space or colon.
    assert failed[0].version == "1.4.0-dead"
    assert not failed[0].detail.endswith((" ", ":")), failed[0].detail
    assert not any(isinstance(e, ev.WaveStarted) for e in seen)


def lock_of(demo: DemoFleet, host: str) -> Path:
    return demo.sandbox_of(host) / ".canarytui" / "lock.demo.shop" / "owner"


def failing_on(host: str, on_failure: str) -> Any:
    def edit(d: dict[str, Any]) -> None:
        # Fails there with the new release only: rolling back (the same steps with the
        # previous version) passes.
        check = f'test "$DEMO_HOST {{version}}" != "{host} 1.1.0"'
        d["deploy"]["steps"].append({"name": "check", "run": check})
        d["promote"]["on_failure"] = on_failure
        d["promote"]["max_failures"] = 0

    return edit


async def test_a_rollback_goes_down_the_same_shells(demo: DemoFleet, state_dir: Path) -> None:
    # The last wave: web-05 passes, web-06 fails (its shell stays: a failed step ends the
    # script, not the shell); everything is rolled back, then every lock released.
    sessions = Sessions(demo)
    outcome, engine = await deploy(
        demo, state_dir, failing_on("web-06", "rollback"), watch=lambda _: sessions
    )
    assert outcome is ev.Outcome.PROMOTION_ROLLED_BACK
    assert sessions.since("promoting") == 0
    assert not engine.locks.shells
    assert {demo.version_on(h) for h in demo.host_names} == {"1.0.0"}
    assert not any(lock_of(demo, h).exists() for h in demo.host_names)
    await wait_for(lambda: demo.live_processes == 0, timeout=10)


async def test_a_halt_keeps_the_locks_and_leaves_no_shell_waiting(
    demo: DemoFleet, state_dir: Path
) -> None:
    outcome, engine = await deploy(demo, state_dir, failing_on("web-06", "halt"))
    assert outcome is ev.Outcome.HALTED
    assert set(engine.locks.shells) == set(demo.host_names)  # kept for the next decision
    # The process let go: each shell read the end of its input and did nothing more.
    await wait_for(lambda: demo.live_processes == 0, timeout=10)
    assert all(lock_of(demo, h).exists() for h in demo.host_names)
    assert demo.version_on("web-05") == "1.1.0"


async def test_a_lost_shell_is_opened_again_by_the_next_script(
    demo: DemoFleet, state_dir: Path
) -> None:
    # web-02's connection (and its shell) is lost before its wave, web-06's after the last
    # wave: the wave's script opens one session on web-02, the release one on web-06.
    def cut(engine: Engine) -> Callable[[ev.Event], None]:
        def on(event: ev.Event) -> None:
            if isinstance(event, ev.PhaseChanged) and event.phase is ev.Phase.AWAITING_PROMOTION:
                engine.fleet.drop("web-02")
            if isinstance(event, ev.WaveFinished) and event.wave == event.waves:
                engine.fleet.drop("web-06")
            sessions(event)

        return on

    sessions = Sessions(demo)
    outcome, _ = await deploy(demo, state_dir, watch=cut)
    assert outcome is ev.Outcome.COMPLETE
    assert sessions.at["finished"] - sessions.at["promoting"] == 1  # web-02's steps
    assert sessions.since("finished") == 1  # web-06's release
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
    assert not any(lock_of(demo, h).exists() for h in demo.host_names)


async def test_each_change_checks_the_lock_by_the_function_its_shell_knows(
    demo: DemoFleet, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every script that changes a held host checks its lock first (a colleague may have
    taken the deployment over): by ``canarytui_mine``, which the lock's script defined in
    the same kept shell, not by the check's whole text read a byte at a time (~1 ms of a
    host's CPU each, 4 % of a 200-host release); a host whose shell was lost since, by the
    whole text."""
    said: dict[str, list[str | None]] = {}
    check = lockcheck.check

    def recorded(keeper: Any, name: str, changing: bool = True) -> Any:
        script = check(keeper, name, changing)
        said.setdefault(name, []).append(script)
        return script

    monkeypatch.setattr(lockcheck, "check", recorded)

    def cut(engine: Engine) -> Callable[[ev.Event], None]:
        def on(event: ev.Event) -> None:
            if isinstance(event, ev.PhaseChanged) and event.phase is ev.Phase.AWAITING_PROMOTION:
                engine.fleet.drop("web-02")

        return on

    outcome, _ = await deploy(demo, state_dir, watch=cut)
    assert outcome is ev.Outcome.COMPLETE
    for name in demo.host_names:
        if name == "web-02":  # its session lost: the whole check, in the new one (the short
            # one, sent as the loss was not yet seen, is unknown there: checked again whole)
            whole = [x for x in said[name] if x is not None and x != lockscripts.CHECK_CALL]
            assert whole and "canarytui_mine()" not in whole[0] and len(whole[0]) > 1000
        else:
            assert said[name][0] == lockscripts.CHECK_CALL, (name, said[name][0])
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}


async def test_a_short_check_that_lands_in_a_new_session_is_made_again_whole(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A host's shell lost and opened again just as its next script went (the loss not
    yet seen): the short check reached a session that never defined it ("not found",
    127). Nothing ran; the host is checked again, whole, and changed, not failed."""
    engine = engine_for(demo.env_path, state_dir)
    said: list[str | None] = []
    check = lockcheck.check

    def recorded(keeper: Any, name: str, changing: bool = True) -> Any:
        script = check(keeper, name, changing)
        if name == "web-02":
            said.append(script)
        return script

    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 60) is ev.Outcome.CANARY_PASSED
        ensure = engine.locks.ensure

        async def then_a_new_session(*args: Any, **kwargs: Any) -> Any:
            found = await ensure(*args, **kwargs)
            engine.locks.shells["web-02"].close()
            shell = engine.locks.shells["web-02"] = engine.fleet.shell()
            assert (await engine.fleet.run("web-02", "true", shell=shell)).ok  # a new session
            engine.locks.checks["web-02"] = (shell, shell.opened)  # as if it knew the check
            engine.locks.unchecked.discard("web-02")  # (as if checked since)
            return found

        engine.locks.ensure = then_a_new_session  # type: ignore[method-assign]
        lockcheck.check = recorded  # type: ignore[assignment]
        try:
            outcome = await asyncio.wait_for(engine.promote(all_waves=True), 60)
        finally:
            lockcheck.check = check  # type: ignore[assignment]
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert said[0] == lockscripts.CHECK_CALL and said[1] is not None and len(said[1]) > 1000
    assert demo.version_on("web-02") == "1.1.0"
