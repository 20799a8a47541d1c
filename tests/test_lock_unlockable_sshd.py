"""A host on which the lock cannot be made though nobody holds it (real OpenSSH).

The SSH user's home is read-only (a hardened host, a service account), the lock's folder
is not writable, or the file system is full or read-only: a deployment is refused before
anything changes, naming the host and why, never as "locked by ?@?" (which would send the
operator to `canarytui unlock`, with nothing to unlock); a maintenance hold takes the other
hosts and names that one.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import engine_for, run_cli
from sshd_fleet import FleetFactory, SshdFleet
from test_trust_sshd import LOCK, locked, versions

from canarytui import events as ev
from canarytui.engine import ActionRefused

pytestmark = pytest.mark.sshd


@pytest.fixture
def fleet(sshd_fleet: FleetFactory) -> Iterator[SshdFleet]:
    fleet = sshd_fleet(3)
    yield fleet
    for h in fleet.hosts:  # writable again, for the fleet's own teardown
        h.home.chmod(0o755)
        if (h.home / LOCK).is_dir():
            (h.home / LOCK).chmod(0o755)


def read_only_home(fleet: SshdFleet, name: str) -> Path:
    """``name``'s home made read-only for its SSH user, with no ~/.canarytui in it yet."""
    home = fleet.host(name).home
    shutil.rmtree(home / ".canarytui", ignore_errors=True)
    home.chmod(0o555)
    return home


async def test_a_host_whose_lock_cannot_be_made_refuses_the_deployment(
    fleet: SshdFleet, state_dir: Path
) -> None:
    home = read_only_home(fleet, "h02")
    env = fleet.write_env()
    engine = engine_for(env, state_dir)
    try:
        with pytest.raises(ActionRefused) as refused:
            await engine.deploy("2.0.0", auto_promote=True)
    finally:
        await engine.fleet.close()
    said = str(refused.value)
    assert said.startswith("h02 (") and "locked by" not in said, said
    assert (
        f": cannot take its lock: cannot create the folder {home}/.canarytui/"
        "lock.sshd-test.shop; nothing was changed: let the SSH user write its ~/.canarytui "
        "there, or take the host out of the file"
    ) in said
    assert set(versions(fleet).values()) == {"1.0.0"} and locked(fleet) == []
    assert engine.journal.last_deployment("sshd-test", "shop") is None  # none was started

    # The folder there but not writable: said so. The command line: a refusal, no
    # "canarytui unlock" hint, no traceback, exit 1.
    home.chmod(0o755)
    folder = home / LOCK
    folder.mkdir(parents=True)
    os.chown(folder.parent, fleet.host("h02").uid, fleet.host("h02").gid)
    folder.chmod(0o555)
    result = await run_cli("deploy", str(env), "2.0.0", state_dir=state_dir)
    assert result.code == 1, result.out + result.err
    assert f"cannot take its lock: the folder {folder} is not writable;" in result.err
    assert "unlock" not in result.err and "Traceback" not in result.err
    assert set(versions(fleet).values()) == {"1.0.0"} and locked(fleet) == []


async def test_a_maintenance_hold_names_the_host_it_cannot_lock(
    fleet: SshdFleet, state_dir: Path
) -> None:
    home = read_only_home(fleet, "h03")
    env = str(fleet.write_env())
    held = await run_cli("lock", env, "-m", "disk swap", state_dir=state_dir)
    assert held.code == 1, held.out + held.err  # as with a host that cannot be reached
    assert sorted(locked(fleet)) == ["h01", "h02"]
    said = held.out + held.err
    assert "held for maintenance on 2 of 3 hosts" in said
    assert f"h03: NOT held: cannot take its lock: cannot create the folder {home}/" in said
    assert "locked by" not in said
    freed = await run_cli("unlock", env, state_dir=state_dir)
    assert freed.code == 0, freed.out + freed.err
    assert locked(fleet) == []


