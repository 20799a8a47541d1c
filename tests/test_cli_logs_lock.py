"""`logs` and `lock` as separate processes on the demo fleet: merged host-prefixed logs with
hostile bytes made visible, and a maintenance lock that refuses deployments from this
machine, from another machine's engine and from the UI's engine, until `unlock`."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
from conftest import edit_env, engine_for, run_cli, wait_for

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine.locks import LockHeld
from canarytui.journal import Journal

HOSTILE = b"evil \x1b]52;c;aGVsbG8=\x07 \x1b[31mred\x1b[0m \x1b]0;title\x07 bell\x07 nul\x00 end\n"


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def lock_owners(fleet: DemoFleet) -> dict[str, dict[str, object]]:
    owners = {}
    for h in fleet.host_names:
        path = fleet.sandbox_of(h) / ".canarytui" / "lock.demo.shop" / "owner"
        if path.exists():
            owners[h] = json.loads(path.read_text())
    return owners


# ---------------------------------------------------------------------------- logs


async def test_logs_merged_with_host_prefixes(demo: DemoFleet, state_dir: Path) -> None:
    result = await run_cli("logs", str(demo.env_path), "--for", "2s")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines
    prefixes = {line.split(" | ", 1)[0] for line in lines}
    assert prefixes == set(demo.host_names)  # no HOST: every host
    for line in lines:
        host, text = line.split(" | ", 1)
        assert f"shop[{host}]" in text
    # Two hosts named, one of a longer name padded to align: only those, each prefixed.
    some = await run_cli("logs", str(demo.env_path), "web-05", "web-02", "--for", "1s")
    assert some.code == 0, some.err
    assert {line[:9] for line in some.out.splitlines()} == {"web-05 | ", "web-02 | "}


async def test_logs_show_hostile_bytes_as_placeholders(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = edit_env(
        demo.env_path,
        tmp_path / "logs.yaml",
        lambda d: d.update(logs="tail -n 500 -F log/app.log"),
    )
    with (demo.sandbox_of("web-03") / "log" / "app.log").open("ab") as log:
        log.write(HOSTILE)
        log.write(b"long " + b"x" * 5000 + b"\n")
    result = await run_cli("logs", str(env), "web-03", "web-01", "--for", "1s")
    assert result.code == 0, result.err
    evil = [line for line in result.out.splitlines() if "evil" in line]
    assert evil == ["web-03 | evil ␛ ␛red␛ ␛ bell␇ nul␀ end"]
    assert "\x1b" not in result.out and "\x07" not in result.out and "\x00" not in result.out
    long = next(line for line in result.out.splitlines() if "long xxx" in line)
    assert len(long) < 1100 and long.endswith("chars)")  # bounded, and says so


async def test_logs_bad_input(demo: DemoFleet, state_dir: Path, tmp_path: Path) -> None:
    env = str(demo.env_path)
    unknown = await run_cli("logs", env, "web-01", "web-77", "db-1")
    assert unknown.code == 2 and unknown.out == ""
    assert f"host(s) not in {env}: web-77, db-1" in unknown.err
    bare = edit_env(demo.env_path, tmp_path / "bare.yaml", lambda d: d.pop("logs"))
    no_logs = await run_cli("logs", str(bare))
    assert no_logs.code == 2
    assert "bare.yaml has no `logs` command" in no_logs.err
    bad_for = await run_cli("logs", env, "--for", "soon")
    assert bad_for.code == 2 and "--for: bad duration 'soon'" in bad_for.err
    # No time to read in: bad input, not every host failing to give its logs (exit 1).
    no_time = await run_cli("logs", env, "--for", "0s")
    assert (no_time.code, no_time.out) == (2, ""), no_time.out + no_time.err
    assert "--for: the logs must be read for some time (2s, 1m)" in no_time.err


async def test_logs_unreachable_host_named_others_go_on(demo: DemoFleet, state_dir: Path) -> None:
    await demo.set_fault("web-02", "down")
    result = await run_cli("logs", str(demo.env_path), "--for", "2s")
    assert result.code == 1
    assert result.err.count("\n") == 1, result.err
    # Its name and address said once, not again in the reason.
    assert (
        result.err
        == "canarytui: web-02: could not read its logs: unreachable: connection refused\n"
    )
    prefixes = {line.split(" | ", 1)[0] for line in result.out.splitlines()}
    assert prefixes == set(demo.host_names) - {"web-02"}


async def test_logs_names_a_host_that_did_not_let_us_in_in_time(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A hung host is still connecting when the time is up: said, exit 1 (it printed
    nothing and exited 0, as a host whose log was quiet)."""
    await demo.set_fault("web-03", "hang")
    result = await run_cli("logs", str(demo.env_path), "--for", "3s", "web-01", "web-03")
    assert result.code == 1, result.err
    assert result.err.splitlines() == [
        "canarytui: web-03: no answer within 3s (still connecting; ssh.connect_timeout is 5s)"
    ]
    prefixes = {line.split(" | ", 1)[0].strip() for line in result.out.splitlines()}
    assert prefixes == {"web-01"}


