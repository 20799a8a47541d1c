"""The history command: past deployments from the journal, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json

from canarytui.cli import runner
from canarytui.cli.args import EXIT_OK
from canarytui.cli.printers import when
from canarytui.config import load_env
from canarytui.textsafe import harmless, listed

CANARIES_SHOWN = 3  # canaries named in a row of the table


def history(args: argparse.Namespace) -> int:
    """`history`: past deployments, newest first, as a table or JSON lines."""
    env = load_env(args.env)
    journal = runner.journal(args)
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
                            "verdict": r.verdict,
                            "canaries": r.canaries,
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
        print(f"{'#':>4}  {'STARTED':<19}  {'VERSION':<14} {'OUTCOME':<22} {'BY':<16} CANARIES")
        for r in records:
            outcome = r.outcome or f"open: {r.phase_label}"
            if r.kind == "rollback":
                canaries = f"(rollback to {r.version})"
            else:  # a table row: a few names, then a count (report ID lists them all)
                canaries = listed(r.canaries, CANARIES_SHOWN) or "(no canary phase)"
            print(
                f"{r.id:>4}  {when(r.started_at):<19}  {r.version:<14} {outcome:<22} "
                f"{harmless(r.user, 32):<16} {canaries}"
            )
        return EXIT_OK
    finally:
        journal.close()
