"""`deploy --hosts`: a release limited to some of the file's hosts (names, patterns, roles),
and `--no-canary`: a host left behind caught up without a canary phase. The others are
never locked nor changed, the canaries and the baseline are chosen among the limited hosts,
the journal, status, history and report say the limit, and the traffic hooks' {percent}
stays the whole fleet's share."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import REPO, engine_for, release_leaving_a_lock, run_cli, switch_to

from canarytui import events as ev
from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.engine import Engine, PlanError
from canarytui.engine.plan import limited_to, make_plan, select_hosts
from canarytui.journal import Journal

EXAMPLE = REPO / "sample_envs" / "example-production.yaml"  # web-01..03 (web), api-01 (api)


def versions(fleet: DemoFleet) -> dict[str, str | None]:
    return {h: fleet.version_on(h) for h in fleet.host_names}


def count_asked(engine: Engine) -> list[str]:
    """The hosts asked a command from now on, once per command (``fleet.run``)."""
    asked: list[str] = []
    run = engine.fleet.run

    async def counted(name: str, *args: object, **kwargs: object) -> object:
        asked.append(name)
        return await run(name, *args, **kwargs)  # type: ignore[arg-type]

    engine.fleet.run = counted  # type: ignore[method-assign]
    return asked


# The plan (no host asked) ----------------------------------------------------------------


def test_hosts_are_named_by_name_pattern_or_role_in_the_files_order() -> None:
    env = load_env(EXAMPLE)
    assert select_hosts(env, ["api-01", "web-03"]) == ["web-03", "api-01"]
    assert select_hosts(env, ["web-0[23]"]) == ["web-02", "web-03"]
    assert select_hosts(env, ["role=api", "web-01", "web-*"]) == env.host_names
    assert limited_to(env, ["role=web"]) == (["web-01", "web-02", "web-03"], "role=web")
    # Every host named is no limit: the deployment is the file's, as without --hosts.
    assert limited_to(env, ["*"]) == (None, None)
    assert limited_to(env, None) == (None, None)
    # Many names (the UI's filter of hundreds of hosts): a few of them and a count.
    many = [f"web-0{i}" for i in (1, 2)] * 60
    assert limited_to(env, many)[1] == ",".join(many[:8]) + " and 112 more"
    names = env.host_names  # a copy each time (kept as a tuple): changing it changes nothing
    names.append("web-99")
    assert env.host_names == ["web-01", "web-02", "web-03", "api-01"]


def test_an_item_that_names_no_host_is_said_with_every_other_one() -> None:
    env = load_env(EXAMPLE)
    with pytest.raises(PlanError) as caught:
        select_hosts(env, ["web-01", "web-9*", "role=db", "wbe-02"])
    said = str(caught.value)
    assert said.startswith(
        "--hosts: nothing in example-production.yaml matches web-9*, role=db, wbe-02"
    )
    assert "(its roles: api, web)" in said  # a role was asked: the file's are listed
    with pytest.raises(PlanError, match="matches web-\u241b: give"):
        select_hosts(env, ["web-\x1b[2J"])  # as typed, but harmless: no escape reaches a terminal


def test_canaries_and_waves_are_chosen_among_the_limited_hosts() -> None:
    env = load_env(EXAMPLE)  # canary.hosts: [web-01]
    plan = make_plan(env, only=["web-01", "web-03", "api-01"])
    assert plan.canaries == ["web-01"] and plan.hosts[1:] == ["web-03", "api-01"]
    assert make_plan(env, canary_percent=50, only=["web-02", "web-03"]).canaries == ["web-02"]
    assert make_plan(env, only=["web-02", "web-03"], canary_phase=False).canaries == []
    assert make_plan(env, canary_phase=False).hosts == env.host_names
    with pytest.raises(PlanError) as caught:
        make_plan(env, only=["web-02", "web-03"])
    assert str(caught.value) == (
        "none of example-production.yaml's canaries (web-01) is among the hosts deployed to "
        "(--hosts): name some (--canary HOST), or deploy them without a canary phase "
        "(--no-canary)"
    )
    with pytest.raises(PlanError, match=r"not among the hosts deployed to \(--hosts\): web-01"):
        make_plan(env, canaries=["web-01"], only=["web-02", "web-03"])


# On the demo fleet -----------------------------------------------------------------------


async def test_a_limited_release_locks_and_changes_only_its_hosts(
    demo: DemoFleet, state_dir: Path
) -> None:
    """role=web: five of the six hosts; web-04 (api) is never locked, never changed, never
    in the baseline; the journal keeps the limit, and {percent} is the fleet's."""
    engine = engine_for(demo.env_path, state_dir)
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        await asyncio.wait_for(engine.discover(), 30)  # as the UI knows the fleet at rest
        asked = count_asked(engine)
        outcome = await asyncio.wait_for(
            engine.deploy("1.2.0", hosts=["role=web"], auto_promote=True), 90
        )
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert versions(demo) == {h: "1.0.0" if h == "web-04" else "1.2.0" for h in demo.host_names}
    # web-04 is asked once, as the deployment starts, what it runs (the hooks' {percent} is
    # the fleet's share) and whose lock it holds (none: one release at a time), in one round
    # trip; never locked: the lock's folder is made on every host a deployment locks.
    assert asked.count("web-04") == 1, asked
    made = {h for h in demo.host_names if (demo.sandbox_of(h) / ".canarytui").exists()}
    assert made == set(demo.host_names) - {"web-04"}
    started = next(e for e in seen if isinstance(e, ev.AnalysisStarted))
    assert started.canaries == ["web-01"] and "web-04" not in started.baseline
    assert started.baseline  # the other web hosts
    shifted = {e.phase: e.percent for e in seen if isinstance(e, ev.TrafficShifted)}
    assert shifted["canary_start"] == 17 and shifted["complete"] == 83  # of six hosts
    notices = [e.message for e in seen if isinstance(e, ev.Notice)]
    assert not any("added since" in m for m in notices), notices

    journal = Journal(state_dir)
    record = journal.last_deployment("demo", "shop")
    assert record is not None and record.scope == "role=web"
    assert "web-04" not in record.planned_hosts and len(record.planned_hosts) == 5
    assert record.summary == (
        "1.2.0 on 5 of 5 hosts (limited to role=web: 1 other(s) left as they are)"
    )
    decisions = [(d["action"], d["detail"]) for d in journal.decisions(record.id)]
    assert ("limit", "to 5 of 6 hosts: role=web") in decisions
    journal.close()

    env = str(demo.env_path)
    history = await run_cli("history", env)
    assert "web-01 (only role=web)" in history.out
    row = json.loads((await run_cli("history", env, "--json")).out.splitlines()[0])
    assert row["scope"] == "role=web"
    report = await run_cli("report", env)
    assert "| What | shop 1.2.0 to demo (5 hosts, limited by --hosts role=web) |" in report.out
    # `--to` would put web-04 back too: the back-out is the deployment's own rollback.
    assert f"| Back-out | canarytui rollback {env} (its hosts back to their previous" in (
        report.out.replace("\\_", "_")
    )


