"""`analyze`: the analysis rules on the running fleet now, canaries against a baseline, no deploy.

Prints the engine's events while it watches (human lines, or JSON lines with ``--json``),
then one row per rule and canary, the diagnostics (rules whose selectors match nothing on
a host), and the verdict. Exit status: 0 pass, 3 fail (the rules would fail these
canaries), 1 inconclusive or a host unreachable, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from canarytui import events as ev
from canarytui.cli.args import EXIT_CANARY_FAILED, EXIT_ERROR, EXIT_INVALID, EXIT_OK
from canarytui.cli.printers import column_widths
from canarytui.cli.runner import run_engine
from canarytui.config import load_env, parse_duration
from canarytui.textsafe import harmless

VERDICT_EXIT = {
    ev.Verdict.PASS: EXIT_OK,
    ev.Verdict.FAIL: EXIT_CANARY_FAILED,
    ev.Verdict.INCONCLUSIVE: EXIT_ERROR,
}
_VERDICT_SAYS = {
    ev.Verdict.PASS: "the rules pass on these canaries",
    ev.Verdict.FAIL: "the rules would fail these canaries",
    ev.Verdict.INCONCLUSIVE: "a deployment's analysis would be inconclusive",
}
HEADER = ("RULE", "CANARY", "VALUE", "BASELINE", "LIMIT", "VERDICT", "EFFECT/CONFIDENCE", "NOTE")
NOTE_WIDTH = 100


def analyze(args: argparse.Namespace) -> int:
    """`analyze ENV [--canary a,b] [--for 1m] [--json]`."""
    env = load_env(args.env)
    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            print(f"canarytui: --for: {exc}", file=sys.stderr)
            return EXIT_INVALID
        if duration <= 0:
            print("canarytui: --for: the analysis must last some time", file=sys.stderr)
            return EXIT_INVALID
    canaries = args.canary  # names (``host_names``), or None: the file's

    async def action(engine: Any) -> int:
        result = await engine.analyze(canaries=canaries, duration=duration)
        code = VERDICT_EXIT[result.verdict]
        if args.json:
            print(json.dumps(result_json(result, code)))
        else:
            print("\n".join(report(result, len(env.hosts))))
        return code

    return run_engine(args, env, args.json, action)


def result_json(result: Any, code: int) -> dict[str, Any]:
    """The closing JSON line: verdict, measurements, diagnostics per host."""
    return {
        "event": "result",
        "verdict": result.verdict.value,
        "exit": code,
        "canaries": result.canaries,
        "baseline": result.baseline,
        "versions": result.versions,
        "reasons": result.reasons,
        "measurements": [asdict(m) for m in result.measurements],
        "diagnostics": [
            {"host": host, "rules": list(f.rules), "level": f.level, "message": f.message}
            for host, found in result.findings.items()
            for f in found
        ],
    }


def report(result: Any, fleet_size: int) -> list[str]:
    """The table, the diagnostics and the verdict, for a person."""
    baseline = ", ".join(result.baseline) or "none"
    lines = ["", f"== analysis of {', '.join(result.canaries)} against the baseline ({baseline})"]
    flagged = {
        (host, rule): f.level
        for host, found in result.findings.items()
        if host in result.canaries
        for f in found
        for rule in f.rules
    }
    lines += table(result.measurements, flagged)
    lines += findings_lines(result.findings, fleet_size)
    verdict = result.verdict
    said = f"== verdict: {verdict.value.upper()}: {_VERDICT_SAYS[verdict]}"
    problems = sum(1 for f in flagged.values() if f == "problem")
    if verdict is ev.Verdict.PASS and problems:
        said += f", but {problems} rule(s) read nothing on a canary (above): no proof"
    lines.append(said)
    return lines


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def row(m: ev.Measurement, flag: str | None = None) -> tuple[str, ...]:
    """One measurement's cells; ``flag``: its rule's selector matches nothing on this canary."""
    stats = ""
    if m.effect is not None or m.confidence is not None:
        effect = m.effect_text
        conf = "-" if m.confidence is None else f"{m.confidence:.4g}"
        stats = f"{effect} / {conf}"
    note = m.note
    if flag is not None:
        note = f"{note}; " if note else ""
        note += "its selector matches nothing here (below)"
    note = note if len(note) <= NOTE_WIDTH else note[: NOTE_WIDTH - 1] + "…"
    return (
        m.rule,
        m.host,
        _num(m.value),
        _num(m.baseline) + (" (before)" if m.reference == "before" and m.baseline else ""),
        m.limit,
        m.state.upper(),
        stats or "-",
        note,
    )


def table(
    measurements: Sequence[ev.Measurement], flagged: Mapping[tuple[str, str], str] | None = None
) -> list[str]:
    """One row per rule and canary, columns aligned; every cell made harmless."""
    flags = flagged or {}
    rows = [HEADER] + [
        tuple(harmless(c, None) for c in row(m, flags.get((m.host, m.rule)))) for m in measurements
    ]
    widths = column_widths(rows)
    return [
        (
            "   " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
        ).rstrip()
        for r in rows
    ]


def findings_lines(findings: Mapping[str, Sequence[Any]], fleet_size: int) -> list[str]:
    """Diagnostics grouped: the same finding on many hosts is one line naming them."""
    from canarytui.metrics.diagnose import PROBLEM, group, hosts_text

    grouped = group(findings)
    if not grouped:
        return []
    problems = sum(1 for f, _ in grouped if f.level == PROBLEM)
    lines = [
        f"== rules whose selectors match nothing: {problems} problem(s), "
        f"{len(grouped) - problems} warning(s)"
    ]
    for finding, hosts in grouped:
        mark = "PROBLEM" if finding.level == PROBLEM else "warning"
        lines.append(harmless(f"   {mark} {finding} [{hosts_text(hosts, fleet_size)}]", None))
    return lines
