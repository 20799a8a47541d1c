"""The real-OpenSSH test fleet itself (tests/sshd_fleet.py): hosts, app, env file, teardown."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncssh
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sshd_fleet import FleetFactory, FleetHost, SshdFleet, require_fleet

from canarytui.config import load_env, render

TIMEOUT = 10.0


async def connect(
    fleet: SshdFleet, host: FleetHost, *, known_hosts: Path | None = None, user: str | None = None
) -> asyncssh.SSHClientConnection:
    return await asyncio.wait_for(
        asyncssh.connect(
            host.address,
            port=host.port,
            username=user or host.user,
            known_hosts=str(known_hosts or fleet.known_hosts),
            client_keys=[str(fleet.client_key)],
        ),
        TIMEOUT,
    )


async def run(conn: asyncssh.SSHClientConnection, command: str) -> asyncssh.SSHCompletedProcess:
    return await asyncio.wait_for(conn.run(command), TIMEOUT)


async def deploy_by_hand(fleet: SshdFleet, host: FleetHost, version: str, env_file: Path) -> None:
    """Run the env file's deploy steps for ``version`` on ``host``, as the engine would."""
    env = load_env(env_file)
    async with await connect(fleet, host) as conn:
        for step in env.deploy.steps:
            result = await run(conn, render(step.run, {"version": version}))
            assert result.exit_status == 0, (step.name, result.stderr)


def counters(metrics_text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if family.type == "counter"
    }


