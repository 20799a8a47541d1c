"""A kept shell's loop (``Marker.keep`` / ``Marker.more``) in each login shell a host may
have: dash (``/bin/sh``), bash, zsh, busybox's ash (Alpine's ``/bin/sh``), mksh and ksh93.
Scripts sent on its input run in order, each step marked with its status; a failure ends
its script, not the shell; steps read nothing from the input; here-documents and quotes
arrive whole; the end of the input, or a script sent to end it, ends the shell with
status 0 and nothing after runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from canarytui.ssh.remote import Marker, OwnScript, StepTails

SHELLS = ["/bin/sh", "bash", "zsh", "busybox ash", "mksh", "ksh93"]


def shell_path(name: str) -> list[str]:
    """The command that starts ``name`` (busybox: its applet named after it)."""
    program, *applet = name.split()
    path = shutil.which(program)
    if path is None:
        if os.environ.get("CI"):
            raise AssertionError(f"{program} is not installed (.ci/run installs it)")
        pytest.skip(f"{program} is not installed on this machine")
    return [path, *applet]


def run(
    shell: str,
    first: list[str],
    later: list[bytes],
    cwd: Path,
    env: dict[str, str] | None = None,
) -> tuple[list[str], str]:
    marker = Marker("t")
    done = subprocess.run(
        [*shell_path(shell), "-c", marker.keep(first)],
        input=b"".join(later),
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    # Each step's end mark: "canarytui-t-end INDEX STATUS".
    return re.findall(r"canarytui-t-end \d+ (\d+)", out), out


@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_run_in_order_down_one_shell(shell: str, tmp_path: Path) -> None:
    m = Marker("t")
    later = [
        m.more(["echo one; echo $$ > pid1", "cat; read x || echo eof"], end=False),
        m.more(
            ["printf '%s\\n' 'a\\b' \"c  d\"", "cat <<EOF\n  kept\n\nEOF", "exit 3", "touch never"],
            False,
        ),
        m.more(["echo $$ > pid2; echo after-failure"], end=False),
    ]
    statuses, out = run(shell, ["echo lock"], later, tmp_path)
    assert statuses == ["0", "0", "0", "0", "0", "3", "0"]
    assert "eof\n" in out and "a\\b\nc  d\n" in out and "  kept\n\n" in out
    assert "after-failure" in out and not (tmp_path / "never").exists()
    # One shell for every script: the same $$ before and after a failed step.
    assert (tmp_path / "pid1").read_text() == (tmp_path / "pid2").read_text()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_script_that_ends_it_is_the_last_that_runs(shell: str, tmp_path: Path) -> None:
    m = Marker("t")
    later = [m.more(["echo release"], end=True), m.more(["touch never"], end=False)]
    statuses, out = run(shell, ["true"], later, tmp_path)
    assert statuses == ["0", "0"] and "release" in out
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_script_cut_short_by_the_end_of_input_never_runs(shell: str, tmp_path: Path) -> None:
    m = Marker("t")
    cut = m.more(["touch never"], end=False)
    cut = cut[: cut.rindex(b"canarytui-t-run")]  # the closing line never came
    statuses, _ = run(shell, ["true"], [cut], tmp_path)
    assert statuses == ["0"] and not (tmp_path / "never").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_step_sees_the_users_variables_not_the_scripts(shell: str, tmp_path: Path) -> None:
    """The kept shell keeps each step's status in a variable of its own: a later step (or
    script) sees the user's variable of a short name (here from the session's
    environment), not the last status."""
    m = Marker("t")
    done = subprocess.run(
        [*shell_path(shell), "-c", m.keep(["exit 4", 'echo "s=$s"'])],
        input=m.more(["false", "never"], end=False) + m.more(['echo "s=$s"'], end=True),
        capture_output=True,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "s": "mine"},
        timeout=20,
        check=False,
    )
    out = done.stdout.decode()
    assert re.findall(r"canarytui-t-end \d+ (\d+)", out) == ["4", "1", "0"]
    assert re.findall(r"s=\w+", out) == ["s=mine"]


@pytest.mark.parametrize("shell", SHELLS)
def test_a_later_script_is_its_commands_and_a_few_bytes_of_ours(shell: str, tmp_path: Path) -> None:
    """A kept shell reads each later script a byte at a time (a system call each): the end
    marks come from a function the first script defines, so a step costs ~25 bytes of ours
    beyond its command (it was ~190), and every status still arrives as the step left it."""
    commands = ["true", "(exit 255)", "(exit 7)", "touch never"]
    sent = Marker().more(commands, end=False)  # a real tag's length
    ours = len(sent) - sum(len(c) for c in commands)
    assert ours <= 32 * len(commands) + 80, sent.decode()
    m = Marker("t")
    later = [m.more(commands[:2], end=False), m.more(commands[2:], end=True)]
    statuses, _ = run(shell, ["exit 3"], later, tmp_path)
    assert statuses == ["3", "0", "255", "7"] and not (tmp_path / "never").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_own_scripts_run_in_the_shell_itself_and_steps_in_subshells(
    shell: str, tmp_path: Path
) -> None:
    """canarytui's own scripts (a lock, a release) start no subshell: what one sets is there
    for the next; a step's ``cd``, variables and ``exit`` stay in its own subshell."""
    m = Marker("t")
    first = [OwnScript("canarytui_x=kept; echo own1"), "cd /; y=step; exit 0"]
    later = [
        m.more(['echo "step:$canarytui_x:$y:$PWD"'], end=False),
        m.more([OwnScript('echo "own2:$canarytui_x:$y:$PWD"')], end=True),
    ]
    statuses, out = run(shell, first, later, tmp_path)
    assert statuses == ["0", "0", "0", "0"]
    assert "own1\n" in out
    assert f"step:kept::{tmp_path}\n" in out and f"own2:kept::{tmp_path}\n" in out


