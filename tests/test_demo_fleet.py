"""The embedded demo fleet: real SSH on loopback, real shell steps, a release-driven app."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from conftest import dead_pid
from prometheus_client.parser import text_string_to_metric_families

import canarytui
from canarytui.config import Environment, load_env
from canarytui.demo import DemoFleet, ctl_main, limits
from canarytui.demo import fleet as fleet_module
from canarytui.demo.fleet import _sweep_stale_roots, host_name

PROJECT_ROOT = Path(canarytui.__file__).resolve().parent.parent


# ------------------------------------------------------------------------ helpers


async def eventually(check: Callable[[], Awaitable[Any] | Any], within: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


def connect(fleet: DemoFleet, name: str, known_hosts: Path | None = None, **kwargs: Any) -> Any:
    """asyncssh.connect to a demo host as the environment file says: awaitable or ``async with``."""
    return asyncssh.connect(
        "127.0.0.1",
        port=fleet.port_of(name),
        known_hosts=str(known_hosts or fleet.known_hosts_path),
        client_keys=[str(fleet.client_key_path)],
        username="demo",
        connect_timeout=5,
        **kwargs,
    )


async def run(conn: asyncssh.SSHClientConnection, command: str) -> asyncssh.SSHCompletedProcess:
    return await asyncio.wait_for(conn.run(command), 10)


async def deploy(conn: asyncssh.SSHClientConnection, env: Environment, version: str) -> None:
    """The environment's deploy steps, by hand, with the version shell-quoted."""
    for step in env.deploy.steps:
        result = await run(conn, step.run.replace("{version}", shlex.quote(version)))
        assert result.exit_status == 0, (step.name, result.stderr)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def requests(metrics: dict[Any, float], code: str = "") -> float:
    """The app's requests (health probes aside), all of them or those whose code starts so."""
    return sum(
        value
        for (name, labels), value in metrics.items()
        if name == "http_requests_total"
        and dict(labels)["route"] != "/health"
        and dict(labels)["code"].startswith(code)
    )


def error_ratio(metrics: dict[Any, float]) -> float:
    return requests(metrics, "5") / requests(metrics)


def p99(metrics: dict[Any, float]) -> float:
    """The 0.99 quantile from the histogram buckets of every route but /health, summed by
    bound and interpolated as Prometheus' histogram_quantile does."""
    summed: dict[float, float] = {}
    for (name, labels), value in metrics.items():
        if name == "http_request_duration_seconds_bucket" and dict(labels)["route"] != "/health":
            bound = float(dict(labels)["le"])
            summed[bound] = summed.get(bound, 0.0) + value
    buckets = sorted(summed.items())
    rank = 0.99 * buckets[-1][1]
    low_bound, low_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            return low_bound + (bound - low_bound) * (rank - low_count) / (count - low_count)
        low_bound, low_count = bound, count
    raise AssertionError("no bucket holds the quantile")


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[DemoFleet]:
    # A fast tick and heavy traffic give the app enough requests for statistics in a second.
    async with DemoFleet(hosts=4, root=tmp_path / "fleet", tick=0.1, traffic=40) as f:
        yield f


# -------------------------------------------------------------------------- tests


