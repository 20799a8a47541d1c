"""Open files at scale: a deployment holds a connection to each of its hosts at once, so the
soft limit on open files is lifted for a big fleet (within the hard one), a fleet too big
for the hard limit is refused before anything changes, and the limit running out, or a local
user with no name, is a clear host error rather than an internal one.

The limits are set in child processes (``preexec_fn``), never in the test process."""

from __future__ import annotations

import asyncio
import errno
import getpass
import os
import pty
import resource
import select
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import pytest
from conftest import REPO, engine_for
from test_cli_demo import locks_on_hosts, versions

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.journal import Journal
from canarytui.openfiles import RESERVE, shortage
from canarytui.ssh import Fleet, SshError, Unreachable, jump

TIMEOUT = 60.0


def run_limited(
    command: list[str], soft: int, hard: int, terminal: bool = False
) -> subprocess.CompletedProcess[str]:
    """``command`` in a child whose open-file limits are (soft, hard); ``terminal``: its
    three streams on one pseudo-terminal (the UI's commands refuse to start without one),
    everything it wrote then in ``stderr``."""
    ours = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if os.geteuid() != 0 and ours != resource.RLIM_INFINITY and hard > ours:
        pytest.skip(f"needs a hard limit of {hard} open files (this one's is {ours})")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    if not terminal:
        return subprocess.run(
            command, preexec_fn=limit, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT
        )
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(
            command, preexec_fn=limit, cwd=REPO, stdin=slave, stdout=slave, stderr=slave
        )
    finally:
        os.close(slave)  # the child has its copy: the terminal ends when the child does
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([master], [], [], left)[0]:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child has gone
                break
            if not chunk:
                break
            seen += chunk
        code = child.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    return subprocess.CompletedProcess(command, code, "", seen.decode(errors="replace"))