@pytest.mark.parametrize("shell", SHELLS)
def test_each_end_mark_says_what_the_step_took_on_the_hosts_clock(
    shell: str, tmp_path: Path
) -> None:
    m = Marker("t")
    _, out = run(shell, ["sleep 0.3", "true"], [m.more(["sleep 0.2"], end=True)], tmp_path)
    tails = StepTails(m, 10_000)
    tails.feed(out.encode())
    took = [t for _, _, t in tails.ended]
    assert len(took) == 3 and None not in took, out
    assert took[0] is not None and 0.25 <= took[0] <= 1.0, took
    assert took[1] is not None and took[1] <= 0.1, took
    assert took[2] is not None and 0.15 <= took[2] <= 1.0, took


def test_an_end_mark_without_a_clock_leaves_the_time_to_the_reader() -> None:
    """A host without /proc/uptime says "-": no time told (the reader times the step);
    nor for stamps that are not two numbers going forwards."""
    tails = StepTails(Marker("t"), 1000)
    tails.feed(
        b"canarytui-t 42\nout\n\ncanarytui-t-end 0 0 - -\n"
        b"\ncanarytui-t-end 1 3 12.50 12.75\n\ncanarytui-t-end 2 0 12.75 x\n"
        b"\ncanarytui-t-end 3 0 13 12\n\ncanarytui-t-end 4 0 nan 1\n\ncanarytui-t-end 5 0\n"
    )
    assert [(status, took) for _, status, took in tails.ended] == [
        (0, None),
        (3, 0.25),
        (0, None),
        (0, None),
        (0, None),
        (0, None),
    ]


@pytest.mark.parametrize("shell", SHELLS)
def test_a_script_of_each_runs_every_command_whatever_the_one_before(
    shell: str, tmp_path: Path
) -> None:
    """``script(stop=False)`` (a probe: the check, then the metrics): a failing command
    is marked with its status and the next runs all the same; the shell ends with 0."""
    done = subprocess.run(
        [*shell_path(shell), "-c", Marker("t").script(["exit 3", "echo metrics"], stop=False)],
        capture_output=True,
        cwd=tmp_path,
        timeout=20,
        check=False,
    )
    out = done.stdout.decode()
    assert re.findall(r"canarytui-t-end \d+ (\d+)", out) == ["3", "0"], out
    assert "metrics" in out and done.returncode == 0, (out, done.stderr)
