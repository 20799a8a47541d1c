"""`analyze` (the rules now, nothing deployed) and `check`'s rule diagnostics, as separate
processes against the demo fleet, and ``Engine.analyze`` in process."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from conftest import CliResult, add_before_rule, edit_env, engine_for, run_cli

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine.locks import local_lock_path
from canarytui.journal import Journal


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def switch_outside_canarytui(fleet: DemoFleet, host: str, version: str) -> None:
    """What the demo's deploy steps do, done by hand on the host's sandbox."""
    sandbox = fleet.sandbox_of(host)
    release = sandbox / "releases" / version
    release.mkdir(parents=True, exist_ok=True)
    (release / "VERSION").write_text(version + "\n")
    (sandbox / "current.new").symlink_to(Path("releases") / version)
    os.replace(sandbox / "current.new", sandbox / "current")
    (sandbox / "run" / "restart").touch()


def nothing_deployed(fleet: DemoFleet, state_dir: Path) -> None:
    """No deployment in the journal, no lock anywhere."""
    journal = Journal(state_dir)
    try:
        assert journal.last_deployment("demo", "shop") is None
    finally:
        journal.close()
    assert not local_lock_path(state_dir, "demo", "shop").exists()
    for host in fleet.host_names:
        assert not (fleet.sandbox_of(host) / ".canarytui" / "lock.demo.shop" / "owner").exists()


def rows(out: str) -> dict[tuple[str, str], dict[str, str]]:
    """The table's rows by (rule, canary): column name -> cell (cut at the header's columns)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["RULE", "CANARY"])
    header = lines[start]
    names = header.split()
    offsets = [header.index(n) for n in names] + [None]
    found = {}
    for line in lines[start + 1 :]:
        if line.startswith("=="):
            break
        cells = {n: line[offsets[i] : offsets[i + 1]].strip() for i, n in enumerate(names)}
        found[(cells["RULE"], cells["CANARY"])] = cells
    return found


def no_traceback(result: CliResult) -> None:
    assert "Traceback" not in result.out + result.err


async def test_analyze_passes_on_a_healthy_fleet(demo: DemoFleet, state_dir: Path) -> None:
    before = versions(demo)
    result = await run_cli("analyze", str(demo.env_path), "--for", "2s", timeout=90)
    no_traceback(result)
    assert result.code == 0, result.out + result.err
    assert "watching web-01 for 2s" in result.out
    table = rows(result.out)
    for rule in ("failed-checks", "error-ratio", "p99-latency", "traffic", "latency-shift"):
        assert table[(rule, "web-01")]["VERDICT"] == "PASS", table
    assert "== verdict: PASS" in result.out
    assert versions(demo) == before
    nothing_deployed(demo, state_dir)