async def test_env_file_loads_and_describes_the_fleet(fleet: DemoFleet) -> None:
    env = load_env(fleet.env_path)
    assert fleet.env_path.is_absolute() and fleet.env_path.parent == fleet.root
    assert (env.name, env.app) == ("demo", "shop")
    assert env.host_names == fleet.host_names == ["web-01", "web-02", "web-03", "web-04"]
    assert [h.port for h in env.hosts] == [fleet.port_of(n) for n in fleet.host_names]
    assert len({h.port for h in env.hosts}) == 4
    assert all(h.address == "127.0.0.1" and h.user == "demo" for h in env.hosts)
    assert [h.roles for h in env.hosts] == [("web",), ("web",), ("web",), ("api",)]
    assert [h.labels["zone"] for h in env.hosts] == ["eu-1", "eu-2", "us-1", "eu-1"]
    assert env.resolve_path(env.ssh.identity_files[0]) == fleet.client_key_path
    assert env.resolve_path(env.ssh.known_hosts) == fleet.known_hosts_path
    assert (env.ssh.connect_timeout, env.ssh.command_timeout, env.ssh.max_parallel) == (5, 20, 50)
    assert env.canary.hosts == ("web-01",)
    analysis = env.canary.analysis
    assert (analysis.duration, analysis.warmup, analysis.interval) == (15.0, 2.0, 1.0)
    assert (analysis.baseline, analysis.max_failed_checks, analysis.early_fail) == (3, 2, True)
    rules = {r.name: r for r in analysis.rules}
    assert list(rules) == ["error-ratio", "p99-latency", "traffic", "latency-shift"]
    assert rules["error-ratio"].metric == 'http_requests_total{code=~"5..",route!="/health"}'
    assert rules["error-ratio"].per == 'http_requests_total{route!="/health"}'
    assert rules["p99-latency"].quantile == 0.99
    assert rules["latency-shift"].compare == "mann-whitney"
    # 15 s at 1 s gives the statistical rule enough intervals: it is not optional.
    assert not any(r.optional for r in analysis.rules)
    assert [str(w) for w in env.promote.waves] == ["10%", "50%", "100%"]
    lines = fleet.known_hosts_path.read_text().splitlines()
    assert len(lines) == 4
    for line, host in zip(lines, env.hosts, strict=True):
        assert re.fullmatch(rf"\[127\.0\.0\.1\]:{host.port} ssh-ed25519 AAAA\S+", line)


async def test_one_host_fleet_has_no_baseline(tmp_path: Path) -> None:
    async with DemoFleet(hosts=1, root=tmp_path, analysis_duration=0.5, interval=0.25) as fleet:
        env = load_env(fleet.env_path)
    assert env.canary.analysis.baseline == 0
    assert (env.canary.analysis.duration, env.health.interval) == (0.5, 0.25)
    # Too short for a warmup, or for the statistical rule to be sure of its intervals.
    assert (env.canary.analysis.warmup, env.canary.analysis.interval) == (0.0, 0.25)
    assert [r.name for r in env.canary.analysis.rules if r.optional] == ["latency-shift"]


def test_host_names_are_zero_padded() -> None:
    assert [host_name(i, 12) for i in (1, 12)] == ["web-01", "web-12"]
    assert [host_name(i, 500) for i in (7, 500)] == ["web-007", "web-500"]


async def test_current_version_over_ssh(fleet: DemoFleet) -> None:
    env = load_env(fleet.env_path)
    async with connect(fleet, "web-03") as conn:
        result = await run(conn, "cat current/VERSION")
        assert (result.exit_status, result.stdout) == (0, "1.0.0\n")
        result = await run(conn, env.deploy.current)
        assert result.stdout.strip() == "1.0.0"
        # A real shell in the host's sandbox, with the host's name in its environment.
        result = await run(conn, 'echo "$DEMO_HOST $HOME $PWD"; echo oops >&2; exit 7')
        sandbox = fleet.root / "hosts" / "web-03"
        assert result.stdout == f"web-03 {sandbox} {sandbox}\n"
        assert (result.stderr, result.exit_status) == ("oops\n", 7)
        result = await asyncio.wait_for(conn.run("tr a-z A-Z", input="piped\n"), 5)
        assert result.stdout == "PIPED\n"
        await run(conn, "rm current")
        result = await run(conn, env.deploy.current)
        assert (result.exit_status, result.stdout) == (0, "")
    assert fleet.version_on("web-03") is None


