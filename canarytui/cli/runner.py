"""The headless runner: one engine call with a printer attached, and the journal it writes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from canarytui.cli.printers import HumanPrinter, JsonPrinter
from canarytui.config import Environment


def journal(args: argparse.Namespace) -> Any:
    """The journal in `--state-dir` (or the default state dir); imported only when needed."""
    from canarytui.journal import Journal

    return Journal(args.state_dir)


def run_engine(
    args: argparse.Namespace,
    env: Environment,
    json_out: bool,
    action: Callable[[Any], Coroutine[Any, Any, int]],
) -> int:
    """Run one engine call with a printer attached; always close connections."""
    from canarytui.engine import Engine

    opened = journal(args)
    printer = JsonPrinter(sys.stdout) if json_out else HumanPrinter(sys.stdout)

    async def go() -> int:
        engine = Engine(env, opened)
        engine.subscribe(printer)
        try:
            return await action(engine)
        finally:
            await engine.notifier.close()  # what is queued is sent (bounded), then it stops
            await engine.fleet.close()

    try:
        return asyncio.run(go())
    finally:
        opened.close()
