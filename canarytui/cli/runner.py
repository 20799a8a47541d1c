"""The headless runner: one engine call with a printer attached, and the journal it writes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from canarytui.cli import stopping
from canarytui.cli.args import UsageError
from canarytui.cli.printers import HumanPrinter, JsonPrinter
from canarytui.cli.relay import relayed
from canarytui.config import Environment

LATEST_SHOWN = 5  # deployments named when an ID is not one


def deployment_by_id(journal: Any, env: Environment, given: str, command: str) -> Any:
    """The deployment ``given`` (``12`` or ``#12``) if it is ``env``'s; else ``UsageError``
    saying why and which are the latest (for `replay` and `report`: exit 2, and with
    ``--format json`` the result object on stdout)."""
    where = f"{env.name}/{env.app}"
    text = given.strip().removeprefix("#")
    number = int(text) if text.isdigit() and len(text) < 19 else None  # SQLite's integers
    record = journal.deployment(number) if number is not None else None
    if record is not None and (record.env, record.app) == (env.name, env.app):
        return record
    if number is None:
        problem = f"the deployment ID must be a number (as canarytui history shows), got {given!r}"
    else:
        problem = f"no deployment #{number} of {where} in the journal"
    records = journal.history(env.name, env.app, limit=LATEST_SHOWN)
    if records:
        latest = "; the latest: " + ", ".join(
            f"#{r.id} {r.version} ({r.outcome or 'open: ' + r.phase_label})" for r in records
        )
    else:
        latest = f"; it has none yet in {journal.path}"
    raise UsageError(f"{command}: {problem}{latest} (canarytui history {env.path})")


def asking(hosts: int, what: str) -> None:
    """Before a command waits on every host (seconds at a thousand hosts) with nothing to
    print yet: one line on stderr saying what it asks of how many, on a terminal only
    (a script reading stdout or stderr gets nothing more)."""
    err = sys.stderr
    if err is not None and err.isatty():
        print(f"canarytui: {what} {hosts} host(s)…", file=err, flush=True)


def journal(args: argparse.Namespace, reads: bool = False) -> Any:
    """The journal in `--state-dir` (or the default state dir); imported only when needed.
    ``reads``: a command that only reads it refuses a `--state-dir` that does not exist
    (a mistyped one made an empty journal there, and "no open deployment" hid a real one)."""
    from canarytui.journal import Journal

    given = args.state_dir
    if reads and given is not None and not Path(given).expanduser().exists():
        raise UsageError(f"--state-dir {given}: no such folder, so no journal to read (mistyped?)")
    return Journal(given)


def run_engine(
    args: argparse.Namespace,
    env: Environment,
    json_out: bool,
    action: Callable[[Any], Coroutine[Any, Any, int]],
) -> int:
    """Run one engine call with a printer attached; always close connections. Its output
    is written by a thread (``relay``): the engine never waits on whoever reads it."""
    from canarytui.engine import Engine

    opened = journal(args)
    if json_out:
        printer: JsonPrinter | HumanPrinter = JsonPrinter(sys.stdout)
    else:
        printer = HumanPrinter(sys.stdout, endpoints={h.name: h.endpoint for h in env.hosts})

    async def go() -> int:
        engine = Engine(env, opened)
        engine.subscribe(printer)
        stopping.watch(engine)  # a signal that stops the command is said in the journal
        try:
            return await action(engine)
        finally:
            await engine.notifier.close()  # what is queued is sent (bounded), then it stops
            await engine.fleet.close()

    try:
        with relayed(sys.stdout):
            return asyncio.run(go())
    finally:
        opened.close()
