"""The journal is private (0700/0600), versioned, and fails with a clear JournalError."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import new_deployment

from canarytui import events as ev
from canarytui.engine.locks import left_behind
from canarytui.journal import SCHEMA, SCHEMA_VERSION, Journal, JournalError
from canarytui.journal.errors import translate
from canarytui.journal.records import machine_name
from canarytui.journal.schema import UPGRADES

REPO = Path(__file__).resolve().parent.parent
ENV_FILE = REPO / "sample_envs" / "example-production.yaml"
NOBODY = 65534
IS_ROOT = os.geteuid() == 0


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def step(d: int, n: int, size: int = 200) -> ev.StepResult:
    return ev.StepResult(
        host="web-02",
        step=f"step {n}",
        action="deploy",
        exit_status=0,
        output="x" * size,
        duration=0.1,
        deployment=d,
    )


def filled_journal(state: Path, events: int = 0) -> tuple[Path, int]:
    """A closed journal with one deployment (and `events` events); its path and the id."""
    journal = Journal(state)
    d = new_deployment(journal)
    for n in range(events):
        journal.record(step(d, n))
    journal.close()
    return journal.path, d


def in_child(fn: Callable[[], str], *, user: int | None = None) -> str:
    """Run `fn` in a forked child (as `user`) and return what it said, or the exception it
    raised. A fork, not an exec: `nobody` may not be able to reach this Python."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            if user is not None:
                os.setgroups([])
                os.setgid(user)
                os.setuid(user)
            try:
                said = fn()
            except JournalError as exc:
                said = f"JournalError: {exc}"
            except BaseException:
                said = traceback.format_exc()
            os.write(write_end, said.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    return said


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A folder `nobody` can reach (pytest's tmp_path is under a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="canarytui-journal-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


# Private ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_a_fresh_state_dir_is_0700_and_the_journal_0600_whatever_the_umask(
    tmp_path: Path, umask: Callable[[int], None], mask: int
) -> None:
    umask(mask)
    state = tmp_path / "deep" / "state"
    journal = Journal(state)
    d = new_deployment(journal)
    journal.record(step(d, 1))
    path = journal.path
    assert mode(state) == 0o700
    assert mode(path) == 0o600
    assert mode(f"{path}-wal") == 0o600
    assert mode(f"{path}-shm") == 0o600
    journal.close()
    # the -wal and -shm files are made again by the next process, with the same mode
    again = Journal(state)
    again.record(step(d, 2))
    assert mode(f"{path}-wal") == 0o600
    assert mode(f"{path}-shm") == 0o600
    assert len(again.events(d)) == 2
    again.close()


def test_an_existing_world_readable_journal_and_dir_are_tightened(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    state = tmp_path / "state"
    path, d = filled_journal(state, events=3)
    state.chmod(0o755)
    path.chmod(0o644)
    # another (older) process holds it open: its -wal and -shm copy the file's 0644
    other = sqlite3.connect(path)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("SELECT count(*) FROM events").fetchone()
    assert mode(f"{path}-wal") == 0o644
    assert mode(f"{path}-shm") == 0o644
    journal = Journal(state)
    assert mode(state) == 0o700
    assert mode(path) == 0o600
    assert mode(f"{path}-wal") == 0o600
    assert mode(f"{path}-shm") == 0o600
    assert len(journal.events(d)) == 3
    journal.close()
    other.close()


def test_a_folder_holding_other_things_keeps_its_mode_but_the_journal_is_private(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    """`--state-dir ~` or `/tmp` must not lock its owner or everyone else out of it."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "notes.txt").write_text("mine\n")
    journal = Journal(shared)
    assert mode(shared) == 0o755
    assert mode(journal.path) == 0o600
    journal.close()


# Versioned -------------------------------------------------------------------------------


def test_a_fresh_journal_is_created_at_the_current_version(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    journal.close()
    db = sqlite3.connect(journal.path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    db.close()


def test_there_is_an_upgrade_step_for_every_older_version() -> None:
    assert sorted(UPGRADES) == list(range(SCHEMA_VERSION))


def test_a_journal_of_the_previous_release_is_upgraded_in_place_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = sqlite3.connect(state / "journal.sqlite3")
    old.executescript(SCHEMA)  # what the previous release did: no version
    old.execute(
        "INSERT INTO deployments (token, env, app, env_path, version, phase, waves, canaries,"
        " plan, user, machine, started_at, updated_at)"
        " VALUES ('old', 'production', 'shop', '/e.yaml', '1.9.0', 'complete', 1,"
        " '[\"web-01\"]', '[[\"web-02\"]]', 'bob', 'desk', 1.0, 2.0)"
    )
    old.commit()
    assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    old.close()

    journal = Journal(state)
    record = journal.last_deployment("production", "shop")
    assert record is not None
    assert (record.token, record.version, record.user) == ("old", "1.9.0", "bob")
    assert record.canaries == ["web-01"] and record.plan == [["web-02"]]
    assert journal.deployment_by_token("old") == record
    assert journal.deployment_by_token("unknown") is None
    d = new_deployment(journal, token="new")  # and it takes new ones
    assert [r.version for r in journal.history("production", "shop")] == ["2.0.0", "1.9.0"]
    assert journal.deployment(d) is not None
    journal.close()
    db = sqlite3.connect(state / "journal.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def schema_without(*columns: str) -> str:
    """SCHEMA as an older release wrote it: without these columns of ``deployments``."""
    text = re.sub(r"--[^\n]*", "", SCHEMA)
    for column in columns:
        text, found = re.subn(rf",\s*{column}\s[^,)]*", "", text, count=1)
        assert found, column
    return text


def an_older_journal(state: Path, version: int, *without: str, kind: str = "deploy") -> Journal:
    """A journal as release ``version`` wrote it (its deployments table ``without`` the
    later columns), with one deployment of 1.9.0, then opened (upgraded) by this code."""
    state.mkdir()
    old = sqlite3.connect(state / "journal.sqlite3")
    old.executescript(schema_without(*without))
    columns = "" if "kind" in without else ", kind"
    old.execute(
        "INSERT INTO deployments (token, env, app, env_path, version, phase, waves, canaries,"
        f" plan, user, machine, started_at, updated_at{columns})"
        " VALUES ('old', 'production', 'shop', '/e.yaml', '1.9.0', 'complete', 1,"
        " '[]', '[[\"web-02\"]]', 'bob', 'desk', 1.0, 2.0" + (", ?)" if columns else ")"),
        (kind,) if columns else (),
    )
    old.execute(f"PRAGMA user_version = {version:d}")
    old.commit()
    old.close()
    return Journal(state)


def test_a_version_1_journal_gets_the_kind_of_each_deployment(tmp_path: Path) -> None:
    journal = an_older_journal(tmp_path / "state", 1, "kind", "scope")
    record = journal.last_deployment("production", "shop")
    assert record is not None and record.kind == "deploy" and record.version == "1.9.0"
    assert record.scope is None
    journal.close()


def test_a_version_2_journal_keeps_its_deployments_as_made_for_every_host(tmp_path: Path) -> None:
    journal = an_older_journal(tmp_path / "state", 2, "scope", kind="rollback")
    record = journal.last_deployment("production", "shop")
    assert record is not None and (record.kind, record.scope) == ("rollback", None)
    d = new_deployment(journal, token="limited", scope="web-0*")
    assert (journal.deployment(d) or record).scope == "web-0*"
    journal.close()


def test_a_version_3_journal_remembers_refused_starts_that_left_a_lock(tmp_path: Path) -> None:
    """Version 3 had no ``unopened`` table: upgraded, a start refused while a host kept its
    lock is remembered by its token (not as a deployment); one that left none is not."""
    state = tmp_path / "state"
    state.mkdir()
    old = sqlite3.connect(state / "journal.sqlite3")
    old.executescript(re.sub(r"CREATE TABLE IF NOT EXISTS unopened \([^;]*\);", "", SCHEMA))
    assert "unopened" not in {r[0] for r in old.execute("SELECT name FROM sqlite_master")}
    old.execute("PRAGMA user_version = 3")
    old.commit()
    old.close()
    journal = Journal(state)
    try:
        kept = new_deployment(journal, token="kept")
        journal.discard(kept, lock_kept=True)
        freed = new_deployment(journal, token="freed")
        journal.discard(freed)
        assert journal.deployment(kept) is None and journal.deployment(freed) is None
        assert journal.history("production", "shop") == []
        start = journal.unopened_by_token("kept")
        assert start is not None and (start.id, start.token) == (kept, "kept")
        assert start.machine == "laptop" and not start.is_open and start.finished_at > 0
        assert journal.unopened_by_token("freed") is None
    finally:
        journal.close()


def test_a_refused_starts_lock_is_recognised_only_as_its_own(tmp_path: Path) -> None:
    """``left_behind``: a host's lock a refused start left is this journal's if the token,
    number and machine are the start's and it was written before the refusal."""
    journal = Journal(tmp_path / "state")
    try:
        d = new_deployment(journal, token="a" * 32)
        journal.discard(d, lock_kept=True)
        start = journal.unopened_by_token("a" * 32)
        assert start is not None
        owner = {"token": "a" * 32, "deployment": d, "machine": "laptop", "since": 1.0}
        assert left_behind(journal, owner) == start
        assert left_behind(journal, {**owner, "machine": "colleagues-laptop"}) is None
        assert left_behind(journal, {**owner, "deployment": d + 1}) is None
        assert left_behind(journal, {**owner, "since": start.finished_at + 60}) is None
        assert left_behind(journal, {**owner, "token": "b" * 32}) is None
    finally:
        journal.close()


def newer_journal(state: Path, version: int = 99) -> Path:
    path, _ = filled_journal(state)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    return path


def test_a_journal_of_a_newer_canarytui_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = newer_journal(tmp_path / "state")
    with pytest.raises(JournalError) as err:
        Journal(tmp_path / "state")
    assert str(err.value) == (
        f"journal {path} has schema version 99, newer than this canarytui understands "
        f"({SCHEMA_VERSION}): "
        "upgrade canarytui, or use another --state-dir"
    )
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 99
    assert db.execute("SELECT count(*) FROM deployments").fetchone()[0] == 1
    db.close()


def test_an_sqlite_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    db = sqlite3.connect(state / "journal.sqlite3")
    db.execute("CREATE TABLE photos (name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="not a canarytui journal") as err:
        Journal(state)
    assert str(state / "journal.sqlite3") in str(err.value)


# Clear failures --------------------------------------------------------------------------


def test_a_corrupt_journal_is_a_clear_refusal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.sqlite3").write_bytes(os.urandom(8192))
    with pytest.raises(JournalError) as err:
        Journal(state)
    message = str(err.value)
    assert message.startswith(f"journal {state / 'journal.sqlite3'} could not be opened: ")
    assert "not an SQLite database" in message
    assert "move it" in message and "--state-dir" in message


def test_a_truncated_journal_is_a_clear_refusal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path, d = filled_journal(state, events=1500)
    data = path.read_bytes()
    assert len(data) > 100 * 4096  # the cut falls among the events' pages
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JournalError) as err:
        journal = Journal(state)  # SQLite may notice at once, or on the first read
        journal.events(d)
        journal.history("production", "shop")
    assert str(path) in str(err.value)
    assert "damaged" in str(err.value)


def test_a_directory_in_place_of_the_journal_is_a_clear_refusal(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.sqlite3"
    path.mkdir(parents=True)
    with pytest.raises(JournalError, match="it is a directory") as err:
        Journal(tmp_path / "state")
    assert str(path) in str(err.value)


def test_a_file_in_place_of_the_state_dir_is_a_clear_refusal(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(JournalError, match="where its folder should be") as err:
        Journal(tmp_path / "state")
    assert str(tmp_path / "state" / "journal.sqlite3") in str(err.value)


def _read_only_case(public_dir: Path, *, folder_too: bool) -> tuple[Path, int]:
    state = public_dir / "state"
    path, d = filled_journal(state)
    state.chmod(0o755 if folder_too else 0o777)
    path.chmod(0o644)
    return path, d


def _open_and_record(state: Path, d: int) -> Callable[[], str]:
    def go() -> str:
        journal = Journal(state)
        read = len(journal.hosts(d))
        journal.record(step(d, 1))
        return f"recorded (after reading {read} hosts)"

    return go


@pytest.mark.parametrize("folder_too", [True, False], ids=["folder", "file"])
def test_a_read_only_journal_is_a_clear_refusal(public_dir: Path, folder_too: bool) -> None:
    path, d = _read_only_case(public_dir, folder_too=folder_too)
    if IS_ROOT:  # root ignores modes: try as nobody, with the files root's
        said = in_child(_open_and_record(path.parent, d), user=NOBODY)
    else:
        if not folder_too:
            pytest.skip("a read-only file in a folder of ours: covered as root (CI)")
        path.parent.chmod(0o555)
        path.chmod(0o444)
        try:
            said = in_child(_open_and_record(path.parent, d))
        finally:
            path.parent.chmod(0o755)
    assert said.startswith(f"JournalError: journal {path} could not "), said
    assert "read-only" in said and "writable by" in said


def test_a_full_disk_is_a_clear_failure_and_the_journal_stays_usable(tmp_path: Path) -> None:
    """A file size limit (ulimit -f) stands in for a full disk: writes fail the same way."""
    state = tmp_path / "state"
    path, d = filled_journal(state, events=1)

    def fill() -> str:
        journal = Journal(state)  # opened in the child: a connection must not cross a fork
        sizes = [os.stat(f"{path}{s}").st_size for s in ("", "-wal", "-shm")]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + 300_000, resource.RLIM_INFINITY))
        n = 0
        try:
            while n < 100_000:
                n += 1
                journal.record(step(d, n, size=2000))
        except JournalError as exc:
            said = f"JournalError: {exc}"
        else:
            return "the limit never hit"
        # once there is room again, the same journal goes on (no transaction left open)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        journal.record(step(d, n + 1))
        stored = len(journal.events(d))
        journal.close()
        return f"{said}\nstored {stored} of {n + 2}"  # step 0, steps 1..n (n failed), n + 1

    said = in_child(fill)
    first, _, after = said.partition("\n")
    assert first.startswith(f"JournalError: journal {path} could not record an event "), said
    assert "full" in first
    stored, tried = (int(w) for w in after.removeprefix("stored ").split(" of "))
    assert stored == tried - 1  # all but the event that did not fit


def test_a_journal_locked_past_the_timeout_is_a_clear_failure(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path, d = filled_journal(state)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    journal = Journal(state, timeout=0.2)
    with pytest.raises(JournalError, match="locked") as err:
        journal.record(step(d, 1))
    assert str(path) in str(err.value)
    other.execute("ROLLBACK")
    other.close()
    journal.record(step(d, 2))
    assert len(journal.events(d)) == 1
    journal.close()


def test_every_method_raises_journal_error_not_sqlite3(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    d = new_deployment(journal)
    journal._db.close()  # whatever goes wrong underneath
    calls: list[Callable[[], object]] = [
        lambda: journal.deployment(d),
        lambda: journal.open_deployment("production", "shop"),
        lambda: journal.deployment_by_token("t0ken"),
        lambda: journal.last_deployment("production", "shop"),
        lambda: journal.history("production", "shop"),
        lambda: journal.known_versions("production", "shop"),
        lambda: journal.hosts(d),
        lambda: journal.events(d),
        lambda: journal.decisions(d),
        lambda: journal.record(step(d, 1)),
        lambda: new_deployment(journal, token="another"),
        lambda: journal.set_previous(d, "web-01", "0.9.0"),
        lambda: journal.set_previous_many(d, {"web-01": "0.9.0"}),
        lambda: journal.discard(d),
        lambda: journal.reopen(d),
    ]
    for call in calls:
        with pytest.raises(JournalError) as err:
            call()
        assert str(journal.path) in str(err.value)


def test_the_known_releases_are_those_seen_on_the_hosts(tmp_path: Path) -> None:
    """What rollback --to may put back: a completed deployment's release and what the
    hosts ran before each one; not a release that never completed (2.0.0 rolled back),
    nor another environment's."""
    journal = Journal(tmp_path / "state")
    try:
        assert journal.known_versions("production", "shop") == []
        failed = new_deployment(journal)
        journal.record(
            ev.DeploymentFinished(outcome=ev.Outcome.CANARY_FAILED, summary="", deployment=failed)
        )
        assert journal.known_versions("production", "shop") == ["1.0.0"]
        done = new_deployment(journal, token="second")
        journal.set_previous(done, "web-01", "0.9.0")
        journal.record(
            ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary="", deployment=done)
        )
        assert journal.known_versions("production", "shop") == ["2.0.0", "1.0.0", "0.9.0"]
        assert journal.known_versions("staging", "shop") == []
    finally:
        journal.close()


def test_full_disk_errors_say_so(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    full = sqlite3.OperationalError("database or disk is full")
    message = str(translate(path, "could not record an event", full))
    assert message.startswith(f"journal {path} could not record an event: the disk is full")
    assert "free space" in message
    nospace = OSError(errno.ENOSPC, "No space left on device", str(path))
    assert "the disk is full" in str(translate(path, "could not be opened", nospace))


# Through the command line ----------------------------------------------------------------


def corrupt_journal(state: Path) -> None:
    state.mkdir(parents=True)
    (state / "journal.sqlite3").write_bytes(os.urandom(8192))


@pytest.mark.parametrize("command", ["history", "status"])
@pytest.mark.parametrize("case", ["corrupt", "newer"])
def test_the_cli_says_what_is_wrong_with_the_journal_and_exits_1(
    tmp_path: Path, command: str, case: str
) -> None:
    state = tmp_path / "state"
    if case == "corrupt":
        corrupt_journal(state)
    else:
        newer_journal(state)
    run = subprocess.run(
        [sys.executable, "-m", "canarytui", command, str(ENV_FILE), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith(f"canarytui: journal: {state / 'journal.sqlite3'} ")
    assert "Traceback" not in run.stderr
    expected = "not an SQLite database" if case == "corrupt" else "schema version 99"
    assert expected in run.stderr
    assert run.stdout == ""


def test_a_burst_is_journaled_whole_before_anyone_sees_any_of_it(tmp_path: Path) -> None:
    """Every host of a plan said pending at once: one transaction, committed before the
    first consumer sees the first event; a burst that cannot be journaled is seen by no one."""
    from canarytui.engine.bus import Bus, RolloutState

    journal = Journal(tmp_path / "state")
    d = new_deployment(journal)
    names = ["web-01", "web-02", "web-03"]
    state = RolloutState(host_states={n: ev.HostState.UNKNOWN for n in names})
    state.deployment = journal.deployment(d)
    bus = Bus(journal, state, "alice")
    seen: list[tuple[str, int, ev.HostState]] = []

    def consumer(event: ev.Event) -> None:
        assert isinstance(event, ev.HostUpdate)
        # Another process reading the journal meanwhile sees the whole burst.
        with sqlite3.connect(journal.path) as other:
            (stored,) = other.execute("SELECT count(*) FROM events").fetchone()
        seen.append((event.host, stored, state.host_states[event.host]))

    bus.subscribe(consumer)
    bus.hosts((n, ev.HostState.PENDING, "1.0.0", "") for n in names)
    assert seen == [(n, 3, ev.HostState.PENDING) for n in names]
    assert {n: h.state for n, h in journal.hosts(d).items()} == dict.fromkeys(names, "pending")

    other = sqlite3.connect(journal.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the journal locked past the timeout: nothing goes
    locked = Journal(tmp_path / "state", timeout=0.2)
    bus = Bus(locked, state, "alice")
    bus.subscribe(consumer)
    with pytest.raises(JournalError, match="could not record 3 events of deployment"):
        bus.hosts((n, ev.HostState.IDLE, None, "") for n in names)
    other.execute("ROLLBACK")
    other.close()
    assert len(seen) == 3 and len(journal.events(d)) == 3
    assert all(state.host_states[n] is ev.HostState.PENDING for n in names)
    locked.close()
    journal.close()


async def test_the_history_table_keeps_a_row_a_line_and_the_text_harmless(
    tmp_path: Path, state_dir: Path
) -> None:
    """A deployment to 40 canaries (--canary-percent on a large fleet) by a user whose name
    carries an escape: its row names three canaries and a count, the name as text, cut."""
    from conftest import run_cli
    from test_ui_support import write_env

    env = write_env(tmp_path, hosts=60)
    journal = Journal(state_dir)
    canaries = [f"web-{i:02d}" for i in range(1, 41)]
    journal.create_deployment(
        token="t0ken",
        env="production",
        app="shop",
        env_path=str(env),
        version="2.0.0",
        canaries=canaries,
        plan=[[f"web-{i:02d}" for i in range(41, 61)]],
        previous={},
        user="mallory\x1b[2J" + "y" * 100,
        machine="laptop",
    )
    journal.close()
    shown = await run_cli("history", str(env), state_dir=state_dir)
    assert shown.code == 0, shown.err
    (row,) = [line for line in shown.out.splitlines() if line.lstrip().startswith("1 ")]
    assert row.endswith("web-01, web-02, web-03 and 37 more"), row
    assert "\x1b" not in shown.out and "mallory␛yyy" in row and len(row) < 140, row


def test_why_a_host_is_unreachable_is_kept_until_it_is_not() -> None:
    """``refused``: the kind of SSH error that made a host unreachable (the UI names it on
    the tile); a later update that finds it otherwise forgets it."""
    from canarytui.engine.bus import RolloutState

    state = RolloutState(host_states={"web-01": ev.HostState.IDLE})
    state.refused["web-01"] = "host key refused"
    state.apply(ev.HostUpdate(host="web-01", state=ev.HostState.UNREACHABLE))
    assert state.refused == {"web-01": "host key refused"}
    state.apply(ev.HostUpdate(host="web-01", state=ev.HostState.IDLE, version="1.0.0"))
    assert state.refused == {}


def test_the_history_table_lines_up_whatever_its_cells(tmp_path: Path) -> None:
    """An open deployment's "open: promoting wave 2/3" (24 characters) and a long version
    pushed the columns after them out of line (OUTCOME was 22 wide, VERSION 14): each
    column is as wide as its widest cell. Started from this machine and driven by none of
    its processes, the open one is said stopped, as status says it."""
    state = tmp_path / "state"
    journal = Journal(state)
    try:
        done = journal.create_deployment(
            token="a",
            env="production",
            app="shop",
            env_path=str(ENV_FILE),
            version="2026.12.06-build.4711",
            canaries=["web-01"],
            plan=[["web-02"], ["web-03"]],
            previous={},
            user="alice",
            machine="laptop",
        )
        journal.record(
            ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary="", deployment=done)
        )
        d = new_deployment(journal)
        journal.record(ev.PhaseChanged(phase=ev.Phase.PROMOTING, wave=2, waves=3, deployment=d))
    finally:
        journal.close()

    def history(*more: str) -> list[str]:
        command = [sys.executable, "-m", "canarytui", "history", str(ENV_FILE)]
        run = subprocess.run(
            [*command, "--state-dir", state, *more],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.splitlines()

    def stopped() -> list[bool]:
        return [json.loads(line)["stopped"] for line in history("--json")]

    assert "open: promoting wave 2/3  " in history()[1]  # another machine's: not known here
    assert stopped() == [False, False]
    with sqlite3.connect(state / "journal.sqlite3") as db:
        db.execute("UPDATE deployments SET machine = ? WHERE id = ?", (machine_name(), d))
    header, *rows = history()
    assert "open: promoting wave 2/3, stopped" in rows[0] and "2026.12.06-build.4711" in rows[1]
    assert stopped() == [True, False]  # the open one; the finished one is no stopped one
    for column in ("OUTCOME", "BY", "CANARIES"):
        at = header.index(column)
        assert all(row[at - 2 : at] == "  " and row[at] != " " for row in rows), (column, rows)


def test_the_demo_fleets_pointer_keeps_the_state_dir_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo fleet wrote its pointer (demo.json) first: the state dir was made 0755, the
    file 0644, and the journal then left the folder as it was (it held a file not its
    own). The pointer is made private, and counted as canarytui's own."""
    from canarytui.demo.control import write_pointer

    state = tmp_path / "state"
    monkeypatch.setenv("CANARYTUI_STATE_DIR", str(state))
    pointer = write_pointer({"socket": str(tmp_path / "ctl.sock")})
    assert (mode(state), mode(pointer)) == (0o700, 0o600)
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    monkeypatch.setenv("CANARYTUI_STATE_DIR", str(loose))
    write_pointer({"socket": str(tmp_path / "ctl.sock")})
    Journal(loose).close()
    assert mode(loose) == 0o700  # a folder holding only canarytui's files is narrowed