async def test_a_command_leads_its_own_group_in_the_fleets_session(fleet: DemoFleet) -> None:
    """Everything a command starts can be killed at once (its group), Ctrl-C in the fleet's
    terminal does not reach it (a group in the background), and it shares the fleet's
    session: Linux schedules each session as a group of its own, so a shell in a session
    of its own would weigh as much as the operator's whole process (measured in
    benches/ui_release.py: the UI's loop waited for a CPU 36-50 % of the waves)."""
    async with connect(fleet, "web-01") as conn:
        result = await run(conn, 'echo "$$"; cat /proc/$$/stat')
    pid, stat = result.stdout.split("\n", 1)
    # pid (comm) state ppid pgrp session ...: the fields after the command's name.
    pgrp, session = (int(f) for f in stat.rsplit(")", 1)[1].split()[2:4])
    assert pgrp == int(pid)
    assert session == os.getsid(0)


async def test_deploy_steps_switch_the_version(fleet: DemoFleet) -> None:
    env = load_env(fleet.env_path)
    async with connect(fleet, "web-02") as conn:
        await deploy(conn, env, "1.2.0")
        assert fleet.version_on("web-02") == "1.2.0"
        assert (await run(conn, env.deploy.current)).stdout.strip() == "1.2.0"
        # Rolling back is the same steps with the previous version.
        await deploy(conn, env, "1.0.0")
        assert fleet.version_on("web-02") == "1.0.0"
    assert [fleet.version_on(n) for n in ("web-01", "web-03")] == ["1.0.0", "1.0.0"]


async def test_releases_drive_the_metrics(fleet: DemoFleet) -> None:
    env = load_env(fleet.env_path)
    assert env.health.metrics is not None
    plan = {"web-01": "1.3.0-bad", "web-02": "1.1.0", "web-03": "1.5.0-slow"}
    conns = {name: await connect(fleet, name) for name in plan}
    try:
        await asyncio.gather(*(deploy(conns[n], env, v) for n, v in plan.items()))

        async def metrics(name: str) -> dict[Any, float]:
            return samples((await run(conns[name], env.health.metrics)).stdout)

        async def enough() -> dict[str, dict[Any, float]] | None:
            got = {name: await metrics(name) for name in plan}
            counts = [requests(m) for m in got.values()]
            return got if min(counts) >= 2000 else None

        got = await eventually(enough, within=10)
        assert error_ratio(got["web-01"]) > 0.05
        assert error_ratio(got["web-02"]) < 0.05
        assert error_ratio(got["web-03"]) < 0.05
        assert 0.1 < p99(got["web-02"]) < 0.35
        assert p99(got["web-03"]) > 2 * p99(got["web-02"])
        assert got["web-01"][("app_info", (("version", "1.3.0-bad"),))] == 1
        log = (await run(conns["web-01"], "cat log/app.log")).stdout
        assert " ERROR " in log and " INFO " in log
    finally:
        for conn in conns.values():
            conn.close()


async def test_dead_release_fails_its_health_check(fleet: DemoFleet) -> None:
    env = load_env(fleet.env_path)
    async with connect(fleet, "web-04") as conn:
        assert (await run(conn, env.health.check)).exit_status == 0
        await deploy(conn, env, "1.4.0-dead")
        # The restart step waits for the app, so the check sees the new release at once.
        assert (await run(conn, env.health.check)).exit_status != 0
        await deploy(conn, env, "1.1.0")
        assert (await run(conn, env.health.check)).exit_status == 0


async def test_unknown_host_key_and_client_key_are_refused(
    fleet: DemoFleet, tmp_path: Path
) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    other_known_hosts = tmp_path / "other_known_hosts"
    other_known_hosts.write_text(
        f"[127.0.0.1]:{fleet.port_of('web-01')} {stranger.export_public_key().decode()}"
    )
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with connect(fleet, "web-01", known_hosts=other_known_hosts):
            pass
    with pytest.raises(asyncssh.PermissionDenied):
        async with asyncssh.connect(
            "127.0.0.1",
            port=fleet.port_of("web-01"),
            known_hosts=str(fleet.known_hosts_path),
            client_keys=[stranger],
            username="demo",
            connect_timeout=5,
        ):
            pass


