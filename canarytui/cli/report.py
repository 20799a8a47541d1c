"""The report command: one deployment from the journal as a Markdown document or JSON.

``canarytui report ENV.yaml [ID] [--format md|json]`` (ID: the last deployment by
default). The data comes from ``canarytui.journal.report`` (sanitised there); this module
renders it. In Markdown, text that came from a host or an operator is escaped in table
cells (``|``, ``*``, ``<`` ... never markup) and shown as indented code blocks otherwise,
so the document reads the same in a terminal, a ticket or a rendered page.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from typing import Any

from canarytui.cli import runner
from canarytui.cli.args import EXIT_OK, UsageError
from canarytui.cli.history import nobody_drives
from canarytui.config import Environment, load_env
from canarytui.textsafe import listed

VALUES_SHOWN = 60  # values of one rule on one host in the "over the window" table
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!#])")


def report(args: argparse.Namespace) -> int:
    """`report`: the deployment's timeline, verdict and hosts; exit 2 for an unknown ID."""
    from canarytui.journal.report import build_report

    env = load_env(args.env)
    journal = runner.journal(args, reads=True)
    try:
        record = _record(journal, env, args.id)
        data = build_report(
            record,
            journal.hosts(record.id),
            journal.events(record.id),
            journal.decisions(record.id),
            stopped=record.is_open and nobody_drives(record, journal.state_dir, env),
        )
    finally:
        journal.close()
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print(markdown(data), end="")
    return EXIT_OK


def _record(journal: Any, env: Environment, given: str | None) -> Any:
    """The deployment asked for (default: the last) if it is ``env``'s, else ``UsageError``."""
    if given is not None:
        return runner.deployment_by_id(journal, env, given, "report")
    records = journal.history(env.name, env.app, limit=1)
    if records:
        return records[0]
    raise UsageError(f"report: {env.name}/{env.app} has no deployment in {journal.path} yet")


# Markdown ---------------------------------------------------------------------------


def cell(value: object) -> str:
    """Text for a table cell: Markdown's special characters escaped, never markup."""
    if value is None or value == "":
        return "-"
    return _MD_SPECIAL.sub(r"\\\1", str(value))


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def code(text: str) -> list[str]:
    """An indented code block: nothing in it is Markdown, and nothing can close it."""
    return ["    " + line for line in text.splitlines()] + [""]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _effect(m: dict[str, Any]) -> str:
    """A measurement's effect as its limit is written (``+225%`` of a ``+20%`` limit)."""
    if m["effect"] is not None and m.get("relative"):
        return f"{m['effect'] * 100:+.3g}%"
    return _num(m["effect"])


def markdown(data: dict[str, Any]) -> str:
    """The report as a Markdown document (see ``canarytui.journal.report`` for the data)."""
    d = data["deployment"]
    c = data["change"]
    outcome = d["outcome"] or f"open ({d['phase']})"
    kind = "Rollback" if d["kind"] == "rollback" else "Deployment"
    out = [f"# {kind} #{d['id']}: {cell(d['app'])} {cell(d['version'])} to {cell(d['env'])}", ""]
    out += table(
        ["Field", "Value"],
        [
            ["Outcome", outcome + (f": {d['summary']}" if d["summary"] else "")],
            ["Verdict", d["verdict"] or "none"],
            ["Started", f"{d['started_utc']} by {d['user']} on {d['machine']}"],
            ["Finished", d["finished_utc"] or "still open"],
            ["Duration", "-" if d["duration"] is None else f"{d['duration']:g}s"],
            ["Environment file", d["env_file"]],
        ],
    )
    out += ["## Change", ""]
    out += table(
        ["Field", "Value"],
        [
            ["What", c["what"]],
            ["Requested by", c["requested_by"]],
            ["Window", c["window"]],
            ["Method", c["method"]],
            ["Result", c["result"]],
            ["Versions before", _counts(c["versions_before"])],
            ["Versions after", _counts(c["versions_after"])],
            ["Hosts that ran the new version", c["hosts_reached"]],
            ["Failed steps", c["failed_steps"]],
            ["Failed hosts", listed(c["failed_hosts"], 8) or "none"],
            ["Warnings and errors", c["warnings_and_errors"]],
            ["Back-out", c["back_out"]],
        ],
    )
    out += ["## Timeline", ""]
    out += table(
        ["Time (UTC)", "+s", "Who", "What"],
        (
            [
                e["utc"].removesuffix(" UTC"),
                f"{e['offset']:.1f}",
                e["who"] or "canarytui",
                e["what"],
            ]
            for e in data["timeline"]
        ),
    )
    if data["decisions"]:
        out += ["## Decisions", ""]
        out += table(
            ["Time (UTC)", "Who", "Machine", "Action", "Detail"],
            (
                [x["utc"].removesuffix(" UTC"), x["user"], x["machine"], x["action"], x["detail"]]
                for x in data["decisions"]
            ),
        )
    out += _analysis(data["analysis"])
    out += _hosts(data["hosts"])
    return "\n".join(out).rstrip("\n") + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} on {n}" for v, n in sorted(counts.items(), key=lambda x: -x[1]))