async def test_analyze_says_which_baseline_hosts_it_left_out(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A host picked for the baseline that cannot be reached is replaced or dropped, and
    said: the baseline line alone did not tell an operator one was missing."""
    await demo.set_fault("web-05", "down")
    result = await run_cli("analyze", str(demo.env_path), "--for", "2s", timeout=90)
    no_traceback(result)
    assert result.code == 0, result.out + result.err
    said = [line for line in result.out.splitlines() if "left out of the baseline" in line]
    assert len(said) == 1 and said[0].startswith(
        "   [warning] left out of the baseline, unreachable: web-05 (web-05 ("
    ), said
    watching = next(line for line in result.out.splitlines() if "watching web-01" in line)
    assert "baseline: web-02" in watching and "web-05" not in watching, watching


async def test_analyze_fails_a_bad_host_without_deploying(demo: DemoFleet, state_dir: Path) -> None:
    switch_outside_canarytui(demo, "web-03", "1.3.0-bad")
    before = versions(demo)
    assert before["web-03"] == "1.3.0-bad"
    result = await run_cli(
        "analyze", str(demo.env_path), "--canary", "web-03", "--for", "3s", timeout=90
    )
    no_traceback(result)
    assert result.code == 3, result.out + result.err
    error_ratio = rows(result.out)[("error-ratio", "web-03")]
    assert error_ratio["VERDICT"] == "FAIL", error_ratio
    assert float(error_ratio["VALUE"]) > 0.1 > float(error_ratio["BASELINE"])
    assert "canary web-03 runs 1.3.0-bad" in result.out
    assert "== verdict: FAIL: the rules would fail these canaries" in result.out
    assert versions(demo) == before
    nothing_deployed(demo, state_dir)


async def test_analyze_json_lines_parse(demo: DemoFleet, state_dir: Path) -> None:
    result = await run_cli("analyze", str(demo.env_path), "--for", "1500ms", "--json", timeout=90)
    no_traceback(result)
    lines = [json.loads(line) for line in result.out.splitlines()]
    kinds = [line["event"] for line in lines]
    assert "analysis_started" in kinds and "analysis" in kinds and "verdict" in kinds
    assert all(line.get("deployment") is None for line in lines)
    final = lines[-1]
    assert final["event"] == "result" and final["exit"] == result.code
    assert final["verdict"] in ("pass", "inconclusive", "fail")
    assert {m["rule"] for m in final["measurements"]} >= {"error-ratio", "p99-latency"}
    assert final["canaries"] == ["web-01"] and "web-01" not in final["baseline"]
    assert final["diagnostics"] == []
    nothing_deployed(demo, state_dir)


async def test_analyze_bad_input_is_exit_2(demo: DemoFleet, state_dir: Path) -> None:
    env = str(demo.env_path)
    for args, said in (
        (("--for", "banana"), "--for: bad duration"),
        (("--canary", "web-99"), "not in"),
        (("--for", "0s"), "--for"),
    ):
        result = await run_cli("analyze", env, *args)
        no_traceback(result)
        assert result.code == 2, (args, result.out, result.err)
        assert said in result.err
    nothing_deployed(demo, state_dir)


async def test_compare_to_before_rules_are_not_measurable(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = edit_env(demo.env_path, tmp_path / "before.yaml", add_before_rule)
    engine = engine_for(env, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        verdict, reasons, measurements = await asyncio.wait_for(
            engine.analyze(canaries=["web-02"], duration=2.0), 60
        )
    finally:
        await engine.fleet.close()
        engine.journal.close()
    assert verdict is ev.Verdict.PASS, reasons
    row = next(m for m in measurements if m.rule == "p99-vs-itself")
    assert row.host == "web-02" and row.state == "not measurable"
    assert "not measurable without a deployment" in row.note
    assert all(e.deployment is None for e in seen)
    started = next(e for e in seen if isinstance(e, ev.AnalysisStarted))
    assert started.canaries == ["web-02"] and "web-02" not in started.baseline
    assert started.duration == 2.0  # no warm-up: nothing was restarted
    assert engine.deployment is None and not engine.watched
    nothing_deployed(demo, state_dir)


async def test_check_names_rules_whose_metric_is_missing(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    good = await run_cli("check", str(demo.env_path))
    assert good.code == 0, good.out + good.err
    assert "every analysis rule's selectors match series on 6 host(s)" in good.out

    def typo(data: dict[str, Any]) -> None:
        rules = data["canary"]["analysis"]["rules"]
        rules[0]["metric"] = "http_errors_total"

    bad = await run_cli("check", str(edit_env(demo.env_path, tmp_path / "typo.yaml", typo)))
    no_traceback(bad)
    assert bad.code == 1, bad.out + bad.err
    assert "6 of 6 hosts reachable and healthy" in bad.out
    line = next(x for x in bad.out.splitlines() if "http_errors_total" in x)
    assert line.strip().startswith(
        "PROBLEM rule error-ratio: metric http_errors_total is not on the page; "
        "closest names: http_requests_total"
    )
    assert line.endswith("[all 6 hosts]")  # one line for the six hosts
    as_json = await run_cli("check", str(tmp_path / "typo.yaml"), "--json")
    assert as_json.code == 1, as_json.err
    found = json.loads(as_json.out)  # one object, nothing else on stdout
    assert found["ok"] is False and found["reachable_and_healthy"] == 6
    [problem] = [f for f in found["rule_findings"] if f["level"] == "problem"]
    assert problem["rules"] == ["error-ratio"] and problem["hosts"] == demo.host_names
    assert problem["message"].startswith("metric http_errors_total is not on the page")

    def no_metrics(data: dict[str, Any]) -> None:
        del data["health"]["metrics"]

    blind = await run_cli(
        "check", str(edit_env(demo.env_path, tmp_path / "blind.yaml", no_metrics))
    )
    assert blind.code == 1
    assert "no metrics page (health.metrics is not set) [all 6 hosts]" in blind.out
    nothing_deployed(demo, state_dir)


async def test_an_analysis_too_short_for_its_statistical_rules_is_said_before_deploying(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """analysis.duration 3s at 1s intervals gives a Mann-Whitney rule 3 values where it
    needs 5: every verdict inconclusive. `analyze --for` said so; `check` and the dry run
    passed it silently. check says it and exits 1 (its JSON too), the dry run notes it."""

    def short(data: dict[str, Any]) -> None:
        data["canary"]["analysis"].update(duration="3s", interval="1s")

    env = str(edit_env(demo.env_path, tmp_path / "short.yaml", short))
    said = (
        "analysis.duration 3s is 3 interval(s) of 1s: statistical rules (latency-shift) "
        "need 5 on each side (watch at least 5s)"
    )
    checked = await run_cli("check", env)
    assert checked.code == 1, checked.out + checked.err
    assert f"== {said}: every deployment's verdict would be inconclusive" in checked.out
    assert "would read nothing for those rules" not in checked.out
    as_json = json.loads((await run_cli("check", env, "--json")).out)
    assert as_json["analysis_problem"] == said and as_json["ok"] is False
    dry = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert f"  {said}: every verdict would be inconclusive" in dry.out.splitlines()
    good = await run_cli("check", str(demo.env_path), "--json")
    assert json.loads(good.out)["analysis_problem"] is None


async def test_an_analysis_with_no_baseline_hosts_is_said_before_deploying(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """canary.analysis.baseline: 0 with rules compared with the baseline: every verdict is
    inconclusive. check passed it; the dry run blamed "every host planned is a canary"."""

    def none(data: dict[str, Any]) -> None:
        data["canary"]["analysis"]["baseline"] = 0

    env = str(edit_env(demo.env_path, tmp_path / "none.yaml", none))
    said = "canary.analysis.baseline is 0, and error-ratio, p99-latency, traffic"
    checked = await run_cli("check", env)
    assert checked.code == 1, checked.out + checked.err
    assert f"== {said} compare(s) the canaries with baseline hosts: every deployment's" in (
        checked.out
    ), checked.out
    as_json = json.loads((await run_cli("check", env, "--json")).out)
    assert as_json["analysis_problem"].startswith(said) and as_json["ok"] is False
    dry = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert f"  {said} compare(s) the canaries with baseline hosts: every verdict" in dry.out
    assert "every host planned is a canary" not in dry.out
    nothing_deployed(demo, state_dir)


def test_report_flags_a_pass_that_reads_nothing() -> None:
    """A rule whose selector can never match passes on zeros: the report says so."""
    from canarytui.cli.analyze import report
    from canarytui.engine.analyze import Analyzed
    from canarytui.metrics.diagnose import PROBLEM, Finding

    typo = Finding(("traffic",), PROBLEM, "metric x exists but no series matches {stauts=~'5..'}")
    result = Analyzed(
        ev.Verdict.PASS,
        [],
        [
            ev.Measurement("traffic", "web-01", 0.0, ">= 0.5x baseline", True, baseline=0.0),
            ev.Measurement("p99", "web-01", 0.123456, "<= 0.5", True, baseline=0.2, note="ok"),
        ],
        canaries=["web-01"],
        baseline=["web-02", "web-03"],
        findings={"web-01": [typo], "web-02": [typo], "web-03": [typo]},
    )
    verdict, reasons, measurements = result
    assert verdict is ev.Verdict.PASS and reasons == [] and len(measurements) == 2
    out = "\n".join(report(result, 3))
    table = rows(out)
    assert table[("traffic", "web-01")]["NOTE"] == "its selector matches nothing here (below)"
    p99 = table[("p99", "web-01")]
    assert p99["VALUE"] == "0.1235" and p99["BASELINE"] == "0.2" and p99["NOTE"] == "ok"
    assert f"PROBLEM {typo} [all 3 hosts]" in out
    assert out.endswith(
        "== verdict: PASS: the rules pass on these canaries, but 1 rule(s) read nothing on a "
        "canary (above): no proof"
    )
