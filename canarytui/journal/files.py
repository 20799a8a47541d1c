"""Where the journal lives, kept private (state dir 0700, files 0600), and opening it.

The modes do not depend on the umask: the database file is created 0600 before SQLite
opens it, and SQLite gives its -wal/-shm files the database file's mode. Existing files
and folders of ours that are looser are tightened.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import platformdirs

from canarytui.journal.errors import JournalError, guard
from canarytui.journal.schema import ensure_schema

JOURNAL_NAME = "journal.sqlite3"
SIDECARS = ("-wal", "-shm", "-journal")
# What a state dir holds; only a folder holding nothing else is ours to tighten.
# What canarytui keeps there: the journal, its locks, the demo fleet's pointer (demo.json).
_STATE_ENTRIES = {JOURNAL_NAME, *(JOURNAL_NAME + s for s in SIDECARS), "locks", "demo.json"}


def default_state_dir() -> Path:
    override = os.environ.get("CANARYTUI_STATE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir("canarytui", appauthor=False))


def open_journal(state_dir: Path, path: Path, timeout: float) -> sqlite3.Connection:
    """The journal's connection, private, in WAL mode, at this code's schema version."""
    with guard(path, "could not be opened"):
        private_dir(state_dir)
        if path.is_dir():
            raise JournalError(
                path,
                "could not be opened: it is a directory, not a file",
                "move the directory, or use another --state-dir",
            )
        private_file(path)
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            ensure_schema(db, path)
            _tighten_sidecars(path)  # SQLite has made them by now, with the file's mode
        except BaseException:
            db.close()
            raise
        return db


def private_dir(state_dir: Path) -> None:
    """Make the state dir 0700, or tighten an existing one of ours to owner-only."""
    try:
        state_dir.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        st = os.stat(state_dir)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(20, "Not a directory", str(state_dir)) from None
        if _ours_and_loose(st) and _holds_only_state(state_dir):
            os.chmod(state_dir, stat.S_IMODE(st.st_mode) & 0o700)
    else:
        os.chmod(state_dir, 0o700)  # whatever the umask took away


def private_file(path: Path) -> None:
    """Create the journal file 0600 (SQLite would use 0644 less the umask), or tighten it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        _tighten(path)
    else:
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    _tighten_sidecars(path)


def _tighten_sidecars(path: Path) -> None:
    for suffix in SIDECARS:
        _tighten(Path(f"{path}{suffix}"))


def _tighten(path: Path) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and _ours_and_loose(st):
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o600)


def _ours_and_loose(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and bool(st.st_mode & 0o077)


def _holds_only_state(folder: Path) -> bool:
    """Never narrow a folder someone keeps other things in (a --state-dir of ~ or /tmp)."""
    return all(name in _STATE_ENTRIES for name in os.listdir(folder))