async def test_check_says_where_a_deployment_s_lock_cannot_be_made(
    fleet: SshdFleet, state_dir: Path
) -> None:
    """The pre-flight says it before a deployment is refused for it (changing nothing)."""
    env = str(fleet.write_env())
    ok = await run_cli("check", env, state_dir=state_dir)
    assert ok.code == 0 and "CANNOT LOCK" not in ok.out, ok.out + ok.err
    home = read_only_home(fleet, "h02")
    result = await run_cli("check", env, state_dir=state_dir)
    assert result.code == 1, result.out + result.err
    line = next(x for x in result.out.splitlines() if x.startswith("h02"))
    assert line.startswith("h02  1.0.0          healthy  CANNOT LOCK: cannot create the folder ")
    assert line.endswith(f"/.canarytui/lock.sshd-test.shop: {home} is not writable"), line
    assert (
        "== a deployment would be refused: its lock cannot be made on h02 (let the SSH user "
        "write its ~/.canarytui there, or take the host out of the file)"
    ) in result.out
    as_json = await run_cli("check", env, "--json", state_dir=state_dir)
    found = {h["host"]: h for h in json.loads(as_json.out)["hosts"]}
    assert found["h01"]["lock_problem"] is None
    assert found["h02"]["lock_problem"].endswith(f"{home} is not writable")
    assert not (home / ".canarytui").exists()  # nothing made
    # The lock's folder there, but not its user's: that folder named.
    home.chmod(0o755)
    folder = home / LOCK
    folder.mkdir(parents=True)
    result = await run_cli("check", env, state_dir=state_dir)
    assert f"CANNOT LOCK: the folder {folder} is not writable" in result.out, result.out


async def test_a_host_locked_late_that_cannot_be_locked_fails_saying_why(
    fleet: SshdFleet, state_dir: Path
) -> None:
    """A host unreachable when the deployment started is locked when its wave comes: back,
    but with its lock impossible to make, it is failed (not unreachable: it answered), with
    why, and left as it was."""
    fleet.stop_host("h03")
    env = fleet.write_env(edit=lambda d: d["promote"].update({"max_failures": 1}))
    engine = engine_for(env, state_dir)
    try:
        assert await engine.deploy("2.0.0") is ev.Outcome.CANARY_PASSED
        assert engine.host_states["h03"] is ev.HostState.UNREACHABLE
        fleet.start_host("h03")
        home = read_only_home(fleet, "h03")
        assert await asyncio.wait_for(engine.promote(all_waves=True), 60) is ev.Outcome.COMPLETE
    finally:
        await engine.fleet.close()
    assert engine.host_states["h03"] is ev.HostState.FAILED
    assert (
        f"cannot take its lock: cannot create the folder {home}/.canarytui/"
        in engine.details["h03"]
    )
    assert versions(fleet) == {"h01": "2.0.0", "h02": "2.0.0", "h03": "1.0.0"}
    assert locked(fleet) == []


async def test_a_held_host_whose_lock_vanished_and_cannot_be_made_again_fails_saying_why(
    fleet: SshdFleet, state_dir: Path
) -> None:
    """The deployment waits for the operator with every host locked; meanwhile a host's
    lock folder is removed and its home made read-only. The host's next script checks
    its lock first: it cannot be made again, so nothing of the release runs there, and the
    host is failed saying why (not "its reply could not be read")."""
    env = fleet.write_env(edit=lambda d: d["promote"].update({"max_failures": 1}))
    engine = engine_for(env, state_dir)
    try:
        assert await engine.deploy("2.0.0") is ev.Outcome.CANARY_PASSED
        home = read_only_home(fleet, "h03")
        assert await asyncio.wait_for(engine.promote(all_waves=True), 60) is ev.Outcome.COMPLETE
    finally:
        await engine.fleet.close()
    assert engine.host_states["h03"] is ev.HostState.FAILED
    said = engine.details["h03"]
    assert f"not changed: cannot take its lock: cannot create the folder {home}/" in said, said
    assert versions(fleet) == {"h01": "2.0.0", "h02": "2.0.0", "h03": "1.0.0"}
    assert locked(fleet) == []
