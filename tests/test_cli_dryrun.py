"""`deploy --dry-run` as a separate process on the demo fleet: the plan (canaries, baseline,
waves, pauses, analysis, traffic hooks, every command rendered and quoted), each host's
version read, and nothing changed: no lock, no deployment in the journal, no host moved."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from conftest import edit_env, run_cli, switch_to

from canarytui.demo import DemoFleet
from canarytui.journal import Journal


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def lock_dirs(fleet: DemoFleet) -> list[str]:
    return [
        h
        for h in fleet.host_names
        if (fleet.sandbox_of(h) / ".canarytui" / "lock.demo.shop" / "owner").exists()
    ]


def assert_nothing_changed(fleet: DemoFleet, state_dir: Path) -> None:
    assert set(versions(fleet).values()) == {"1.0.0"}
    assert lock_dirs(fleet) == []
    assert not (state_dir / "locks" / "demo.shop.lock").exists()
    journal = Journal(state_dir)
    try:
        assert journal.history("demo", "shop") == []
    finally:
        journal.close()


async def test_dry_run_prints_the_plan_and_changes_nothing(
    demo: DemoFleet, state_dir: Path
) -> None:
    env = str(demo.env_path)
    result = await run_cli("deploy", env, "1.2.0", "--dry-run", "--canary", "web-02")
    assert result.code == 0, result.err
    out = result.out
    assert "dry run: 1.2.0 to demo/shop" in out and "nothing is changed" in out
    # Every host with the version it runs now and its part in the plan.
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line[2:6] == "web-"}
    assert rows["web-02"][:2] == ["1.0.0", "canary"]
    assert rows["web-01"][:3] == ["1.0.0", "wave", "1"]
    # The baseline is the canary phase's choice: 5 of the other hosts (the file asks 5).
    assert "canary phase: web-02" in out
    assert "baseline sample (5 of 5 asked): web-01, web-03, web-04, web-05, web-06" in out
    assert "rule error-ratio: " in out and "max 0.05, max 3x baseline" in out
    assert "rule latency-shift: p50 of " in out and "mann-whitney vs baseline" in out
    assert "after a passing canary: the deployment stays open for canarytui promote" in out
    # 5 other hosts in waves of 10 % / 50 % / 100 %: 1, 2, 2 hosts; manual pauses between.
    assert "wave 1: 1 host(s), 33% of the fleet on 1.2.0 after it: web-01" in out
    assert "wave 2: 2 host(s), 67% of the fleet on 1.2.0 after it: web-03, web-04" in out
    assert "wave 3: 2 host(s), 100% of the fleet on 1.2.0 after it: web-05, web-06" in out
    assert out.count("then pause: manual") == 2
    # Every command rendered for the canary, in order, with its previous version.
    assert "commands on web-02 ({previous} = 1.0.0), in order:" in out
    commands = out[out.index("commands on web-02") :].splitlines()[1:]
    labels = [line.split("  ")[1].strip() for line in commands if line.startswith("  ")]
    assert labels == [
        "deploy.current",
        "deploy: install",
        "deploy: switch",
        "deploy: restart",
        "health.check",
        "health.metrics",
        "rollback: install",
        "rollback: switch",
        "rollback: restart",
        "deploy.releases",
        "logs",
    ]
    assert "ln -sfn releases/1.2.0 current.new" in out  # {version}
    assert "ln -sfn releases/1.0.0 current.new" in out  # the rollback: {previous}
    assert "== the deployment would start (nothing was changed)" in out
    assert_nothing_changed(demo, state_dir)


def _quoted(data: dict[str, Any]) -> None:
    """A version pattern that lets shell syntax through, a traffic section, timed pauses."""
    data["version_pattern"] = "^[A-Za-z0-9][A-Za-z0-9._;~ -]*$"
    data["traffic"] = {
        "canary_start": "lb-weight {app} {hosts} {percent}",
        "wave_start": "lb-weight {app} {hosts} {percent} --wave {wave}",
        "rolled_back": "lb-weight {app} stable 100",
    }
    data["promote"]["pause"] = "30s"
    data["deploy"]["hooks"] = {"before_host": "lb-drain {host} {version}"}


async def test_dry_run_json_renders_commands_quoted(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = edit_env(demo.env_path, tmp_path / "quoted.yaml", _quoted)
    hostile = "1.2.0; rm -rf ~"
    result = await run_cli("deploy", str(env), hostile, "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)  # one JSON object, the whole plan
    assert plan["version"] == hostile and plan["canary_phase"] is True
    assert plan["canaries"] == ["web-01"]
    assert plan["baseline"] == ["web-02", "web-03", "web-04", "web-05", "web-06"]
    assert plan["analysis"]["duration"] == 2.0 and len(plan["analysis"]["rules"]) == 4
    assert [w["hosts"] for w in plan["waves"]] == [
        ["web-02"],
        ["web-03", "web-04"],
        ["web-05", "web-06"],
    ]
    assert [w["pause_after"] for w in plan["waves"]] == ["30s", "30s", None]
    assert plan["promote"]["on_failure"] == "rollback" and plan["after_canary"] == "stop"
    hosts = {h["host"]: h for h in plan["hosts"]}
    assert all(h["version"] == "1.0.0" and h["reachable"] for h in hosts.values())
    assert hosts["web-01"]["role"] == "canary" and hosts["web-03"]["role"] == "wave 2"
    assert plan["sample_host"] == "web-01" and plan["sample_previous"] == "1.0.0"
    commands = {(c["phase"], c["step"]): c["command"] for c in plan["commands"]}
    # The hostile version is one quoted word wherever it is substituted.
    assert commands[("deploy", "before_host")] == "lb-drain web-01 '1.2.0; rm -rf ~'"
    assert commands[("deploy", "switch")].startswith("ln -sfn releases/'1.2.0; rm -rf ~' ")
    assert commands[("rollback", "switch")].startswith("ln -sfn releases/1.0.0 ")
    assert commands[("rollback", "before_host")] == "lb-drain web-01 1.0.0"
    assert [(t["phase"], t["command"]) for t in plan["traffic"]] == [
        ("canary_start", "lb-weight shop web-01 17"),
        ("wave_start (wave 1)", "lb-weight shop web-02 33 --wave 1"),
        ("wave_start (wave 2)", "lb-weight shop web-03,web-04 67 --wave 2"),
        ("wave_start (wave 3)", "lb-weight shop web-05,web-06 100 --wave 3"),
        ("rolled_back", "lb-weight shop stable 100"),
    ]
    assert plan["refusals"] == [] and plan["open_deployment"] is None
    assert_nothing_changed(demo, state_dir)


async def test_dry_run_counts_the_hosts_that_run_the_release_already(
    demo: DemoFleet, state_dir: Path
) -> None:
    """As the deployment will: those hosts are on the release for the balancer from the
    start, the baseline leaves them out, and the notes say so."""
    for name in ("web-03", "web-05"):
        switch_to(demo, name, "1.1.0")
    result = await run_cli("deploy", str(demo.env_path), "1.1.0", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["baseline"] == ["web-02", "web-04", "web-06"]
    assert [(w["hosts"], w["percent"]) for w in plan["waves"]] == [
        (["web-02"], 67),
        (["web-03", "web-04"], 83),
        (["web-05", "web-06"], 100),
    ]
    assert [t["command"].split()[-3] for t in plan["traffic"][:4]] == ["50", "67", "83", "100"]
    assert plan["notes"] == [
        "web-03, web-05 run(s) 1.1.0 already: its steps run again there; the analysis's "
        "baseline leaves them out"
    ]
    assert versions(demo) == {
        **dict.fromkeys(demo.host_names, "1.0.0"),
        "web-03": "1.1.0",
        "web-05": "1.1.0",
    }
    assert lock_dirs(demo) == []


async def test_dry_run_without_a_canary_section(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = edit_env(demo.env_path, tmp_path / "staging.yaml", lambda d: d.pop("canary"))
    result = await run_cli("deploy", str(env), "1.1.0", "--dry-run")
    assert result.code == 0, result.err
    assert "no canary phase: straight to the waves" in result.out
    assert "\ncanary phase:" not in result.out and "baseline sample" not in result.out
    assert "wave 1: 1 host(s), 17% of the fleet on 1.1.0 after it: web-01" in result.out
    assert "commands on web-01 ({previous} = 1.0.0)" in result.out
    as_json = json.loads((await run_cli("deploy", str(env), "1.1.0", "--dry-run", "--json")).out)
    assert as_json["canary_phase"] is False and as_json["canaries"] == []
    assert as_json["analysis"] is None and as_json["baseline"] == []
    assert_nothing_changed(demo, state_dir)


async def test_dry_run_says_when_the_last_wave_takes_the_hosts_the_file_leaves_out(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """`promote.waves: [20%, 50%]` makes a last wave of the others: the plan says so."""

    def waves(specs: list[Any]) -> Any:
        return lambda d: d["promote"].update(waves=specs)

    for specs, header in [
        (["20%", "50%"], "promote.waves 20%, 50%, then the rest;"),
        ([1, 2], "promote.waves 1, 2, then the rest;"),
        (["50%", "100%"], "promote.waves 50%, 100%;"),
        ([1, 5], "promote.waves 1, 5;"),
    ]:
        env = edit_env(demo.env_path, tmp_path / "short.yaml", waves(specs))
        result = await run_cli("deploy", str(env), "1.1.0", "--dry-run")
        assert result.code == 0, result.err
        assert f"waves ({header} max_failures" in result.out, (specs, result.out)
        assert "of the fleet on 1.1.0 after it: " in result.out
    assert "100% of the fleet on 1.1.0 after it" in result.out
    assert_nothing_changed(demo, state_dir)


async def test_dry_run_plan_errors_are_those_of_deploy(demo: DemoFleet, state_dir: Path) -> None:
    env = str(demo.env_path)
    for bad in (
        ["1.1.0", "--canary", "web-01,web-09"],
        ["1.1.0", "--canary", " , "],  # "$HOSTS" left empty: no canary, not the default
        ["1.1.0", "--canary-percent", "250"],
        ["1.1.0;reboot"],
    ):
        dry = await run_cli("deploy", env, *bad, "--dry-run")
        real = await run_cli("deploy", env, *bad)
        assert dry.code == real.code == 2, dry.err
        assert dry.err == real.err and dry.out == ""
    for percent in ("0", "250"):
        refused = await run_cli("deploy", env, "1.1.0", "--dry-run", "--canary-percent", percent)
        assert refused.code == 2
        assert refused.err.strip() == (
            f"canarytui: --canary-percent must be more than 0 and less than 100, got {percent}"
        )
    for command in (["deploy", env, "1.1.0", "--dry-run"], ["analyze", env]):
        empty = await run_cli(*command, "--canary", "")
        assert empty.code == 2 and empty.out == "", empty.err
        assert "argument --canary: names no host: give host names (a,b), or leave --canary " in (
            empty.err
        )
    unknown = await run_cli("deploy", env, "1.1.0", "--dry-run", "--canary", "web-09")
    assert unknown.err.strip() == "canarytui: canary host(s) not in demo.yaml: web-09"
    # What the operator typed is shown bounded, however long: a few names, a count.
    many = ",".join(f"db-{i:02d}" for i in range(20)) + ",x" + "y" * 5000
    unknown = await run_cli("deploy", env, "1.1.0", "--canary", many)
    assert unknown.code == 2
    assert "db-07 and 13 more" in unknown.err and len(unknown.err) < 300, unknown.err
    assert_nothing_changed(demo, state_dir)


async def test_dry_run_reports_locks_open_deployments_and_unreachable_hosts(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(demo.env_path)
    elsewhere = tmp_path / "elsewhere"
    assert (await run_cli("deploy", env, "1.1.0", state_dir=elsewhere)).code == 0
    await demo.set_fault("web-04", "down")
    # From another journal: the other machine's locks would refuse it.
    result = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert result.code == 1, result.err
    assert "would be refused now:" in result.out
    assert "host web-01, web-02, web-03, web-05, web-06: locked by " in result.out
    assert "(deployment #1 of 1.1.0" in result.out
    row = next(line for line in result.out.splitlines() if line.startswith("  web-04"))
    assert "UNREACHABLE" in row and "127.0.0.1" in row
    # The baseline leaves the unreachable host out, as the canary phase would.
    assert "baseline sample (4 of 5 asked): web-02, web-03, web-05, web-06" in result.out
    assert "unreachable now: web-04" in result.out
    assert "== the deployment would be refused now (nothing was changed)" in result.out
    # From the journal of the open deployment: it says so, and changes nothing either.
    same = await run_cli("deploy", env, "1.2.0", "--dry-run", "--json", state_dir=elsewhere)
    assert same.code == 1
    plan = json.loads(same.out)
    assert plan["open_deployment"].startswith("deployment #1 of 1.1.0 (awaiting promotion)")
    assert any("is still open" in r for r in plan["refusals"])
    assert {h["host"]: h["version"] for h in plan["hosts"]}["web-01"] == "1.1.0"
    journal = Journal(elsewhere)
    try:
        assert [d.id for d in journal.history("demo", "shop")] == [1]
    finally:
        journal.close()
    assert versions(demo)["web-01"] == "1.1.0" and versions(demo)["web-02"] == "1.0.0"
    # A canary that cannot be reached would refuse the start.
    await demo.set_fault("web-04", "up")
    assert (await run_cli("rollback", env, state_dir=elsewhere)).code == 0
    await demo.set_fault("web-01", "down")
    down = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert down.code == 1
    assert "canary unreachable: web-01; nothing would change" in down.out
    assert_nothing_changed(demo, state_dir)


async def test_dry_run_says_where_hosts_down_now_would_stop_the_rollout(
    demo: DemoFleet, state_dir: Path
) -> None:
    """The demo file tolerates one failure: one host down is a note; two, and the plan says
    the wave where the rollout would stop if they stay down (the start still would go on)."""
    env = str(demo.env_path)
    await demo.set_fault("web-04", "down")
    one = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert one.code == 0, one.err
    assert "unreachable now: web-04" in one.out and "stops there" not in one.out
    # Its row says where and why, its host and kind said beside (as `check` says it).
    (row,) = [line for line in one.out.splitlines() if line.startswith("  web-04  ")]
    assert row.split()[1] == "UNREACHABLE", row
    assert row.endswith(": connection refused") and "web-04 (" not in row, row
    await demo.set_fault("web-06", "down")
    two = await run_cli("deploy", env, "1.2.0", "--dry-run", "--json")
    assert two.code == 0, two.err
    assert (
        "web-04, web-06 unreachable now, more than promote.max_failures (1): if they do not "
        "answer by wave 3/3, the rollout stops there (on_failure: rollback)"
    ) in json.loads(two.out)["notes"]
    assert_nothing_changed(demo, state_dir)


def test_one_refusal_per_owner_whatever_second_each_host_was_locked() -> None:
    from canarytui.engine.dryrun import lock_refusals

    ours = {"user": "ana", "machine": "m1", "deployment": 1, "version": "1.1.0", "pid": 7}
    other = {**ours, "user": "bo", "deployment": 2}
    lines = lock_refusals(
        {
            "web-02": {**ours, "since": 1_800_000_001.2},
            "web-01": {**ours, "since": 1_800_000_000.9},  # a second boundary between them
            "web-03": {**other, "since": 1_800_000_005.0},
        }
    )
    assert len(lines) == 2
    assert lines[0].startswith("host web-02, web-01: locked by ana@m1 (deployment #1 of 1.1.0")
    assert lines[1].startswith("host web-03: locked by bo@m1 (deployment #2")
    # The earliest lock of the group is the one shown.
    earliest = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_800_000_000.9))
    assert lines[0].endswith(f"since {earliest}")
    # A thousand hosts are named as a few and a count.
    many = lock_refusals({f"web-{i:04d}": {**ours, "since": 1.0} for i in range(1000)})
    assert many == [many[0]] and many[0].startswith(
        "host web-0000, web-0001, web-0002, web-0003, web-0004, web-0005, web-0006, web-0007 "
        "and 992 more: locked by ana@m1"
    )


async def test_a_dry_run_asks_each_host_once(demo: DemoFleet, state_dir: Path) -> None:
    """One round trip a host, its version and its lock together: a hung host held the dry
    run for its connect timeout twice (10 s on the demo, where `check` took 5), and at
    1,000 hosts the second question cost 1.7 s of a 5.3 s dry run. (The canaries alone
    are asked again, for the releases they list.)"""
    import asyncio

    from conftest import engine_for

    from canarytui.engine.dryrun import dry_run

    await demo.set_fault("web-04", "down")
    engine = engine_for(demo.env_path, state_dir)
    asked: list[str] = []
    run = engine.fleet.run

    async def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(name)
        return await run(name, *args, **kwargs)

    engine.fleet.run = counted  # type: ignore[method-assign]
    try:
        plan = await asyncio.wait_for(dry_run(engine, "1.2.0"), 60)
    finally:
        await engine.fleet.close()
    # Each host once; the canary once more: the releases it lists (deploy.releases).
    assert sorted(asked) == sorted([*demo.host_names, *plan.canaries]), asked
    row = next(h for h in plan.hosts if h.host == "web-04")
    assert not row.reachable and "unreachable" in row.detail


def warned_before_a_host_changes(out: str, said: str) -> None:
    """A deployment's JSON lines (``out``) warned ``said`` before any host changed."""
    events = [json.loads(line) for line in out.splitlines()]
    warned = next(i for i, e in enumerate(events) if e.get("message", "").startswith(said))
    changed = next(
        i for i, e in enumerate(events) if e["event"] == "host" and e.get("state") == "deploying"
    )
    assert warned < changed and events[warned]["level"] == "warning"


