"""The journal's tables, its schema version (PRAGMA user_version) and the upgrade steps.

A fresh journal is created at SCHEMA_VERSION; an older one is upgraded in place, one step
per version, in one transaction; a newer one is refused (this code cannot know its tables).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from canarytui.journal.errors import JournalError

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token       TEXT NOT NULL UNIQUE,   -- the deployment's identity, written into its locks
    env         TEXT NOT NULL,
    app         TEXT NOT NULL,
    env_path    TEXT NOT NULL,
    version     TEXT NOT NULL,
    phase       TEXT NOT NULL,
    wave        INTEGER,
    waves       INTEGER NOT NULL DEFAULT 0,
    is_open     INTEGER NOT NULL DEFAULT 1,
    outcome     TEXT,
    verdict     TEXT,
    summary     TEXT,
    canaries    TEXT NOT NULL,          -- JSON list
    plan        TEXT NOT NULL,          -- JSON list of waves (lists of host names)
    user        TEXT NOT NULL,
    machine     TEXT NOT NULL,
    started_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    finished_at REAL,
    kind        TEXT NOT NULL DEFAULT 'deploy', -- deploy | rollback (rollback --to VERSION)
    scope       TEXT                    -- deploy --hosts as given (NULL: every host of the file)
);
CREATE INDEX IF NOT EXISTS deployments_env ON deployments (env, app, id);
CREATE TABLE IF NOT EXISTS hosts (
    deployment  INTEGER NOT NULL REFERENCES deployments (id),
    host        TEXT NOT NULL,
    role        TEXT NOT NULL,          -- canary | wave N
    previous    TEXT,                   -- the version it ran before this deployment
    current     TEXT,                   -- the version it runs now, as far as we know
    state       TEXT NOT NULL,
    last_step   TEXT,
    exit_status INTEGER,
    output      TEXT,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (deployment, host)
);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment  INTEGER,
    at          REAL NOT NULL,
    kind        TEXT NOT NULL,
    host        TEXT,
    data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_deployment ON events (deployment, id);
CREATE TABLE IF NOT EXISTS unopened (
    token       TEXT PRIMARY KEY,       -- a start refused before it opened (its row discarded)
    deployment  INTEGER NOT NULL,       -- the number its locks carry
    env         TEXT NOT NULL,
    app         TEXT NOT NULL,
    machine     TEXT NOT NULL,
    refused_at  REAL NOT NULL           -- a host kept its lock: unreachable as it was freed
);
CREATE TABLE IF NOT EXISTS decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment  INTEGER NOT NULL,
    at          REAL NOT NULL,
    user        TEXT NOT NULL,
    machine     TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decisions_deployment ON decisions (deployment);
"""


def _create(db: sqlite3.Connection) -> None:
    """Every table and index of SCHEMA that is missing (statement by statement: an
    ``executescript`` would commit the transaction it runs in)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _upgrade_0_to_1(db: sqlite3.Connection) -> None:
    """Version 0 is the previous release: the same tables without a version stamp."""
    _create(db)


def _upgrade_1_to_2(db: sqlite3.Connection) -> None:
    """Version 2 tells a deployment from a ``rollback --to VERSION`` (``kind``)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(deployments)")}
    if "kind" not in columns:
        db.execute("ALTER TABLE deployments ADD COLUMN kind TEXT NOT NULL DEFAULT 'deploy'")


def _upgrade_2_to_3(db: sqlite3.Connection) -> None:
    """Version 3 knows a deployment limited to some of the file's hosts (``scope``)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(deployments)")}
    if "scope" not in columns:
        db.execute("ALTER TABLE deployments ADD COLUMN scope TEXT")


def _upgrade_3_to_4(db: sqlite3.Connection) -> None:
    """Version 4 remembers the starts refused before they opened whose lock a host kept
    (``unopened``): the next deployment from the journal frees it, as a finished one's."""
    _create(db)


# UPGRADES[n] takes a journal from version n to n + 1.
UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {
    0: _upgrade_0_to_1,
    1: _upgrade_1_to_2,
    2: _upgrade_2_to_3,
    3: _upgrade_3_to_4,
}


def ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    """Create, upgrade or accept the journal's tables; refuse a version this code does not know."""
    version = _version(db)
    if version == SCHEMA_VERSION:
        return
    _refuse_unknown(version, path)
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _version(db)  # again, now that no one else can be upgrading it
        if version == 0:
            tables = {
                r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:
                _create(db)
                version = SCHEMA_VERSION
            elif "deployments" not in tables:
                raise JournalError(
                    path,
                    "is an SQLite database but not a canarytui journal (no deployments table)",
                    "move it aside, or use another --state-dir",
                )
        _refuse_unknown(version, path)
        while version < SCHEMA_VERSION:
            UPGRADES[version](db)
            version += 1
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _refuse_unknown(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise JournalError(
            path,
            f"has schema version {version}, newer than this canarytui understands "
            f"({SCHEMA_VERSION})",
            "upgrade canarytui, or use another --state-dir",
        )
    if version < 0 or (version < SCHEMA_VERSION and version not in UPGRADES):
        raise JournalError(
            path,
            f"has schema version {version}, which no canarytui release wrote",
            "move it aside, or use another --state-dir",
        )
