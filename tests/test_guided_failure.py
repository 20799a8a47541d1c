"""The operator in control of promotion: `promote --wave`, hold and resume, and
`on_failure: ask` answered headless with `--retry` / `--skip` (separate processes on the
demo fleet), every choice in the journal with who took it."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env, engine_for, run_cli, wait_for

from canarytui import events as ev
from canarytui.cli.args import EXIT_PROMOTION_FAILED
from canarytui.demo import DemoFleet
from canarytui.engine import ActionRefused
from canarytui.journal import Journal

BROKEN = "broken"  # a file in a demo host's folder that makes its preflight step fail


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def asking_env(demo: DemoFleet, tmp_path: Path, **promote: Any) -> Path:
    """The demo's file with on_failure: ask and a first step that fails where BROKEN is."""

    def edit(data: dict[str, Any]) -> None:
        data["promote"].update({"on_failure": "ask", "max_failures": 1, **promote})
        preflight = {
            "name": "preflight",
            "run": f"if [ -e {BROKEN} ]; then cat {BROKEN}; exit 3; fi",
        }
        data["deploy"]["steps"].insert(0, preflight)

    return edit_env(demo.env_path, tmp_path / "ask.yaml", edit)


def locks_on(demo: DemoFleet) -> list[str]:
    """The hosts a deployment lock is on."""
    return [h for h in demo.host_names if lock_owner(demo, h) is not None]


def lock_owner(demo: DemoFleet, name: str) -> str | None:
    """The owner line of the lock on host ``name`` (None: no lock there)."""
    path = demo.sandbox_of(name) / ".canarytui" / "lock.demo.shop" / "owner"
    return path.read_text() if path.exists() else None


def break_host(demo: DemoFleet, name: str, why: str = "disk full on /srv") -> None:
    (demo.sandbox_of(name) / BROKEN).write_text(why + "\n")


def decisions(state_dir: Path, deployment: int = 1) -> list[tuple[str, str]]:
    journal = Journal(state_dir)
    try:
        return [(d["action"], d["user"]) for d in journal.decisions(deployment)]
    finally:
        journal.close()