def python(code: str, soft: int, hard: int) -> str:
    done = run_limited([sys.executable, "-c", code], soft, hard)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def write_env(path: Path, hosts: int) -> Path:
    """An environment of ``hosts`` loopback hosts (nothing listens: none is contacted)."""
    known = path.with_name("known_hosts")
    known.write_text("")
    lines = [
        "name: big",
        "app: shop",
        f"ssh: {{user: u, known_hosts: {known}}}",
        "hosts:",
        *[f"  - {{name: h{i:04d}, address: 127.0.{i // 250}.{i % 250 + 1}}}" for i in range(hosts)],
        "deploy:",
        "  current: cat VERSION",
        "  steps: [{name: install, run: 'true'}]",
        "health: {check: 'true'}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_soft_limit_is_lifted_within_the_hard_one() -> None:
    code = (
        "import resource\n"
        "from canarytui.openfiles import ensure_open_files\n"
        "print(ensure_open_files(200), ensure_open_files(5000), ensure_open_files(50),"
        " resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    assert python(code, 100, 1000) == "200 1000 1000 (1000, 1000)"


def test_a_fleet_makes_room_for_a_connection_to_each_host(tmp_path: Path) -> None:
    env = write_env(tmp_path / "big.yaml", 300)
    code = (
        "import resource, sys\n"
        "from canarytui.config import load_env\n"
        "from canarytui.ssh import Fleet\n"
        f"fleet = Fleet(load_env({str(env)!r}))\n"
        "print(fleet.open_files, resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    wanted = 300 + RESERVE
    assert python(code, 128, 4096) == f"{wanted} {wanted}"


def test_a_shortage_says_what_is_needed_and_how_to_lift_it() -> None:
    assert shortage(10, 10 + RESERVE) is None
    said = shortage(1200, 1024)
    assert said is not None
    assert "each of its hosts (1,200 here)" in said
    assert "only 1,024 files open (ulimit -n; 1,264 needed)" in said
    assert "`ulimit -n 2048`" in said  # a command to run: no thousands separator
    # Past the hard limit too, the way out is an administrator's.
    code = "from canarytui.openfiles import shortage\nprint(shortage(1200, 1024))"
    assert "the hard limit is 1,024 too, so an administrator raises it" in python(code, 1024, 1024)


async def test_a_fleet_past_the_hard_limit_is_refused_and_nothing_changes(
    demo: DemoFleet, state_dir: Path
) -> None:
    env = str(demo.env_path)
    hard = 6 + RESERVE - 1  # one short of what the six hosts need

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_limited([sys.executable, "-m", "canarytui", *args], hard, hard)

    before = versions(demo)
    dry = await asyncio.to_thread(run, "deploy", env, "1.1.0", "--dry-run")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert "would be refused now" in dry.stdout and "(6 here)" in dry.stdout
    refused = await asyncio.to_thread(run, "deploy", env, "1.1.0", "--auto-promote")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "canarytui: refused: a deployment keeps a connection open" in refused.stderr
    assert f"only {hard} files open (ulimit -n; {hard + 1} needed)" in refused.stderr
    assert "nothing was changed" in refused.stderr and "Traceback" not in refused.stderr
    assert versions(demo) == before and locks_on_hosts(demo) == []
    assert Journal(state_dir).history("demo", "shop") == []


async def first_command_fails(demo: DemoFleet, error: type[SshError], pattern: str) -> None:
    """A command on web-01 raises ``error`` (a host error saying ``pattern``), not a crash."""
    fleet = Fleet(load_env(demo.env_path))
    try:
        with pytest.raises(error, match=pattern):
            await asyncio.wait_for(fleet.run("web-01", "true"), TIMEOUT)
    finally:
        await fleet.close()


async def test_an_unnamed_local_user_is_a_host_error_not_a_crash(
    demo: DemoFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nobody() -> str:
        raise KeyError("getpwuid(): uid not found: 4242")

    monkeypatch.setattr(getpass, "getuser", nobody)
    jump.local_user.cache_clear()  # looked up afresh, with no name to find
    # ~/.ssh/config as read for an earlier test's host on the same address and port (the
    # OS reuses ports in a long run) would skip the lookup: read afresh too.
    monkeypatch.setattr(jump, "_READ", {})
    await first_command_fails(demo, SshError, r"cannot tell this machine.s user name.*set USER")


async def test_open_files_running_out_is_said_as_such(
    demo: DemoFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def out_of_files(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(asyncssh, "connect", out_of_files)
    await first_command_fails(demo, Unreachable, r"limit on open files is reached \(ulimit -n\)")


async def test_a_deployment_continued_past_the_limit_goes_on_with_a_warning(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Promoting (or rolling back) an open deployment is never refused for it: the
    operator is told which limit the hosts past it will meet."""
    engine = engine_for(demo.env_path, state_dir)
    notices: list[str] = []
    engine.subscribe(lambda e: notices.append(e.message) if isinstance(e, ev.Notice) else None)
    try:
        assert await asyncio.wait_for(engine.deploy("1.2.0"), TIMEOUT) is ev.Outcome.CANARY_PASSED
        engine.fleet.open_files = 10  # as if the hard limit were that low
        done = await asyncio.wait_for(engine.promote(all_waves=True), TIMEOUT)
        assert done is ev.Outcome.COMPLETE
    finally:
        await engine.fleet.close()
    assert [n for n in notices if "only 10 files open" in n and "past the limit" in n]


# ------------------------------------------------------------------ the demo fleet's own


DEMO_STARTS = {
    "serve": ["-m", "canarytui", "demo", "--serve", "--hosts", "100"],
    "ui": ["-m", "canarytui", "demo", "--hosts", "100"],
    "module": ["-m", "canarytui.demo", "--hosts", "100"],
}


@pytest.mark.parametrize("start", DEMO_STARTS)
def test_a_demo_fleet_past_its_open_files_says_so_and_starts_nothing(
    start: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 demo hosts keep up to 956 files open: under a hard limit of 512, each way of
    starting the fleet says so (how many fit, what to ask for) before anything is made,
    instead of hosts failing one by one under load."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where a sandbox or a crash log would go
    done = run_limited([sys.executable, *DEMO_STARTS[start]], 512, 512, terminal=start == "ui")
    assert done.returncode == 1, done
    said = " ".join(done.stderr.split())
    assert "the demo fleet could not start: a demo fleet of 100 hosts keeps up to " in said
    assert "may open only 512 (ulimit -n; the hard limit is no higher)" in said
    # The UI connects to every host from the same process: one more file a host.
    fit, keeps = ("32", "1,056") if start == "ui" else ("36", "956")
    assert f"100 hosts keeps up to {keeps} files open" in said
    assert f"ask for at most {fit} hosts (--hosts {fit})" in said
    assert "internal error" not in said and "Traceback" not in said
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_the_headless_demo_story_says_so_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where its state folder would go
    code = (
        "import argparse, sys\n"
        "from canarytui.cli.demo import demo_story\n"
        "sys.exit(demo_story(argparse.Namespace(hosts=100, state_dir=None)))"
    )
    done = run_limited([sys.executable, "-c", code], 260, 260)
    assert done.returncode == 1, done
    said = " ".join(done.stderr.split())
    # Its engine connects from the same process: 8 files a host.
    assert "could not start: a demo fleet of 100 hosts keeps up to 1,056 files open" in said
    # Not even one host fits beside the fleet's own files: only the limit can change.
    assert "ask for" not in said and "have an administrator raise the limit" in said
    assert list(tmp_path.iterdir()) == []  # nothing made, not even a state folder


def test_a_demo_fleet_within_the_hard_limit_lifts_the_soft_one() -> None:
    code = (
        "import resource\n"
        "from canarytui.demo.limits import open_files_shortage\n"
        "print(open_files_shortage(100), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    assert python(code, 256, 4096) == "None 956"
