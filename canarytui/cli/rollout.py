"""Rollout commands: deploy, promote, rollback, and the summary that ends each."""

from __future__ import annotations

import argparse
import json
from typing import Any

from canarytui import events as ev
from canarytui.cli import dryrun
from canarytui.cli.args import OUTCOME_EXIT, UsageError
from canarytui.cli.runner import run_engine
from canarytui.config import load_env
from canarytui.textsafe import listed


def deploy(args: argparse.Namespace) -> int:
    """`deploy ENV VERSION`: canaries, analysis, then (with --auto-promote) every wave."""
    if args.dry_run:
        return dryrun.dry_run(args)
    env = load_env(args.env)
    env.validate_version(args.version)
    if args.previous is not None:
        env.validate_version(args.previous, "--previous")
    canaries = args.canary  # names (``host_names``), or None: the file's

    # Without a canary phase there is nothing to stop after: the waves go on (the
    # manual pause between them is the UI's), as with --auto-promote.
    straight = args.no_canary or (
        not env.canary.enabled and canaries is None and args.canary_percent is None
    )

    async def action(engine: Any) -> int:
        outcome = await engine.deploy(
            args.version,
            canaries=canaries,
            canary_percent=args.canary_percent,
            auto_promote=args.auto_promote or straight,
            assume_previous=args.previous,
            hosts=args.hosts,
            canary_phase=not args.no_canary,
        )
        return finish(engine, outcome, args.json)

    return run_engine(args, env, args.json, action)


def promote(args: argparse.Namespace) -> int:
    """`promote`: the open deployment to every remaining wave (--wave: the next one only);
    --retry / --skip answer a host that failed during promotion."""
    env = load_env(args.env)
    skip = [h.strip() for h in args.skip.split(",") if h.strip()] if args.skip else []
    unknown = [h for h in skip if h not in env.host_names]
    if unknown:
        raise UsageError(f"--skip: no host {', '.join(unknown)} in {env.path}")
    if args.skip is not None and not skip:
        raise UsageError("--skip needs host names, comma-separated")

    async def action(engine: Any) -> int:
        outcome = await engine.promote(all_waves=not args.wave, retry=args.retry, skip=skip)
        return finish(engine, outcome, args.json)

    return run_engine(args, env, args.json, action)


def rollback(args: argparse.Namespace) -> int:
    """`rollback`: the open (or last) deployment back where it went (or another machine's);
    `--to VERSION`: that known release back on every host, fast."""
    env = load_env(args.env)
    if args.to is not None:
        if args.take_over:
            raise UsageError(
                "--to and --take-over do not go together: --take-over rolls another "
                "machine's open deployment back first; then --to puts a release back"
            )
        env.validate_version(args.to)

    async def action(engine: Any) -> int:
        if args.to is not None:
            outcome = await engine.restore(args.to)
        else:
            outcome = await engine.rollback(take_over=args.take_over)
        return finish(engine, outcome, args.json)

    return run_engine(args, env, args.json, action)


def finish(engine: Any, outcome: ev.Outcome, json_out: bool) -> int:
    """Print the result (a JSON line or the summary) and return its exit status."""
    code = OUTCOME_EXIT[outcome]
    if json_out:
        d = engine.deployment
        result: dict[str, Any] = {
            "event": "result",
            "outcome": outcome.value,
            "exit": code,
            "deployment": d.id if d else None,
        }
        if d is not None:  # what a script gating on it asks next: where each host is
            result.update(version=d.version, summary=d.summary, hosts=_by_state(engine, d))
        print(json.dumps(result))
    else:
        print(summary_text(engine, outcome))
    return code


def summary_text(engine: Any, outcome: ev.Outcome) -> str:
    """The closing lines: outcome, hosts per state, what to run next."""
    d = engine.deployment
    lines = [f"== {outcome.value}" + (f": deployment #{d.id} of {d.version}" if d else "")]
    counts = _by_state(engine, d) if d is not None else {}
    if d is not None and d.kind == "rollback" and "deployed" in counts:
        # rollback --to leaves the hosts already on the release as they are: not "deployed".
        was = engine.state.previous
        counts["already on it"] = [h for h in counts["deployed"] if was.get(h) == d.version]
        counts["deployed"] = [h for h in counts["deployed"] if was.get(h) != d.version]
        counts = {state: hosts for state, hosts in counts.items() if hosts}
    for state, hosts in counts.items():
        lines.append(f"   {state:>15}: {len(hosts):>4}  {listed(hosts, 8)}")
    env = engine.env.path
    both = f"next: canarytui promote {env}, or canarytui rollback {env}"
    hints = {
        ev.Outcome.CANARY_PASSED: both,
        ev.Outcome.INCONCLUSIVE: both,
        ev.Outcome.HALTED: both,
        ev.Outcome.PAUSED: f"next: canarytui promote {env}",
    }
    question = engine.state.question if outcome is ev.Outcome.HALTED else None
    if question is not None:
        lines.extend(failure_lines(question, env, undo=d is None or d.kind != "rollback"))
    elif d is not None and d.kind == "rollback" and outcome in hints:
        lines.append(f"   next: canarytui promote {env} (finishes putting {d.version} back)")
    elif outcome in hints:
        lines.append("   " + hints[outcome])
    return "\n".join(lines)


def _by_state(engine: Any, d: Any) -> dict[str, list[str]]:
    """The deployment's hosts by their state (sorted by it), each in the plan's order."""
    counts: dict[str, list[str]] = {}
    for h in d.planned_hosts:
        counts.setdefault(engine.host_states[h].value, []).append(h)
    return dict(sorted(counts.items()))


def failure_lines(question: ev.FailureQuestion, env: object, undo: bool = True) -> list[str]:
    """on_failure: ask, headless: what failed, and the commands that answer it (not
    ``undo``: a rollback --to's, which a rollback would undo, putting back what it escaped)."""
    lines = []
    for f in question.failures:
        status = "did not finish" if f.exit_status is None else f"exited {f.exit_status}"
        # (a host's SSH error names it and its address: said once, on this line's start)
        detail = f.detail.split("): ", 1)[-1] if f.detail.startswith(f"{f.host} (") else f.detail
        step = f"step {f.step} {status}" if f.step else detail
        output = f.output_lines(3)
        lines.append(f"   {f.host}: {step}")
        lines.extend(f"      | {line[:200]}" for line in output)
    hosts = ",".join(f.host for f in question.failures)
    if question.waiting:
        from canarytui.engine.promotion import wave_stopped  # the engine has run by now

        lines.append(f"   {wave_stopped(question.waiting)} (retry or skip goes on with them)")
    lines.append("   on_failure is ask: go on with one of")
    answers = [(f"canarytui promote {env} --retry", "deploy them again")]
    skip = question.skippable >= len(question.failures)
    if skip:
        answers.append((f"canarytui promote {env} --skip {hosts}", "leave them as they are"))
    if undo:
        answers.append((f"canarytui rollback {env}", "everything back"))
    width = max(len(command) for command, _ in answers) + 3
    lines.extend(f"      {command:<{width}}{what}" for command, what in answers)
    if not skip:
        lines.append(
            f"      (skipping them would exceed max_failures: {question.skippable} may be skipped)"
        )
    return lines