def _analysis(a: dict[str, Any] | None) -> list[str]:
    if a is None:
        return ["## Analysis", "", "No analysis: this deployment had no canary phase.", ""]
    verdict = (a["verdict"] or "none (the analysis did not finish)").upper()
    out = [f"## Verdict: {cell(verdict)}", ""]
    watched = ", ".join(a["canaries"]) or "-"
    baseline = ", ".join(a["baseline"]) or "none"
    window = "" if a["duration"] is None else f" for {a['duration']:g}s"
    if window and a.get("watched") is not None and a["watched"] < a["duration"] - 1:
        window += f" (its verdict came after {a['watched']:g}s)"  # early_fail: planned, cut
    out += [f"Canaries {cell(watched)} against the baseline {cell(baseline)}{window}.", ""]
    if a["reasons"]:
        out += ["Reasons:", ""] + [f"- {cell(r)}" for r in a["reasons"]] + [""]
    if a["measurements"]:
        out += table(
            [
                "Rule",
                "Host",
                "Value",
                "Reference",
                "Limit",
                "Effect",
                "Confidence",
                "Result",
                "Note",
            ],
            (
                [
                    m["rule"],
                    m["host"],
                    _num(m["value"]),
                    "-" if m["baseline"] is None else f"{m['reference']} {_num(m['baseline'])}",
                    m["limit"],
                    _effect(m),
                    _num(m["confidence"]),
                    m["state"],
                    m["note"],
                ]
                for m in a["measurements"]
            ),
        )
    series: dict[tuple[str, str], list[str]] = {}
    for u in a["updates"]:
        for m in u["measurements"]:
            series.setdefault((m["rule"], m["host"]), []).append(
                f"{u['elapsed']:g}s: {_num(m['value'])}"
            )
    if series:
        out += ["### Values over the window", ""]
        rows = []
        for (rule, host), values in series.items():
            more = len(values) - VALUES_SHOWN
            shown = ", ".join(values[-VALUES_SHOWN:])
            rows.append([rule, host, (f"(+{more} earlier) " if more > 0 else "") + shown])
        out += table(["Rule", "Host", "Elapsed: value"], rows)
    return out


def _hosts(hosts: list[dict[str, Any]]) -> list[str]:
    out = ["## Hosts", ""]
    out += table(
        ["Host", "Role", "Before", "New", "Reached (UTC)", "After", "State", "Last step", "Exit"],
        (
            [
                h["host"],
                h["role"],
                h["previous"],
                h["new"],
                (h["reached_utc"] or "").removesuffix(" UTC"),
                h["after"],
                h.get("state_said", h["state"]),
                h["last_step"],
                h["exit_status"],
            ]
            for h in hosts
        ),
    )
    failed = [h for h in hosts if h["output"]]
    if failed:
        out += ["### Output of the hosts that failed", ""]
        for h in failed:
            out += [f"{cell(h['host'])}, step {cell(h['last_step'])}:", ""]
            out += code(h["output"])
    return out
