"""Traffic hooks on the real demo fleet: what each phase's command is called with, hooks on
a role's hosts, a failing or hung hook halting the rollout where it stands, and the demo's
simulated load balancer that its own hooks move."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from conftest import edit_env, engine_for, run_cli, switch_to

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.config.model import Traffic
from canarytui.demo import DemoFleet
from canarytui.demo.traffic import Balancer, Split
from canarytui.engine import hooks
from canarytui.engine.bus import RolloutState
from canarytui.journal import Journal

PHASES = ("canary_start", "wave_start", "complete", "rolled_back")
# Each run writes its arguments as one JSON line: exactly what the shell handed over.
RECORD = "import json, sys; print(json.dumps(sys.argv[1:]), flush=True)"
q = shlex.quote


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def recorder(phase: str, log: Path, workdir: Path) -> str:
    """A local hook that records its phase and every placeholder's value."""
    return (
        f"cd {q(str(workdir))} && {q(sys.executable)} -c {q(RECORD)} {phase}"
        f" {{hosts}} {{wave}} {{percent}} {{version}} {{app}} {{env}} >> {q(str(log))}"
    )


def with_traffic(demo: DemoFleet, dest: Path, traffic: dict[str, str], **top: Any) -> Path:
    """The demo's environment file with this traffic section (and other top-level keys)."""

    def edit(data: dict[str, Any]) -> None:
        data["traffic"] = traffic
        data.update(top)

    return edit_env(demo.env_path, dest, edit)