async def test_logs_follow_until_ctrl_c(demo: DemoFleet, state_dir: Path) -> None:
    seen: list[bytes] = []

    async def interrupt_after_lines(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        # The arguments in any order: options after the hosts too.
        while len(seen) < 3:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "the logs ended while following"
            seen.append(line)
        proc.send_signal(signal.SIGINT)

    result = await run_cli(
        "logs", str(demo.env_path), "web-04", "-f", started=interrupt_after_lines
    )
    assert result.code == 130
    assert "Traceback" not in result.err and "stopped following the logs" in result.err
    assert all(line.startswith(b"web-04 | ") for line in seen)
    # The tails were stopped on the host too, not only abandoned.
    await wait_for(lambda: demo.live_processes == 0, 20)


async def test_logs_follow_for_a_while_ends_by_itself(demo: DemoFleet, state_dir: Path) -> None:
    """-f with --for: followed for that long, then it ends (exit 0); --for was ignored and
    it followed until Ctrl-C."""
    result = await run_cli("logs", str(demo.env_path), "-f", "--for", "1s", "web-03", timeout=20)
    assert result.code == 0, result.err
    assert result.out and all(x.startswith("web-03 | ") for x in result.out.splitlines())
    await wait_for(lambda: demo.live_processes == 0, 20)


async def test_logs_follow_a_host_again_once_it_is_back(demo: DemoFleet, state_dir: Path) -> None:
    """-f: a host that goes down is said once on stderr (not at every try while it is
    down), followed again once it is back, and said so; the other host goes on meanwhile."""
    said: list[str] = []
    lines: list[tuple[bool, bytes]] = []  # (read once web-02 was back, the line)
    back = False

    async def drain(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append((back, line))

    async def said_line(proc: asyncio.subprocess.Process, part: str) -> str:
        assert proc.stderr is not None
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, f"stderr ended before {part!r}: {said}"
            said.append(line)
            if part in line:
                return line

    def new_lines_of(host: str) -> int:
        return sum(1 for after, line in lines if after and line.startswith(f"{host} | ".encode()))

    async def down_and_back(proc: asyncio.subprocess.Process) -> None:
        nonlocal back
        reading = asyncio.ensure_future(drain(proc))
        try:
            await wait_for(lambda: any(b"web-02 | " in line for _, line in lines), 30)
            await demo.set_fault("web-02", "down")
            lost = await said_line(proc, "trying again")
            assert lost.startswith("canarytui: web-02: could not read its logs: "), lost
            # Said once: "web-02 (127.0.0.1:PORT): log stream lost: Connection lost".
            assert lost.rstrip().endswith(" its logs: log stream lost; trying again"), lost
            await asyncio.sleep(3)  # down over several tries (1 s, then 2 s)
            await demo.set_fault("web-02", "up")
            back = True  # what web-02 printed before is read by now: it was down 3 s
            await said_line(proc, "web-02: following its logs again")
            await wait_for(lambda: new_lines_of("web-02") > 0 and new_lines_of("web-01") > 0, 30)
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(reading, 30)

    result = await run_cli(
        "logs", str(demo.env_path), "web-01", "web-02", "-f", started=down_and_back
    )
    assert result.code == 130, result.err
    told = [line for line in said if "web-02" in line]
    # Lost, then refused while down (another reason): each said once, however many tries.
    assert len(told) <= 3 and len(set(told)) == len(told), said
    assert told[-1].strip() == "canarytui: web-02: following its logs again", said
    assert "Traceback" not in result.err
    await wait_for(lambda: demo.live_processes == 0, 20)


async def test_logs_follow_does_not_run_a_command_that_ended_again(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """-f with a logs command that ends by itself (no -F): its lines once, said to have
    ended, not run again and again; the command then ends with the last host's stream."""
    env = edit_env(demo.env_path, tmp_path / "once.yaml", lambda d: d.update(logs="echo once"))
    result = await run_cli("logs", str(env), "web-01", "web-02", "-f", timeout=30)
    assert result.code == 0, result.err
    assert sorted(result.out.splitlines()) == ["web-01 | once", "web-02 | once"]
    assert result.err.count("its logs command ended") == 2, result.err
    assert "trying again" not in result.err


# ---------------------------------------------------------------------------- lock


async def test_lock_refuses_deploys_until_unlock(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(demo.env_path)
    held = await run_cli("lock", env, "-m", "db migration, back at 14:00")
    assert held.code == 0, held.err
    assert "held for maintenance on 6 of 6 hosts" in held.out
    assert "(maintenance: db migration, back at 14:00) since " in held.out
    owners = lock_owners(demo)
    assert set(owners) == set(demo.host_names)
    assert {o["maintenance"] for o in owners.values()} == {"db migration, back at 14:00"}
    assert all("token" not in o for o in owners.values())  # nothing to take over

    # This machine's CLI: refused, naming the reason, who and since when.
    refused = await run_cli("deploy", env, "1.1.0")
    assert refused.code == 1
    assert "refused: " in refused.err and "db migration, back at 14:00" in refused.err
    assert "since 20" in refused.err and "@" in refused.err
    assert "held for maintenance" in refused.err and "Traceback" not in refused.err
    assert "its holder ends it (canarytui unlock " in refused.err
    # Another machine's: the whole environment is held, not "host web-01" alone.
    other = await run_cli("deploy", env, "1.1.0", state_dir=tmp_path / "other-machine")
    assert other.code == 1, other.out + other.err
    assert "refused: 6 of 6 hosts (web-01, web-02, web-03 and 3 more): locked by " in other.err
    taken = await run_cli("rollback", env, "--take-over")
    assert taken.code == 1 and "held for maintenance by" in taken.err
    assert "db migration, back at 14:00" in taken.err

    # Another machine (its own journal), through the engine the UI drives too.
    other = engine_for(demo.env_path, tmp_path / "bob", user="bob")
    try:
        with pytest.raises(LockHeld) as blocked:
            await other.deploy("1.2.0")
    finally:
        await other.fleet.close()
    assert "maintenance: db migration, back at 14:00" in str(blocked.value)
    assert set(versions(demo).values()) == {"1.0.0"}
    assert {o["maintenance"] for o in lock_owners(demo).values()} == {"db migration, back at 14:00"}

    # Locked already: a second lock is refused, naming the holder.
    again = await run_cli("lock", env, "-m", "me too", state_dir=tmp_path / "carol")
    assert again.code == 1
    assert "locked by " in again.err and "maintenance: db migration" in again.err
    assert {o["maintenance"] for o in lock_owners(demo).values()} == {"db migration, back at 14:00"}
    assert not (tmp_path / "carol" / "locks" / "demo.shop.lock").exists()

    status = await run_cli("status", env)
    assert status.code == 0
    assert "HELD FOR MAINTENANCE by " in status.out and "on 6 host(s)" in status.out
    assert "db migration, back at 14:00" in status.out
    row = next(line for line in status.out.splitlines() if line.startswith("web-03"))
    assert row.split()[:4] == ["web-03", "1.0.0", "-", "maintenance"]

    # unlock without --force: a maintenance lock is not a deployment.
    unlock = await run_cli("unlock", env)
    assert unlock.code == 0, unlock.out + unlock.err
    (line,) = [x for x in unlock.out.splitlines() if x.startswith("broke the lock on ")]
    assert line.startswith("broke the lock on web-01, web-02, web-03, web-04, web-05, web-06: ")
    assert "maintenance: db" in line
    assert lock_owners(demo) == {}
    assert not (state_dir / "locks" / "demo.shop.lock").exists()
    deployed = await run_cli("deploy", env, "1.1.0")
    assert deployed.code == 0, deployed.err
    assert versions(demo)["web-01"] == "1.1.0"


async def test_a_colleagues_maintenance_lock_needs_force_to_break(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Another journal's plain `unlock` broke a maintenance lock held on purpose ("DB
    failover, ask Ana"), without a word; its holder's status then said "on 0 host(s):
    deployments are refused". It needs --force, and the holder's status says what is left."""
    env = str(demo.env_path)
    assert (await run_cli("lock", env, "-m", "db failover, ask Ana")).code == 0
    colleague = tmp_path / "colleague"
    # The colleague's status says whose it is and how it ends: not the plain `unlock` it
    # said before, which then refused without --force.
    theirs = await run_cli("status", env, state_dir=colleague)
    assert f"   to release it: canarytui unlock {env}" not in theirs.out.splitlines()
    assert f"ends it (canarytui unlock {env}), or, asked first, canarytui unlock {env} --force" in (
        theirs.out
    ), theirs.out
    own = await run_cli("status", env)  # its holder's: the plain unlock
    assert f"   to release it: canarytui unlock {env}" in own.out.splitlines(), own.out
    refused = await run_cli("unlock", env, state_dir=colleague)
    assert refused.code == 1, refused.out + refused.err
    said = [line for line in refused.out.splitlines() if "NOT broken" in line]
    assert len(said) == 1 and "held for maintenance by " in said[0], refused.out
    assert "db failover, ask Ana" in said[0] and "ask them" in said[0]
    assert "--force" in said[0] and "== 0 host lock(s) broken" in refused.out
    assert {o["maintenance"] for o in lock_owners(demo).values()} == {"db failover, ask Ana"}
    assert len(lock_owners(demo)) == len(demo.host_names)

    forced = await run_cli("unlock", env, "--force", state_dir=colleague)
    assert forced.code == 0, forced.out + forced.err
    assert lock_owners(demo) == {}
    status = await run_cli("status", env)
    assert "in this journal only: no host holds its lock now" in status.out, status.out
    assert (await run_cli("unlock", env)).code == 0  # its holder ends it here
    assert "MAINTENANCE" not in (await run_cli("status", env)).out


async def test_unlock_with_a_host_down_breaks_the_others_and_says_which(
    demo: DemoFleet, state_dir: Path
) -> None:
    env = str(demo.env_path)
    assert (await run_cli("lock", env, "-m", "db migration")).code == 0
    await demo.set_fault("web-03", "down")
    unlock = await run_cli("unlock", env)
    assert unlock.code == 1, unlock.out
    lines = unlock.out.splitlines()
    assert "web-03: could not check its lock: unreachable: connection refused" in lines, lines
    (line,) = [x for x in lines if x.startswith("broke the lock on ")]
    assert line.startswith("broke the lock on web-01, web-02, web-04, web-05, web-06: held by ")
    assert "== 5 host lock(s) broken, 1 host(s) could not be checked or unlocked" in lines
    assert set(lock_owners(demo)) == {"web-03"}


async def test_lock_needs_a_reason(demo: DemoFleet, state_dir: Path) -> None:
    missing = await run_cli("lock", str(demo.env_path))
    assert missing.code == 2 and "-m/--message" in missing.err
    empty = await run_cli("lock", str(demo.env_path), "-m", "  ")
    assert empty.code == 2 and "-m REASON must say why" in empty.err
    assert lock_owners(demo) == {}


async def test_lock_refused_while_a_deployment_holds_the_environment(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(demo.env_path)
    elsewhere = tmp_path / "elsewhere"
    assert (await run_cli("deploy", env, "1.1.0", state_dir=elsewhere)).code == 0
    refused = await run_cli("lock", env, "-m", "patching")
    assert refused.code == 1
    assert "locked by " in refused.err and "(deployment #1 of 1.1.0" in refused.err
    # Nothing of the refused lock is left: the hosts are the deployment's, no local file.
    assert all("maintenance" not in o for o in lock_owners(demo).values())
    assert len(lock_owners(demo)) == 6
    assert not (state_dir / "locks" / "demo.shop.lock").exists()
    # In the journal of the open deployment: refused before touching anything.
    same = await run_cli("lock", env, "-m", "patching", state_dir=elsewhere)
    assert same.code == 1 and "deployment #1 of 1.1.0 is open" in same.err


async def test_lock_with_an_unreachable_host(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(demo.env_path)
    await demo.set_fault("web-06", "down")
    held = await run_cli("lock", env, "-m", "network work")
    assert held.code == 1
    assert "web-06: NOT held: " in held.err and "127.0.0.1" in held.err
    assert "held for maintenance on 5 of 6 hosts" in held.out
    assert set(lock_owners(demo)) == set(demo.host_names) - {"web-06"}
    # One held host is enough: the deployment needs every host's lock.
    other = engine_for(demo.env_path, tmp_path / "bob", user="bob")
    await demo.set_fault("web-06", "up")
    try:
        with pytest.raises(LockHeld, match="maintenance: network work"):
            await other.deploy("1.1.0", canaries=["web-06"])
        assert other.open_deployment() is None
        assert other.host_states["web-06"] is not ev.HostState.DEPLOYED
    finally:
        await other.fleet.close()
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_lock_frees_what_a_finished_deployment_of_this_journal_left(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A host that was unreachable when this journal's deployment ended kept its lock: a
    maintenance hold frees it, as the next deployment would, and holds the host too."""
    env = str(demo.env_path)
    assert (await run_cli("deploy", env, "1.1.0", "--auto-promote")).code == 0
    assert lock_owners(demo) == {}
    # The lock deployment #1 took on web-04, as its release found it unreachable.
    journal = Journal(state_dir)
    record = journal.deployment(1)
    journal.close()
    assert record is not None and record.finished_at is not None
    owner = {
        "token": record.token,
        "deployment": record.id,
        "version": record.version,
        "user": record.user,
        "machine": record.machine,
        "since": record.finished_at - 30,
        "pid": 1,
    }
    lock = demo.sandbox_of("web-04") / ".canarytui" / "lock.demo.shop" / "owner"
    lock.write_text(json.dumps(owner) + "\n")
    held = await run_cli("lock", env, "-m", "kernel patch")
    assert held.code == 0, held.err
    owners = lock_owners(demo)
    assert set(owners) == set(demo.host_names)
    assert all(o.get("maintenance") == "kernel patch" for o in owners.values())
    # A colleague's lock is never freed so: only this journal's finished deployments'.
    assert (await run_cli("unlock", env)).code == 0
    owner["token"] = "f" * 32
    lock.write_text(json.dumps(owner) + "\n")
    refused = await run_cli("lock", env, "-m", "kernel patch")
    assert refused.code == 1 and "host web-04: locked by " in refused.err
    assert set(lock_owners(demo)) == {"web-04"}


async def test_a_fleet_at_rest_says_whose_locks_its_hosts_hold(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The versions asked at rest (the UI's monitor) say in the same round trip whose lock
    each host holds: a maintenance lock, another machine's open deployment, then none."""
    env = str(demo.env_path)
    engine = engine_for(demo.env_path, state_dir)
    try:
        assert (await run_cli("lock", env, "-m", "db migration")).code == 0
        commands = demo.commands_received
        found = await engine.discover(locks=True)
        assert demo.commands_received - commands == len(demo.host_names)  # one a host
        assert set(found.values()) == {"1.0.0"}
        held = engine.state.locked_by
        assert set(held) == set(demo.host_names) and all(h.maintenance for h in held.values())
        assert all("(maintenance: db migration) since " in h.owner for h in held.values())
        assert (await run_cli("unlock", env)).code == 0
        other = tmp_path / "other"  # another machine's journal: its deployment stays open
        assert (await run_cli("deploy", env, "1.1.0", state_dir=other)).code == 0
        await engine.discover(locks=True)
        assert set(engine.state.locked_by) == set(demo.host_names)
        web_02 = engine.state.locked_by["web-02"]
        assert not web_02.maintenance and "(deployment #1 of 1.1.0" in web_02.owner
        assert len({h.whose for h in engine.state.locked_by.values()}) == 1  # one deployment
        assert engine.versions["web-01"] == "1.1.0" and engine.versions["web-02"] == "1.0.0"
        assert (await run_cli("rollback", env, state_dir=other)).code == 0
        await engine.discover(locks=True)
        assert engine.state.locked_by == {}
    finally:
        await engine.fleet.close()