async def test_a_host_left_behind_is_caught_up_without_a_canary(
    demo: DemoFleet, state_dir: Path
) -> None:
    """Five hosts run 1.2.0 already (by hand); `--hosts web-06 --no-canary` deploys the last
    one straight away: the load balancer is told 100 %, and a rollback of it, from another
    process that has not seen the others, 83 % (the five still run it)."""
    for host in demo.host_names[:5]:
        switch_to(demo, host, "1.2.0")
    env = str(demo.env_path)
    done = await run_cli("deploy", env, "1.2.0", "--hosts", "web-06", "--no-canary")
    assert done.code == 0, done.out + done.err
    assert "(1.2.0 straight to the waves (the file's canary phase skipped))" in done.out
    assert "traffic.wave_start: told 100 % of the fleet on 1.2.0" in done.out
    assert "traffic.complete: told 100 % of the fleet on 1.2.0" in done.out
    assert "1.2.0 on 1 of 1 hosts (limited to web-06: 5 other(s)" in done.out
    assert set(versions(demo).values()) == {"1.2.0"}

    back = await run_cli("rollback", env)
    assert back.code == 0, back.out + back.err
    assert "traffic.rolled_back: told 83 % of the fleet on 1.2.0" in back.out
    assert versions(demo)["web-06"] == "1.0.0"
    assert all(versions(demo)[h] == "1.2.0" for h in demo.host_names[:5])


