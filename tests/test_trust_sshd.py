"""Trust on a real fleet (real OpenSSH): banners and junk from hosts change nothing, replies
are validated before they are trusted, timed-out commands are stopped on the host, and a
flood of output leaves the controller's memory flat."""

from __future__ import annotations

import asyncio
import os
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_for
from sshd_fleet import SHELL, FleetFactory, SshdFleet

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.engine import ActionRefused
from canarytui.engine.locks import LockHeld
from canarytui.ssh import CommandTimeout, Fleet, ShellRefused

pytestmark = pytest.mark.sshd

# What a real fleet's shells print before a command: a banner with colours, a window
# title, a bell, markup, and lines that look like canarytui's own replies.
BANNER = (
    b"\x1b[1;31m*** AUTHORIZED USE ONLY ***\x1b[0m\n"
    b"\x1b]0;pwned title\x07\x07[/] [@click=app.quit]x[/]\n"
    b'CANARYTUI-LOCKED\nCANARYTUI-HELD\n{"token": "nope"}\n9.9.9\n'
)
LOCK = Path(".canarytui") / "lock.sshd-test.shop"


def versions(fleet: SshdFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def locked(fleet: SshdFleet) -> list[str]:
    return [h.name for h in fleet.hosts if (h.home / LOCK / "owner").exists()]


async def run_deploy(env: Path, state_dir: Path, version: str, **kwargs: Any) -> Any:
    engine = engine_for(env, state_dir)
    try:
        outcome = await asyncio.wait_for(engine.deploy(version, **kwargs), 60)
    finally:
        await engine.fleet.close()
    return outcome, engine


async def test_banners_change_nothing(sshd_fleet: FleetFactory, state_dir: Path) -> None:
    fleet = sshd_fleet(3)
    for name in fleet.host_names:
        fleet.set_banner(name, BANNER)
    env = fleet.write_env()
    outcome, engine = await run_deploy(env, state_dir, "2.0.0", auto_promote=True)
    assert outcome is ev.Outcome.COMPLETE
    assert set(versions(fleet).values()) == {"2.0.0"}
    assert locked(fleet) == []
    record = engine.journal.last_deployment("sshd-test", "shop")
    hosts = engine.journal.hosts(record.id)
    assert {h.previous for h in hosts.values()} == {"1.0.0"}
    assert {h.current for h in hosts.values()} == {"2.0.0"}
    # The bad story too: caught on the canary, rolled back, nothing left behind.
    outcome, _ = await run_deploy(env, state_dir, "2.1.0-bad", auto_promote=True)
    assert outcome is ev.Outcome.CANARY_FAILED
    assert set(versions(fleet).values()) == {"2.0.0"}
    assert locked(fleet) == []


@pytest.mark.parametrize("shell", ["fish", "tcsh"])
async def test_a_login_shell_that_is_not_posix_is_a_clear_refusal(
    sshd_fleet: FleetFactory, state_dir: Path, shell: str
) -> None:
    """The canary's SSH user logs in to fish or tcsh, which run none of canarytui's POSIX
    commands as sh would: a command and a deployment are refused, saying so and what it
    printed, not "unreadable reply" or "unhealthy"; nothing changed, no lock left."""
    path = shutil.which(shell)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {shell} is not installed (.ci/run installs it)")
        pytest.skip(f"{shell} is not installed on this machine (.ci/run installs it)")
    fleet = sshd_fleet(2)
    user = fleet.hosts[0].user
    await usermod_shell(user, path)
    try:
        env = fleet.write_env()
        ssh = Fleet(load_env(env))
        try:
            with pytest.raises(ShellRefused) as refused:
                await asyncio.wait_for(ssh.run("h01", "true"), 30)
            said = str(refused.value)
            assert said.startswith("h01 (") and "login shell did not run canarytui's" in said
            assert "must be sh, bash, dash, ksh or zsh (not fish or csh)" in said
            if shell == "fish":  # its own complaint (tcsh sent the stderr mark to a file "2")
                assert "it printed: " in said and "$fish_pid" in said, said
            assert (await asyncio.wait_for(ssh.run("h02", "echo fine"), 30)).stdout == "fine\n"
        finally:
            await ssh.close()
        with pytest.raises(ActionRefused, match="login shell did not run canarytui's command"):
            await run_deploy(env, state_dir, "2.0.0", auto_promote=True)
        assert set(versions(fleet).values()) == {"1.0.0"}
        assert locked(fleet) == []
    finally:
        await usermod_shell(user, SHELL)


# The POSIX login shells a fleet may have besides dash and bash: busybox's ash (Alpine,
# containers: /bin/sh there is a link to busybox), the Korn shells (mksh, AT&T's ksh93).
OTHER_SHELLS = {"ash": "busybox", "mksh": "mksh", "ksh93": "ksh93"}


@pytest.mark.parametrize("shell", sorted(OTHER_SHELLS))
async def test_a_release_on_hosts_whose_login_shell_is_ash_or_a_korn_shell(
    sshd_fleet: FleetFactory, state_dir: Path, shell: str
) -> None:
    """Every host logs in to busybox's ash, mksh or ksh93: the release runs as under dash
    (locks, version discovery, steps, health, the unlock down one kept shell), and a bad
    release is caught on the canary and rolled back; no lock is left."""
    found = shutil.which(OTHER_SHELLS[shell])
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                f"CI is set and {OTHER_SHELLS[shell]} is not installed (.ci/run installs it)"
            )
        pytest.skip(f"{OTHER_SHELLS[shell]} is not installed on this machine (.ci/run installs it)")
    fleet = sshd_fleet(3)
    path = found
    if shell == "ash":  # busybox runs the applet its name says, as Alpine's /bin/ash does
        link = fleet.run_dir / "ash"
        link.unlink(missing_ok=True)
        link.symlink_to(found)
        path = str(link)
    users = [h.user for h in fleet.hosts]
    for user in users:
        await usermod_shell(user, path)
    try:
        env = fleet.write_env()
        ssh = Fleet(load_env(env))
        try:  # the shell the commands run in is that one
            said = await asyncio.wait_for(ssh.run("h01", 'echo "$0"'), 30)
            assert said.stdout.strip().rsplit("/", 1)[-1] == shell, said
        finally:
            await ssh.close()
        outcome, engine = await run_deploy(env, state_dir, "2.0.0", auto_promote=True)
        assert outcome is ev.Outcome.COMPLETE, engine.details
        assert set(versions(fleet).values()) == {"2.0.0"} and locked(fleet) == []
        record = engine.journal.last_deployment("sshd-test", "shop")
        assert record is not None
        assert {h.previous for h in engine.journal.hosts(record.id).values()} == {"1.0.0"}
        outcome, engine = await run_deploy(env, state_dir, "2.1.0-bad", auto_promote=True)
        assert outcome is ev.Outcome.CANARY_FAILED, engine.details
        assert set(versions(fleet).values()) == {"2.0.0"} and locked(fleet) == []
    finally:
        for user in users:
            await usermod_shell(user, SHELL)


