"""Stopping a command's process group on a host (``kill_script``), in each login shell a
host may have: TERM first, a grace while a member is alive, then KILL (which also reaches a
member the look for live ones skipped: one older than its group's leader); a zombie (an
ended member its parent has not reaped yet, as on a host whose PID 1 reaps late, or never)
is not waited for. The script says whether the group ended on TERM or outlived it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_keep_sh import SHELLS, shell_path

from canarytui.ssh.remote import STOP_SAID, kill_script

GRACE = 3  # tenths of a second: short, so the test of a group that outlives TERM is too


def state(pid: int) -> str:
    """A process's state letter (``/proc/PID/stat``), or "" once it is reaped."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    return text.rsplit(") ", 1)[1][:1]


def await_state(pid: int, wanted: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while state(pid) != wanted:
        assert time.monotonic() < deadline, f"process {pid} never reached state {wanted!r}"
        time.sleep(0.01)


def await_ignoring_term(pid: int, seconds: float = 10.0) -> None:
    """Until the process ignores SIGTERM (its ``SigIgn`` mask has signal 15)."""
    deadline = time.monotonic() + seconds
    while True:
        status = Path(f"/proc/{pid}/status").read_text()
        mask = int(next(line for line in status.splitlines() if line.startswith("SigIgn:"))[7:], 16)
        if mask & (1 << 14):
            return
        assert time.monotonic() < deadline, f"process {pid} never ignored SIGTERM"
        time.sleep(0.01)


def group_of(command: list[str]) -> subprocess.Popen[bytes]:
    """``command`` started in a process group of its own (its pid is the group's id)."""
    return subprocess.Popen(command, process_group=0, stdin=subprocess.DEVNULL)


def stop(shell: str, pgid: int) -> str:
    done = subprocess.run(
        [*shell_path(shell), "-c", kill_script(pgid, GRACE)],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr, done.stderr
    return done.stdout.decode()


@pytest.fixture
def left() -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:  # whatever a failed test left, killed and reaped
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_group_that_ends_on_term_is_not_killed(
    shell: str, left: list[subprocess.Popen[bytes]]
) -> None:
    proc = group_of(["sleep", "60"])
    left.append(proc)
    await_state(proc.pid, "S")
    assert stop(shell, proc.pid) == f"{STOP_SAID} ended\n"
    assert proc.wait(timeout=10) == -15  # SIGTERM ended it


@pytest.mark.parametrize("shell", SHELLS)
def test_a_group_that_outlives_term_is_killed_after_the_grace(
    shell: str, left: list[subprocess.Popen[bytes]]
) -> None:
    # An ignored signal stays ignored across exec: this sleep ignores TERM.
    proc = group_of(["sh", "-c", "trap '' TERM; exec sleep 60"])
    left.append(proc)
    await_ignoring_term(proc.pid)
    assert stop(shell, proc.pid) == f"{STOP_SAID} killed\n"
    assert proc.wait(timeout=10) == -9


@pytest.mark.parametrize("shell", SHELLS)
def test_a_zombie_left_in_the_group_is_not_waited_for(
    shell: str, left: list[subprocess.Popen[bytes]]
) -> None:
    # This process is the zombie's parent and reaps it only after the stop: as a host's
    # PID 1 that reaps late. Without the zombie check the stop waits the whole grace and
    # says "killed" (kill -0 finds the group while it has a zombie).
    zombie = group_of(["true"])
    left.append(zombie)
    await_state(zombie.pid, "Z")
    # A live member too, in the zombie's group: it ends on TERM.
    alive = subprocess.Popen(["sleep", "60"], process_group=zombie.pid)
    left.append(alive)
    await_state(alive.pid, "S")
    assert stop(shell, zombie.pid) == f"{STOP_SAID} ended\n"
    assert alive.wait(timeout=10) == -15
    assert state(zombie.pid) == "Z"  # still unreaped: the stop did not wait for it


@pytest.mark.parametrize("shell", SHELLS)
def test_a_member_older_than_its_group_is_killed_at_the_end(shell: str) -> None:
    """The stop reads only processes started after the group's leader (a member is one
    of its descendants): one that is older (a host whose pids wrapped around) is not waited
    for, but the KILL that ends every stop reaches it, TERM ignored or not."""
    older = os.fork()
    if older == 0:  # the child: ignores TERM, waits to be killed (bounded)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(30)
        os._exit(0)
    try:
        await_ignoring_term(older)
        leader = group_of(["sleep", "60"])
        assert leader.pid > older
        os.setpgid(older, leader.pid)  # allowed: our child, and it has not exec'd
        assert stop(shell, leader.pid) == f"{STOP_SAID} ended\n"
        assert leader.wait(timeout=10) == -15
        _, status = os.waitpid(older, 0)
        older = 0
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    finally:
        if older:
            os.kill(older, signal.SIGKILL)
            os.waitpid(older, 0)