def recorded(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def group_alive(pgid: int) -> bool:
    """Some process of this process group still runs (zombies aside)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


async def deploy(env_path: Path, state_dir: Path, version: str, **kw: Any) -> tuple[Any, list]:
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        outcome = await asyncio.wait_for(engine.deploy(version, **kw), 90)
    finally:
        await engine.fleet.close()
    return outcome, seen


# ---------------------------------------------------------------- local hooks


async def test_each_phase_gets_its_values_quoted(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """canary_start, a wave_start per wave with the share growing to 100, then complete;
    a version full of shell syntax (allowed by the file's own pattern) arrives intact."""
    log, work = tmp_path / "hooks.log", tmp_path / "work"
    work.mkdir()
    env_path = with_traffic(
        demo,
        tmp_path / "env.yaml",
        {phase: recorder(phase, log, work) for phase in PHASES},
        version_pattern=r"^[A-Za-z0-9][A-Za-z0-9._+ $();'\"*-]{0,63}$",
    )
    version = "1.1.0 $(touch PWNED); 'x' \"y\" *"
    outcome, seen = await deploy(env_path, state_dir, version, auto_promote=True)
    assert outcome is ev.Outcome.COMPLETE
    assert set(versions(demo).values()) == {version}
    calls = recorded(log)
    assert [c[0] for c in calls] == [
        "canary_start",
        "wave_start",
        "wave_start",
        "wave_start",
        "complete",
    ]
    every = ",".join(demo.host_names)
    assert calls == [
        ["canary_start", "web-01", "0", "17", version, "shop", "demo"],
        ["wave_start", "web-02", "1", "33", version, "shop", "demo"],
        ["wave_start", "web-03,web-04", "2", "67", version, "shop", "demo"],
        ["wave_start", "web-05,web-06", "3", "100", version, "shop", "demo"],
        ["complete", every, "0", "100", version, "shop", "demo"],
    ]
    assert not (work / "PWNED").exists() and list(work.iterdir()) == []
    # Each run is a step of its own on "(local)", then the event saying what was shifted.
    runs = [e for e in seen if isinstance(e, ev.StepResult) and e.action == "traffic"]
    assert [(r.host, r.step, r.exit_status) for r in runs] == [
        ("(local)", "traffic.canary_start", 0),
        *[("(local)", "traffic.wave_start", 0)] * 3,
        ("(local)", "traffic.complete", 0),
    ]
    shifted = [(e.phase, e.percent, e.ok) for e in seen if isinstance(e, ev.TrafficShifted)]
    assert shifted == [
        ("canary_start", 17, True),
        ("wave_start", 33, True),
        ("wave_start", 67, True),
        ("wave_start", 100, True),
        ("complete", 100, True),
    ]
    # The users reach the canary once it is healthy, and only then is it analysed.
    kinds = [e.kind for e in seen]
    assert kinds.index("traffic") > max(
        i for i, e in enumerate(seen) if isinstance(e, ev.HostUpdate) and e.host == "web-01"
    )
    assert kinds.index("traffic") < kinds.index("analysis_started")


async def test_complete_counts_the_hosts_the_release_reached(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """web-06 failed within max_failures (1): the release completes on 5 of 6 hosts and
    ``complete`` says 83 %, as the wave before it did; it said 100 %, and the balancer sent
    web-06's users to the release it does not run. The dry run says what it counts."""
    log, work = tmp_path / "hooks.log", tmp_path / "work"
    work.mkdir()
    env_path = with_traffic(
        demo, tmp_path / "env.yaml", {p: recorder(p, log, work) for p in ("complete",)}
    )
    data = yaml.safe_load(env_path.read_text())
    data["promote"].update(max_failures=1, on_failure="halt", pause="0s")
    data["deploy"]["steps"].append({"name": "check", "run": "test ! -e broken-host"})
    env_path.write_text(yaml.safe_dump(data))
    (demo.sandbox_of("web-06") / "broken-host").touch()
    outcome, _ = await deploy(env_path, state_dir, "1.1.0", auto_promote=True)
    assert outcome is ev.Outcome.COMPLETE
    assert [c[0:4] for c in recorded(log)] == [["complete", ",".join(demo.host_names), "0", "83"]]


async def test_a_bad_release_runs_rolled_back_at_zero(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "hooks.log"
    env_path = with_traffic(
        demo, tmp_path / "env.yaml", {p: recorder(p, log, tmp_path) for p in PHASES}
    )
    outcome, seen = await deploy(env_path, state_dir, "1.3.0-bad", auto_promote=True)
    assert outcome is ev.Outcome.CANARY_FAILED
    assert [c[:4] for c in recorded(log)] == [
        ["canary_start", "web-01", "0", "17"],
        ["rolled_back", ",".join(demo.host_names), "0", "0"],
    ]
    # Users leave the release before its hosts go back.
    kinds = [(e.kind, getattr(e, "phase", None)) for e in seen]
    assert kinds.index(("traffic", "rolled_back")) < next(
        i
        for i, e in enumerate(seen)
        if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.ROLLING_BACK
    )
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_users_sent_to_a_wave_that_no_host_took_are_sent_back(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Straight to the waves, the first one's hosts all down: the balancer was told 50 %
    at its start, nothing runs the release, the promotion rolls back. The balancer is told
    0 % again (it was left sending half of the users to a release no host ran)."""
    log = tmp_path / "hooks.log"
    env_path = with_traffic(
        demo,
        tmp_path / "env.yaml",
        {p: recorder(p, log, tmp_path) for p in PHASES},
        promote={"waves": ["34%", "100%"], "max_failures": 1, "on_failure": "rollback"},
    )
    first = ("web-01", "web-02", "web-03")
    for host in first:
        await demo.set_fault(host, "down")
    try:
        outcome, _ = await deploy(
            env_path, state_dir, "1.2.0", auto_promote=True, canary_phase=False
        )
    finally:
        for host in first:
            await demo.set_fault(host, "up")
    assert outcome is ev.Outcome.PROMOTION_ROLLED_BACK, outcome
    assert [c[:4] for c in recorded(log)] == [
        ["wave_start", "web-01,web-02,web-03", "1", "50"],
        ["rolled_back", ",".join(demo.host_names), "0", "0"],
    ]
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_a_release_on_every_host_is_rolled_back_before_its_users_move(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A completed release rolled back: every host runs it, so "users off the release
    (0 %)" before the hosts go back would leave the load balancer nothing to send them to
    (the demo's balancer said "0 % of the users to 1.2.0 (6 of 6 hosts run it)"). The hook
    runs once every host is back instead."""
    log = tmp_path / "hooks.log"
    env_path = with_traffic(
        demo, tmp_path / "env.yaml", {p: recorder(p, log, tmp_path) for p in PHASES}
    )
    outcome, _ = await deploy(env_path, state_dir, "1.2.0", auto_promote=True)
    assert outcome is ev.Outcome.COMPLETE and set(versions(demo).values()) == {"1.2.0"}
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        assert await asyncio.wait_for(engine.rollback(), 90) is ev.Outcome.ROLLED_BACK
    finally:
        await engine.fleet.close()
    assert recorded(log)[-1][:4] == ["rolled_back", ",".join(demo.host_names), "0", "0"]
    back = [
        i
        for i, e in enumerate(seen)
        if isinstance(e, ev.HostUpdate) and e.state is ev.HostState.ROLLED_BACK
    ]
    told = next(i for i, e in enumerate(seen) if isinstance(e, ev.TrafficShifted))
    assert len(back) == len(demo.host_names) and told > max(back)
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_a_release_deployed_again_then_rolled_back_keeps_its_users(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Every host on 1.2.0, 1.2.0 deployed again (a config change picked up), then rolled
    back: each host goes back to what it ran before, 1.2.0, and the balancer was told
    "0 % of the users to 1.2.0" with every host on it. It is told 100 %."""
    log = tmp_path / "hooks.log"
    env_path = with_traffic(
        demo, tmp_path / "env.yaml", {p: recorder(p, log, tmp_path) for p in PHASES}
    )
    for _ in range(2):
        outcome, _ = await deploy(env_path, state_dir, "1.2.0", auto_promote=True)
        assert outcome is ev.Outcome.COMPLETE
    engine = engine_for(env_path, state_dir)
    try:
        assert await asyncio.wait_for(engine.rollback(), 90) is ev.Outcome.ROLLED_BACK
    finally:
        await engine.fleet.close()
    assert recorded(log)[-1][:4] == ["rolled_back", ",".join(demo.host_names), "0", "100"]
    assert set(versions(demo).values()) == {"1.2.0"}


async def test_taking_over_a_lock_with_nothing_of_its_release_behind_it_moves_no_user(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A finished release left its lock on a host it never reached (down in its wave,
    unreachable at the end). Another machine's take-over found nothing to roll back, and
    yet ran the rolled_back hook at 0 %: every user off the release the other hosts run.
    With nothing of the release on any host it rolls back, no hook runs."""
    log = tmp_path / "hooks.log"
    env_path = with_traffic(
        demo,
        tmp_path / "env.yaml",
        {p: recorder(p, log, tmp_path) for p in PHASES},
        promote={"waves": ["100%"], "max_failures": 1, "pause": "manual"},
    )
    engine = engine_for(env_path, state_dir)
    deploy_many = engine.hosts.deploy_many

    async def web06_down_first(names: Any, *args: Any, **kwargs: Any) -> Any:
        if "web-06" in names:
            await demo.set_fault("web-06", "down")  # before its wave reaches it
        return await deploy_many(names, *args, **kwargs)

    engine.hosts.deploy_many = web06_down_first  # type: ignore[method-assign]
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.2.0", auto_promote=True), 90)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    await demo.set_fault("web-06", "up")
    assert versions(demo)["web-06"] == "1.0.0"
    before = recorded(log)
    taken = await run_cli(
        "rollback", str(env_path), "--take-over", state_dir=tmp_path / "colleague", timeout=90
    )
    assert taken.code == 0, taken.out + taken.err
    # (the others run 1.2.0: "no host runs 1.2.0" was untrue)
    assert "nothing of 1.2.0 to put back here: the traffic hook is not run" in taken.out
    assert recorded(log) == before  # no user moved
    assert {h: v for h, v in versions(demo).items() if h != "web-06"} == {
        h: "1.2.0" for h in demo.host_names if h != "web-06"
    }


async def test_hooks_on_a_role_run_on_its_hosts(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["hosts"][-1]["roles"] = ["web", "lb"]  # web-06 also runs the load balancer
        write = "printf '%s|%s|%s|%s\\n' {phase} {{hosts}} {{wave}} {{percent}} >> traffic.log"
        data["traffic"] = {"on": "lb", **{p: write.format(phase=p) for p in PHASES}}

    env_path = edit_env(demo.env_path, tmp_path / "env.yaml", edit)
    assert load_env(env_path).traffic.on == "lb"
    outcome, seen = await deploy(env_path, state_dir, "1.2.0", auto_promote=True)
    assert outcome is ev.Outcome.COMPLETE
    lb_log = demo.sandbox_of("web-06") / "traffic.log"
    assert lb_log.read_text().splitlines() == [
        "canary_start|web-01|0|17",
        "wave_start|web-02|1|33",
        "wave_start|web-03,web-04|2|67",
        "wave_start|web-05,web-06|3|100",
        f"complete|{','.join(demo.host_names)}|0|100",
    ]
    assert not any((demo.sandbox_of(h) / "traffic.log").exists() for h in demo.host_names[:-1])
    runs = [e for e in seen if isinstance(e, ev.StepResult) and e.action == "traffic"]
    assert {r.host for r in runs} == {"web-06"} and len(runs) == 5


# ------------------------------------------------------------ failing hooks


async def test_failing_canary_start_halts_before_the_analysis(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "hooks.log"
    env_path = with_traffic(
        demo,
        tmp_path / "env.yaml",
        {
            "canary_start": "echo 'lb api: 503 pool shop is locked by change CHG-42'; exit 3",
            "rolled_back": recorder("rolled_back", log, tmp_path),
        },
    )
    first = await run_cli("deploy", str(env_path), "1.1.0", state_dir=state_dir, timeout=90)
    assert first.code == 4, first.out + first.err
    assert "lb api: 503 pool shop is locked by change CHG-42" in first.out
    assert "traffic.canary_start failed on (local) exited 3" in first.out
    assert "the analysis was not started" in first.out
    assert versions(demo)["web-01"] == "1.1.0"
    assert {versions(demo)[h] for h in demo.host_names[1:]} == {"1.0.0"}

    journal = Journal(state_dir)
    record = journal.last_deployment("demo", "shop")
    assert record is not None and record.is_open and record.phase == "halted"
    events = journal.events(record.id)
    kinds = [e["event"] for e in events]
    assert "analysis_started" not in kinds and "verdict" not in kinds
    step = next(e for e in events if e["event"] == "step" and e["action"] == "traffic")
    assert (step["host"], step["exit_status"]) == ("(local)", 3)
    assert "CHG-42" in step["output"]
    notice = next(e for e in events if e["event"] == "notice" and e["level"] == "error")
    assert "CHG-42" in notice["message"]
    journal.close()

    back = await run_cli("rollback", str(env_path), state_dir=state_dir, timeout=90)
    assert back.code == 0, back.out + back.err
    assert set(versions(demo).values()) == {"1.0.0"}
    assert [c[:4] for c in recorded(log)] == [["rolled_back", ",".join(demo.host_names), "0", "0"]]


async def test_failing_wave_start_halts_before_that_wave(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    refuse = tmp_path / "refuse"
    refuse.touch()
    check = (
        f"if [ {{wave}} = 2 ] && [ -e {q(str(refuse))} ]; then"
        " echo weights refused for wave {wave} >&2; exit 5; fi"
    )
    env_path = with_traffic(demo, tmp_path / "env.yaml", {"wave_start": check})
    engine = engine_for(env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 90)
        assert outcome is ev.Outcome.HALTED
        assert [e.wave for e in seen if isinstance(e, ev.WaveStarted)] == [1]
        now = versions(demo)
        assert (now["web-01"], now["web-02"]) == ("1.1.0", "1.1.0")
        assert {now[h] for h in ("web-03", "web-04", "web-05", "web-06")} == {"1.0.0"}
        touched = {e.host for e in seen if isinstance(e, ev.StepResult) and e.action == "deploy"}
        assert touched == {"web-01", "web-02"}
        notice = [e.message for e in seen if isinstance(e, ev.Notice) and e.level == "error"]
        assert any(
            "weights refused for wave 2" in m and "wave 2 was not started" in m for m in notice
        ), notice
        assert engine.phase is ev.Phase.HALTED

        refuse.unlink()  # the load balancer is fixed: promote again
        assert await asyncio.wait_for(engine.promote(), 90) is ev.Outcome.COMPLETE
    finally:
        await engine.fleet.close()
    assert set(versions(demo).values()) == {"1.1.0"}


async def test_a_hung_hook_is_stopped_at_its_timeout(
    demo: DemoFleet, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hooks, "HOOK_TIMEOUT", 1.0)
    pid_file = tmp_path / "hook.pid"
    hang = f"echo $$ > {q(str(pid_file))}; echo asking the lb; sleep 600; echo never"
    env_path = with_traffic(demo, tmp_path / "env.yaml", {"canary_start": hang})
    outcome, seen = await deploy(env_path, state_dir, "1.1.0")
    assert outcome is ev.Outcome.HALTED
    run = next(e for e in seen if isinstance(e, ev.StepResult) and e.action == "traffic")
    assert run.exit_status is None and run.duration == pytest.approx(1.0)
    assert "asking the lb" in run.output and "timed out after 1s" in run.output
    assert "never" not in run.output
    notice = [e.message for e in seen if isinstance(e, ev.Notice) and e.level == "error"]
    assert any("traffic.canary_start failed on (local) did not finish" in m for m in notice)
    assert not any(isinstance(e, ev.AnalysisStarted) for e in seen)
    # The shell and its sleep were one process group, of its own: all of it is gone.
    assert not group_alive(int(pid_file.read_text()))


async def test_a_hook_that_leaves_a_background_process_is_done_when_it_exits(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "hook.pid"
    command = f"echo $$ > {q(str(pid_file))}; sleep 30 & echo switched"
    try:
        status, output, took = await asyncio.wait_for(hooks._run_local(command), 20)
        assert (status, output.strip()) == (0, "switched")
        assert took < hooks.HOOK_TIMEOUT
    finally:
        import os
        import signal

        if pid_file.exists():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


class _Bus:
    def __init__(self, state: RolloutState) -> None:
        self.state = state
        self.events: list[ev.Event] = []

    def emit(self, event: ev.Event) -> None:
        self.events.append(event)


def fake_context(hosts: int, traffic: dict[str, str]) -> SimpleNamespace:
    """Just what ``hooks.fire`` reads: the file's hosts and hooks, the deployment, a bus."""
    names = [f"web-{i:03d}" for i in range(1, hosts + 1)]
    env = SimpleNamespace(
        app="shop",
        name="prod",
        hosts=[SimpleNamespace(name=n, roles=("web",)) for n in names],
        host_names=names,
        traffic=Traffic(**traffic),
    )
    record = SimpleNamespace(id=7, version="2.0.0", scope=None, planned_hosts=names)
    state = RolloutState(
        host_states=dict.fromkeys(names, ev.HostState.PENDING),
        versions=dict.fromkeys(names, "1.0.0"),
        deployment=record,  # type: ignore[arg-type]
    )
    return SimpleNamespace(env=env, state=state, bus=_Bus(state))


async def test_one_canary_of_many_is_never_told_zero(tmp_path: Path) -> None:
    """1 of 500 hosts rounds to 0 %: a balancer told 0 would send the canary nobody."""
    log = tmp_path / "hooks.log"
    ctx: Any = fake_context(500, {p: recorder(p, log, tmp_path) for p in PHASES})
    await hooks.fire(ctx, "canary_start", ["web-001"])
    ctx.state.host_states["web-001"] = ev.HostState.DEPLOYED
    await hooks.fire(ctx, "wave_start", [f"web-{i:03d}" for i in range(2, 500)], wave=1)
    ctx.state.host_states.update(dict.fromkeys(ctx.env.host_names, ev.HostState.DEPLOYED))
    await hooks.fire(ctx, "complete", [h.name for h in ctx.env.hosts])
    assert [c[:4] for c in recorded(log)] == [
        ["canary_start", "web-001", "0", "1"],
        ["wave_start", ",".join(f"web-{i:03d}" for i in range(2, 500)), "1", "99"],
        ["complete", ",".join(h.name for h in ctx.env.hosts), "0", "100"],
    ]


async def test_a_silent_failure_and_a_missing_command_say_so(tmp_path: Path) -> None:
    ctx: Any = fake_context(4, {"canary_start": "exit 7"})
    with pytest.raises(hooks.HookFailed) as failed:
        await hooks.fire(ctx, "canary_start", ["web-001"])
    assert str(failed.value) == "traffic.canary_start failed on (local) exited 7 (no output)"
    step, shifted = ctx.bus.events
    assert (step.action, step.host, step.exit_status, step.deployment) == (
        "traffic",
        "(local)",
        7,
        7,
    )
    assert (shifted.phase, shifted.percent, shifted.ok) == ("canary_start", 25, False)

    missing = q(str(tmp_path / "no-such-lb"))
    ctx = fake_context(4, {"rolled_back": f"{missing} {{app}} stable"})
    with pytest.raises(hooks.HookFailed, match=r"exited 127: .*no-such-lb"):
        await hooks.fire(ctx, "rolled_back", ["web-001"])
    # No hook for a phase, or no deployment: nothing runs, nothing is said.
    await hooks.fire(ctx, "complete", ["web-001"])
    ctx.state.deployment = None
    await hooks.fire(ctx, "rolled_back", ["web-001"])
    assert len(ctx.bus.events) == 2


# ------------------------------------------------------------ the demo's balancer


def test_balancer_weights_per_backend() -> None:
    fleet = ["1.0.0"] * 6
    lb = Balancer(lambda: list(fleet))
    assert lb.split == Split() and lb.weight("1.0.0") == 1.0  # before any deploy
    fleet[0] = "1.1.0"
    lb.set("1.1.0", 17)
    # One canary of six told its fair share (17 %): about what every other host gets.
    assert lb.weight("1.1.0") == pytest.approx(1.02)
    assert lb.weight("1.0.0") == pytest.approx(0.996)
    lb.set("1.1.0", 5)  # a fixed 5 %: the canary gets 0.3x, which the traffic rule fails
    assert lb.weight("1.1.0") == pytest.approx(0.3)
    lb.set("1.1.0", 0)  # rolled back: nobody to the release
    assert lb.weight("1.1.0") == 0.0 and lb.weight("1.0.0") == pytest.approx(1.2)
    fleet[:] = ["1.1.0"] * 6
    lb.set("1.1.0", 100)
    lb.RECOUNT_SECONDS = 0.0
    assert lb.weight("1.1.0") == 1.0  # everyone runs it: one group, equal shares
    fleet[0] = "1.2.0"  # a new canary nobody told the balancer about: no users yet
    assert lb.weight("1.2.0") == 0.0
    assert lb.weight("1.1.0") == pytest.approx(1.2)
    for bad in (-1, 101, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 100"):
            lb.set("1.1.0", bad)


def socket_of(env_path: Path) -> str:
    """The control socket the demo file's hooks name."""
    hook = load_env(env_path).traffic.canary_start
    assert hook is not None
    words = shlex.split(hook)
    return words[words.index("--socket") + 1]


async def test_the_demo_hooks_move_its_balancer(demo: DemoFleet, state_dir: Path) -> None:
    env = load_env(demo.env_path)
    assert env.traffic.on is None
    assert all(getattr(env.traffic, p) for p in PHASES)
    assert all(q(sys.executable) in (getattr(env.traffic, p) or "") for p in PHASES)
    sock = socket_of(demo.env_path)

    engine = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(engine.deploy("1.1.0"), 90) is ev.Outcome.CANARY_PASSED
        assert demo.balancer.split == Split("1.1.0", 17)
        verdict = engine.last_verdict
        assert verdict is not None and verdict.verdict is ev.Verdict.PASS
        traffic = next(m for m in verdict.measurements if m.rule == "traffic")
        assert traffic.value is not None and traffic.passed
        said = (demo.sandbox_of("web-01") / "log" / "app.log").read_text()
        assert "load balancer: 17 % of the users to 1.1.0, the rest to the others" in said

        shown = await run_cli("demo", "ctl", "lb", "--socket", sock)
        assert shown.code == 0, shown.err
        assert shown.out.strip() == (
            "load balancer: 17 % of the users to 1.1.0 (1 of 6 hosts run it), 83 % to the others"
        )
        # While it stays open, status says where the users were sent (a process stopped in
        # the analysis leaves them there).
        status = await run_cli("status", str(demo.env_path), state_dir=state_dir)
        line = next(x for x in status.out.splitlines() if x.startswith("   traffic: "))
        assert line.startswith(
            "   traffic: the load balancer was told 17 % of the fleet on 1.1.0 "
            "(traffic.canary_start, "
        ), status.out
        said = await run_cli("status", str(demo.env_path), "--json", state_dir=state_dir)
        told = json.loads(said.out)
        assert {k: told["traffic"][k] for k in ("phase", "percent", "ok", "version")} == {
            "phase": "canary_start",
            "percent": 17,
            "ok": True,
            "version": "1.1.0",
        }
        assert await asyncio.wait_for(engine.promote(), 90) is ev.Outcome.COMPLETE
    finally:
        await engine.fleet.close()
    assert demo.balancer.split == Split("1.1.0", 100)

    outcome, _ = await deploy(demo.env_path, state_dir, "1.3.0-bad")
    assert outcome is ev.Outcome.CANARY_FAILED
    assert demo.balancer.split == Split("1.3.0-bad", 0)  # nobody sent to it any more


async def test_demo_ctl_lb_refuses_bad_input(demo: DemoFleet, tmp_path: Path) -> None:
    sock = socket_of(demo.env_path)
    too_much = await run_cli("demo", "ctl", "lb", "1.1.0", "150", "--socket", sock)
    assert too_much.code == 2 and "percent must be between 0 and 100, got 150" in too_much.err
    not_a_number = await run_cli("demo", "ctl", "lb", "1.1.0", "lots", "--socket", sock)
    assert not_a_number.code == 2
    assert "percent must be a number from 0 to 100, got 'lots'" in not_a_number.err
    hostile = await run_cli("demo", "ctl", "lb", "1.1.0\x1b[2J", "5", "--socket", sock)
    assert hostile.code == 2 and "printable" in hostile.err
    gone = await run_cli("demo", "ctl", "lb", "--socket", str(tmp_path / "nothing.sock"))
    assert gone.code == 1 and "no demo fleet listens on" in gone.err
    assert demo.balancer.split == Split()  # nothing changed


async def test_a_host_fault_goes_to_the_fleet_whose_socket_is_given(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """With several demo fleets running, `demo ctl HOST MODE` went to whichever started
    last: --socket (which `ctl lb` took) was refused for a host's fault."""
    sock = socket_of(demo.env_path)
    down = await run_cli("demo", "ctl", "web-03", "down", "--socket", sock)
    assert down.code == 0, down.out + down.err
    assert down.out.startswith("web-03: down")
    up = await run_cli("demo", "ctl", "web-03", "up", "--socket", sock)
    assert up.code == 0 and up.out.startswith("web-03: up (was down)"), up.out + up.err
    gone = await run_cli(
        "demo", "ctl", "web-03", "down", "--socket", str(tmp_path / "nothing.sock")
    )
    assert gone.code == 1 and "no demo fleet listens on" in gone.err


async def test_the_demo_files_hook_refuses_bad_input_as_demo_ctl_does(
    demo: DemoFleet, tmp_path: Path
) -> None:
    """``python -m canarytui.demo.lb``, the hook the demo file names: the same refusals,
    messages and exit statuses as ``canarytui demo ctl lb``, and nothing changed."""

    async def hook(*words: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "canarytui.demo.lb",
            *words,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, err.decode()

    sock = socket_of(demo.env_path)
    code, err = await hook("1.1.0", "150", "--socket", sock)
    assert code == 2 and "percent must be between 0 and 100, got 150" in err
    code, err = await hook("1.1.0", "lots", "--socket", sock)
    assert code == 2 and "percent must be a number from 0 to 100, got 'lots'" in err
    code, err = await hook("1.1.0\x1b[2J", "5", "--socket", sock)
    assert code == 2 and "printable" in err and "\x1b" not in err
    code, err = await hook("1.1.0", "5", "--socket")
    assert code == 2 and "usage: python -m canarytui.demo.lb" in err
    code, err = await hook("1.1.0", "5", "--socket", str(tmp_path / "nothing.sock"))
    assert code == 1 and "no demo fleet listens on" in err
    assert demo.balancer.split == Split()  # nothing changed


async def test_a_balancer_that_starves_the_canary_fails_it(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A fixed 5 % (as if one canary of twenty) sends one canary of six a third of a
    baseline host's users: the traffic rule catches it."""
    env = load_env(demo.env_path)
    assert env.traffic.canary_start is not None
    starving = env.traffic.canary_start.replace("{percent}", "5")
    env_path = with_traffic(
        demo,
        tmp_path / "env.yaml",
        {p: getattr(env.traffic, p) for p in PHASES} | {"canary_start": starving},
    )
    outcome, seen = await deploy(env_path, state_dir, "1.1.0")
    assert outcome is ev.Outcome.CANARY_FAILED
    assert demo.balancer.split == Split("1.1.0", 0)  # rolled back: off the release
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert any(r.startswith("web-01: traffic") and "FAIL" in r for r in verdict.reasons), (
        verdict.reasons
    )


def test_demo_file_hooks_name_their_fleet_or_are_left_out(tmp_path: Path) -> None:
    from canarytui.demo.envfile import EnvHost, render_env

    def written(socket: Path) -> Path:
        path = tmp_path / "demo.yaml"
        path.write_text(
            render_env(
                [EnvHost("web-01", 2201, ("web",)), EnvHost("web-02", 2202, ("web",))],
                identity_file=tmp_path / "id",
                known_hosts=tmp_path / "known_hosts",
                analysis_duration=15.0,
                interval=1.0,
                canary="web-01",
                python=sys.executable,
                control_socket=socket,
            )
        )
        return path

    env = load_env(written(tmp_path / "it's here" / "control.sock"))
    assert socket_of(env.path) == str(tmp_path / "it's here" / "control.sock")
    assert env.traffic.complete == env.traffic.canary_start
    # A path that would read as a placeholder: the file stays valid, without hooks.
    assert not load_env(written(tmp_path / "{odd}" / "control.sock")).traffic.any


async def test_hosts_that_run_the_release_already_count_as_on_it(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A rollout that stopped part way, or hosts deployed by hand: the balancer is told the
    share of the fleet that runs the release (those hosts included), and the baseline is
    taken from hosts on the release before it. Told only the canaries' share, the balancer
    spread it over every host running the release and starved the canary: a good release
    failed on its traffic rule, judged against a baseline that partly ran it."""
    for name in ("web-03", "web-05"):
        switch_to(demo, name, "1.1.0")
    outcome, seen = await deploy(demo.env_path, state_dir, "1.1.0")
    said = [e.message for e in seen if isinstance(e, ev.Notice)]
    assert (
        "web-03, web-05 run(s) 1.1.0 already: its steps run again there; the analysis's "
        "baseline leaves them out"
    ) in said
    started = next(e for e in seen if isinstance(e, ev.AnalysisStarted))
    assert started.canaries == ["web-01"]
    assert started.baseline and not {"web-03", "web-05"} & set(started.baseline)
    shifted = [(e.phase, e.percent) for e in seen if isinstance(e, ev.TrafficShifted)]
    assert shifted == [("canary_start", 50)]  # web-01, web-03 and web-05 of six hosts
    assert demo.balancer.split == Split("1.1.0", 50)
    verdict = next(e for e in seen if isinstance(e, ev.VerdictReached))
    assert verdict.verdict is ev.Verdict.PASS, verdict.reasons
    assert outcome is ev.Outcome.CANARY_PASSED
