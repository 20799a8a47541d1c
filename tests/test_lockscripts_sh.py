"""The lock script run by a real POSIX shell: the version a host printed comes back as
its first line that is not blank, read by the shell itself, the first time and after."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_keep_sh import SHELLS, shell_path
from test_keep_sh import run as run_kept

from canarytui.engine import lockscripts
from canarytui.engine.locks import Owner
from canarytui.ssh.remote import Marker

OWNER = Owner("0123456789abcdef0123456789abcdef", 7, "2.0.0", "ana", "laptop")


def run(home: Path, script: str, program: Sequence[str] = ("/bin/sh",)) -> lockscripts.Reply:
    done = subprocess.run(
        [*program, "-c", script],
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.stderr == ""
    return lockscripts.parse_reply(done.stdout)


@pytest.mark.parametrize(
    ("printed", "first"),
    [("1.3.0\n", "1.3.0"), ("\n   \n1.3.0\nmore\n", "1.3.0"), ("1.3.0", "1.3.0"), ("", None)],
)
def test_previous_is_the_first_line_not_blank(
    tmp_path: Path, printed: str, first: str | None
) -> None:
    current = f"printf %s {shlex.quote(printed)}"
    script = lockscripts.acquire_command("shop", "prod", OWNER, current)
    for _ in range(2):  # the first lock writes the file; taking it again reads it back
        reply = run(tmp_path, script)
        assert reply.has("LOCKED")
        assert reply.first_line("PREVIOUS") == first
    kept = tmp_path / ".canarytui" / "lock.prod.shop" / "previous"
    assert kept.read_text() == printed.rstrip("\n") + "\n"  # kept whole, one line end


def test_a_discovery_cut_off_keeps_no_previous_and_the_next_lock_asks_again(
    tmp_path: Path,
) -> None:
    """The host's previous version is written only once ``deploy.current`` has finished: a
    shell killed while it runs (a lost connection, a timeout) leaves no ``previous`` behind
    (not a partial one), and the deployment's next lock asks the host again."""
    cut_off = subprocess.run(
        [
            "/bin/sh",
            "-c",
            lockscripts.acquire_command("shop", "prod", OWNER, "echo 1.2; kill -9 $$"),
        ],
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert cut_off.returncode == -9
    lock = tmp_path / ".canarytui" / "lock.prod.shop"
    assert (lock / "owner").is_file() and not (lock / "previous").exists()
    reply = run(tmp_path, lockscripts.acquire_command("shop", "prod", OWNER, "echo 1.3.0"))
    assert reply.has("LOCKED") and reply.first_line("PREVIOUS") == "1.3.0"
    assert (lock / "previous").read_text() == "1.3.0\n"


def test_a_lock_starts_no_process_on_a_host_locked_before(tmp_path: Path) -> None:
    """Locks run on every host when a deployment starts: the shell creates the owner file
    exclusively itself, so no process starts on a host locked before (one on a host never
    locked before: its folder), free or held; a second deployment is still refused, and
    the release frees the lock."""
    tools = tmp_path / "bin"
    tools.mkdir()
    started = tmp_path / "started"
    for tool in ("mkdir", "mv", "rm", "grep", "head"):
        real = shutil.which(tool)
        assert real is not None, tool
        wrapper = tools / tool
        log = shlex.quote(str(started))
        wrapper.write_text(f'#!/bin/sh\necho {tool} >> {log}\nexec {shlex.quote(real)} "$@"\n')
        wrapper.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    other = Owner("f" * 32, 8, "2.1.0", "bo", "desk")
    path = f"{tools}:{os.environ['PATH']}"

    def lock(owner: Owner) -> tuple[lockscripts.Reply, list[str]]:
        started.write_text("")
        done = subprocess.run(
            ["/bin/sh", "-c", lockscripts.acquire_command("shop", "prod", owner)],
            env={"HOME": str(home), "PATH": path},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        reply = lockscripts.parse_reply(done.stdout)
        # Its status says whether the lock is the owner's (a host's steps after it stop).
        assert done.returncode == (0 if reply.has("LOCKED") else 1), done
        return reply, started.read_text().split()

    reply, ran = lock(OWNER)
    assert reply.has("LOCKED") and ran == ["mkdir"]  # the folder, the first time only
    reply, ran = lock(other)
    assert reply.has("HELD") and reply.owner()["token"] == OWNER.token
    assert ran == ["head"]  # the owner shown
    reply, ran = lock(OWNER)  # the same deployment takes its own lock again
    assert reply.has("LOCKED") and ran == []
    release = lockscripts.release_command("shop", "prod", OWNER.token)
    subprocess.run(
        ["/bin/sh", "-c", release], env={"HOME": str(home), "PATH": path}, check=True, timeout=10
    )
    reply, ran = lock(other)
    assert reply.has("LOCKED") and ran == []
    assert lock(OWNER)[0].owner()["token"] == other.token


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("noclobber", [False, True])
def test_the_lock_leaves_the_shells_noclobber_as_it_was(
    tmp_path: Path, shell: str, noclobber: bool
) -> None:
    """The lock is an exclusive create (``set -C``) in the login shell that later runs the
    steps: after it, ``>`` overwrites again, unless the user's shell had ``-C`` itself."""
    program = shell_path(shell)
    (tmp_path / "file").write_text("before\n")
    other = Owner("f" * 32, 8, "2.1.0", "bo", "desk")
    script = "\n".join(
        [
            "set -C" if noclobber else "set +C",
            lockscripts.acquire_command("shop", "prod", OWNER, "echo 1.3.0"),
            lockscripts.acquire_command("shop", "prod", other, "echo 1.3.0"),
            "{ echo after > file; } 2>/dev/null && echo CANARYTUI-CURRENT",
        ]
    )
    done = subprocess.run(
        [*program, "-c", script],
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    reply = lockscripts.parse_reply(done.stdout)
    assert reply.has("LOCKED") and reply.first_line("PREVIOUS") == "1.3.0"
    assert reply.owner()["token"] == OWNER.token  # the second deployment was refused
    assert reply.has("CURRENT") is not noclobber
    assert (tmp_path / "file").read_text() == ("before\n" if noclobber else "after\n")


def test_the_lock_leaves_the_users_variables_alone(tmp_path: Path) -> None:
    """The shell that takes the lock runs the steps next: the lock scripts' variables are
    their own (prefixed), so a variable of the user's, short names included, keeps its
    value for the steps, through a lock, a refused lock and a release."""
    names = ["D", "T", "o", "p", "c", "r"]
    other = Owner("f" * 32, 8, "2.1.0", "bo", "desk")
    script = "\n".join(
        [
            *(f"{name}=mine" for name in names),
            lockscripts.acquire_command("shop", "prod", OWNER, "echo 1.3.0"),
            lockscripts.acquire_command("shop", "prod", other, "echo 1.3.0"),
            lockscripts.release_command("shop", "prod", OWNER.token, {"by": "ana"}),
            "echo CANARYTUI-CURRENT; echo " + " ".join(f'"${name}"' for name in names),
        ]
    )
    reply = run(tmp_path, script)
    assert reply.has("LOCKED") and reply.owner()["token"] == OWNER.token
    assert reply.first_line("CURRENT") == "mine mine mine mine mine mine"
    assert not (tmp_path / ".canarytui" / "lock.prod.shop" / "owner").exists()
    # The take-over note went where its readers look, not to a path of the user's.
    assert '"by": "ana"' in (tmp_path / ".canarytui" / "taken.prod.shop").read_text()


@pytest.mark.parametrize("shell", SHELLS)
def test_of_many_deployments_locking_at_once_exactly_one_wins(tmp_path: Path, shell: str) -> None:
    """Twelve deployments take a host's lock at the same instant (a host never locked
    before, then one locked before): exactly one gets it, each other is refused with the
    winner's owner, and the owner file is the winner's whole line."""
    program = shell_path(shell)
    owners = [Owner(f"{i:032x}", i, "2.0.0", f"op{i}", "desk") for i in range(12)]
    go = tmp_path / "go"
    # Every shell spins (boundedly) until the file `go` exists, then locks.
    wait = (
        f'i=0; while [ ! -e {shlex.quote(str(go))} ] && [ "$i" -lt 200000 ]; do i=$((i+1)); done; '
    )
    for _ in range(2):
        go.unlink(missing_ok=True)
        racers = [
            subprocess.Popen(
                [*program, "-c", wait + lockscripts.acquire_command("shop", "prod", o, "echo 1.0")],
                env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
                stdout=subprocess.PIPE,
                text=True,
            )
            for o in owners
        ]
        go.touch()
        replies = [lockscripts.parse_reply(r.communicate(timeout=20)[0]) for r in racers]
        winners = [o for o, reply in zip(owners, replies, strict=True) if reply.has("LOCKED")]
        assert len(winners) == 1, [sorted(r.sections) for r in replies]
        token = winners[0].token
        assert all(r.owner()["token"] == token for r in replies if not r.has("LOCKED"))
        owner_file = tmp_path / ".canarytui" / "lock.prod.shop" / "owner"
        assert json.loads(owner_file.read_text())["token"] == token
        release = lockscripts.release_command("shop", "prod", token)
        subprocess.run(
            [*program, "-c", release], env={"HOME": str(tmp_path)}, check=True, timeout=10
        )
        assert not owner_file.exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_lock_that_cannot_be_made_says_why_not_whose(tmp_path: Path, shell: str) -> None:
    """Nobody holds the lock but its folder cannot be made (here: the home is under a
    file): the reply says so, with the folder, never HELD (a lock with no owner)."""
    program = shell_path(shell)
    (tmp_path / "file").write_text("")
    home = tmp_path / "file" / "home"
    owner = {"user": "ana", "machine": "laptop", "maintenance": "disks", "since": 1.0}
    for script in (
        lockscripts.acquire_command("shop", "prod", OWNER, "echo 1.0"),
        lockscripts.hold_command("shop", "prod", owner),
    ):
        reply = run(home, script, program)
        assert sorted(reply.sections) == ["UNLOCKABLE"], reply
        folder = home / ".canarytui" / "lock.prod.shop"
        assert lockscripts.why_unlockable(reply) == (
            f"cannot take its lock: cannot create the folder {folder}"
        )


@pytest.mark.parametrize("shell", SHELLS)
def test_a_kept_shell_locks_and_releases_without_a_subshell(shell: str, tmp_path: Path) -> None:
    """The lock and the release run in the host's kept shell itself (a process saved on
    every host of a release): what the lock set is there for the next script; the
    discovery command still runs apart (its ``exit`` ends only itself)."""
    m = Marker("t")
    lock = lockscripts.acquire_command("shop", "prod", OWNER, "echo 1.3.0; exit 4")
    release = lockscripts.release_command("shop", "prod", OWNER.token)
    later = [m.more(['echo "lock folder: $canarytui_d"'], end=False), m.more([release], True)]
    home = {"HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    _, out = run_kept(shell, [lock], later, tmp_path, home)
    assert lockscripts.parse_reply(out).first_line("PREVIOUS") == "1.3.0"
    assert "lock folder: " + str(tmp_path / ".canarytui" / "lock.prod.shop") in out
    assert not (tmp_path / ".canarytui" / "lock.prod.shop" / "owner").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_the_lock_scripts_check_function_says_whose_the_lock_is_now(
    tmp_path: Path, shell: str
) -> None:
    """The script that takes a host's lock defines ``canarytui_mine``, which each later
    script that changes the host calls (14 bytes, where the check's own text is read a byte
    at a time by the kept shell): the lock still ours (left as it is: who, since when), the
    deployment taken over by a colleague (their note), another's lock, or ours broken and
    free again (taken again), each said as the whole check says it, in every shell."""
    program = shell_path(shell)
    define = lockscripts.check_function("shop", "prod", OWNER)
    take = define + lockscripts.acquire_command("shop", "prod", OWNER)
    call = f"{define}{lockscripts.CHECK_CALL}"  # (the kept shell has it from the lock)
    folder = tmp_path / ".canarytui" / "lock.prod.shop"
    assert run(tmp_path, take, program).has("LOCKED")
    kept = (folder / "owner").read_text()
    assert run(tmp_path, call, program).has("LOCKED")
    assert (folder / "owner").read_text() == kept  # checked, not written again
    (folder / "owner").unlink()  # broken (unlock --force): free, so taken again
    assert run(tmp_path, call, program).has("LOCKED")
    assert json.loads((folder / "owner").read_text())["token"] == OWNER.token
    other = Owner("f" * 32, 8, "2.1.0", "bo", "desk")
    (folder / "owner").write_text(json.dumps(other.as_dict()) + "\n")
    held = run(tmp_path, call, program)
    assert held.has("HELD") and held.owner("HELD")["user"] == "bo"
    (folder / "owner").unlink()
    note = {"token": OWNER.token, "user": "cy", "machine": "desk", "outcome": "rolled back"}
    (tmp_path / ".canarytui" / "taken.prod.shop").write_text(json.dumps(note) + "\n")
    taken = run(tmp_path, call, program)
    assert taken.has("TAKEN") and taken.owner("TAKEN")["user"] == "cy"
    assert not (folder / "owner").exists()  # a taken-over deployment's lock: not again
    assert len(lockscripts.CHECK_CALL) < 20 < 1000 < len(define)
