"""The sample environment files deployed for real on the demo fleet: staging's straight
waves behind the health gate, blue-green's traffic hooks in order. Each sample keeps its
own canary, promote and traffic sections; the demo lends its hosts, SSH and commands."""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, demo_fleet, run_cli

from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.journal import Journal

SAMPLES = REPO / "sample_envs"
PHASES = ("canary_start", "wave_start", "complete", "rolled_back")
RECORD = "import json, sys; print(json.dumps(sys.argv[1:]), flush=True)"
# What a sample's traffic command may hold to be recorded as it is: words and placeholders.
_PLAIN_COMMAND = re.compile(r"^[\w{}.,=/ -]+$")


@pytest.fixture
async def busy_demo() -> AsyncIterator[DemoFleet]:
    """The tests' demo fleet, four times as busy: the samples' limits were set for windows
    of minutes (a p99 within 1.3x of the baseline's), and two seconds of the usual traffic
    read a p99 from a dozen requests, too few to tell 1.3x from noise."""
    async with demo_fleet(traffic=48.0) as fleet:
        yield fleet


def on_demo(sample: Path, demo_env: Path, dest: Path, log: Path) -> Path:
    """The sample file made to run on the demo fleet, written to ``dest``.

    The demo's ``hosts`` (each taking the roles of the sample's host in the same place, so
    a sample's canaries, named or by role, map onto demo hosts), ``ssh``, ``deploy``,
    ``health`` and ``logs``, with the sample's ``canary``, ``promote`` and ``traffic``. The
    analysis keeps the sample's rules and baseline but runs as long as the demo's does
    (minutes would make a slow test), with a statistical rule optional where the demo's
    is. Each traffic command runs on this machine and appends its phase and its words,
    rendered, to ``log`` as a JSON list.
    """
    s = yaml.safe_load(sample.read_text())
    d = yaml.safe_load(demo_env.read_text())
    names = {}
    hosts = []
    for i, host in enumerate(d["hosts"]):
        model = s["hosts"][i % len(s["hosts"])]
        if i < len(s["hosts"]):
            names[model["name"]] = host["name"]
        hosts.append({**host, "roles": list(model.get("roles", []))})
    out: dict[str, Any] = {"name": s["name"], "app": s["app"]}
    out |= {key: d[key] for key in ("ssh", "deploy", "health", "logs")}
    out["hosts"] = hosts
    if "canary" in s:
        canary = dict(s["canary"])
        if "hosts" in canary:
            canary["hosts"] = [names[h] for h in canary["hosts"]]
        timing = d["canary"]["analysis"]
        analysis = dict(canary["analysis"])
        for key in ("warmup", "duration", "interval"):
            analysis[key] = timing[key]
        analysis.pop("before", None)
        optional = any(r.get("optional") for r in timing["rules"] if "compare" in r)
        analysis["rules"] = [
            {**r, "optional": True} if "compare" in r and optional else r for r in analysis["rules"]
        ]
        canary["analysis"] = analysis
        out["canary"] = canary
    out["promote"] = s["promote"]
    if "traffic" in s:
        out["traffic"] = {}
        for phase in PHASES:
            command = s["traffic"].get(phase)
            if command is None:
                continue
            assert _PLAIN_COMMAND.match(command), f"cannot record {command!r} as it is"
            out["traffic"][phase] = (
                f"{shlex.quote(sys.executable)} -c {shlex.quote(RECORD)} {phase} {command}"
                f" >> {shlex.quote(str(log))}"
            )
    dest.write_text(yaml.safe_dump(out, sort_keys=False))
    return dest