async def test_an_open_limited_deployment_says_its_limit(demo: DemoFleet) -> None:
    env = str(demo.env_path)
    first = await run_cli("deploy", env, "1.1.0", "--hosts", "web-0[1-3]")
    assert first.code == 0, first.out + first.err
    status = await run_cli("status", env)
    assert "   limited to 3 of 6 hosts: --hosts web-0[1-3]" in status.out.splitlines()
    as_json = json.loads((await run_cli("status", env, "--json")).out)
    assert as_json["open"]["scope"] == "web-0[1-3]"
    # promote, from another process, goes through its hosts only.
    promoted = await run_cli("promote", env)
    assert promoted.code == 0, promoted.out + promoted.err
    assert versions(demo) == {
        h: "1.1.0" if h in ("web-01", "web-02", "web-03") else "1.0.0" for h in demo.host_names
    }


async def test_a_limited_dry_run_shows_its_hosts_and_what_the_others_run(
    demo: DemoFleet,
) -> None:
    env = str(demo.env_path)
    text = await run_cli("deploy", env, "1.2.0", "--hosts", "web-0[1-3]", "--dry-run")
    assert text.code == 0, text.out + text.err
    assert (
        "hosts (3 of the file's 6: --hosts web-0[1-3]; the others, never locked nor changed, "
        "run 1.0.0 on 3), the version each runs now:"
    ) in text.out
    plan = json.loads(
        (await run_cli("deploy", env, "1.2.0", "--hosts", "web-0[1-3]", "--dry-run", "--json")).out
    )
    assert (plan["scope"], plan["fleet"], plan["others"]) == ("web-0[1-3]", 6, {"1.0.0": 3})
    assert [h["host"] for h in plan["hosts"]] == ["web-01", "web-02", "web-03"]
    assert plan["canaries"] == ["web-01"] and set(plan["baseline"]) == {"web-02", "web-03"}
    assert [w["percent"] for w in plan["waves"]] == [33, 50]  # of the fleet's six
    # complete tells the balancer the same half, as the run does (the dry run said 100).
    complete = next(t["command"] for t in plan["traffic"] if t["phase"] == "complete")
    assert complete.split()[-3:-2] == ["50"], complete


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--hosts", "web-9*,role=db"],
            "canarytui: --hosts: nothing in demo.yaml matches web-9*, role=db (its roles: "
            "api, web): give host names, patterns (web-*) or role=NAME, comma-separated",
        ),
        (
            ["--hosts", "web-04"],
            "canarytui: none of demo.yaml's canaries (web-01) is among the hosts deployed to "
            "(--hosts): name some (--canary HOST), or deploy them without a canary phase "
            "(--no-canary)",
        ),
        (["--hosts", " , "], "--hosts: names no host: give host names, patterns (web-*)"),
        (["--no-canary", "--canary", "web-01"], "--canary: not allowed with argument --no-canary"),
    ],
)
async def test_a_wrong_limit_is_refused_before_any_host_is_touched(
    demo: DemoFleet, state_dir: Path, args: list[str], said: str
) -> None:
    before = versions(demo)
    for dry in ([], ["--dry-run"]):
        refused = await run_cli("deploy", str(demo.env_path), "1.2.0", *args, *dry)
        assert refused.code == 2, refused.out + refused.err
        assert said in refused.err and "Traceback" not in refused.err
    assert versions(demo) == before
    assert not any((demo.sandbox_of(h) / ".canarytui").exists() for h in demo.host_names)
    journal = Journal(state_dir)
    assert journal.last_deployment("demo", "shop") is None
    journal.close()


