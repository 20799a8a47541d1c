"""The deploy dialog's list of releases, built without Textual: order, marks, the entry
highlighted first, lines that are not versions, canaries that cannot be asked; then the
real command on the demo fleet, with one canary down and one hung."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from conftest import engine_for
from test_ui_support import write_env

from canarytui.config import Environment, load_env
from canarytui.demo import RELEASES, DemoFleet
from canarytui.engine.releases import (
    DEPLOYED_BEFORE,
    ROLLED_BACK,
    ROLLED_BACK_BEFORE,
    STABLE,
    Catalogue,
    build_catalogue,
    newest_first,
    stable_version,
    unknown_to_restore,
    went_bad_since,
)
from canarytui.journal import DeploymentRecord
from canarytui.ssh import CommandResult

DEMO_RELEASES = ["1.5.0-slow", "1.4.0-dead", "1.3.0-bad", "1.2.0", "1.1.0", "1.0.0"]


def env_with_releases(tmp_path: Path, command: str | None = "ls ~/releases") -> Environment:
    env = load_env(write_env(tmp_path, hosts=4))
    return dataclasses.replace(env, deploy=dataclasses.replace(env.deploy, releases=command))


def listed(stdout: str, exit_status: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult(exit_status=exit_status, stdout=stdout, stderr=stderr, duration=0.01)


def record(n: int, version: str, outcome: str | None, kind: str = "deploy") -> DeploymentRecord:
    return DeploymentRecord(
        id=n,
        token=f"t{n}",
        env="production",
        app="shop",
        env_path="production.yaml",
        version=version,
        phase="complete" if outcome == "complete" else "rolled back",
        wave=None,
        waves=2,
        is_open=False,
        outcome=outcome,
        verdict=None,
        summary=None,
        canaries=["web-01"],
        plan=[["web-02"], ["web-03", "web-04"]],
        user="operator",
        machine="ci",
        started_at=1000.0 + n,
        updated_at=1000.0 + n,
        finished_at=1000.0 + n,
        kind=kind,
    )


def marks(catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    return {r.version: r.marks for r in catalogue.releases if r.marks}


ON_1_0_0 = {"web-01": "1.0.0", "web-02": "1.0.0", "web-03": "1.0.0", "web-04": None}


def test_versions_sort_numerically_newest_first() -> None:
    versions = ["1.9.0", "1.10.0", "1.2.0", "1.2.0-rc1", "1.3.0-bad", "2.0", "0.9", "1.10.0"]
    assert newest_first(versions) == [
        "2.0",
        "1.10.0",
        "1.9.0",
        "1.3.0-bad",
        "1.2.0",
        "1.2.0-rc1",
        "0.9",
    ]
    assert newest_first(["release-10", "release-9", "Release-2"]) == [
        "release-10",
        "release-9",
        "Release-2",
    ]


def test_list_has_marks_order_and_the_next_release_highlighted(tmp_path: Path) -> None:
    env = env_with_releases(tmp_path)
    history = [
        record(3, "1.3.0-bad", "canary failed"),
        record(2, "1.4.0-dead", "promotion rolled back"),
        record(1, "0.9.0", "complete"),
    ]
    found = build_catalogue(
        env, {"web-01": listed("\n".join(DEMO_RELEASES) + "\n")}, history, ON_1_0_0
    )
    assert found.versions == [*DEMO_RELEASES, "0.9.0"]
    assert found.stable == "1.0.0"
    assert found.rolled_back == "1.3.0-bad"
    assert marks(found) == {
        "1.0.0": (STABLE,),
        "1.3.0-bad": (ROLLED_BACK,),
        "1.4.0-dead": (ROLLED_BACK_BEFORE,),
        "0.9.0": (DEPLOYED_BEFORE,),
    }
    assert found.default == "1.1.0"
    assert found.notes == ()
    one = found.get("1.2.0")
    assert one is not None and one.listed and not one.in_journal
    old = found.get("0.9.0")
    assert old is not None and old.in_journal and not old.listed


def test_highlight_skips_a_rolled_back_release_and_none_above_the_newest(tmp_path: Path) -> None:
    env = env_with_releases(tmp_path)
    listing = {"web-01": listed("1.0.0\n1.1.0\n1.2.0\n")}
    found = build_catalogue(env, listing, [record(1, "1.1.0", "rolled back")], ON_1_0_0)
    assert found.default == "1.2.0"
    newest = {h: "1.2.0" for h in ON_1_0_0}
    assert build_catalogue(env, listing, [], newest).default is None
    # Nothing known about the fleet: the newest release is offered first.
    assert build_catalogue(env, listing, [], {}).default == "1.2.0"


def test_stable_is_the_most_common_version_else_the_last_complete_deployment() -> None:
    history = [record(2, "1.3.0", "rolled back"), record(1, "1.2.0", "complete")]
    assert stable_version({"a": "1.1.0", "b": "1.1.0", "c": "1.2.0"}, history) == "1.1.0"
    assert stable_version({"a": "1.1.0", "b": "1.2.0"}, history) == "1.2.0"  # a tie: newest
    assert stable_version({"a": None}, history) == "1.2.0"
    assert stable_version({}, []) is None


def test_a_rolled_back_version_completed_later_is_not_marked(tmp_path: Path) -> None:
    env = env_with_releases(tmp_path)
    history = [
        record(3, "1.2.0", "complete"),
        record(2, "1.2.0", "canary failed"),
        record(1, "1.1.0", "complete", kind="rollback"),  # rollback --to: a known release
    ]
    found = build_catalogue(env, {"web-01": listed("1.2.0\n")}, history, {})
    assert found.rolled_back is None
    assert found.stable == "1.2.0"
    assert marks(found) == {"1.2.0": (STABLE,), "1.1.0": (DEPLOYED_BEFORE,)}


def test_a_failed_canary_is_not_cleared_by_a_release_limited_to_some_hosts(
    tmp_path: Path,
) -> None:
    """1.4.0's canary failed, then it completed on one host (``--hosts``, the UI's
    filter): it is still the release rolled back, never the one enter takes (it was
    "deployed before" and highlighted first)."""
    env = env_with_releases(tmp_path)
    limited = dataclasses.replace(record(3, "1.4.0", "complete"), scope="web-04")
    history = [limited, record(2, "1.4.0", "canary failed"), record(1, "1.2.0", "complete")]
    on_1_2 = {h: "1.2.0" for h in ON_1_0_0}
    found = build_catalogue(env, {"web-01": listed("1.2.0\n1.3.0\n1.4.0\n")}, history, on_1_2)
    assert found.rolled_back == "1.4.0" and marks(found)["1.4.0"] == (ROLLED_BACK,)
    assert found.default == "1.3.0"
    # Completed on the whole fleet since: no longer failed.
    again = [record(4, "1.4.0", "complete"), *history]
    found = build_catalogue(env, {"web-01": listed("1.4.0\n")}, again, on_1_2)
    assert found.rolled_back is None and marks(found)["1.4.0"] == (DEPLOYED_BEFORE,)


def test_lines_that_are_not_versions_are_ignored_and_counted(tmp_path: Path) -> None:
    env = env_with_releases(tmp_path)
    stdout = "Welcome to web-01!\n1.1.0\n../etc\n\x1b[31m1.2.0\n\n  1.2.0  \n" + "9" * 300 + "\n"
    found = build_catalogue(env, {"web-01": listed(stdout)}, [], ON_1_0_0)
    assert found.versions == ["1.2.0", "1.1.0", "1.0.0"]
    assert found.notes == (
        "web-01: 4 line(s) ignored, not a version (version_pattern): 'Welcome to web-01!'",
    )


def test_unreachable_canary_and_failing_command_are_notes_not_errors(tmp_path: Path) -> None:
    env = env_with_releases(tmp_path)
    listings = {
        "web-01": "web-01 (10.0.0.1:22): unreachable: connection refused",
        "web-02": listed("", 2, "ls: cannot access '/home/deploy/releases': No such file\n"),
        "web-03": listed("1.1.0\n1.2.0\n"),
        "web-04": "command timed out after 10s; stopped",
    }
    history = [record(1, "1.0.0", "complete")]
    found = build_catalogue(env, listings, history, {})
    assert found.versions == ["1.2.0", "1.1.0", "1.0.0"]
    assert found.notes == (
        "web-01 (10.0.0.1:22): unreachable: connection refused",
        "web-02: deploy.releases exited 2: ls: cannot access '/home/deploy/releases': No such file",
        "web-04: command timed out after 10s; stopped",
    )
    long = build_catalogue(env, {"web-01": "x" * 5000}, [], {})
    assert len(long.notes[0]) <= 160


def test_without_a_releases_command_the_journal_fills_the_list(tmp_path: Path) -> None:
    env = env_with_releases(tmp_path, None)
    history = [record(2, "1.1.0", "complete"), record(1, "1.0.0", "complete")]
    found = build_catalogue(env, {}, history, {"web-01": "1.1.0"})
    assert found.versions == ["1.1.0", "1.0.0"]
    assert found.notes == ("deploy.releases is not set: the journal's versions only",)
    assert found.default is None


def test_a_stricter_version_pattern_filters_the_list(tmp_path: Path) -> None:
    env = dataclasses.replace(env_with_releases(tmp_path), version_pattern=r"\d+\.\d+\.\d+")
    found = build_catalogue(env, {"web-01": listed("1.1.0\n1.3.0-bad\n")}, [], {})
    assert found.versions == ["1.1.0"]
    assert "1 line(s) ignored" in found.notes[0]


async def test_the_demo_lists_its_releases_with_a_canary_down_and_one_hung(
    demo: DemoFleet, state_dir: Path
) -> None:
    assert list(RELEASES) == sorted(DEMO_RELEASES)
    engine = engine_for(demo.env_path, state_dir)
    try:
        await asyncio.wait_for(engine.discover(), 20)
        found = await asyncio.wait_for(engine.releases(["web-01"]), 20)
        assert found.versions == DEMO_RELEASES
        assert found.stable == "1.0.0" and found.default == "1.1.0"
        assert found.notes == ()

        await demo.set_fault("web-02", "down")
        await demo.set_fault("web-03", "hang")
        started = time.monotonic()
        found = await asyncio.wait_for(engine.releases(["web-01", "web-02", "web-03"]), 30)
        took = time.monotonic() - started
        assert found.versions == DEMO_RELEASES
        assert [n.split()[0] for n in found.notes] == ["web-02", "web-03"]
        # Bounded by the file's connect_timeout (5 s), not by the hung host.
        assert took < 15, took
    finally:
        await engine.fleet.close()


def test_only_a_release_seen_on_the_hosts_is_put_back_without_a_canary(tmp_path: Path) -> None:
    """rollback --to: a known release goes; another (a typo, one never deployed, any from
    a journal that never deployed here) is refused with the known ones and the way there."""
    env = load_env(write_env(tmp_path, hosts=4))
    assert unknown_to_restore(["1.1.0", "1.0.0"], "1.0.0", env) is None
    said = unknown_to_restore(["1.1.0", "1.0.0"], "1.0.1", env)
    assert said is not None and "; known here: 1.1.0, 1.0.0)" in said
    assert said.endswith(f"with its canary first: canarytui deploy {env.path} 1.0.1")
    empty = unknown_to_restore([], "1.0.0", env)
    assert empty is not None and "; this journal knows none yet)" in empty


def test_what_the_journal_says_against_putting_a_release_back() -> None:
    """`b` in history and `rollback --to` put a release back with no canary: the latest word
    of the journal on it is said when it is against it."""
    ran: dict[int, list[str | None]] = {4: ["1.2.0", "1.2.0"], 6: ["1.3.0", None]}

    def previous_of(d: DeploymentRecord) -> list[str | None]:
        return ran.get(d.id, [])

    def said(version: str, *history: DeploymentRecord) -> str | None:
        return went_bad_since(version, list(reversed(history)), previous_of)

    done = record(1, "1.2.0", "complete")
    assert said("1.2.0", done) is None
    # A later deployment of it rolled back, or its canary failed.
    failed = record(2, "1.2.0", "canary failed")
    assert said("1.2.0", done, failed) == "#2, a later deployment of 1.2.0, ended canary failed"
    # Completed again on every host since: good again; on some hosts only: not.
    again = record(3, "1.2.0", "complete")
    assert said("1.2.0", done, failed, again) is None
    limited = dataclasses.replace(again, scope="web-02")
    assert said("1.2.0", done, failed, limited) is not None
    # A rollback --to that took the fleet off it (its hosts ran 1.2.0 before it).
    escaped = record(4, "1.1.0", "complete", kind="rollback")
    assert said("1.2.0", done, escaped) == "#4 put 1.1.0 back over it (rollback --to)"
    assert said("1.1.0", done, escaped) is None  # the release it put back
    # One that took the fleet off another release, or a rollback to it, says nothing.
    assert said("1.2.0", done, record(6, "1.1.0", "complete", kind="rollback")) is None
    assert said("1.2.0", escaped, record(5, "1.2.0", "complete", kind="rollback")) is None
    # A deployment still open is not a word yet.
    open_one = dataclasses.replace(failed, is_open=True, outcome=None)
    assert said("1.2.0", done, open_one) is None
