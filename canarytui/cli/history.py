"""The history command: past deployments from the journal, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from canarytui import events as ev
from canarytui.cli import runner
from canarytui.cli.args import EXIT_OK
from canarytui.cli.printers import column_widths, when
from canarytui.config import Environment, load_env
from canarytui.journal import DeploymentRecord
from canarytui.journal.records import machine_name
from canarytui.textsafe import harmless

CANARIES_SHOWN = 3  # canaries named in a row of the table
USER_SHOWN = 32  # characters of a user's name in the table


def history(args: argparse.Namespace) -> int:
    """`history`: past deployments, newest first, as a table or JSON lines."""
    env = load_env(args.env)
    journal = runner.journal(args, reads=True)
    try:
        records = journal.history(env.name, env.app)
        if args.json:
            for r in records:
                print(
                    json.dumps(
                        {
                            "deployment": r.id,
                            "kind": r.kind,
                            "version": r.version,
                            "phase": r.phase,
                            "outcome": r.outcome,
                            "open": r.is_open,
                            # no process drives it (the table's ", stopped")
                            "stopped": r.is_open and nobody_drives(r, journal.state_dir, env),
                            "verdict": r.verdict,
                            "canaries": r.canaries,
                            "scope": r.scope,  # deploy --hosts as given; null: every host
                            "user": r.user,
                            "machine": r.machine,
                            "started_at": r.started_at,
                            "finished_at": r.finished_at,
                            "summary": r.summary,
                        }
                    )
                )
            return EXIT_OK
        if not records:
            print(f"{env.name}/{env.app}: no deployments in {journal.path}")
            return EXIT_OK
        rows = [("#", "STARTED", "VERSION", "OUTCOME", "BY", "CANARIES")]
        for r in records:
            # A table row: a few names, then a count (report ID lists them all).
            canaries = r.what_went(CANARIES_SHOWN)
            outcome = r.outcome or f"open: {_phase(r, journal.state_dir, env)}"
            outcome += r.ended_short(journal.hosts)
            user = harmless(r.user, USER_SHOWN)
            rows.append((str(r.id), when(r.started_at), r.version, outcome, user, canaries))
        # Each column as wide as its widest cell (an open deployment's "open: promoting
        # wave 2/3", a long version), so that every row's columns line up.
        widths = column_widths(rows)
        for row in rows:
            cells = [c.ljust(w) for c, w in zip(row[:5], widths, strict=True)]
            cells[0] = row[0].rjust(widths[0])
            print(f"{'  '.join(cells)}  {harmless(row[5])}".rstrip())
        return EXIT_OK
    finally:
        journal.close()


def _phase(record: DeploymentRecord, state_dir: Path, env: Environment) -> str:
    """An open deployment's phase, ", stopped" if no process drives it (as status says)."""
    stopped = nobody_drives(record, state_dir, env)
    return ev.phase_label(ev.Phase(record.phase), record.wave, record.waves, stopped)


def nobody_drives(record: DeploymentRecord, state_dir: Path, env: Environment) -> bool:
    """Whether the open deployment ``record`` is stopped: no process drives it (its
    local lock names no live process of this machine, nor another machine)."""
    from canarytui.engine import locks  # only for an open deployment: the engine is big

    path = locks.local_lock_path(state_dir, env.name, env.app)
    return locks.nobody_drives(path, record, machine_name())
