"""The journal: SQLite (WAL) record of deployments, host outcomes, events and decisions.

The engine writes an event here before any consumer sees it, so after a crash the journal
says which host is on which version, and a later process can continue the deployment.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from canarytui import events as ev

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
    finished_at REAL
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
CREATE TABLE IF NOT EXISTS decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment  INTEGER NOT NULL,
    at          REAL NOT NULL,
    user        TEXT NOT NULL,
    machine     TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
"""

# Outcomes after which nothing more can be done with a deployment but roll it back.
_CLOSING = {
    ev.Outcome.COMPLETE,
    ev.Outcome.CANARY_FAILED,
    ev.Outcome.PROMOTION_ROLLED_BACK,
    ev.Outcome.ROLLED_BACK,
}


def default_state_dir() -> Path:
    override = os.environ.get("CANARYTUI_STATE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir("canarytui", appauthor=False))


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def machine_name() -> str:
    return socket.gethostname() or "localhost"


@dataclass(frozen=True)
class HostRecord:
    host: str
    role: str
    previous: str | None
    current: str | None
    state: str
    last_step: str | None
    exit_status: int | None
    output: str | None
    updated_at: float


@dataclass(frozen=True)
class DeploymentRecord:
    id: int
    token: str
    env: str
    app: str
    env_path: str
    version: str
    phase: str
    wave: int | None
    waves: int
    is_open: bool
    outcome: str | None
    verdict: str | None
    summary: str | None
    canaries: list[str]
    plan: list[list[str]]
    user: str
    machine: str
    started_at: float
    updated_at: float
    finished_at: float | None

    @property
    def phase_label(self) -> str:
        return ev.phase_label(ev.Phase(self.phase), self.wave, self.waves)


class Journal:
    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / "journal.sqlite3"
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    # Deployments ------------------------------------------------------------------

    def create_deployment(
        self,
        *,
        token: str,
        env: str,
        app: str,
        env_path: str,
        version: str,
        canaries: list[str],
        plan: list[list[str]],
        previous: dict[str, str | None],
        user: str,
        machine: str,
    ) -> int:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO deployments (token, env, app, env_path, version, phase, waves,"
                " canaries, plan, user, machine, started_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    token,
                    env,
                    app,
                    env_path,
                    version,
                    ev.Phase.IDLE.value,
                    len(plan),
                    json.dumps(canaries),
                    json.dumps(plan),
                    user,
                    machine,
                    now,
                    now,
                ),
            )
            deployment = int(cur.lastrowid or 0)
            roles = {h: "canary" for h in canaries}
            for i, wave in enumerate(plan, 1):
                roles.update({h: f"wave {i}" for h in wave})
            db.executemany(
                "INSERT INTO hosts (deployment, host, role, previous, current, state, updated_at)"
                " VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        deployment,
                        h,
                        role,
                        previous.get(h),
                        previous.get(h),
                        ev.HostState.PENDING.value,
                        now,
                    )
                    for h, role in roles.items()
                ],
            )
        return deployment

    def deployment(self, deployment: int) -> DeploymentRecord | None:
        row = self._db.execute("SELECT * FROM deployments WHERE id = ?", (deployment,)).fetchone()
        return _deployment(row) if row else None

    def open_deployment(self, env: str, app: str) -> DeploymentRecord | None:
        row = self._db.execute(
            "SELECT * FROM deployments WHERE env = ? AND app = ? AND is_open = 1"
            " ORDER BY id DESC LIMIT 1",
            (env, app),
        ).fetchone()
        return _deployment(row) if row else None

    def last_deployment(self, env: str, app: str) -> DeploymentRecord | None:
        row = self._db.execute(
            "SELECT * FROM deployments WHERE env = ? AND app = ? ORDER BY id DESC LIMIT 1",
            (env, app),
        ).fetchone()
        return _deployment(row) if row else None

    def history(self, env: str, app: str, limit: int = 100) -> list[DeploymentRecord]:
        rows = self._db.execute(
            "SELECT * FROM deployments WHERE env = ? AND app = ? ORDER BY id DESC LIMIT ?",
            (env, app, limit),
        ).fetchall()
        return [_deployment(r) for r in rows]

    def hosts(self, deployment: int) -> dict[str, HostRecord]:
        rows = self._db.execute(
            "SELECT host, role, previous, current, state, last_step, exit_status, output,"
            " updated_at FROM hosts WHERE deployment = ? ORDER BY rowid",
            (deployment,),
        ).fetchall()
        return {r["host"]: HostRecord(**dict(r)) for r in rows}

    def events(self, deployment: int) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT data FROM events WHERE deployment = ? ORDER BY id", (deployment,)
        ).fetchall()
        return [json.loads(r["data"]) for r in rows]

    def decisions(self, deployment: int) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT at, user, machine, action, detail FROM decisions WHERE deployment = ?"
            " ORDER BY id",
            (deployment,),
        ).fetchall()
        return [dict(r) for r in rows]

    # Events -----------------------------------------------------------------------

    def record(self, event: ev.Event) -> None:
        """Store one event and what it changes, in one transaction."""
        if event.deployment is None or not event.journaled:
            return
        d = event.deployment
        now = event.at
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (deployment, at, kind, host, data) VALUES (?,?,?,?,?)",
                (d, now, event.kind, getattr(event, "host", None), event.to_json()),
            )
            match event:
                case ev.PhaseChanged(phase=phase, wave=wave, waves=waves):
                    db.execute(
                        "UPDATE deployments SET phase = ?, wave = ?, waves = ?, updated_at = ?"
                        " WHERE id = ?",
                        (phase.value, wave, waves, now, d),
                    )
                case ev.HostUpdate(host=host, state=state, version=version, detail=detail):
                    db.execute(
                        "UPDATE hosts SET state = ?, current = COALESCE(?, current),"
                        " output = CASE WHEN ? != '' THEN ? ELSE output END, updated_at = ?"
                        " WHERE deployment = ? AND host = ?",
                        (state.value, version, detail, detail, now, d, host),
                    )
                case ev.StepResult(host=host, step=step, exit_status=status, output=output):
                    db.execute(
                        "UPDATE hosts SET last_step = ?, exit_status = ?, output = ?,"
                        " updated_at = ? WHERE deployment = ? AND host = ?",
                        (step, status, output, now, d, host),
                    )
                case ev.VerdictReached(verdict=verdict):
                    db.execute(
                        "UPDATE deployments SET verdict = ?, updated_at = ? WHERE id = ?",
                        (verdict.value, now, d),
                    )
                case ev.Decision(action=action, user=user, detail=detail):
                    db.execute(
                        "INSERT INTO decisions (deployment, at, user, machine, action, detail)"
                        " VALUES (?,?,?,?,?,?)",
                        (d, now, user, machine_name(), action, detail),
                    )
                case ev.DeploymentFinished(outcome=outcome, summary=summary):
                    closing = outcome in _CLOSING
                    db.execute(
                        "UPDATE deployments SET outcome = ?, summary = ?, is_open = ?,"
                        " finished_at = ?, updated_at = ? WHERE id = ?",
                        (
                            outcome.value,
                            summary,
                            0 if closing else 1,
                            now if closing else None,
                            now,
                            d,
                        ),
                    )
                case _:
                    db.execute("UPDATE deployments SET updated_at = ? WHERE id = ?", (now, d))

    def set_previous(self, deployment: int, host: str, version: str | None) -> None:
        """What a host ran before this deployment, so it can be rolled back."""
        self.set_previous_many(deployment, {host: version})

    def set_previous_many(self, deployment: int, versions: Mapping[str, str | None]) -> None:
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE hosts SET previous = ?, current = ?, updated_at = ?"
                " WHERE deployment = ? AND host = ?",
                [(v, v, now, deployment, h) for h, v in versions.items()],
            )

    def discard(self, deployment: int) -> None:
        """Forget a deployment that never started (its locks could not be had)."""
        with self._tx() as db:
            if db.execute(
                "SELECT 1 FROM events WHERE deployment = ? LIMIT 1", (deployment,)
            ).fetchone():
                return
            db.execute("DELETE FROM hosts WHERE deployment = ?", (deployment,))
            db.execute("DELETE FROM deployments WHERE id = ?", (deployment,))

    def reopen(self, deployment: int) -> None:
        """A finished deployment being rolled back is open again until that ends."""
        with self._tx() as db:
            db.execute(
                "UPDATE deployments SET is_open = 1, finished_at = NULL WHERE id = ?", (deployment,)
            )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _deployment(row: sqlite3.Row) -> DeploymentRecord:
    data = dict(row)
    data["canaries"] = json.loads(data["canaries"])
    data["plan"] = json.loads(data["plan"])
    data["is_open"] = bool(data["is_open"])
    return DeploymentRecord(**data)
