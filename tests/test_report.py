"""`canarytui report`: a real demo deployment's report as Markdown and JSON, the default
(last) deployment, unknown IDs, and host text that stays text in both formats."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from conftest import new_deployment, run_cli

from canarytui import events as ev
from canarytui.cli.report import cell, markdown
from canarytui.demo import DemoFleet
from canarytui.journal import Journal
from canarytui.journal.records import DeploymentRecord, HostRecord, machine_name
from canarytui.journal.report import build_report

EXAMPLE_ENV = Path(__file__).resolve().parent.parent / "sample_envs" / "example-production.yaml"


async def test_reports_of_real_deployments(demo: DemoFleet, state_dir: Path) -> None:
    env = str(demo.env_path)
    bad = await run_cli("deploy", env, "1.3.0-bad")
    assert bad.code == 3, bad.err
    good = await run_cli("deploy", env, "1.1.0", "--auto-promote")
    assert good.code == 0, good.err

    # The bad release, caught on its canary: Markdown.
    md = await run_cli("report", env, "1")
    assert md.code == 0, md.err
    text = md.out
    assert text.startswith("# Deployment #1: shop 1.3.0-bad to demo\n")
    assert "| Outcome | canary failed: 1 host(s) rolled back from 1.3.0-bad |" in text
    assert "| Verdict | fail |" in text
    assert "| Back-out | none needed: the deployment ended rolled back |" in text
    assert "| Versions before | 1.0.0 on 6 |" in text
    for heading in ("## Change", "## Timeline", "## Decisions", "## Verdict: FAIL", "## Hosts"):
        assert f"\n{heading}\n" in text
    timeline = text.split("## Timeline")[1].split("\n## ")[0]
    whats = [row.split(" | ")[-1] for row in timeline.splitlines() if row.startswith("| 20")]
    assert whats[0].startswith("started 1.3.0-bad: canaries web-01")
    assert any(w.startswith("verdict FAIL: web-01: error-ratio = ") for w in whats)
    assert whats[-1] == "finished: canary failed: 1 host(s) rolled back from 1.3.0-bad |"
    assert re.search(r"\| \S+@\S+ \| decided deploy: 1\.3\.0-bad to canaries web-01 \|", timeline)
    assert re.search(r"\| Started \| 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC by \S+ on \S+ \|", text)
    # Every measured value of the verdict, and the values over the window.
    verdict = text.split("## Verdict: FAIL")[1].split("## Hosts")[0]
    rules = [row.split(" | ")[0].removeprefix("| ") for row in verdict.splitlines()]
    for rule in ("failed-checks", "error-ratio", "p99-latency", "traffic"):
        assert rule in rules
    assert "| error-ratio | web-01 | 0." in verdict and "| fail |" in verdict
    assert "### Values over the window" in verdict
    hosts = text.split("## Hosts")[1]
    canary = next(r for r in hosts.splitlines() if r.startswith("| web-01 "))
    cells = [c.strip() for c in canary.strip("|").split("|")]
    assert cells[:4] == ["web-01", "canary", "1.0.0", "1.3.0-bad"]
    assert cells[5:7] == ["1.0.0", "rolled back"]
    other = next(r for r in hosts.splitlines() if r.startswith("| web-02 "))
    assert [c.strip() for c in other.strip("|").split("|")][2:4] == ["1.0.0", "-"]

    # The same deployment as JSON: every value there, numbers as numbers.
    js = await run_cli("report", env, "#1", "--format", "json")
    assert js.code == 0, js.err
    data = json.loads(js.out)
    assert data["deployment"]["id"] == 1 and data["deployment"]["outcome"] == "canary failed"
    assert data["deployment"]["started_utc"].endswith(" UTC")
    assert data["analysis"]["verdict"] == "fail"
    by_rule = {m["rule"]: m for m in data["analysis"]["measurements"]}
    assert by_rule["error-ratio"]["state"] == "fail" and by_rule["error-ratio"]["value"] > 0.05
    assert by_rule["error-ratio"]["baseline"] is not None
    assert data["analysis"]["updates"] and data["analysis"]["updates"][0]["measurements"]
    decisions = data["decisions"]
    assert decisions[0]["action"] == "deploy" and decisions[0]["user"] and decisions[0]["machine"]
    events = [t["event"] for t in data["timeline"]]
    assert events[0] == "deployment_started" and events[-1] == "deployment_finished"
    assert {"verdict", "phase", "decision", "analysis_started"} <= set(events)
    web01 = next(h for h in data["hosts"] if h["host"] == "web-01")
    assert (web01["previous"], web01["new"], web01["after"]) == ("1.0.0", "1.3.0-bad", "1.0.0")

    # No ID: the last deployment, complete, with its back-out command.
    last = await run_cli("report", env)
    assert last.code == 0, last.err
    assert last.out.startswith("# Deployment #2: shop 1.1.0 to demo\n")
    # A table cell escapes Markdown's characters (the demo's temporary folder may hold a _).
    back_out = cell(f"canarytui rollback {demo.env_path} --to 1.0.0")
    assert f"| Back-out | {back_out} |" in last.out
    assert "| Versions after | 1.1.0 on 6 |" in last.out
    assert "| Hosts that ran the new version | 6 |" in last.out

    # An ID that is not this environment's: exit 2, the latest named.
    unknown = await run_cli("report", env, "9")
    assert unknown.code == 2 and unknown.out == ""
    assert "no deployment #9 of demo/shop in the journal; the latest: #2 1.1.0 (complete), " in (
        unknown.err
    )
    assert "#1 1.3.0-bad (canary failed)" in unknown.err
    # As JSON, the refusal is a result object on stdout too (stdout was empty).
    as_json = await run_cli("report", env, "9", "--format", "json")
    assert as_json.code == 2 and as_json.err == unknown.err
    result = json.loads(as_json.out)
    assert (result["event"], result["outcome"], result["exit"]) == ("result", "invalid", 2)
    assert result["error"].startswith("report: no deployment #9 of demo/shop in the journal")
    hosts_md = text.split("## Hosts")[1].splitlines()
    assert hosts_md[2].startswith("| Host | Role | Before | New | Reached (UTC) | After | State")
    word = await run_cli("report", env, "last")
    assert word.code == 2 and "the deployment ID must be a number" in word.err
    fmt = await run_cli("report", env, "--format", "html")
    assert fmt.code == 2 and "invalid choice: 'html'" in fmt.err


async def test_no_deployment_yet(demo: DemoFleet, state_dir: Path) -> None:
    result = await run_cli("report", str(demo.env_path))
    assert result.code == 2 and "demo/shop has no deployment in " in result.err


def hostile_report() -> dict[str, object]:
    record = DeploymentRecord(
        id=4,
        token="t",
        env="prod",
        app="shop",
        env_path="/srv/prod.yaml",
        version="2.0.0",
        phase="halted",
        wave=1,
        waves=2,
        is_open=True,
        outcome=None,
        verdict="pass",
        summary=None,
        canaries=["web-01"],
        plan=[["web-02"], ["web-03"]],
        user="alice",
        machine="laptop",
        started_at=1_700_000_000.0,
        updated_at=1_700_000_100.0,
        finished_at=None,
    )
    output = "ok\n\x1b]0;pwned\x07\x1b[31mred | *bold* <b>x</b>\n    ```\n# not a heading\n"
    hosts = {
        "web-01": HostRecord("web-01", "canary", "1.9.0", "2.0.0", "deployed", "restart", 0, "", 0),
        "web-02": HostRecord(
            "web-02", "wave 1", "1.9.0", "1.9.0", "failed", "install", 7, output, 0
        ),
    }
    events = [
        ev.DeploymentStarted(
            version="2.0.0",
            canaries=["web-01"],
            waves=[["web-02"], ["web-03"]],
            previous={},
            user="alice",
            deployment=4,
            at=1_700_000_001.0,
        ),
        ev.HostUpdate(host="web-01", state=ev.HostState.DEPLOYED, version="2.0.0", deployment=4),
        ev.Notice(level="error", message="host said \x1b[2J<script>|x|", deployment=4),
        ev.StepResult(
            host="web-02",
            step="install",
            action="deploy",
            exit_status=7,
            output=output,
            duration=1.0,
            deployment=4,
        ),
        ev.PhaseChanged(phase=ev.Phase.HALTED, wave=1, waves=2, deployment=4),
    ]
    decisions = [
        {"at": 1.0, "user": "alice", "machine": "laptop", "action": "promote", "detail": ""}
    ]
    return build_report(record, hosts, [e.to_dict() for e in events], decisions)


def test_host_text_stays_text() -> None:
    data = hostile_report()
    raw = json.dumps(data)
    assert "\x1b" not in raw and "\\u001b" not in raw and "\x07" not in raw
    text = markdown(data)
    assert "\x1b" not in text and "\x07" not in text
    # In a table cell: escaped, never a column, a tag or emphasis.
    assert "[error] host said ␛<script>" not in text
    assert "host said ␛\\<script\\>\\|x\\|" in text
    # A failed host's output: an indented code block, nothing in it can close it.
    block = text.split("### Output of the hosts that failed")[1]
    assert "web-02, step install:" in block
    assert "\n    ␛␛red | *bold* <b>x</b>\n" in block
    assert "\n        ```\n    # not a heading\n" in block
    assert "| Back-out | canarytui rollback /srv/prod.yaml (the deployment is open) |" in text
    assert "| Finished | still open |" in text
    web02 = next(h for h in data["hosts"] if h["host"] == "web-02")  # type: ignore[attr-defined]
    assert web02["exit_status"] == 7 and web02["new"] is None


def test_a_host_that_never_answered_runs_an_unknown_version_not_none() -> None:
    """The change's version counts tell a host that printed no version (nothing installed)
    from one that was unreachable (what it runs is not known)."""
    record = DeploymentRecord(
        id=1, token="t", env="prod", app="shop", env_path="/srv/prod.yaml", version="2.0.0",
        phase="complete", wave=1, waves=1, is_open=False, outcome="complete", verdict="pass",
        summary=None, canaries=["web-01"], plan=[["web-02", "web-03"]], user="alice",
        machine="laptop", started_at=1_700_000_000.0, updated_at=1_700_000_100.0,
        finished_at=1_700_000_100.0,
    )  # fmt: skip
    hosts = {
        "web-01": HostRecord("web-01", "canary", "1.9.0", "2.0.0", "deployed", "restart", 0, "", 0),
        "web-02": HostRecord("web-02", "wave 1", None, "2.0.0", "deployed", "restart", 0, "", 0),
        "web-03": HostRecord("web-03", "wave 1", None, None, "unreachable", None, None, None, 0),
    }
    change = build_report(record, hosts, [], [])["change"]
    assert change["versions_before"] == {"1.9.0": 1, "(none)": 1, "(unknown)": 1}
    assert change["versions_after"] == {"2.0.0": 2, "(unknown)": 1}
    # It failed with no step failed: the hosts that failed are said beside the steps.
    assert (change["failed_steps"], change["failed_hosts"]) == (0, ["web-03"])
    assert "| Failed hosts | web-03 |" in markdown(build_report(record, hosts, [], []))
    # The one version the hosts ran before is what to put back.
    assert change["back_out"] == "canarytui rollback /srv/prod.yaml --to 1.9.0"
    assert "| Versions before | 1.9.0 on 1, (none) on 1, (unknown) on 1 |" in markdown(
        build_report(record, hosts, [], [])
    )


async def test_an_open_deployment_no_process_drives_is_reported_stopped(tmp_path: Path) -> None:
    """The report says what ``status`` and ``history`` say of an open deployment: started
    from this machine and driven by none of its processes, it is stopped (another
    machine's: not known here, its phase alone)."""
    env_file = EXAMPLE_ENV
    state = tmp_path / "state"
    journal = Journal(state)
    try:
        d = new_deployment(journal)
        journal.record(ev.PhaseChanged(phase=ev.Phase.PROMOTING, wave=2, waves=3, deployment=d))
        journal.record(ev.HostUpdate(host="web-02", state=ev.HostState.DEPLOYING, deployment=d))
    finally:
        journal.close()

    async def reported() -> tuple[str, dict[str, Any]]:
        md = await run_cli("report", str(env_file), state_dir=state)
        raw = await run_cli("report", str(env_file), "--format", "json", state_dir=state)
        assert md.code == 0 and raw.code == 0, (md.err, raw.err)
        return md.out, json.loads(raw.out)

    text, data = await reported()
    assert "| Outcome | open (promoting wave 2/3) |" in text, text
    assert data["deployment"]["stopped"] is False
    web02 = next(h for h in data["hosts"] if h["host"] == "web-02")
    assert (web02["state"], web02["cut_off"]) == ("deploying", False)
    with sqlite3.connect(state / "journal.sqlite3") as db:
        db.execute("UPDATE deployments SET machine = ? WHERE id = ?", (machine_name(), d))
    text, data = await reported()
    assert "| Outcome | open (promoting wave 2/3, stopped) |" in text, text
    assert "| Result | open: promoting wave 2/3, stopped |" in text, text
    assert data["deployment"]["stopped"] is True
    assert data["deployment"]["phase"] == "promoting wave 2/3, stopped"
    # A host it was changing then was cut off, not in flight: as status says it.
    web02 = next(h for h in data["hosts"] if h["host"] == "web-02")
    assert (web02["state"], web02["cut_off"]) == ("deploying", True)
    assert web02["state_said"] == "deploy cut off"
    row = next(line for line in text.splitlines() if line.startswith("| web-02 |"))
    assert "| deploy cut off |" in row and "| deploying |" not in row, row


def canary_failed() -> DeploymentRecord:
    """Deployment #1 of 2.0.0 to prod, its canary web-01 failed and rolled back."""
    return DeploymentRecord(
        id=1, token="t", env="prod", app="shop", env_path="/srv/prod.yaml", version="2.0.0",
        phase="rolled back", wave=None, waves=1, is_open=False, outcome="canary failed",
        verdict="fail", summary=None, canaries=["web-01"], plan=[["web-02"]], user="alice",
        machine="laptop", started_at=1_700_000_000.0, updated_at=1_700_000_100.0,
        finished_at=1_700_000_100.0,
    )  # fmt: skip


def test_a_relative_effect_is_reported_in_percent() -> None:
    """A shift limited to +20 % is reported as +225%, not +2.25."""
    record = canary_failed()
    shift = ev.Measurement(
        "latency-shift", "web-01", 0.1625, "shift within +20% vs baseline (Mann-Whitney, 0.98)",
        False, baseline=0.05, status="fail", effect=2.25, relative=True, confidence=0.999,
    )  # fmt: skip
    verdict = ev.VerdictReached(
        verdict=ev.Verdict.FAIL, reasons=[shift.describe()], measurements=[shift], deployment=1
    )
    text = markdown(build_report(record, {}, [verdict.to_dict()], []))
    assert "| latency-shift | web-01 | 0.1625 | baseline 0.05 |" in text
    assert "| +225% | 0.999 | fail |" in text and "effect +225%" in text


def test_an_analysis_cut_short_by_its_verdict_says_how_long_it_watched() -> None:
    """early_fail: the verdict came after 4 s of a 17 s analysis; the report said "for
    17s", as if the canaries were watched that long."""
    record = canary_failed()
    start = 1_700_000_001.0

    def analysis(after: float) -> dict[str, object]:
        events = [
            ev.AnalysisStarted(
                canaries=["web-01"], baseline=["web-02"], duration=17.0, deployment=1, at=start
            ),
            ev.VerdictReached(
                verdict=ev.Verdict.FAIL, reasons=["web-01: error-ratio"], measurements=[],
                deployment=1, at=start + after,
            ),
        ]  # fmt: skip
        return build_report(record, {}, [e.to_dict() for e in events], [])

    cut = analysis(4.0)
    assert cut["analysis"]["watched"] == 4.0  # type: ignore[index]
    said = "Canaries web-01 against the baseline web-02 for 17s (its verdict came after 4s)."
    assert said in markdown(cut)
    whole = markdown(analysis(17.2))
    assert "against the baseline web-02 for 17s." in whole and "verdict came" not in whole