async def test_ask_halts_headless_then_retry_finishes(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(asking_env(demo, tmp_path))
    assert (await run_cli("deploy", env, "1.1.0", "--canary", "web-01")).code == 0
    break_host(demo, "web-04")
    halted = await run_cli("promote", env)
    assert halted.code == 4, halted.err
    assert "web-04: step preflight exited 3" in halted.out
    assert "| disk full on /srv" in halted.out
    assert f"canarytui promote {env} --retry" in halted.out
    assert f"canarytui promote {env} --skip web-04" in halted.out
    # The answers' words start in one column, whatever the hosts' names' length.
    answers = [line for line in halted.out.splitlines() if line.startswith("      canarytui ")]
    said = [re.search(r"(?<=\S) {3,}(\S.*)$", a) for a in answers]
    assert [m.group(1) for m in said if m] == [
        "deploy them again",
        "leave them as they are",
        "everything back",
    ]
    assert len({m.start(1) for m in said if m}) == 1, answers
    assert versions(demo)["web-04"] == "1.0.0"
    # The wave in flight finished; the next waves were not started.
    assert versions(demo)["web-06"] == "1.0.0"

    (demo.sandbox_of("web-04") / BROKEN).unlink()
    retried = await run_cli("promote", env, "--retry")
    assert retried.code == 0, retried.err
    assert "== complete" in retried.out
    assert set(versions(demo).values()) == {"1.1.0"}
    actions = [a for a, _ in decisions(state_dir)]
    assert actions[-2:] == ["retry", "continue"]
    assert all(user for _, user in decisions(state_dir))


async def test_skip_leaves_the_host_and_counts_it(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(asking_env(demo, tmp_path))
    assert (await run_cli("deploy", env, "1.1.0", "--canary", "web-01")).code == 0
    break_host(demo, "web-03")
    assert (await run_cli("promote", env)).code == 4

    wrong = await run_cli("promote", env, "--skip", "web-05")
    assert wrong.code == 1
    assert "cannot skip web-05" in wrong.err and "web-03" in wrong.err
    unknown = await run_cli("promote", env, "--skip", "web-99")
    assert unknown.code == 2 and "no host web-99" in unknown.err
    both = await run_cli("promote", env, "--skip", "web-03", "--retry")
    assert both.code == 2 and "not allowed with" in both.err

    skipped = await run_cli("promote", env, "--skip", "web-03", "--json")
    assert skipped.code == 0, skipped.err
    events = [json.loads(line) for line in skipped.out.splitlines()]
    assert events[-1]["outcome"] == "complete"
    finished = next(e for e in events if e["event"] == "deployment_finished")
    assert "(1 skipped: web-03)" in finished["summary"]
    assert versions(demo)["web-03"] == "1.0.0"
    assert {v for h, v in versions(demo).items() if h != "web-03"} == {"1.1.0"}
    journal = Journal(state_dir)
    try:
        assert journal.hosts(1)["web-03"].state == "skipped"
    finally:
        journal.close()
    assert [a for a, _ in decisions(state_dir)][-2:] == ["skip", "continue"]


async def test_skip_beyond_max_failures_is_refused(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(asking_env(demo, tmp_path, max_failures=0))
    assert (await run_cli("deploy", env, "1.1.0", "--canary", "web-01")).code == 0
    break_host(demo, "web-02")
    halted = await run_cli("promote", env)
    assert halted.code == 4
    assert "skipping them would exceed max_failures" in halted.out
    refused = await run_cli("promote", env, "--skip", "web-02")
    assert refused.code == 1 and "more than max_failures (0)" in refused.err
    # Rolling back runs the same steps (the file has no rollback list): fix the host first.
    (demo.sandbox_of("web-02") / BROKEN).unlink()
    rolled = await run_cli("rollback", env)
    assert rolled.code == 0, rolled.err
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_promote_wave_goes_one_wave(demo: DemoFleet, state_dir: Path) -> None:
    env = str(demo.env_path)
    assert (await run_cli("deploy", env, "1.1.0", "--canary", "web-01")).code == 0
    first = await run_cli("promote", env, "--wave")
    assert first.code == 0, first.err
    assert "== paused" in first.out
    # waves [10%, 50%, 100%] of the five others: 1, then 3, then 5 hosts
    assert [h for h, v in versions(demo).items() if v == "1.1.0"] == ["web-01", "web-02"]
    rest = await run_cli("promote", env)
    assert rest.code == 0 and set(versions(demo).values()) == {"1.1.0"}


async def test_the_next_wave_after_a_tolerated_failure_is_the_next_wave(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A host failed in wave 1 within max_failures: the next `promote --wave` deploys it
    again and then wave 2, and stops after wave 2; it once tried the failed host alone and
    stopped after wave 1 again, so a dead host kept the rollout from ever advancing by
    waves. What a promote would do is said before (``upcoming``), as the UI's dialog does."""
    env = asking_env(demo, tmp_path, on_failure="halt")
    assert (await run_cli("deploy", str(env), "1.1.0", "--canary", "web-01")).code == 0
    break_host(demo, "web-02")
    first = await run_cli("promote", str(env), "--wave")
    assert first.code == 0 and "== paused" in first.out, first.out
    assert "wave 1/3 done: 0 ok, 1 failed (web-02)" in first.out
    engine = engine_for(env, state_dir)
    try:
        assert engine.load_open() is not None
        assert engine.promotion.upcoming(all_waves=False) == (
            ["web-02"],
            [(2, ["web-03", "web-04"])],
        )
        assert engine.promotion.upcoming(all_waves=True)[1] == [
            (2, ["web-03", "web-04"]),
            (3, ["web-05", "web-06"]),
        ]
    finally:
        engine.journal.close()
    second = await run_cli("promote", str(env), "--wave")
    assert second.code == 0 and "== paused" in second.out, second.out
    assert "wave 2/3 done: 2 ok, 0 failed" in second.out
    on_it = [h for h, v in versions(demo).items() if v == "1.1.0"]
    assert on_it == ["web-01", "web-03", "web-04"], on_it
    (demo.sandbox_of("web-02") / BROKEN).unlink()
    rest = await run_cli("promote", str(env))
    assert rest.code == 0 and set(versions(demo).values()) == {"1.1.0"}, rest.out


async def test_hold_stops_after_the_wave_in_flight_and_resume_goes_on(
    demo: DemoFleet, state_dir: Path
) -> None:
    engine = engine_for(demo.env_path, state_dir, user="alice")
    try:
        assert await engine.deploy("1.1.0", canaries=["web-01"]) is ev.Outcome.CANARY_PASSED

        def on_event(event: ev.Event) -> None:
            if isinstance(event, ev.WaveStarted) and event.wave == 1:
                engine.hold()

        unsubscribe = engine.subscribe(on_event)
        outcome = await asyncio.wait_for(engine.promote(all_waves=True), 60)
        unsubscribe()
        assert outcome is ev.Outcome.PAUSED
        assert engine.phase is ev.Phase.AWAITING_PROMOTION
        assert engine.state.held is not None and engine.state.held[0] == "alice"
        assert [h for h, v in versions(demo).items() if v == "1.1.0"] == ["web-01", "web-02"]

        resumed = await asyncio.wait_for(engine.resume(), 60)
        assert resumed is ev.Outcome.COMPLETE
        assert engine.state.held is None
        assert set(versions(demo).values()) == {"1.1.0"}
    finally:
        await engine.fleet.close()
        engine.journal.close()
    assert [a for a, _ in decisions(state_dir)][-3:] == ["promote", "hold", "resume"]
    assert ("hold", "alice") in decisions(state_dir)


async def test_a_hold_while_a_promote_takes_its_locks_again_holds_it(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A later process's promote first takes the deployment's locks again (seconds at a
    thousand hosts, the phase still "awaiting promotion"): an `s` then was refused as
    "nothing to hold: ... it waits for you anyway", and the promote ran through every wave.
    It holds the rollout after the wave in flight, as at any other time of a promote."""
    first = engine_for(demo.env_path, state_dir)
    try:
        assert await first.deploy("1.1.0", canaries=["web-01"]) is ev.Outcome.CANARY_PASSED
    finally:
        await first.fleet.close()
        first.journal.close()
    engine = engine_for(demo.env_path, state_dir, user="alice")
    ensure = engine.locks.ensure
    asked: list[ev.Phase] = []

    async def held_meanwhile(*args: Any, **kwargs: Any) -> dict[str, str]:
        asked.append(engine.phase)
        engine.hold()  # the operator's `s`, while the locks are taken again
        return await ensure(*args, **kwargs)

    engine.locks.ensure = held_meanwhile  # type: ignore[method-assign]
    try:
        outcome = await asyncio.wait_for(engine.promote(all_waves=True), 60)
        assert asked == [ev.Phase.AWAITING_PROMOTION]
        assert outcome is ev.Outcome.PAUSED and engine.state.held is not None
        assert [h for h, v in versions(demo).items() if v == "1.1.0"] == ["web-01", "web-02"]
    finally:
        await engine.fleet.close()
        engine.journal.close()
    assert [a for a, _ in decisions(state_dir)][-2:] == ["promote", "hold"]


async def test_a_hold_during_the_last_wave_is_refused_as_holding_nothing(
    demo: DemoFleet, state_dir: Path
) -> None:
    """A hold in the last wave was accepted ("it stops after the wave in flight") and the
    rollout completed all the same: the hold stopped nothing. It is refused, saying why; a
    hold in an earlier wave is taken as before."""
    engine = engine_for(demo.env_path, state_dir, user="alice")
    refused: list[str] = []
    try:
        assert await engine.deploy("1.1.0", canaries=["web-01"]) is ev.Outcome.CANARY_PASSED

        def on_event(event: ev.Event) -> None:
            if isinstance(event, ev.WaveStarted) and event.wave == event.waves:
                try:
                    engine.hold()
                except ActionRefused as exc:
                    refused.append(str(exc))

        unsubscribe = engine.subscribe(on_event)
        outcome = await asyncio.wait_for(engine.promote(all_waves=True), 60)
        unsubscribe()
        assert outcome is ev.Outcome.COMPLETE and engine.state.held is None
        # Over, nothing waits between waves: only what it is is said.
        with pytest.raises(ActionRefused) as over:
            engine.hold()
        assert str(over.value) == (
            f"nothing to hold: the deployment is {ev.phase_doing(ev.Phase.COMPLETE)}"
        )
    finally:
        await engine.fleet.close()
        engine.journal.close()
    assert refused == [
        "nothing to hold: wave 3 is the last, and the rollout ends with it (r rolls it back)"
    ]
    assert "hold" not in [a for a, _ in decisions(state_dir)]


async def test_resume_before_the_hold_takes_effect(demo: DemoFleet, state_dir: Path) -> None:
    engine = engine_for(demo.env_path, state_dir, user="bob")
    try:
        assert await engine.deploy("1.1.0", canaries=["web-01"]) is ev.Outcome.CANARY_PASSED
        resumed: list[object] = []

        def on_event(event: ev.Event) -> None:
            if isinstance(event, ev.WaveStarted) and event.wave == 1:
                engine.hold()
                resumed.append(asyncio.ensure_future(engine.resume()))

        unsubscribe = engine.subscribe(on_event)
        outcome = await asyncio.wait_for(engine.promote(all_waves=True), 60)
        unsubscribe()
        assert outcome is ev.Outcome.COMPLETE
        await wait_for(lambda: all(f.done() for f in resumed), 5)  # type: ignore[attr-defined]
        assert set(versions(demo).values()) == {"1.1.0"}
    finally:
        await engine.fleet.close()
        engine.journal.close()


async def test_rollback_to_a_release_no_host_runs_locks_no_host(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A release this journal never saw (a typo) is asked of the hosts without locking
    them: refused as the typo it is, even while a colleague holds the environment, and
    no host's lock is touched; a release a host runs goes on to the locks as before."""
    env = str(demo.env_path)
    held = await run_cli("lock", env, "-m", "disk swap", state_dir=tmp_path / "colleague")
    assert held.code == 0, held.out + held.err
    owners = {h: lock_owner(demo, h) for h in demo.host_names}
    typo = await run_cli("rollback", env, "--to", "1.0.1", state_dir=state_dir)
    assert typo.code == 1, typo.out + typo.err
    assert "1.0.1 is neither a release this journal saw good on demo's hosts" in typo.err
    assert "nothing was changed" in typo.err and "disk swap" not in typo.err
    assert {h: lock_owner(demo, h) for h in demo.host_names} == owners  # each as it was
    running = await run_cli("rollback", env, "--to", "1.0.0", state_dir=state_dir)
    assert running.code == 1 and "held for maintenance" in running.err, running.err
    assert set(versions(demo).values()) == {"1.0.0"}


async def test_rollback_to_a_known_version(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    env = str(demo.env_path)
    assert (await run_cli("deploy", env, "1.1.0", "--auto-promote")).code == 0
    assert (await run_cli("deploy", env, "1.2.0", "--canary", "web-02")).code == 0
    assert (await run_cli("promote", env)).code == 0
    assert set(versions(demo).values()) == {"1.2.0"}

    busy = await run_cli("rollback", env, "--to", "1.1.0", "--take-over")
    assert busy.code == 2 and "do not go together" in busy.err
    bad = await run_cli("rollback", env, "--to", "../1.1.0")
    assert bad.code == 2 and "../1.1.0" in bad.err
    # A version this journal never saw on the hosts (a typo, a release never deployed)
    # would go everywhere with no canary: refused, the known ones and the way said.
    typo = await run_cli("rollback", env, "--to", "1.1.1")
    assert typo.code == 1, typo.out + typo.err
    assert (
        "1.1.1 is neither a release this journal saw good on demo's hosts (one a deployment "
        "completed, or one they ran before a deployment; known here: 1.2.0, "
        "1.1.0, 1.0.0) nor one a host runs now: rollback --to puts one back without a "
        f"canary; a new one goes out with its canary first: canarytui deploy {env} 1.1.1; "
        "nothing was changed"
    ) in typo.err
    assert set(versions(demo).values()) == {"1.2.0"}
    assert locks_on(demo) == []
    # A journal of another machine knows none: the release every host runs goes.
    other = tmp_path / "other-machine"
    unknown = await run_cli("rollback", env, "--to", "1.1.0", state_dir=other)
    assert unknown.code == 1 and "this journal knows none yet" in unknown.err
    assert set(versions(demo).values()) == {"1.2.0"} and locks_on(demo) == []
    same = await run_cli("rollback", env, "--to", "1.2.0", state_dir=other)
    assert same.code == 0, same.out + same.err
    # Every host left as it was: none said deployed, at the end either.
    assert "web-01: deployed 1.2.0  (already on it)" in same.out
    end = same.out[same.out.index("== complete") :]
    assert "already on it:    6  web-01" in end and "deployed:" not in end, end

    back = await run_cli("rollback", env, "--to", "1.1.0", "--json")
    assert back.code == 0, back.err
    events = [json.loads(line) for line in back.out.splitlines()]
    assert "verdict" not in {e["event"] for e in events}  # no analysis
    assert {e["phase"] for e in events if e["event"] == "phase"} == {"promoting", "complete"}
    # The balancer's share is said of the release it puts back, never "the new version".
    shifted = [e for e in events if e["event"] == "traffic"]
    assert shifted and {e["version"] for e in shifted} == {"1.1.0"}
    assert set(versions(demo).values()) == {"1.1.0"}
    journal = Journal(state_dir)
    try:
        last = journal.last_deployment("demo", "shop")
        assert last is not None and (last.kind, last.version, last.outcome) == (
            "rollback",
            "1.1.0",
            "complete",
        )
        assert journal.decisions(last.id)[0]["action"] == "rollback"
    finally:
        journal.close()
    history = await run_cli("history", env)
    assert "rollback to 1.1.0" in history.out
    # Its report's back-out (for a change ticket) is no command that is then refused.
    report = await run_cli("report", env)
    assert "| Back-out | none: it is itself a back-out (rollback --to 1.1.0); " in report.out
    # A plain rollback now would undo the way out: 1.2.0 back everywhere, no canary.
    undo = await run_cli("rollback", env)
    assert undo.code == 1, undo.out + undo.err
    assert "rolling it back would put back the release it escaped" in undo.err
    assert set(versions(demo).values()) == {"1.1.0"} and locks_on(demo) == []
    # Back to the release it escaped, as asked: said, before the first host changes.
    again = await run_cli("rollback", env, "--to", "1.2.0")
    assert again.code == 0, again.out + again.err
    said = f"#{last.id} put 1.1.0 back over it (rollback --to): putting 1.2.0 back as asked"
    assert said in again.out, again.out
    assert again.out.index(said) < again.out.index("web-01")


async def test_timed_pause_is_shown_by_the_cli(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["promote"]["pause"] = "300ms"

    env = str(edit_env(demo.env_path, tmp_path / "paused.yaml", edit))
    result = await run_cli("deploy", env, "1.1.0", "--auto-promote")
    assert result.code == 0, result.err
    assert "[info] pause 0.3s before wave 2 (promote.pause)" in result.out
    assert "[info] pause 0.3s before wave 3 (promote.pause)" in result.out


async def test_canary_percent_100_is_refused_as_no_canary(demo: DemoFleet, state_dir: Path) -> None:
    """--canary-percent 100 (a slip for 10) made every host a canary at once: no baseline to
    judge them against (inconclusive at best), no wave after. Refused as bad input, saying
    what does deploy every host; nothing changed."""
    for dry in ([], ["--dry-run"]):
        result = await run_cli(
            "deploy", str(demo.env_path), "1.1.0", "--canary-percent", "100", *dry
        )
        assert result.code == 2, result.out + result.err
        assert result.err.strip() == (
            "canarytui: --canary-percent must be more than 0 and less than 100, got 100: "
            "every host a canary leaves no host to compare them with and no wave after them; "
            "for every host in the file's waves, each health-gated: --no-canary"
        )
    assert set(versions(demo).values()) == {"1.0.0"}
    journal = Journal(state_dir)
    try:
        assert journal.last_deployment("demo", "shop") is None
    finally:
        journal.close()


async def test_a_release_complete_short_of_its_hosts_says_how_many_in_history(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A host failed within max_failures and the release completed: the history said only
    "complete", as of a release on every host; it says how many of its hosts run it."""
    env = asking_env(demo, tmp_path, on_failure="halt")
    break_host(demo, "web-04")
    done = await run_cli("deploy", str(env), "1.1.0", "--auto-promote")
    assert done.code == 0, done.out + done.err
    history = await run_cli("history", str(env))
    row = next(line for line in history.out.splitlines() if line.lstrip().startswith("1 "))
    assert "complete (5 of 6 hosts)" in row, history.out
    assert versions(demo)["web-04"] == "1.0.0"


async def test_a_rollback_to_a_known_release_beyond_max_failures_keeps_what_it_put_back(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """``rollback --to`` (the way out of a bad release) with more hosts down than
    max_failures and ``on_failure: rollback``: it halts with the good release kept where
    it went. It rolled itself back, putting the bad release back on every host it had
    rescued, and told the balancer 0 % on the good one."""
    env = asking_env(demo, tmp_path, on_failure="rollback")
    assert (await run_cli("deploy", str(env), "1.1.0", "--auto-promote")).code == 0
    assert set(versions(demo).values()) == {"1.1.0"}
    for name in ("web-05", "web-06"):
        await demo.set_fault(name, "down")
    back = await run_cli("rollback", str(env), "--to", "1.0.0")
    assert back.code == EXIT_PROMOTION_FAILED, back.out + back.err
    assert "1.0.0 is kept on the hosts it reached (on_failure: rollback is for deploys" in back.out
    # Said so before it started, not "stops there (on_failure: rollback)".
    assert "rollout stops there (halted, what it put back kept: a rollback --to is not" in back.out
    assert "rolled back to 1.1.0" not in back.out, back.out
    now = versions(demo)
    assert {now[h] for h in ("web-01", "web-02", "web-03", "web-04")} == {"1.0.0"}, now
    journal = Journal(state_dir)
    try:
        record = journal.last_deployment("demo", "shop")
        assert record is not None and record.kind == "rollback"
        assert record.is_open and record.phase == "halted", record
    finally:
        journal.close()
    # What is left is to finish putting it back, never to undo it: a plain rollback put
    # 1.1.0 back on every host it had rescued, no canary.
    assert f"next: canarytui promote {env} (finishes putting 1.0.0 back)" in back.out
    assert f"canarytui rollback {env}" not in back.out, back.out
    undo = await run_cli("rollback", str(env))
    assert undo.code == 1, undo.out + undo.err
    assert (
        f"deployment #{record.id} is putting 1.0.0 back (rollback --to): rolling it back "
        "would put back the release it escaped, everywhere and without a canary; promote "
        "finishes putting it back"
    ) in undo.err, undo.err
    assert versions(demo) == now
    report = await run_cli("report", str(env), "--format", "json")
    change = json.loads(report.out)["change"]
    assert change["back_out"] == f"canarytui promote {env} (it finishes putting 1.0.0 back)"
    status = await run_cli("status", str(env))
    assert "promote it to finish putting it back" in status.out and "roll it back" not in (
        status.out
    ), status.out


async def test_a_host_down_since_the_start_and_skipped_is_not_said_locked(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """A host down since the deployment started (never locked by it), skipped: each later
    process tried to lock it again ("tried again at its turn": it never is) and, once the
    deployment completed, warned that its lock "could not be released": there was none."""
    env = str(asking_env(demo, tmp_path))
    await demo.set_fault("web-03", "down")  # wave 2 of 3 (no canary)
    await demo.set_fault("web-05", "down")  # wave 3
    halted = await run_cli("deploy", env, "1.1.0", "--no-canary")
    assert halted.code == 4, halted.out + halted.err
    # What failed, the host said once (its SSH error named it and its address again).
    assert "   web-03: unreachable: connection refused" in halted.out.splitlines(), halted.out
    skipped = await run_cli("promote", env, "--skip", "web-03", "--wave")
    assert skipped.code == 4, skipped.out + skipped.err  # web-05, in the last wave
    # One host unreachable "more than max_failures (1)": with the one skipped, it is.
    assert (
        "web-05 unreachable now and 1 host(s) failed or skipped before, more than "
        "promote.max_failures (1)" in skipped.out
    ), skipped.out
    await demo.set_fault("web-05", "up")
    done = await run_cli("promote", env, "--retry")
    assert done.code == 0, done.out + done.err
    for said in (skipped.out, done.out):
        tried = [line for line in said.splitlines() if "could not lock" in line]
        assert not [line for line in tried if "web-03" in line], said
    assert "could not be released" not in done.out, done.out
    assert locks_on(demo) == []
    assert versions(demo)["web-03"] == "1.0.0" and versions(demo)["web-05"] == "1.1.0"
    # Rolled back, the host it never reached is not put back (it said "no previous version
    # known for this host: roll it back by hand", and the rollback halted there).
    back = await run_cli("rollback", env)
    assert back.code == 0, back.out + back.err
    assert "no previous version known" not in back.out, back.out
    assert "skipped:    1  web-03" in back.out and "web-03: rollback" not in back.out, back.out
    assert set(versions(demo).values()) == {"1.0.0"} and locks_on(demo) == []