async def usermod_shell(user: str, shell: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "usermod", "--shell", shell, user, stdout=asyncio.subprocess.DEVNULL
    )
    assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_a_version_that_is_not_one_is_not_trusted(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(3)
    h02 = fleet.host("h02")
    (h02.home / "current" / "VERSION").write_bytes(b"\x1b]0;pwned\x07 not a version!\n")
    env = fleet.write_env()
    engine = engine_for(env, state_dir)
    try:
        shown = await engine.discover(["h02"])
        assert shown == {"h02": None}
        assert "reports no valid version" in engine.details["h02"]
        with pytest.raises(ActionRefused, match=r"h02 report\(s\) no valid version.*--previous"):
            await asyncio.wait_for(engine.deploy("2.0.0"), 60)
    finally:
        await engine.fleet.close()
    assert versions(fleet)["h01"] == "1.0.0"
    assert locked(fleet) == []
    # Told which version to roll such a host back to, the deployment goes ahead.
    outcome, engine = await run_deploy(env, state_dir, "2.0.0", assume_previous="1.0.0")
    assert outcome is ev.Outcome.CANARY_PASSED
    assert engine.previous["h02"] == "1.0.0"
    decisions = engine.journal.decisions(engine.deployment.id)
    assert any(d["action"] == "assume previous" and "h02" in d["detail"] for d in decisions)


async def test_an_unreadable_owner_file_is_a_clear_refusal(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(3)
    h02 = fleet.host("h02")
    (h02.home / LOCK).mkdir(parents=True)
    (h02.home / LOCK / "owner").write_text("null\n")
    env = fleet.write_env()
    engine = engine_for(env, state_dir)
    try:
        with pytest.raises(LockHeld, match="unreadable owner file"):
            await asyncio.wait_for(engine.deploy("2.0.0"), 60)
    finally:
        await engine.fleet.close()
    # Our own locks on the other hosts were given back.
    assert locked(fleet) == ["h02"]
    assert set(versions(fleet).values()) == {"1.0.0"}


async def test_a_timed_out_step_is_stopped_on_the_host(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(2)

    def slow_switch(doc: dict[str, Any]) -> None:
        doc["ssh"]["command_timeout"] = "2s"
        doc["deploy"]["rollback"] = [
            {
                "name": "switch",
                "run": "ln -sfn releases/{previous} current.new && mv -Tf current.new current",
            }
        ]
        doc["deploy"]["steps"][1]["run"] = (
            "sleep 7; ln -sfn releases/{version} current.new && mv -Tf current.new current"
        )

    env = fleet.write_env(edit=slow_switch)
    outcome, engine = await run_deploy(env, state_dir, "2.0.0")
    assert outcome is ev.Outcome.CANARY_FAILED
    # The step's whole process group is gone: it can never switch the host later.
    assert not [c for c in fleet.commands_running("h01") if "sleep 7" in c]
    assert versions(fleet)["h01"] == "1.0.0"
    timed_out = [
        e
        for e in engine.journal.events(engine.deployment.id)
        if e["event"] == "step" and e["step"] == "switch" and e["action"] == "deploy"
    ]
    assert timed_out[0]["exit_status"] is None
    assert "stopped on the host (process group" in timed_out[0]["output"]


async def test_timed_out_and_abandoned_commands_leave_nothing(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    try:
        with pytest.raises(CommandTimeout, match="process group"):
            await ssh.run("h01", "sleep 31 & sleep 32; echo never", timeout=1)
        assert not [c for c in fleet.commands_running("h01") if "sleep 3" in c]
        # A caller that gives up (cancelled, as a rollback or a quit does): stopped too.
        task = asyncio.ensure_future(ssh.run("h01", "sleep 33"))
        await fleet.until_running("h01", "sleep 33")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The next command on that host waits for the stop to be done.
        assert (await ssh.run("h01", "echo ok")).stdout == "ok\n"
        assert not [c for c in fleet.commands_running("h01") if "sleep 33" in c]
    finally:
        await ssh.close()


async def test_a_flood_of_output_leaves_memory_flat(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    try:
        await ssh.run("h01", "true")
        tracemalloc.start()
        try:
            flood = await ssh.run(
                "h01", "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo tail-end", timeout=60
            )
            one_line = await ssh.run("h01", "head -c 10000000 /dev/zero | tr '\\0' y", timeout=60)
            lines = []
            async for line in ssh.stream("h01", "head -c 10000000 /dev/zero | tr '\\0' z; echo"):
                lines.append(line)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        await ssh.close()
    print(f"peak Python memory while reading 70 MB of output: {peak / 1e6:.1f} MB")
    assert flood.ok and flood.stdout.endswith("tail-end\n")
    assert flood.cut >= 49_000_000 and "bytes of earlier output not kept" in flood.output
    assert len(one_line.stdout) <= 64 * 1024
    assert len(lines) == 1 and lines[0].endswith("(line cut)") and len(lines[0]) < 9 * 1024
    assert peak < 16_000_000