async def test_a_version_the_canaries_do_not_list_is_said_before_it_goes(
    demo: DemoFleet, state_dir: Path
) -> None:
    """`1.2` (a slip for 1.2.0) went through the dry run silently and then to the canary:
    a version the canaries' deploy.releases does not list is named with the one it is
    likely a part of, in the dry run's notes and, before the canary changes, in the
    deployment's warnings. A listed version says nothing."""
    env = str(demo.env_path)
    dry = await run_cli("deploy", env, "1.2", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    said = "1.2 is not among the releases the canaries list (1.2.0 is)"
    assert f"  {said}: is it the release you meant?" in dry.out.splitlines(), dry.out
    listed = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert "not among the releases" not in listed.out
    real = await run_cli("deploy", env, "1.2", "--json", timeout=90)
    warned_before_a_host_changes(real.out, said)


async def test_a_version_unlisted_is_said_without_a_canary_too(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Straight to the waves on one host (`--no-canary --hosts`): the release list asked
    is the first host's to change, in the dry run and before that host changes (the slip
    went out without a word)."""
    env = str(demo.env_path)
    how = ("--no-canary", "--hosts", "web-06")
    said = "1.2 is not among the releases web-06 lists (1.2.0 is)"
    dry = await run_cli("deploy", env, "1.2", *how, "--dry-run")
    assert f"  {said}: is it the release you meant?" in dry.out.splitlines(), dry.out
    real = await run_cli("deploy", env, "1.2", *how, "--json", timeout=90)
    warned_before_a_host_changes(real.out, said)


async def test_a_plan_without_a_baseline_says_its_verdict_cannot_pass(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Every planned host a canary (`--hosts web-01`, or every host named a canary): the
    rules against the baseline have nothing to compare with, the verdict would be
    inconclusive; the dry run ended "would start" without a word."""
    env = str(demo.env_path)
    said = "no baseline host (every host planned is a canary): error-ratio, "
    for how in (("--hosts", "web-01"), ("--canary", ",".join(demo.host_names))):
        dry = await run_cli("deploy", env, "1.2.0", *how, "--dry-run")
        assert dry.code == 0, dry.out + dry.err
        note = next((x for x in dry.out.splitlines() if x.startswith(f"  {said}")), None)
        assert note is not None and note.endswith("every verdict would be inconclusive"), dry.out
    plain = await run_cli("deploy", env, "1.2.0", "--dry-run")
    assert "no baseline host" not in plain.out
