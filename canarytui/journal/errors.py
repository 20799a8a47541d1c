"""JournalError: what failed with the journal, in words, with its path and what to do next.

Every ``sqlite3.Error`` (and ``OSError`` around it) from the journal becomes one of these,
so that no SQLite traceback reaches a user. Imports nothing heavy.
"""

from __future__ import annotations

import errno
import os
import pwd
import resource
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_ELSEWHERE = "or use another --state-dir"
_KEEP = (
    "move it and any -wal/-shm files beside it aside (keep them: they may be the only record "
    f"of a deployment in progress), {_ELSEWHERE}"
)
_MIB = 1 << 20


class JournalError(Exception):
    """The journal cannot be used: its path, what failed and what to do, in one message."""

    def __init__(self, path: Path | str, problem: str, remedy: str) -> None:
        self.path = Path(path)
        self.problem = problem
        self.remedy = remedy
        super().__init__(f"journal {self.detail}")

    @property
    def detail(self) -> str:
        """The message without its leading word "journal" (the CLI says that itself)."""
        return f"{self.path} {self.problem}: {self.remedy}"


@contextmanager
def guard(path: Path, failed: str) -> Iterator[None]:
    """Turn an SQLite or OS error in the block into a JournalError saying `failed` ("could
    not record an event") and why."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise translate(path, failed, exc) from exc


def translate(path: Path, failed: str, exc: sqlite3.Error | OSError) -> JournalError:
    """The JournalError for one SQLite or OS error met while doing `failed`."""
    if isinstance(exc, OSError):
        reason, remedy = _os_error(path, exc)
    else:
        reason, remedy = _sqlite_error(path, exc)
    return JournalError(path, f"{failed}: {reason}", remedy)


def _sqlite_error(path: Path, exc: sqlite3.Error) -> tuple[str, str]:
    said = str(exc) or type(exc).__name__
    code = getattr(exc, "sqlite_errorcode", None) or 0
    name = getattr(exc, "sqlite_errorname", "") or ""
    primary = code & 0xFF
    folder = path.parent
    if primary == sqlite3.SQLITE_NOTADB or "not a database" in said:
        return f"it is not an SQLite database, corrupt or another file ({said})", _KEEP
    if primary == sqlite3.SQLITE_CORRUPT or "malformed" in said:
        return f"it is damaged, truncated or corrupt ({said})", _KEEP
    if primary == sqlite3.SQLITE_FULL or "disk is full" in said:
        return _full(path, said)
    if primary == sqlite3.SQLITE_IOERR or "I/O error" in said:
        limited = _over_file_size_limit(path)
        if limited or _disk_nearly_full(folder):
            return _full(path, said, limited)
        doing = "reading" if name == "SQLITE_IOERR_READ" else "writing"
        return (
            f"{doing} it failed ({said}): the disk may be full or failing",
            f"check the disk holding {folder} (free space, kernel log), then run again",
        )
    if primary == sqlite3.SQLITE_READONLY or "readonly" in said:
        what = "its folder is" if name == "SQLITE_READONLY_DIRECTORY" else "it is"
        return f"{what} read-only to {_user()} ({said})", _writable(path)
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return f"it cannot be opened ({said})", _writable(path)
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in said:
        return (
            f"another process kept it locked for too long ({said})",
            f"wait for the other canarytui using {folder} to finish and run again, {_ELSEWHERE}",
        )
    return f"SQLite failed ({said})", f"check the file, {_KEEP}"


def _os_error(path: Path, exc: OSError) -> tuple[str, str]:
    where = exc.filename if exc.filename is not None else path
    said = f"{exc.strerror or exc}: {where}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied ({said})", _writable(path)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _full(path, said)
    if exc.errno == errno.EFBIG:
        return _full(path, said, _over_file_size_limit(path))
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"a file stands where its folder should be ({said})", f"move it, {_ELSEWHERE}"
    if exc.errno == errno.EISDIR:
        return f"it is a directory, not a file ({said})", f"move the directory, {_ELSEWHERE}"
    return f"the system refused ({said})", f"check {path.parent}, {_ELSEWHERE}"


def _full(path: Path, said: str, limit: int | None = None) -> tuple[str, str]:
    after = "`canarytui status ENV.yaml` then shows where a deployment stopped"
    if limit is not None:
        return (
            f"it is full: a journal file reached this process's file size limit "
            f"(ulimit -f, {limit} bytes) ({said})",
            f"raise that limit and run again; {after}",
        )
    return (
        f"the disk is full ({said})",
        f"free space on the disk holding {path.parent} and run again; {after}",
    )


def _over_file_size_limit(path: Path) -> int | None:
    """The file size limit (RLIMIT_FSIZE) if a journal file has (nearly) reached it."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            size = os.stat(f"{path}{suffix}").st_size
        except OSError:
            continue
        if size + 2 * 65536 >= limit:  # within a page or two (pages are at most 64 KiB)
            return int(limit)
    return None


def _disk_nearly_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _MIB


def _writable(path: Path) -> str:
    return f"make {path} and its folder writable by {_user()}, {_ELSEWHERE}"


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"
