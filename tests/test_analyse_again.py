"""A deployment whose process ended before its canary had a verdict (Ctrl-C in the
analysis, a closed terminal, a crash) is analysed again by a later process, not only
rolled back: on the demo fleet, its journal shared as a second process's would be."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import add_before_rule, cut_off, edit_env, engine_for, switch_to
from test_ui_support import settle, until

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import ActionRefused, Engine
from canarytui.journal import Journal
from canarytui.ui.app import CanaryApp
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.widgets.rollout_progress import RolloutProgress


async def stopped(
    env: Path, state_dir: Path, version: str, phase: ev.Phase, host: str = ""
) -> None:
    """``deploy version`` by a first process, stopped as Ctrl-C stops it once it is in
    ``phase`` (with ``host`` in it: while that host's steps run)."""
    first = engine_for(env, state_dir)
    states = first.host_states
    try:
        await cut_off(
            first.deploy(version),
            lambda: (
                first.phase is phase and (not host or states.get(host) is ev.HostState.DEPLOYING)
            ),
        )
    finally:
        await first.fleet.close()


def stays_open_saying_so(journal: Journal) -> None:
    """Deployment #1 is open in its analysis, its last notice the interrupted one."""
    record = journal.open_deployment("demo", "shop")
    assert record is not None and record.phase == "analysis"
    said = [e["message"] for e in journal.events(record.id) if e["event"] == "notice"]
    # (and where the users were sent meanwhile: the canary's share stays with them)
    assert said[-1] == (
        "interrupted during analysis: deployment #1 stays open (promote analyses its "
        "canaries again, or roll it back later); the load balancer still sends 17 % of the "
        f"users to {record.version}"
    ), said


def deploying(events: list[dict[str, Any]], host: str) -> int:
    """How many times ``host``'s steps were started, by the journal."""
    started = ("host", host, "deploying")
    return sum(1 for e in events if (e["event"], e.get("host"), e.get("state")) == started)


async def test_promote_analyses_a_stopped_analysis_again_then_promotes(
    demo: DemoFleet, state_dir: Path
) -> None:
    await stopped(demo.env_path, state_dir, "1.1.0", ev.Phase.ANALYSIS)
    later = engine_for(demo.env_path, state_dir)  # a later process, the same journal
    record = later.journal.open_deployment("demo", "shop")
    assert record is not None
    assert record.way_out == "promote analyses its canaries again, or roll it back"
    try:
        assert await asyncio.wait_for(later.promote(), 60) is ev.Outcome.COMPLETE
    finally:
        await later.fleet.close()
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
    actions = [d["action"] for d in later.journal.decisions(record.id)]
    assert actions == ["deploy", "analyse again"], actions
    detail = later.journal.decisions(record.id)[1]["detail"]
    assert detail == "stopped in its analysis, before a verdict; then every wave"
    events = later.journal.events(record.id)
    # A whole new analysis, and its verdict is the one promotion went on from.
    assert [e["event"] for e in events].count("analysis_started") == 2
    verdicts = [e for e in events if e["event"] == "verdict"]
    assert [v["verdict"] for v in verdicts] == ["pass"]
    # The canary ran the release already: it was not deployed (restarted) again.
    assert deploying(events, "web-01") == 1
    assert all(deploying(events, h) == 1 for h in demo.host_names)


async def test_a_canary_stopped_mid_steps_is_deployed_again_and_waits_for_promote(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Stopped while the canary's steps ran: the analysis again deploys it first; from the
    UI's call (``analyse_again``) promotion then waits for the operator."""
    await stopped(demo.env_path, state_dir, "1.1.0", ev.Phase.CANARY, host="web-01")
    later = engine_for(demo.env_path, state_dir)
    try:
        outcome = await asyncio.wait_for(later.analyse_again(), 60)
        assert outcome is ev.Outcome.CANARY_PASSED
        assert later.phase is ev.Phase.AWAITING_PROMOTION
        assert demo.version_on("web-01") == "1.1.0"
        assert {demo.version_on(h) for h in demo.host_names if h != "web-01"} == {"1.0.0"}
        record = later.journal.open_deployment("demo", "shop")
        assert record is not None and record.verdict == "pass"
        assert deploying(later.journal.events(record.id), "web-01") == 2
        detail = later.journal.decisions(record.id)[-1]["detail"]
        assert detail == "stopped deploying to its canaries, before a verdict"
        # Asked again once there is a verdict: refused, nothing changed.
        with pytest.raises(ActionRefused, match="only a canary phase stopped before its"):
            await later.analyse_again()
        assert await asyncio.wait_for(later.promote(), 60) is ev.Outcome.COMPLETE
    finally:
        await later.fleet.close()
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}


async def test_a_bad_release_analysed_again_fails_and_rolls_the_canary_back(
    demo: DemoFleet, state_dir: Path
) -> None:
    await stopped(demo.env_path, state_dir, "1.3.0-bad", ev.Phase.ANALYSIS)
    assert demo.version_on("web-01") == "1.3.0-bad"
    later = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(later.promote(), 60) is ev.Outcome.CANARY_FAILED
    finally:
        await later.fleet.close()
    # The waves were never reached: every host is back on (or still on) 1.0.0.
    assert {demo.version_on(h) for h in demo.host_names} == {"1.0.0"}
    record = later.journal.last_deployment("demo", "shop")
    assert record is not None and not record.is_open and record.verdict == "fail"


async def test_retry_or_skip_on_a_stopped_analysis_is_refused_with_what_to_do(
    demo: DemoFleet, state_dir: Path
) -> None:
    await stopped(demo.env_path, state_dir, "1.1.0", ev.Phase.ANALYSIS)
    later = engine_for(demo.env_path, state_dir)
    try:
        for call in (later.promote(retry=True), later.promote(skip=["web-02"])):
            with pytest.raises(ActionRefused, match="promote alone analyses its canaries again"):
                await call
    finally:
        await later.fleet.close()
    record = later.journal.open_deployment("demo", "shop")
    assert record is not None
    assert [d["action"] for d in later.journal.decisions(record.id)] == ["deploy"]
    assert {demo.version_on(h) for h in demo.host_names if h != "web-01"} == {"1.0.0"}


async def test_p_in_the_ui_analyses_a_stopped_analysis_again(
    demo: DemoFleet, state_dir: Path
) -> None:
    """The UI opened on a deployment whose process ended in its analysis: the panel offers
    p to analyse it again; p asks, y runs a new analysis; promotion then waits for p."""
    await stopped(demo.env_path, state_dir, "1.2.0", ev.Phase.ANALYSIS)
    env, journal = load_env(demo.env_path), Journal(state_dir)
    app = CanaryApp(env, journal, engine=Engine(env, journal, user="next-operator"))
    engine = app.engine

    def panel() -> str:
        return str(app.fleet_screen.query_one(RolloutProgress).render())

    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "p analyse again" in panel(), 10, panel)
        # Stopped before its first values: said so, not "starting".
        assert "phase analysis, stopped" in panel() and "analysis stopped\n" in panel()
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "asked")
        assert isinstance(app.screen, ConfirmScreen)
        assert "then analyse them all again for 2s" in app.screen.message
        await pilot.press("y")
        await until(pilot, lambda: engine.phase is ev.Phase.ANALYSIS, 10, "analysing")
        assert "p analyse again" not in panel()  # it runs: nothing to start again
        await until(pilot, lambda: engine.phase is ev.Phase.AWAITING_PROMOTION, 30, "verdict")
        await settle(pilot)
        assert "p next wave" in panel(), panel()
        assert not engine.busy
    record = journal.open_deployment("demo", "shop")
    assert record is not None and record.verdict == "pass"
    decisions = journal.decisions(record.id)
    assert [(d["action"], d["user"]) for d in decisions][-1] == ("analyse again", "next-operator")
    assert {demo.version_on(h) for h in demo.host_names if h != "web-01"} == {"1.0.0"}


