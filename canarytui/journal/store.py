"""The Journal: the engine's record of deployments, host outcomes, events and decisions.

The engine writes an event here before any consumer sees it, so after a crash the journal
says which host is on which version, and a later process can continue the deployment.
Every SQLite failure leaves as a JournalError naming the journal and what to do.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from canarytui import events as ev
from canarytui.journal.errors import guard
from canarytui.journal.files import JOURNAL_NAME, default_state_dir, open_journal
from canarytui.journal.records import (
    TAKE_OVER,
    DeploymentRecord,
    HostRecord,
    UnopenedStart,
    deployment_from_row,
    machine_name,
)

# Outcomes after which nothing more can be done with a deployment but roll it back.
_CLOSING = {
    ev.Outcome.COMPLETE,
    ev.Outcome.CANARY_FAILED,
    ev.Outcome.PROMOTION_ROLLED_BACK,
    ev.Outcome.ROLLED_BACK,
}


# A deployment's row, whether a rollback of it has begun (a host of it rolling back,
# rolled back, or failed to): one halted then may only be rolled back again (``way_out``),
# and whether this journal took it over from another machine's (``rollback --take-over``).
_ROLLBACK_STATES = ", ".join(f"'{s.value}'" for s in sorted(ev.ROLLBACK_BEGUN))
_DEPLOYMENTS = (
    "SELECT d.*, EXISTS (SELECT 1 FROM hosts h WHERE h.deployment = d.id"
    f" AND h.state IN ({_ROLLBACK_STATES})) AS rollback_begun,"
    " EXISTS (SELECT 1 FROM decisions c WHERE c.deployment = d.id"
    f" AND c.action = '{TAKE_OVER}') AS taken_over FROM deployments d"
)


class Journal:
    """`journal.sqlite3` in the state dir; raises JournalError, never an sqlite3 error.

    `timeout` is how long a write waits for another process's write to finish.
    """

    def __init__(self, state_dir: Path | str | None = None, *, timeout: float = 10.0) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.path = self.state_dir / JOURNAL_NAME
        self._db = open_journal(self.state_dir, self.path, timeout)

    def close(self) -> None:
        with guard(self.path, "could not be closed"):
            self._db.close()

    @contextmanager
    def _tx(self, failed: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; any failure (a full disk: SQLite then rolls back itself)
        is rolled back and leaves as a JournalError saying `failed`."""
        with guard(self.path, failed):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

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
        kind: str = "deploy",
        scope: str | None = None,
    ) -> int:
        """A new deployment, open; ``scope``: the hosts it was limited to, as the operator
        named them (``deploy --hosts``), None for every host of the file."""
        now = time.time()
        with self._tx(f"could not record a new deployment of {version}") as db:
            cur = db.execute(
                "INSERT INTO deployments (token, env, app, env_path, version, phase, waves,"
                " canaries, plan, user, machine, started_at, updated_at, kind, scope)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    kind,
                    scope,
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
        rows = self._query(f"deployment #{deployment}", _DEPLOYMENTS + " WHERE id = ?", deployment)
        return deployment_from_row(rows[0]) if rows else None

    def deployment_by_token(self, token: str) -> DeploymentRecord | None:
        """The deployment whose identity (written into its locks) is `token`, if ours."""
        rows = self._query("the deployment of a lock", _DEPLOYMENTS + " WHERE token = ?", token)
        return deployment_from_row(rows[0]) if rows else None

    def by_token(self, token: str) -> DeploymentRecord | UnopenedStart | None:
        """Whose ``token`` is in this journal: a deployment, or a start refused before it
        opened whose lock a host kept; None: another journal's (another machine's)."""
        return self.deployment_by_token(token) or self.unopened_by_token(token)

    def unopened_by_token(self, token: str) -> UnopenedStart | None:
        """The start refused before it opened whose identity is ``token``, if ours and a
        host kept its lock (``discard``)."""
        rows = self._query(
            "the refused start of a lock",
            "SELECT deployment, token, machine, refused_at FROM unopened WHERE token = ?",
            token,
        )
        return UnopenedStart(*rows[0]) if rows else None

    def open_deployment(self, env: str, app: str) -> DeploymentRecord | None:
        rows = self._query(
            f"the open deployment of {env}/{app}",
            _DEPLOYMENTS + " WHERE env = ? AND app = ? AND is_open = 1 ORDER BY id DESC LIMIT 1",
            env,
            app,
        )
        return deployment_from_row(rows[0]) if rows else None

    def last_deployment(self, env: str, app: str) -> DeploymentRecord | None:
        rows = self._query(
            f"the last deployment of {env}/{app}",
            _DEPLOYMENTS + " WHERE env = ? AND app = ? ORDER BY id DESC LIMIT 1",
            env,
            app,
        )
        return deployment_from_row(rows[0]) if rows else None

    def history(self, env: str, app: str, limit: int = 100) -> list[DeploymentRecord]:
        rows = self._query(
            f"the deployments of {env}/{app}",
            _DEPLOYMENTS + " WHERE env = ? AND app = ? ORDER BY id DESC LIMIT ?",
            env,
            app,
            limit,
        )
        return [deployment_from_row(r) for r in rows]

    def known_versions(self, env: str, app: str) -> list[str]:
        """The releases this journal saw on the environment's hosts, newest first: each
        completed deployment's, and what its hosts ran before each deployment."""
        rows = self._query(
            f"the releases known of {env}/{app}",
            "SELECT version, MAX(seen) AS seen FROM ("
            " SELECT version, id AS seen FROM deployments"
            "  WHERE env = ? AND app = ? AND outcome = 'complete'"
            " UNION ALL SELECT h.previous, d.id FROM hosts h"
            "  JOIN deployments d ON d.id = h.deployment"
            "  WHERE d.env = ? AND d.app = ? AND h.previous IS NOT NULL"
            ") GROUP BY version ORDER BY seen DESC, version DESC",
            env,
            app,
            env,
            app,
        )
        return [r["version"] for r in rows]

    def hosts(self, deployment: int) -> dict[str, HostRecord]:
        rows = self._query(
            f"the hosts of deployment #{deployment}",
            "SELECT host, role, previous, current, state, last_step, exit_status, output,"
            " updated_at FROM hosts WHERE deployment = ? ORDER BY rowid",
            deployment,
        )
        return {r["host"]: HostRecord(**dict(r)) for r in rows}

    def events(self, deployment: int) -> list[dict[str, Any]]:
        rows = self._query(
            f"the events of deployment #{deployment}",
            "SELECT data FROM events WHERE deployment = ? ORDER BY id",
            deployment,
        )
        return [json.loads(r["data"]) for r in rows]

    def last_traffic(self, deployment: int) -> dict[str, Any] | None:
        """What the load balancer was last told for ``deployment`` (its ``traffic`` event),
        or None: no traffic hook of it has run."""
        rows = self._query(
            f"the traffic hooks of deployment #{deployment}",
            "SELECT data FROM events WHERE deployment = ? AND kind = 'traffic'"
            " ORDER BY id DESC LIMIT 1",
            deployment,
        )
        return json.loads(rows[0]["data"]) if rows else None

    def events_after(
        self, env: str, app: str, after: int, limit: int = 5000
    ) -> list[tuple[int, dict[str, Any]]]:
        """The events of ``env``'s ``app`` recorded after event id ``after`` (ids grow with
        every event of the journal, whichever process records it), oldest first, at most
        ``limit``: (id, the event's dict)."""
        rows = self._query(
            f"the events of {env}/{app} since #{after}",
            "SELECT e.id, e.data FROM events e JOIN deployments d ON d.id = e.deployment"
            " WHERE e.id > ? AND d.env = ? AND d.app = ? ORDER BY e.id LIMIT ?",
            after,
            env,
            app,
            limit,
        )
        return [(r["id"], json.loads(r["data"])) for r in rows]

    def last_event_id(self) -> int:
        """The id of the journal's last event (0: none yet)."""
        rows = self._query("its last event", "SELECT COALESCE(MAX(id), 0) AS last FROM events")
        return int(rows[0]["last"])

    def decisions(self, deployment: int) -> list[dict[str, Any]]:
        rows = self._query(
            f"the decisions of deployment #{deployment}",
            "SELECT at, user, machine, action, detail FROM decisions WHERE deployment = ?"
            " ORDER BY id",
            deployment,
        )
        return [dict(r) for r in rows]

    def _query(self, what: str, sql: str, *params: object) -> list[sqlite3.Row]:
        with guard(self.path, f"could not read {what}"):
            return list(self._db.execute(sql, params).fetchall())

    # Events -----------------------------------------------------------------------

    def record(self, event: ev.Event) -> None:
        """Store one event and what it changes, in one transaction."""
        self.record_many((event,))

    def record_many(self, events: Iterable[ev.Event]) -> list[int]:
        """Store events in order, each with what it changes, in one transaction: a burst
        (a thousand hosts said pending at once) costs one commit, not one each. Returns
        the ids they were stored under."""
        kept = [e for e in events if e.deployment is not None and e.journaled]
        if not kept:
            return []
        first = kept[0]
        what = f"an event ({first.kind})" if len(kept) == 1 else f"{len(kept)} events"
        with self._tx(f"could not record {what} of deployment #{first.deployment}") as db:
            return [self._write(db, event) for event in kept]

    @staticmethod
    def _write(db: sqlite3.Connection, event: ev.Event) -> int:
        d = event.deployment
        now = event.at
        stored = db.execute(
            "INSERT INTO events (deployment, at, kind, host, data) VALUES (?,?,?,?,?)",
            (d, now, event.kind, getattr(event, "host", None), event.to_json()),
        ).lastrowid
        assert stored is not None  # an INSERT's
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
        return stored

    def set_previous(self, deployment: int, host: str, version: str | None) -> None:
        """What a host ran before this deployment, so it can be rolled back."""
        self.set_previous_many(deployment, {host: version})

    def set_previous_many(self, deployment: int, versions: Mapping[str, str | None]) -> None:
        now = time.time()
        with self._tx(
            f"could not record hosts' previous versions in deployment #{deployment}"
        ) as db:
            db.executemany(
                "UPDATE hosts SET previous = ?, current = ?, updated_at = ?"
                " WHERE deployment = ? AND host = ?",
                [(v, v, now, deployment, h) for h, v in versions.items()],
            )

    def discard(self, deployment: int, lock_kept: bool = False) -> None:
        """Forget a deployment that never started (its locks could not be had). With
        ``lock_kept`` (a host it locked could not be reached to free it), its token is
        remembered (``unopened``): the next deployment from this journal frees that lock."""
        with self._tx(f"could not discard deployment #{deployment}, which never started") as db:
            if db.execute(
                "SELECT 1 FROM events WHERE deployment = ? LIMIT 1", (deployment,)
            ).fetchone():
                return
            if lock_kept:
                db.execute(
                    "INSERT OR IGNORE INTO unopened"
                    " (token, deployment, env, app, machine, refused_at)"
                    " SELECT token, id, env, app, machine, ? FROM deployments WHERE id = ?",
                    (time.time(), deployment),
                )
            db.execute("DELETE FROM hosts WHERE deployment = ?", (deployment,))
            db.execute("DELETE FROM deployments WHERE id = ?", (deployment,))

    def reopen(self, deployment: int) -> None:
        """A finished deployment being rolled back is open again until that ends: its
        outcome and summary are gone (history and status say "open: rolling back", and
        it no longer counts as the release that completed) until the rollback's own."""
        with self._tx(f"could not reopen deployment #{deployment} for its rollback") as db:
            db.execute(
                "UPDATE deployments SET is_open = 1, finished_at = NULL, outcome = NULL,"
                " summary = NULL WHERE id = ?",
                (deployment,),
            )