async def test_down_refuses_then_up_recovers_on_the_same_port(fleet: DemoFleet) -> None:
    port = fleet.port_of("web-02")
    conn = await connect(fleet, "web-02")
    assert await fleet.set_fault("web-02", "down") == "up"
    await asyncio.wait_for(conn.wait_closed(), 5)  # the open connection was dropped
    with pytest.raises(ConnectionRefusedError):
        async with connect(fleet, "web-02"):
            pass
    assert await fleet.set_fault("web-02", "up") == "down"
    assert fleet.port_of("web-02") == port
    async with connect(fleet, "web-02") as conn:
        assert (await run(conn, "cat current/VERSION")).stdout == "1.0.0\n"


async def test_hang_makes_connects_and_commands_time_out(fleet: DemoFleet) -> None:
    async with connect(fleet, "web-03") as conn:
        await fleet.set_fault("web-03", "hang")
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(connect(fleet, "web-03"), 1.0)
        assert time.monotonic() - began < 2.0
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.run("true"), 0.5)
        await fleet.set_fault("web-03", "up")
        assert (await run(conn, "echo back")).stdout == "back\n"
    async with connect(fleet, "web-03") as conn:
        assert (await run(conn, "echo new")).stdout == "new\n"


# A kept shell in miniature: it answers each line it is sent.
ECHO_SHELL = 'while read -r l; do echo "got $l"; done'


async def line(proc: Any, within: float) -> str:
    return str(await asyncio.wait_for(proc.stdout.readline(), within))


async def test_a_session_open_before_the_host_hung_stops_answering_too(
    fleet: DemoFleet,
) -> None:
    """A deployment's kept shell is open before the fault: its next script (its input)
    and a command already running (its output) wait while the host is hung, as a new
    session does."""
    async with connect(fleet, "web-03") as conn:
        kept = await conn.create_process(ECHO_SHELL)
        kept.stdin.write("one\n")
        assert await line(kept, 5) == "got one\n"
        running = await conn.create_process("read -r go; sleep 0.2; echo late")
        running.stdin.write("go\n")
        await fleet.set_fault("web-03", "hang")
        kept.stdin.write("two\n")
        with pytest.raises(TimeoutError):
            await line(kept, 0.6)
        with pytest.raises(TimeoutError):
            await line(running, 0.6)
        await fleet.set_fault("web-03", "up")
        assert await line(kept, 5) == "got two\n"
        assert await line(running, 5) == "late\n"
        # Slow: the kept shell's next script starts late, as a new session would.
        await fleet.set_fault("web-03", "slow")
        began = time.monotonic()
        kept.stdin.write("three\n")
        assert await line(kept, 5) == "got three\n"
        assert time.monotonic() - began >= 1.8
        await fleet.set_fault("web-03", "up")
        kept.stdin.write_eof()
        await asyncio.wait_for(kept.wait_closed(), 5)


async def test_slow_delays_every_command(fleet: DemoFleet) -> None:
    async with connect(fleet, "web-01") as conn:
        await fleet.set_fault("web-01", "slow")
        began = time.monotonic()
        assert (await run(conn, "echo late")).stdout == "late\n"
        assert time.monotonic() - began >= 1.8
        await fleet.set_fault("web-01", "up")
        began = time.monotonic()
        await run(conn, "true")
        assert time.monotonic() - began < 1.0


async def test_flaky_drops_some_connections_and_commands(fleet: DemoFleet) -> None:
    await fleet.set_fault("web-04", "flaky")
    outcomes = []
    for _ in range(20):
        try:
            async with connect(fleet, "web-04") as conn:
                result = await run(conn, "echo hi")
                outcomes.append(result.stdout == "hi\n")
        except (OSError, asyncssh.Error):
            outcomes.append(False)
    assert 0 < sum(outcomes) < len(outcomes)


async def test_flaky_drops_a_kept_shell_at_some_script(fleet: DemoFleet) -> None:
    answered = 0
    async with connect(fleet, "web-04") as conn:
        kept = await conn.create_process(ECHO_SHELL)
        await fleet.set_fault("web-04", "flaky")
        for i in range(20):
            try:
                kept.stdin.write(f"{i}\n")
                if await line(kept, 5) != f"got {i}\n":
                    break
            except (OSError, asyncssh.Error):
                break
            answered += 1
        await asyncio.wait_for(conn.wait_closed(), 5)  # dropped, as a new session is
    assert answered < 20