async def test_a_rule_against_the_canary_before_has_no_value_again_and_never_passes(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A canary left running its release has no values from before it: a rule comparing
    with them is said to have none, and the verdict is inconclusive, never a pass."""

    env = edit_env(demo.env_path, tmp_path / "before.yaml", add_before_rule)
    await stopped(env, state_dir, "1.1.0", ev.Phase.ANALYSIS)
    later = engine_for(env, state_dir)
    try:
        assert await asyncio.wait_for(later.analyse_again(), 60) is ev.Outcome.INCONCLUSIVE
    finally:
        await later.fleet.close()
    record = later.journal.open_deployment("demo", "shop")
    assert record is not None and record.verdict == "inconclusive"
    events = later.journal.events(record.id)
    said = [e["message"] for e in events if e["event"] == "notice"]
    assert (
        "web-01 run(s) 1.1.0 already: the rules compared with a canary's own values before "
        "have none of them"
    ) in said, said
    verdict = [e for e in events if e["event"] == "verdict"][-1]
    row = next(m for m in verdict["measurements"] if m["rule"] == "p99-vs-itself")
    assert row["status"] == "no data", row


async def test_a_canary_changed_by_hand_since_is_deployed_again_not_judged(
    demo: DemoFleet, state_dir: Path
) -> None:
    """The journal has the canary on the release, but it runs another now (put back by
    hand after the process ended): it is deployed again before the new analysis."""
    await stopped(demo.env_path, state_dir, "1.1.0", ev.Phase.ANALYSIS)
    switch_to(demo, "web-01", "1.0.0")
    later = engine_for(demo.env_path, state_dir)
    try:
        assert await asyncio.wait_for(later.analyse_again(), 60) is ev.Outcome.CANARY_PASSED
    finally:
        await later.fleet.close()
    assert demo.version_on("web-01") == "1.1.0"
    record = later.journal.open_deployment("demo", "shop")
    assert record is not None
    events = later.journal.events(record.id)
    assert deploying(events, "web-01") == 2
    said = [e["message"] for e in events if e["event"] == "notice"]
    assert "web-01 do(es) not say 1.1.0 any more: deployed again" in said, said


async def test_a_failed_canary_start_hook_fixed_is_analysed_then_promoted_never_skipped(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """The load balancer refused the canary's traffic (``canary_start`` failed): the
    deployment halted before any analysis. Once the hook is fixed, promote runs the canary
    phase again (the hook, then the analysis): it never goes to the waves unjudged."""

    def hook(command: str) -> Path:
        def edit(data: dict[str, Any]) -> None:
            data["traffic"] = {"canary_start": command}

        return edit_env(demo.env_path, tmp_path / f"env-{len(command)}.yaml", edit)

    broken = engine_for(hook("echo 'lb api: 503 pool locked'; exit 3"), state_dir)
    try:
        assert await asyncio.wait_for(broken.deploy("1.1.0"), 60) is ev.Outcome.HALTED
    finally:
        await broken.fleet.close()
    record = broken.journal.open_deployment("demo", "shop")
    assert record is not None and record.phase == "halted" and record.verdict is None
    assert record.way_out == "promote analyses its canaries again, or roll it back"
    fixed = engine_for(hook("true"), state_dir)
    try:
        assert await asyncio.wait_for(fixed.promote(), 60) is ev.Outcome.COMPLETE
    finally:
        await fixed.fleet.close()
    events = fixed.journal.events(record.id)
    kinds = [e["event"] for e in events]
    assert kinds.count("analysis_started") == 1
    assert kinds.index("verdict") < kinds.index("wave_started")
    assert [e["verdict"] for e in events if e["event"] == "verdict"] == ["pass"]
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}


async def test_a_canary_down_refuses_the_analysis_again_and_changes_nothing(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Asked while a canary does not answer: refused with which and why, nothing decided,
    nothing changed; once it is back, the analysis runs."""
    await stopped(demo.env_path, state_dir, "1.1.0", ev.Phase.ANALYSIS)
    await demo.set_fault("web-01", "down")
    later = engine_for(demo.env_path, state_dir)
    try:
        with pytest.raises(ActionRefused) as refused:
            await asyncio.wait_for(later.promote(), 60)
        said = str(refused.value)
        assert said.startswith("canary web-01 does not answer (")
        assert said.endswith(
            "its analysis cannot run again; nothing was changed (try again once it answers, "
            "or roll back)"
        ), said
        record = later.journal.open_deployment("demo", "shop")
        assert record is not None and record.phase == "analysis"
        assert [d["action"] for d in later.journal.decisions(record.id)] == ["deploy"]
        assert {demo.version_on(h) for h in demo.host_names if h != "web-01"} == {"1.0.0"}
        await demo.set_fault("web-01", "up")
        assert await asyncio.wait_for(later.analyse_again(), 60) is ev.Outcome.CANARY_PASSED
    finally:
        await later.fleet.close()


async def test_an_analysis_again_stopped_in_turn_stays_open_and_frees_its_locks(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Ctrl-C in the analysis run again: as the first time, the deployment stays open with
    the same way out, and the locks it took again are freed."""
    await stopped(demo.env_path, state_dir, "1.1.0", ev.Phase.ANALYSIS)
    later = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    later.subscribe(seen.append)
    try:
        await cut_off(
            later.analyse_again(), lambda: any(isinstance(e, ev.AnalysisStarted) for e in seen)
        )
    finally:
        await later.fleet.close()
    stays_open_saying_so(later.journal)
    assert locked(demo) == []


def locked(demo: DemoFleet) -> list[str]:
    """The hosts that carry the demo's lock."""
    owner = Path(".canarytui", "lock.demo.shop", "owner")
    return [h for h in demo.host_names if (demo.sandbox_of(h) / owner).exists()]
