"""Rollout commands: deploy, promote, rollback, and the summary that ends each."""

from __future__ import annotations

import argparse
import json
from typing import Any

from canarytui import events as ev
from canarytui.cli.args import OUTCOME_EXIT
from canarytui.cli.runner import run_engine
from canarytui.config import load_env


def deploy(args: argparse.Namespace) -> int:
    """`deploy ENV VERSION`: canaries, analysis, then (with --auto-promote) every wave."""
    env = load_env(args.env)
    env.validate_version(args.version)
    if args.previous is not None:
        env.validate_version(args.previous)
    canaries = [c.strip() for c in args.canary.split(",") if c.strip()] if args.canary else None

    async def action(engine: Any) -> int:
        outcome = await engine.deploy(
            args.version,
            canaries=canaries,
            canary_percent=args.canary_percent,
            auto_promote=args.auto_promote,
            assume_previous=args.previous,
        )
        return finish(engine, outcome, args.json)

    return run_engine(args, env, args.json, action)


def promote(args: argparse.Namespace) -> int:
    """`promote`: the open deployment to every remaining wave."""
    env = load_env(args.env)

    async def action(engine: Any) -> int:
        outcome = await engine.promote(all_waves=True)
        return finish(engine, outcome, args.json)

    return run_engine(args, env, args.json, action)


def rollback(args: argparse.Namespace) -> int:
    """`rollback`: the open (or last) deployment back where it went (or another machine's)."""
    env = load_env(args.env)

    async def action(engine: Any) -> int:
        outcome = await engine.rollback(take_over=args.take_over)
        return finish(engine, outcome, args.json)

    return run_engine(args, env, args.json, action)


def finish(engine: Any, outcome: ev.Outcome, json_out: bool) -> int:
    """Print the result (a JSON line or the summary) and return its exit status."""
    code = OUTCOME_EXIT[outcome]
    if json_out:
        print(
            json.dumps(
                {
                    "event": "result",
                    "outcome": outcome.value,
                    "exit": code,
                    "deployment": engine.deployment.id if engine.deployment else None,
                }
            )
        )
    else:
        print(summary_text(engine, outcome))
    return code


def summary_text(engine: Any, outcome: ev.Outcome) -> str:
    """The closing lines: outcome, hosts per state, what to run next."""
    d = engine.deployment
    lines = [f"== {outcome.value}" + (f": deployment #{d.id} of {d.version}" if d else "")]
    counts: dict[str, list[str]] = {}
    if d is not None:
        for h in d.canaries + [h for wave in d.plan for h in wave]:
            counts.setdefault(engine.host_states[h].value, []).append(h)
    for state, hosts in sorted(counts.items()):
        shown = ", ".join(hosts[:8]) + (f" and {len(hosts) - 8} more" if len(hosts) > 8 else "")
        lines.append(f"   {state:>15}: {len(hosts):>4}  {shown}")
    env = engine.env.path
    both = f"next: canarytui promote {env}, or canarytui rollback {env}"
    hints = {
        ev.Outcome.CANARY_PASSED: both,
        ev.Outcome.INCONCLUSIVE: both,
        ev.Outcome.HALTED: both,
        ev.Outcome.PAUSED: f"next: canarytui promote {env}",
    }
    if outcome in hints:
        lines.append("   " + hints[outcome])
    return "\n".join(lines)