async def test_log_stream_stops_with_its_channel(fleet: DemoFleet) -> None:
    async with connect(fleet, "web-01") as conn:
        # `exec` makes tail the shell's own process, so the pid printed is tail's.
        process = await conn.create_process("echo $$; exec tail -n 5 -F log/app.log")
        pid = int(await asyncio.wait_for(process.stdout.readline(), 5))
        lines = [await asyncio.wait_for(process.stdout.readline(), 5) for _ in range(8)]
        assert all(re.match(r"\S+Z (INFO|WARN|ERROR) +shop\[web-01\] ", line) for line in lines)
        assert not pid_gone(pid)
        process.close()
        await eventually(lambda: pid_gone(pid) and fleet.live_processes == 0)


async def test_stopping_the_fleet_leaves_nothing_behind() -> None:
    fleet = DemoFleet(hosts=2)
    async with fleet:
        root, port = fleet.root, fleet.port_of("web-01")
        conn = await connect(fleet, "web-01")
        process = await conn.create_process("echo $$; exec sleep 60")
        pid = int(await asyncio.wait_for(process.stdout.readline(), 5))
    assert not root.exists()
    assert refuses(port)
    await eventually(lambda: pid_gone(pid))
    conn.close()


def test_temp_roots_of_dead_fleets_are_swept(tmp_path: Path) -> None:
    for name, owner in (("dead", str(dead_pid())), ("alive", str(os.getpid())), ("other", None)):
        root = tmp_path / f"canarytui-demo-{name}"
        (root / "hosts").mkdir(parents=True)
        if owner is not None:
            (root / "owner.pid").write_text(owner)
    _sweep_stale_roots(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "canarytui-demo-alive",
        "canarytui-demo-other",
    ]


async def serves_from_its_folder(fleet: DemoFleet) -> None:
    """A host answers a command with what its sandbox, in the fleet's folder, holds."""
    assert (fleet.root / "hosts" / "web-01" / "current").exists()
    async with connect(fleet, "web-01") as conn:
        assert (await conn.run("cat current/VERSION", check=True)).stdout == "1.0.0\n"