async def test_a_limited_release_waits_for_another_machines_on_the_other_hosts(
    demo: DemoFleet, state_dir: Path, tmp_path: Path
) -> None:
    """Another machine's deployment holds web-01..03 (its own --hosts, open after its
    canary): one limited to web-04..06 from here is refused, saying whose, and nothing
    changes (two releases at once would tell the load balancer two stories)."""
    env = str(demo.env_path)
    other = await run_cli("deploy", env, "1.1.0", "--hosts", "web-0[1-3]", state_dir=tmp_path)
    assert other.code == 0, other.out + other.err
    before = versions(demo)
    for dry in ([], ["--dry-run"]):
        refused = await run_cli(
            "deploy", env, "1.2.0", "--hosts", "web-0[4-6]", "--no-canary", *dry
        )
        assert refused.code == 1, refused.out + refused.err
        said = refused.out + refused.err
        assert "Traceback" not in said
        if dry:
            assert (
                "would be refused now:" in said and "host web-01, web-02, web-03: locked by" in said
            )
        else:
            assert "web-01, web-02, web-03, not in this deployment: locked by" in said
            assert "(deployment #1 of 1.1.0" in said and "one release at a time in demo" in said
    assert versions(demo) == before
    assert not any((demo.sandbox_of(h) / ".canarytui").exists() for h in ("web-04", "web-05"))
    journal = Journal(state_dir)
    assert journal.last_deployment("demo", "shop") is None
    journal.close()


async def test_status_names_the_hosts_a_release_left_behind_and_how_to_catch_them_up(
    demo: DemoFleet,
) -> None:
    """web-06 is down during a release to every host (within max_failures): once it is
    back, `status` says it is not on the release and gives the command that catches it up;
    that command, run as said, puts it there, and `status` has nothing more to say."""
    env = str(demo.env_path)
    await demo.set_fault("web-06", "down")
    done = await run_cli("deploy", env, "1.2.0", "--auto-promote", timeout=90)
    assert done.code == 0, done.out + done.err
    await demo.set_fault("web-06", "up")
    said = (await run_cli("status", env)).out.splitlines()
    command = f"canarytui deploy {env} 1.2.0 --hosts web-06 --no-canary"
    assert said[-1] == f"   web-06: not on 1.2.0, deployment #1's; to catch up: {command}"
    caught = await run_cli(*command.split()[1:])
    assert caught.code == 0, caught.out + caught.err
    assert set(versions(demo).values()) == {"1.2.0"}
    assert (await run_cli("status", env)).out.splitlines()[-1] == "6 host(s): 1.2.0 on 6"


async def test_another_host_down_as_it_starts_is_asked_once(
    demo: DemoFleet, state_dir: Path
) -> None:
    """web-04 (outside role=web) is down: the start's read of the others finds it so, and
    the traffic hooks do not ask it again (each time its connect timeout)."""
    await demo.set_fault("web-04", "down")
    engine = engine_for(demo.env_path, state_dir)
    asked = count_asked(engine)
    try:
        outcome = await asyncio.wait_for(
            engine.deploy("1.2.0", hosts=["role=web"], auto_promote=True), 90
        )
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE
    assert asked.count("web-04") == 1, asked


async def test_a_lock_a_finished_release_of_this_journal_left_refuses_no_limited_one(
    demo: DemoFleet, state_dir: Path
) -> None:
    """web-06 went down as a release ended and kept its lock (its deployment is over; the
    next one to every host frees it). A release limited to web-01 is no second release at
    once: it goes on, as the dry run says, and leaves web-06's lock as it is."""
    assert await release_leaving_a_lock(demo, state_dir, "web-06") is ev.Outcome.COMPLETE
    lock = demo.sandbox_of("web-06") / ".canarytui" / "lock.demo.shop" / "owner"
    left = lock.read_text()
    await demo.set_fault("web-06", "up")
    env = str(demo.env_path)
    dry = await run_cli("deploy", env, "1.2.0", "--hosts", "web-01", "--no-canary", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert "web-06: a finished deployment's lock, outside the limit: left as it is" in dry.out
    done = await run_cli("deploy", env, "1.2.0", "--hosts", "web-01", "--no-canary")
    assert done.code == 0, done.out + done.err
    assert versions(demo)["web-01"] == "1.2.0" and versions(demo)["web-06"] == "1.1.0"
    assert lock.read_text() == left
