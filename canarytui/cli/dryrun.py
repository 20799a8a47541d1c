"""`deploy --dry-run`: the plan of a deployment printed (or one JSON object), nothing changed.

Exit status: 0 the plan is printed and the deployment would start now; 1 it is printed
but the deployment would be refused now (an open deployment, somebody's lock, an
unreachable canary: each said under "would be refused"); 2 a bad version, canary choice
or file, exactly as ``deploy`` says it, before any host is asked anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from canarytui.cli import runner
from canarytui.cli.args import EXIT_ERROR, EXIT_OK
from canarytui.config import load_env
from canarytui.textsafe import harmless

if TYPE_CHECKING:
    from canarytui.engine.dryrun import DryRun, HostView


def _plain(text: object) -> str:
    """One line of a host's (or the file's) text, harmless, whatever it holds."""
    return harmless(str(text), None)


def dry_run(args: argparse.Namespace) -> int:
    """`deploy ENV VERSION --dry-run`: plan, versions and locks read, nothing changed."""
    env = load_env(args.env)
    env.validate_version(args.version)
    if args.previous is not None:
        env.validate_version(args.previous, "--previous")
    canaries = args.canary  # names (``host_names``), or None: the file's
    from canarytui.engine import Engine
    from canarytui.engine.dryrun import dry_run as plan_dry_run
    from canarytui.engine.plan import limited_to, make_plan

    # A bad choice: exit 2, no host asked.
    make_plan(
        env, canaries, args.canary_percent, limited_to(env, args.hosts)[0], not args.no_canary
    )
    journal = runner.journal(args)

    async def go() -> DryRun:
        engine = Engine(env, journal)
        try:
            return await plan_dry_run(
                engine,
                args.version,
                canaries=canaries,
                canary_percent=args.canary_percent,
                auto_promote=args.auto_promote,
                assume_previous=args.previous,
                hosts=args.hosts,
                canary_phase=not args.no_canary,
            )
        finally:
            await engine.fleet.close()

    try:
        plan = asyncio.run(go())
    finally:
        journal.close()
    if args.json:
        print(json.dumps(plan.as_dict()))
    else:
        for line in plan_lines(plan):
            print(line)
    return EXIT_ERROR if plan.refusals else EXIT_OK


def _seconds(value: float) -> str:
    from canarytui.engine.dryrun import duration_text  # loaded with the engine already

    return duration_text(value)


def _lost(h: HostView) -> str:
    """A host not reached: where, and why (its row says the host and the kind already)."""
    from canarytui.cli.reasons import reason_of

    return ": ".join(reason_of(h.host, h.address, h.detail, h.refused or "unreachable"))


def plan_lines(plan: DryRun) -> list[str]:
    """The plan for a person: hosts, canary phase, waves, hooks, commands, what would stop it."""
    lines = [
        f"dry run: {plan.version} to {plan.env}/{plan.app} ({_plain(plan.file)}); "
        "nothing is changed, no lock is taken"
    ]
    width = max(len(h.host) for h in plan.hosts)
    if plan.scope is None:
        lines.append(f"hosts ({len(plan.hosts)}), the version each runs now:")
    else:
        others = ", ".join(f"{_plain(v)} on {n}" for v, n in plan.others.items())
        lines.append(
            f"hosts ({len(plan.hosts)} of the file's {plan.fleet}: --hosts {_plain(plan.scope)}; "
            f"the others, never locked nor changed, run {others}), the version each runs now:"
        )
    versions = {
        h.host: h.version
        or ((h.refused or "unreachable").upper() if not h.reachable else "(no version)")
        for h in plan.hosts
    }
    wide = max([14, *(len(v) for v in versions.values())])  # every row's role in line
    for h in plan.hosts:
        extra = [h.role] + (["baseline"] if h.baseline else [])
        if h.lock:
            extra.append(f"locked by {_plain(h.lock)}")
        if h.detail and (not h.reachable or not h.version):
            extra.append(_plain(_lost(h) if not h.reachable else h.detail))
        lines.append(f"  {h.host:<{width}}  {versions[h.host]:<{wide}} " + "  ".join(extra))
    lines += _canary_lines(plan)
    p = plan.promote
    lines.append(
        f"waves (promote.waves {', '.join(p['waves'])}{_the_rest(p['waves'], plan)}; "
        f"max_failures {p['max_failures']}; on_failure {p['on_failure']}):"
    )
    if not plan.waves:
        lines.append("  none: every host is a canary")
    for w in plan.waves:
        lines.append(
            f"  wave {w.wave}: {len(w.hosts)} host(s), {w.percent}% of the fleet on "
            f"{plan.version} after it: {', '.join(w.hosts)}"
        )
        if w.pause_after == "manual":
            lines.append(
                "    then pause: manual (the UI waits for p; canarytui promote and "
                "--auto-promote go on)"
            )
        elif w.pause_after is not None:
            lines.append(f"    then pause: {w.pause_after}")
    if plan.traffic:
        lines.append(f"traffic hooks (on {_plain(plan.traffic[0].where)}):")
        tw = max(len(t.phase) for t in plan.traffic)
        lines += [f"  {t.phase:<{tw}}  {_plain(t.command)}" for t in plan.traffic]
    previous = plan.sample_previous or "(unknown)"
    lines.append(f"commands on {plan.sample_host} ({{previous}} = {previous}), in order:")
    labels = [
        f"{c.phase}: {c.step}" if c.phase in ("deploy", "rollback") else c.step
        for c in plan.commands
    ]
    cw = max(map(len, labels))
    for label, c in zip(labels, plan.commands, strict=True):
        lines.append(f"  {label:<{cw}}  {_plain(c.command)}")
    if plan.refusals:
        lines.append("would be refused now:")
        lines += [f"  {_plain(r)}" for r in plan.refusals]
    if plan.notes:
        lines.append("notes:")
        lines += [f"  {_plain(n)}" for n in plan.notes]
    lines.append(
        "== the deployment would be refused now (nothing was changed)"
        if plan.refusals
        else "== the deployment would start (nothing was changed)"
    )
    return lines


def _the_rest(specs: list[str], plan: DryRun) -> str:
    """`, then the rest` where the file's waves stop short of every host (`[10%, 50%]`):
    the last wave takes the others, which the file does not say."""
    total = sum(len(w.hosts) for w in plan.waves)
    last = specs[-1] if specs else "100%"
    short = float(last[:-1]) < 100 if last.endswith("%") else int(last) < total
    return ", then the rest" if plan.waves and short else ""


def _canary_lines(plan: DryRun) -> list[str]:
    if not plan.canary_phase or plan.analysis is None:
        return ["no canary phase: straight to the waves (each host passes its health gate)"]
    a = plan.analysis
    lines = [
        f"canary phase: {', '.join(plan.canaries)}",
        f"  baseline sample ({len(plan.baseline)} of {a['baseline']} asked): "
        + (", ".join(plan.baseline) or "none"),
        f"  analysis: before {_seconds(a['before'])}, warm-up {_seconds(a['warmup'])}, "
        f"duration {_seconds(a['duration'])}, interval {_seconds(a['interval'])}, "
        f"max_failed_checks {a['max_failed_checks']}, "
        f"early_fail {'on' if a['early_fail'] else 'off'}",
    ]
    lines += [f"    rule {_plain(rule)}" for rule in a["rules"]] or ["    no rules: health only"]
    if plan.after_canary == "promote":
        lines.append("  after a passing canary: every wave (--auto-promote)")
    else:
        lines.append(
            "  after a passing canary: the deployment stays open for canarytui promote "
            "(or the UI's p), or --auto-promote"
        )
    return lines