async def test_a_fleet_lives_in_memory_when_a_memory_folder_has_room(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The user's runtime folder (tmpfs on a desktop) first; the fleet's folder goes there,
    # and is gone after the stop as in the temp folder.
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    async with DemoFleet(hosts=2) as fleet:
        root = fleet.root
        assert root.parent == run
        await serves_from_its_folder(fleet)
    assert not root.exists() and list(run.iterdir()) == []


async def test_a_fleet_sweeps_dead_fleets_from_memory_and_from_the_temp_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A fleet killed with -9 leaves its folder; one left in memory would hold that memory
    # until the machine restarts, so the next fleet sweeps both, wherever it goes itself.
    pid = dead_pid()
    run, temp = tmp_path / "run", tmp_path / "tmp"
    for folder in (run, temp):
        (folder / "canarytui-demo-dead" / "hosts").mkdir(parents=True)
        (folder / "canarytui-demo-dead" / "owner.pid").write_text(str(pid))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # read once per process
    async with DemoFleet(hosts=1) as fleet:
        assert fleet.root.parent == temp  # the operator's TMPDIR
        assert [p.name for p in run.iterdir()] == []
        assert [p.name for p in temp.glob("canarytui-demo-*")] == [fleet.root.name]


async def test_a_fleet_whose_memory_folder_takes_no_folder_goes_to_the_temp_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Chosen, then gone (or read-only) by the time the fleet makes its folder there.
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(fleet_module, "fleet_parent", lambda _hosts: str(tmp_path / "gone"))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    async with DemoFleet(hosts=1) as fleet:
        assert fleet.root.parent == temp
        await serves_from_its_folder(fleet)
    assert not fleet.root.exists()


def test_where_a_fleet_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    temp, roomy = tmp_path / "tmp", tmp_path / "roomy"
    temp.mkdir()
    roomy.mkdir()
    free = os.statvfs(tmp_path)
    fits = free.f_bavail * free.f_frsize // (2 * limits.HOST_BYTES)  # hosts that fit twice
    monkeypatch.delenv("TMPDIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    # An unset variable, a missing folder and a file are passed over; the first folder
    # with room is taken.
    (tmp_path / "file").write_text("")
    (tmp_path / "file").chmod(0o755)  # writable and "executable": a folder in all but name
    folders = ("$XDG_RUNTIME_DIR", str(tmp_path / "missing"), str(tmp_path / "file"), str(roomy))
    monkeypatch.setattr(limits, "MEMORY_FOLDERS", folders)
    assert limits.fleet_parent(2) == str(roomy)
    # No room for the worst case (every host's log at its cap, twice over): the temp folder.
    # (100 hosts over: the disk's free space may grow a little meanwhile.)
    assert limits.fleet_parent(fits + 100) is None
    # The operator's TMPDIR is where temp files go, whatever memory folders there are.
    monkeypatch.setenv("TMPDIR", str(temp))
    assert limits.fleet_parent(2) is None


async def test_ctl_without_a_running_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CANARYTUI_STATE_DIR", str(tmp_path))
    assert ctl_main("web-01", "down") == 1
    said = capsys.readouterr().err
    assert "no demo fleet is running" in said
    # Where it looked: a fleet started with another state dir is recorded elsewhere.
    assert f"none recorded in {tmp_path})" in said and "CANARYTUI_STATE_DIR" in said
    assert ctl_main("web-01", "explode") == 2


async def test_ctl_reaches_an_in_process_fleet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CANARYTUI_STATE_DIR", str(tmp_path / "state"))
    async with DemoFleet(hosts=2, root=tmp_path / "fleet", control=True) as fleet:
        assert await asyncio.to_thread(ctl_main, "web-02", "slow") == 0
        assert fleet.fault_of("web-02") == "slow"
        assert await asyncio.to_thread(ctl_main, "web-09", "slow") == 2
    assert not (tmp_path / "state" / "demo.json").exists()


async def serve_process(hosts: int) -> tuple[asyncio.subprocess.Process, Path]:
    """``serve_main(hosts)`` as a process of its own, and its env file's path once it is up."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"from canarytui.demo import serve_main; raise SystemExit(serve_main({hosts}))",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc, Path(line.decode().strip())


async def test_serve_main_in_a_subprocess(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("CANARYTUI_STATE_DIR", str(state))
    proc, env_path = await serve_process(3)
    try:
        assert proc.stdout is not None
        assert env_path.is_absolute()
        demo_env = load_env(env_path)
        ports = [h.port for h in demo_env.hosts]
        summary = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
        assert "3 hosts" in summary

        assert await asyncio.to_thread(ctl_main, "web-02", "down") == 0
        assert await eventually(lambda: refuses(ports[1]))
        assert await asyncio.to_thread(ctl_main, "web-02", "up") == 0
        assert await asyncio.to_thread(ctl_main, "web-99", "down") == 2
        assert await asyncio.to_thread(ctl_main, "web-02", "explode") == 2

        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert rest.decode().endswith("stopped after 0 SSH connections and 0 sessions\n")  # TCP only
    assert not env_path.parent.exists()
    assert all(refuses(port) for port in ports)
    assert await asyncio.to_thread(ctl_main, "web-02", "up") == 1


async def test_ctrl_c_while_commands_run_says_nothing_but_its_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl-C on a served fleet while a client's commands run (a UI's log tails, its
    probes): the fleet stops them, exits 0 and prints its summary, and nothing on stderr
    (asyncio reported each session cut off by the stop, with a traceback)."""
    monkeypatch.setenv("CANARYTUI_STATE_DIR", str(tmp_path / "state"))
    proc, env_path = await serve_process(2)
    try:
        demo_env = load_env(env_path)
        host = demo_env.hosts[0]
        async with asyncssh.connect(
            host.address,
            port=host.port,
            username=demo_env.ssh.user,
            known_hosts=str(demo_env.resolve_path(demo_env.ssh.known_hosts)),
            client_keys=[str(demo_env.resolve_path(p)) for p in demo_env.ssh.identity_files],
        ) as conn:
            sessions = [await conn.create_process("echo started; exec sleep 60") for _ in range(8)]
            for session in sessions:
                assert await asyncio.wait_for(session.stdout.readline(), 10) == "started\n"
            proc.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            for session in sessions:  # the commands ended with the fleet
                await asyncio.wait_for(session.wait_closed(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert err.decode() == ""
    assert out.decode().endswith("stopped after 1 SSH connections and 8 sessions\n")


def test_the_demo_ui_leaves_no_journal_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """``canarytui demo`` without --state-dir keeps its journal in a folder of its own,
    removed when the app exits (its fleet's folder is removed too)."""
    from canarytui.journal import Journal
    from canarytui.ui import app as ui_app

    used: list[Path] = []

    def the_app(env: object, state_dir: str, theme: str | None) -> int:
        journal = Journal(state_dir)  # as the app writes it
        journal.close()
        used.append(Path(state_dir))
        assert (used[-1] / "journal.sqlite3").is_file()
        return 0

    monkeypatch.setattr(ui_app, "run_app", the_app)
    assert ui_app.run_demo(hosts=2) == 0
    assert len(used) == 1 and used[0].name.startswith("canarytui-demo-state-")
    assert not used[0].exists()
    kept = Path(tempfile.mkdtemp(prefix="given-"))
    try:
        assert ui_app.run_demo(hosts=2, state_dir=kept) == 0
        assert used[1] == kept and (kept / "journal.sqlite3").is_file()  # the operator's
    finally:
        shutil.rmtree(kept)


def story_stopped_early(env: dict[str, str]) -> Path:
    """The story without the UI (``demo_story``) in a process of its own with ``env``,
    stopped at its first deployment (which raises): the journal folder it wrote."""
    code = (
        "import argparse, sys\n"
        "from canarytui.cli.demo import demo_story\n"
        "from canarytui.engine import Engine\n"
        "async def deploy(self, *args, **kwargs):\n"
        "    print('STATE', self.journal.state_dir, flush=True)\n"
        "    raise RuntimeError('stopped here')\n"
        "Engine.deploy = deploy\n"
        "sys.exit(demo_story(argparse.Namespace(hosts=2, state_dir=None)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert "stopped here" in done.stderr, done.stderr
    return Path(next(x for x in done.stdout.splitlines() if x.startswith("STATE "))[6:])


def test_the_demo_keeps_its_journal_where_the_state_dir_variable_says(tmp_path: Path) -> None:
    """``$CANARYTUI_STATE_DIR`` names the journal's folder as ``--state-dir`` does, for the
    demo too: with it set, the demo's deployments were in a folder of its own, removed at
    its end, and `history` in another terminal found none."""
    given = tmp_path / "mine"
    state = story_stopped_early(dict(os.environ, CANARYTUI_STATE_DIR=str(given)))
    assert state == given and (given / "journal.sqlite3").is_file()


def test_the_headless_demo_story_leaves_no_journal_behind() -> None:
    """The story without the UI (``demo_story``): its own journal folder is removed with
    its fleet, even when the story stops early (here: its first deployment raises)."""
    # Without $CANARYTUI_STATE_DIR (which names the journal's folder), and the user's state
    # dir under a home of its own.
    env = {k: v for k, v in os.environ.items() if k != "CANARYTUI_STATE_DIR"}
    env["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="state-home-")
    try:
        state = story_stopped_early(env)
    finally:
        shutil.rmtree(env["XDG_STATE_HOME"])
    assert state.name.startswith("canarytui-demo-state-")
    assert not state.exists()