@pytest.mark.sshd
async def test_each_host_is_its_own_server(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(3)
    assert [h.name for h in fleet.hosts] == ["h01", "h02", "h03"]
    assert len({h.address for h in fleet.hosts}) == 3
    assert len({h.user for h in fleet.hosts}) == 3
    assert len({h.port for h in fleet.hosts}) == 1

    async def check(host: FleetHost) -> None:
        async with await connect(fleet, host) as conn:
            assert (await run(conn, "cat current/VERSION")).stdout == "1.0.0\n"
            assert (await run(conn, "pwd")).stdout == f"{host.home}\n"
            assert (await run(conn, "id -un")).stdout == f"{host.user}\n"
            assert (await run(conn, "sh bin/app-health")).exit_status == 0

    await asyncio.gather(*(check(h) for h in fleet.hosts))
    assert [fleet.version_on(h.name) for h in fleet.hosts] == ["1.0.0"] * 3
    assert "version=1.0.0" in (fleet.hosts[0].home / "log" / "app.log").read_text()


@pytest.mark.sshd
async def test_bad_release_raises_the_error_ratio_but_stays_healthy(
    sshd_fleet: FleetFactory, tmp_path: Path
) -> None:
    fleet = sshd_fleet(3)
    canary, other = fleet.host("h01"), fleet.host("h02")
    await deploy_by_hand(fleet, canary, "1.3.0-bad", fleet.write_env(tmp_path / "env.yaml"))
    assert fleet.version_on("h01") == "1.3.0-bad"
    assert fleet.version_on("h02") == "1.0.0"

    async with await connect(fleet, canary) as conn:
        deadline = time.monotonic() + 5
        while True:
            result = await run(conn, "sh bin/app-metrics")
            assert result.exit_status == 0, result.stderr
            seen = counters(str(result.stdout))
            if seen["app_requests_total"] >= 100 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert seen["app_requests_total"] >= 100, seen
        assert seen["app_requests_failed_total"] / seen["app_requests_total"] > 0.05
        health = await run(conn, "sh bin/app-health")
        assert health.exit_status == 0 and health.stdout == "ok 1.3.0-bad\n"

    async with await connect(fleet, other) as conn:
        seen = counters(str((await run(conn, "sh bin/app-metrics")).stdout))
        assert seen["app_requests_total"] > 0
        assert seen["app_requests_failed_total"] / seen["app_requests_total"] <= 0.05


@pytest.mark.sshd
async def test_dead_release_fails_the_health_check(
    sshd_fleet: FleetFactory, tmp_path: Path
) -> None:
    fleet = sshd_fleet(3)
    env_file = fleet.write_env(tmp_path / "env.yaml")
    await deploy_by_hand(fleet, fleet.host("h02"), "1.4.0-dead", env_file)
    async with await connect(fleet, fleet.host("h02")) as conn:
        result = await run(conn, "sh bin/app-health")
        assert result.exit_status == 1
        assert "1.4.0-dead" in str(result.stdout)
        last_log_line = str((await run(conn, "tail -n 1 log/app.log")).stdout)
        assert last_log_line.endswith("GET /health 503 version=1.4.0-dead\n")
    # Switching back (the rollback) heals it.
    fleet.set_version("h02", "1.0.0")
    async with await connect(fleet, fleet.host("h02")) as conn:
        assert (await run(conn, "sh bin/app-health")).exit_status == 0


@pytest.mark.sshd
async def test_unknown_host_key_is_refused(sshd_fleet: FleetFactory, tmp_path: Path) -> None:
    fleet = sshd_fleet(1)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await connect(fleet, fleet.hosts[0], known_hosts=empty)


@pytest.mark.sshd
async def test_a_host_lets_only_its_own_user_in(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(2)
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(fleet, fleet.host("h01"), user=fleet.host("h02").user)


@pytest.mark.sshd
async def test_env_file_loads_and_takes_overrides(sshd_fleet: FleetFactory, tmp_path: Path) -> None:
    fleet = sshd_fleet(3)
    env = load_env(fleet.write_env(tmp_path / "env.yaml"))
    assert env.name == "sshd-test" and env.app == "shop"
    assert [(h.name, h.address, h.user, h.port) for h in env.hosts] == [
        (h.name, h.address, h.user, fleet.port) for h in fleet.hosts
    ]
    assert env.resolve_path(env.ssh.known_hosts) == fleet.known_hosts
    assert env.ssh.identity_files == (str(fleet.client_key),)
    assert [s.name for s in env.deploy.steps] == ["install", "switch", "restart"]
    assert env.health.interval == pytest.approx(0.2)
    assert env.default_canaries() == ["h01"]
    assert env.canary.analysis.rules[0].max == 0.05
    assert env.promote.pause is None and len(env.promote.waves) == 2

    edited = load_env(
        fleet.write_env(
            tmp_path / "edited.yaml",
            edit=lambda d: d["canary"].update(hosts=["h02"]),
            promote={"waves": ["100%"], "pause": "1s"},
            logs=None,
        )
    )
    assert edited.default_canaries() == ["h02"]
    assert edited.promote.pause == 1.0 and edited.logs is None
    assert load_env(fleet.write_env()).path == (fleet.run_dir / "env.yaml").resolve()


@pytest.mark.sshd
async def test_stop_host_refuses_connections_until_started(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(2)
    h01, h02 = fleet.hosts
    async with await connect(fleet, h02) as kept:
        fleet.stop_host("h01")
        with pytest.raises(OSError):
            await connect(fleet, h01)
        assert (await run(kept, "cat current/VERSION")).stdout == "1.0.0\n"  # not dropped
        async with await connect(fleet, h02) as conn:  # the other address still serves
            assert (await run(conn, "true")).exit_status == 0
    fleet.start_host("h01")
    async with await connect(fleet, h01) as conn:  # same host key as before
        assert (await run(conn, "id -un")).stdout == f"{h01.user}\n"


@pytest.mark.sshd
async def test_close_kills_sessions_and_removes_the_folder(sshd_fleet: FleetFactory) -> None:
    fleet = sshd_fleet(2)
    conn = await connect(fleet, fleet.hosts[0])
    process = await conn.create_process("echo $$; exec sleep 60")
    remote_pid = int(await asyncio.wait_for(process.stdout.readline(), TIMEOUT))
    listeners = fleet.pids()
    assert listeners and not _gone(remote_pid)

    fleet.close()
    for pid in [remote_pid, *listeners]:
        assert _gone(pid), pid
    assert not _exists(fleet.run_dir)
    conn.abort()
    fleet.close()  # idempotent


@pytest.mark.sshd
async def test_two_fleets_at_once_do_not_share_anything(sshd_fleet: FleetFactory) -> None:
    first, second = sshd_fleet(1), sshd_fleet(1)
    assert first.slot != second.slot
    assert first.hosts[0].address != second.hosts[0].address
    assert first.hosts[0].user != second.hosts[0].user
    for fleet in (first, second):
        async with await connect(fleet, fleet.hosts[0]) as conn:
            assert (await run(conn, "pwd")).stdout == f"{fleet.hosts[0].home}\n"


def test_missing_sshd_skips_but_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-sshd"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="openssh-server"):
        require_fleet(sshd=missing)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_fleet(sshd=missing)
    if os.geteuid() == 0 and Path("/usr/sbin/sshd").exists():
        with pytest.raises(pytest.fail.Exception, match="needs root"):
            require_fleet(euid=1000)


def _gone(pid: int) -> bool:
    """Has the process ended (no longer in /proc, or a zombie waiting to be reaped)?"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def _exists(path: Path) -> bool:
    return path.exists()