def recorded(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def last_deployment(state_dir: Path, env: str) -> tuple[Any, list[dict[str, Any]]]:
    """The environment's last deployment in the journal and its events."""
    journal = Journal(state_dir)
    try:
        record = journal.last_deployment(env, "shop")
        assert record is not None
        return record, journal.events(record.id)
    finally:
        journal.close()


def steps_on(events: list[dict[str, Any]]) -> set[str]:
    """The hosts a deploy or rollback step ran on."""
    return {e["host"] for e in events if e["event"] == "step" and e["action"] != "traffic"}


@pytest.mark.parametrize("name", ["staging.yaml", "production.yaml", "blue-green.yaml"])
def test_each_sample_loads_and_maps_onto_the_demo(
    name: str, demo: DemoFleet, tmp_path: Path
) -> None:
    sample = load_env(SAMPLES / name)
    env = load_env(on_demo(SAMPLES / name, demo.env_path, tmp_path / name, tmp_path / "log"))
    assert env.name == sample.name and env.app == sample.app == "shop"
    assert env.canary.enabled == sample.canary.enabled
    assert env.promote == sample.promote
    assert env.traffic.on is None  # recorded on this machine, whatever the sample says
    assert bool(env.traffic.any) == bool(sample.traffic.any)
    assert [h.name for h in env.hosts] == demo.host_names


def test_the_samples_say_what_they_are() -> None:
    staging = load_env(SAMPLES / "staging.yaml")
    production = load_env(SAMPLES / "production.yaml")
    blue_green = load_env(SAMPLES / "blue-green.yaml")
    assert not staging.canary.enabled and not staging.traffic.any
    # Staging and production release the same app with the same steps.
    assert staging.app == production.app
    assert staging.deploy.steps == production.deploy.steps
    assert production.canary.enabled and production.traffic.on == "lb"
    assert {h.name for h in production.hosts if "lb" in h.roles} == {"web-01", "web-02"}
    green = {h.name for h in blue_green.hosts if "green" in h.roles}
    assert set(blue_green.default_canaries()) == green
    assert blue_green.traffic.canary_start == "lb-switch {app} green 5"
    assert blue_green.traffic.rolled_back == "lb-switch {app} green 0"


async def test_staging_goes_straight_to_the_waves(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = on_demo(SAMPLES / "staging.yaml", demo.env_path, tmp_path / "staging.yaml", tmp_path)
    done = await run_cli("deploy", str(env), "1.1.0", state_dir=state_dir, timeout=90)
    assert done.code == 0, done.out + done.err
    assert set(versions(demo).values()) == {"1.1.0"}
    assert "pause 5s before wave 2" in done.out
    record, events = last_deployment(state_dir, "staging")
    assert record.outcome == "complete" and not record.is_open
    phases = [e["phase"] for e in events if e["event"] == "phase"]
    assert "canary" not in phases and "analysis" not in phases
    assert phases[0] == "promoting" and phases[-1] == "complete"
    started = next(e for e in events if e["event"] == "deployment_started")
    assert started["canaries"] == []
    assert not any(e["event"] in ("analysis_started", "verdict") for e in events)
    waves = [e["hosts"] for e in events if e["event"] == "wave_started"]
    assert waves == [demo.host_names[:3], demo.host_names[3:]]


async def test_staging_health_gate_stops_a_dead_release_in_its_first_wave(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = on_demo(SAMPLES / "staging.yaml", demo.env_path, tmp_path / "staging.yaml", tmp_path)
    dead = await run_cli("deploy", str(env), "1.4.0-dead", state_dir=state_dir, timeout=90)
    assert dead.code == 4, dead.out + dead.err
    assert "unhealthy after deploy" in dead.out
    assert set(versions(demo).values()) == {"1.0.0"}
    record, events = last_deployment(state_dir, "staging")
    assert record.outcome == "promotion rolled back"
    # The first wave's hosts got it, failed the gate and went back; the rest never did.
    assert steps_on(events) == set(demo.host_names[:3])
    assert [e["wave"] for e in events if e["event"] == "wave_started"] == [1]


async def deploy_blue_green(
    demo: DemoFleet, state_dir: Path, tmp_path: Path, version: str
) -> tuple[Any, Path]:
    """``deploy blue-green.yaml VERSION --auto-promote`` on the demo: (result, the LB's log)."""
    log = tmp_path / "lb.log"
    env = on_demo(SAMPLES / "blue-green.yaml", demo.env_path, tmp_path / "bg.yaml", log)
    done = await run_cli(
        "deploy", str(env), version, "--auto-promote", state_dir=state_dir, timeout=90
    )
    return done, log


async def test_blue_green_moves_users_to_green_then_everyone(
    busy_demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    blue, green = busy_demo.host_names[:3], busy_demo.host_names[3:]
    done, log = await deploy_blue_green(busy_demo, state_dir, tmp_path, "1.1.0")
    if done.code == 1:
        # The sample's 1.25x of blue's error ratio was set for ten minutes of traffic; on
        # two seconds (~50 errors a host) a good release is now and then over it but not
        # beyond doubt: the verdict is inconclusive and the deployment stays open, as it
        # should. The operator then promotes, and the hooks go on in the same order.
        assert "verdict: INCONCLUSIVE" in done.out and "FAIL" not in done.out, done.out
        done = await run_cli("promote", str(tmp_path / "bg.yaml"), state_dir=state_dir, timeout=90)
    assert done.code == 0, done.out + done.err
    assert recorded(log) == [
        ["canary_start", "lb-switch", "shop", "green", "5"],
        ["wave_start", "lb-switch", "shop", "green", "100"],
        ["complete", "lb-switch", "shop", "both"],
    ]
    assert set(versions(busy_demo).values()) == {"1.1.0"}
    record, events = last_deployment(state_dir, "production-bg")
    assert record.outcome == "complete"
    analysis = next(e for e in events if e["event"] == "analysis_started")
    assert (analysis["canaries"], analysis["baseline"]) == (green, blue)
    assert [e["hosts"] for e in events if e["event"] == "wave_started"] == [blue]
    # Every user is on green before the first blue host is touched.
    kinds = [(e["event"], e.get("phase"), e.get("host")) for e in events]
    cut_over = kinds.index(("traffic", "wave_start", None))
    first_blue = min(i for i, e in enumerate(events) if e["event"] == "step" and e["host"] in blue)
    assert cut_over < first_blue


async def test_blue_green_sends_everyone_back_to_blue_on_a_bad_release(
    busy_demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    bad, log = await deploy_blue_green(busy_demo, state_dir, tmp_path, "1.3.0-bad")
    assert bad.code == 3, bad.out + bad.err
    assert recorded(log) == [
        ["canary_start", "lb-switch", "shop", "green", "5"],
        ["rolled_back", "lb-switch", "shop", "green", "0"],
    ]
    assert set(versions(busy_demo).values()) == {"1.0.0"}
    _, events = last_deployment(state_dir, "production-bg")
    assert steps_on(events) == set(busy_demo.host_names[3:])  # blue was never touched
