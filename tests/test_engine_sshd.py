"""The engine against a real OpenSSH sshd the suite starts itself on 127.x addresses,
each host its own Unix user and home folder (see sshd_fleet.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import cut_off, engine_for, run_cli
from sshd_fleet import FleetFactory, SshdFleet

from canarytui import events as ev

pytestmark = pytest.mark.sshd


def versions(fleet: SshdFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


async def deploy(
    fleet: SshdFleet, state_dir: Path, version: str, **kwargs: Any
) -> tuple[ev.Outcome, list[ev.Event], Any]:
    engine = engine_for(fleet.write_env(), state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        outcome = await asyncio.wait_for(engine.deploy(version, **kwargs), 60)
    finally:
        await engine.fleet.close()
    return outcome, seen, engine


async def test_good_release_promoted_in_waves(sshd_fleet: FleetFactory, state_dir: Path) -> None:
    fleet = sshd_fleet(5)
    outcome, seen, engine = await deploy(fleet, state_dir, "2.0.0", auto_promote=True)
    assert outcome is ev.Outcome.COMPLETE
    assert set(versions(fleet).values()) == {"2.0.0"}
    assert [w.hosts for w in seen if isinstance(w, ev.WaveStarted)] == [
        ["h02"],
        ["h03", "h04", "h05"],
    ]
    assert engine.fleet.connects == 5
    steps = [e for e in seen if isinstance(e, ev.StepResult) and e.host == "h03"]
    assert [(s.step, s.exit_status) for s in steps] == [
        ("install", 0),
        ("switch", 0),
        ("restart", 0),
    ]


async def test_bad_release_caught_others_untouched(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(4)
    outcome, seen, _ = await deploy(fleet, state_dir, "2.1.0-bad", auto_promote=True)
    assert outcome is ev.Outcome.CANARY_FAILED
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert verdict.verdict is ev.Verdict.FAIL and "error-ratio" in verdict.reasons[0]
    assert set(versions(fleet).values()) == {"1.0.0"}
    assert {e.host for e in seen if isinstance(e, ev.StepResult)} == {"h01"}
    # Nothing but the lock folder (gone again) was ever written on the others.
    for name in ("h02", "h03", "h04"):
        assert not (fleet.host(name).home / "releases" / "2.1.0-bad").exists()
        assert not (fleet.host(name).home / ".canarytui" / "lock.sshd-test.shop" / "owner").exists()


async def test_dead_release_caught(sshd_fleet: FleetFactory, state_dir: Path) -> None:
    fleet = sshd_fleet(3)
    outcome, _, engine = await deploy(fleet, state_dir, "2.2.0-dead")
    assert outcome is ev.Outcome.CANARY_FAILED
    assert engine.last_verdict is not None
    assert any("unhealthy" in r for r in engine.last_verdict.reasons)
    assert set(versions(fleet).values()) == {"1.0.0"}


async def test_unknown_host_key_refused(sshd_fleet: FleetFactory, state_dir: Path) -> None:
    fleet = sshd_fleet(2)
    env_path = fleet.write_env()
    fleet.known_hosts.write_text("")
    result = await run_cli("deploy", str(env_path), "2.0.0", state_dir=state_dir)
    assert result.code == 1
    assert "h01" in result.err and "host key not verifiable" in result.err
    assert set(versions(fleet).values()) == {"1.0.0"}


async def test_unreachable_host_bounded(sshd_fleet: FleetFactory, state_dir: Path) -> None:
    fleet = sshd_fleet(4)
    fleet.stop_host("h04")
    env_path = fleet.write_env(edit=lambda d: d["promote"].update({"max_failures": 1}))
    engine = engine_for(env_path, state_dir)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        outcome = await asyncio.wait_for(engine.deploy("2.0.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert loop.time() - started < 30
    assert engine.host_states["h04"] is ev.HostState.UNREACHABLE
    assert "h04" in engine.details["h04"] and "unreachable" in engine.details["h04"]
    assert [fleet.version_on(h) for h in ("h01", "h02", "h03")] == ["2.0.0"] * 3


async def test_cli_open_deployment_then_promote(sshd_fleet: FleetFactory, state_dir: Path) -> None:
    fleet = sshd_fleet(3)
    env = str(fleet.write_env())
    first = await run_cli("deploy", env, "2.0.0", state_dir=state_dir)
    assert first.code == 0, first.err
    assert versions(fleet) == {"h01": "2.0.0", "h02": "1.0.0", "h03": "1.0.0"}
    second = await run_cli("promote", env, state_dir=state_dir)
    assert second.code == 0, second.err
    assert set(versions(fleet).values()) == {"2.0.0"}
    history = await run_cli("history", env, state_dir=state_dir)
    assert "2.0.0" in history.out and "complete" in history.out


async def test_a_release_to_hosts_that_cap_sessions_is_judged_on_the_release(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    """Hardened hosts (sshd's MaxSessions 1 and 2): the canary's health checks go over a
    spare connection beside the kept shell, and a good release is promoted. (Refused
    sessions were failed health checks: the good release was rolled back.)"""
    fleet = sshd_fleet(3)
    fleet.limit_sessions("h01", 1)
    fleet.limit_sessions("h02", 2)
    outcome, seen, _ = await deploy(fleet, state_dir, "2.0.0", auto_promote=True)
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert verdict.verdict is ev.Verdict.PASS, verdict.reasons
    assert outcome is ev.Outcome.COMPLETE
    assert set(versions(fleet).values()) == {"2.0.0"}


async def test_a_host_that_refuses_every_session_is_named_by_check_and_deploy(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(3)
    fleet.limit_sessions("h01", 0)
    env = str(fleet.write_env())
    check = await run_cli("check", env, state_dir=state_dir)
    assert check.code == 1, check.err
    line = next(x for x in check.out.splitlines() if x.startswith("h01"))
    assert "SESSION REFUSED" in line and "refuses every session" in line, line
    deployed = await run_cli("deploy", env, "2.0.0", state_dir=state_dir)
    assert deployed.code == 1, deployed.err
    assert "canary session refused, nothing was changed" in deployed.err
    assert "h01 (" in deployed.err and "refuses every session" in deployed.err
    assert versions(fleet) == {"h01": "1.0.0", "h02": "1.0.0", "h03": "1.0.0"}


def sshd_locked(fleet: SshdFleet) -> list[str]:
    owner = Path(".canarytui", "lock.sshd-test.shop", "owner")
    return [h for h in fleet.host_names if (fleet.host(h).home / owner).exists()]


async def test_ctrl_c_as_locks_are_made_then_the_analysis_again_over_openssh(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    """Real sshd and shells: stopped while every lock is made and none answered (a slow
    version read), no lock stays; a deployment then stopped in its analysis is analysed
    again by a later process and promoted, the canary deployed once."""
    fleet = sshd_fleet(3)
    slow = fleet.write_env(
        fleet.run_dir / "slow.yaml",
        edit=lambda d: d["deploy"].update(current="sleep 5; " + d["deploy"]["current"]),
    )
    engine = engine_for(slow, state_dir)
    try:
        await cut_off(engine.deploy("2.0.0"), lambda: len(sshd_locked(fleet)) == 3)
    finally:
        await engine.fleet.close()
    assert sshd_locked(fleet) == []
    assert engine.journal.open_deployment("sshd-test", "shop") is None
    env_path = fleet.write_env()
    first = engine_for(env_path, state_dir)
    try:
        await cut_off(first.deploy("2.0.0"), lambda: first.phase is ev.Phase.ANALYSIS)
    finally:
        await first.fleet.close()
    assert sshd_locked(fleet) == []
    later = engine_for(env_path, state_dir)
    try:
        assert await asyncio.wait_for(later.promote(), 60) is ev.Outcome.COMPLETE
    finally:
        await later.fleet.close()
    assert set(versions(fleet).values()) == {"2.0.0"}
    record = later.journal.last_deployment("sshd-test", "shop")
    assert record is not None
    assert [d["action"] for d in later.journal.decisions(record.id)] == ["deploy", "analyse again"]
    events = later.journal.events(record.id)
    started = [e["host"] for e in events if e["event"] == "host" and e["state"] == "deploying"]
    assert sorted(started) == ["h01", "h02", "h03"]


async def test_the_fleet_lost_in_a_wave_halts_it_over_openssh(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    """Every host's sshd gone (sessions killed, addresses refusing) while wave 2's steps
    run: no rollback is sent into it, the deployment halts open and says this machine lost
    the fleet; once the hosts are back, promote finishes the release."""
    fleet = sshd_fleet(5)

    def edit(d: dict[str, Any]) -> None:
        d["deploy"]["steps"].insert(0, {"name": "fetch", "run": "sleep 0.5"})
        d["promote"]["pause"] = "0s"

    env_path = fleet.write_env(edit=edit)
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []

    def stop_all() -> None:
        for name in fleet.host_names:
            fleet.stop_host(name)

    def on(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.WaveStarted) and event.wave == 2:
            # Once the wave's steps run (its first one sleeps 0.5 s on every host).
            asyncio.get_running_loop().call_later(0.25, stop_all)

    engine.subscribe(on)
    try:
        outcome = await asyncio.wait_for(engine.deploy("2.0.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    said = [e.message for e in seen if isinstance(e, ev.Notice)]
    assert outcome is ev.Outcome.HALTED, said
    assert any("this machine has lost the fleet" in m for m in said), said
    assert not any(isinstance(e, ev.StepResult) and e.action == "rollback" for e in seen)
    assert [fleet.version_on(h) for h in ("h01", "h02")] == ["2.0.0"] * 2
    for name in ("h03", "h04", "h05"):  # cut off mid-steps, not refused before them
        assert engine.host_states[name] is ev.HostState.FAILED, engine.details[name]
        assert "connection lost during a command" in engine.details[name]
    for name in fleet.host_names:
        fleet.start_host(name)
    again = engine_for(env_path, state_dir)
    try:
        done = await asyncio.wait_for(again.promote(), 60)
    finally:
        await again.fleet.close()
    assert done is ev.Outcome.COMPLETE
    assert set(versions(fleet).values()) == {"2.0.0"}
