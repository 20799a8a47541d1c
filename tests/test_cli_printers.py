"""The command line's printers: every event is a line, in order; the lines of a busy moment
go out in one write within FLUSH_AFTER, and at once when no event loop runs."""

from __future__ import annotations

import dataclasses
import io
import json

import asyncssh
from conftest import wait_for

from canarytui import events as ev
from canarytui.cli.printers import FLUSH_AFTER, HumanPrinter, JsonPrinter
from canarytui.ssh.library import lost_how


class Counted(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.flushed = ""

    def flush(self) -> None:
        self.flushes += 1
        self.flushed = self.getvalue()


def steps(n: int) -> list[ev.StepResult]:
    return [
        ev.StepResult(
            host=f"web-{i}", step="install", action="deploy", exit_status=0, output="", duration=0.1
        )
        for i in range(n)
    ]


async def test_a_busy_moment_is_one_flush_within_its_bound() -> None:
    out = Counted()
    printer = JsonPrinter(out)
    for event in steps(200):
        printer(event)
    assert out.flushes == 0
    await wait_for(lambda: out.flushes == 1, timeout=FLUSH_AFTER + 5)
    lines = out.flushed.splitlines()
    assert [json.loads(line)["host"] for line in lines] == [f"web-{i}" for i in range(200)]
    printer(ev.PhaseChanged(phase=ev.Phase.COMPLETE))  # later: a flush of its own
    await wait_for(lambda: out.flushes == 2, timeout=FLUSH_AFTER + 5)
    assert json.loads(out.flushed.splitlines()[-1])["phase"] == "complete"


def test_without_an_event_loop_each_line_goes_out_at_once() -> None:
    out = Counted()
    printer = HumanPrinter(out)
    printer(ev.PhaseChanged(phase=ev.Phase.CANARY))
    assert out.flushes == 1 and out.flushed == "-- canary\n"


def test_an_ending_is_said_once_by_its_outcome() -> None:
    """A deployment's final phase comes with its outcome: "-- rolled back" then "-- canary
    failed: 1 host(s) rolled back" said the end twice; a phase it goes on from is said."""
    out = Counted()
    printer = HumanPrinter(out)
    for phase in (ev.Phase.ROLLING_BACK, ev.Phase.ROLLED_BACK, ev.Phase.HALTED):
        printer(ev.PhaseChanged(phase=phase))
    summary = "1 host(s) rolled back from 1.3.0-bad"
    printer(ev.DeploymentFinished(outcome=ev.Outcome.CANARY_FAILED, summary=summary))
    printer(ev.PhaseChanged(phase=ev.Phase.COMPLETE))
    assert out.getvalue().splitlines() == [
        "-- rolling back",
        "-- halted",
        f"-- canary failed: {summary}",
    ]


def test_a_host_line_says_an_ssh_error_without_the_host_again() -> None:
    """ "web-05: unreachable  (web-05 (127.0.0.1:37179): unreachable: connection refused)"
    said the host and its state twice; its line says where and why. A detail that is no
    SSH error, or of a host the printer was not told of, is said as it is."""
    out = Counted()
    printer = HumanPrinter(out, endpoints={"web-05": "127.0.0.1:37179", "web-01": "10.0.0.1"})
    unreachable, failed = ev.HostState.UNREACHABLE, ev.HostState.FAILED
    for host, state, detail in [
        ("web-05", unreachable, "web-05 (127.0.0.1:37179): unreachable: connection refused"),
        ("web-01", failed, "web-01 (10.0.0.1): connection lost during a command"),
        ("web-01", failed, "unhealthy after deploy: health check exited 1 3 times"),
        ("web-09", unreachable, "web-09 (10.0.0.9): unreachable: timed out after 5s"),
    ]:
        printer(ev.HostUpdate(host=host, state=state, detail=detail, deployment=1))
    assert out.getvalue().splitlines() == [
        "   web-05: unreachable  (127.0.0.1:37179: connection refused)",
        "   web-01: failed  (10.0.0.1: connection lost during a command)",
        "   web-01: failed  (unhealthy after deploy: health check exited 1 3 times)",
        "   web-09: unreachable  (web-09 (10.0.0.9): unreachable: timed out after 5s)",
    ]


def test_a_lost_connection_is_said_once() -> None:
    """asyncssh's "Connection lost" added nothing to "connection lost during a command"."""
    assert lost_how(asyncssh.ConnectionLost("Connection lost")) == ""
    assert lost_how(ConnectionResetError(104, "Connection reset by peer")) == (
        ": [Errno 104] Connection reset by peer"
    )


def test_a_start_says_how_many_hosts_it_locks() -> None:
    """The seconds a big fleet's locks take are not silent: one line says what happens."""
    out = Counted()
    printer = HumanPrinter(out)
    printer(ev.DeploymentStarting(version="1.1.0", hosts=1000, action="deploy"))
    printer(ev.DeploymentStarting(version="1.0.0\x1b[2J", hosts=3, action="rollback"))
    assert out.flushed.splitlines() == [
        "deploying 1.1.0: locking 1000 host(s) and reading their versions",
        "putting back 1.0.0␛: locking 3 host(s) and reading their versions",
    ]  # a version typed with an escape sequence shows it, never runs it


def test_a_start_held_up_says_which_hosts_it_waits_for_when_quiet_long_enough() -> None:
    """A hung host holds a start for its command timeout: after a quiet while, a line
    names the hosts the locks still wait for; said each second, printed no more often
    than the in-flight lines."""
    out = Counted()
    printer = HumanPrinter(out, progress_every=3600)
    printer(ev.DeploymentStarting(version="1.1.0", hosts=8, action="deploy"))
    waiting = ev.LocksWaiting(answered=7, total=8, waiting=["web-05"], more=0, waited=12.4)
    printer(waiting)
    assert len(out.flushed.splitlines()) == 1  # not yet: something was said just now
    printer._progress_every = 0.0
    printer(waiting)
    many = ev.LocksWaiting(answered=2, total=1000, waiting=["a", "b", "c"], more=995, waited=3)
    printer(many)
    assert out.flushed.splitlines()[1:] == [
        "   7 of 8 answered; waiting 12s for web-05",
        "   2 of 1000 answered; waiting 3s for a, b, c and 995 more",
    ]


def test_a_start_without_canaries_says_it_goes_straight_to_the_waves() -> None:
    """rollback --to, or a file without a canary section: no "to canaries ;" line."""
    out = Counted()
    printer = HumanPrinter(out)
    waves = [["web-01", "web-02"], ["web-03"]]
    for canaries in (["web-09"], []):
        printer(
            ev.DeploymentStarted(
                version="1.0.0", canaries=canaries, waves=waves, previous={}, user="u", deployment=4
            )
        )
    assert out.flushed.splitlines() == [
        "deployment #4: 1.0.0 to canaries web-09; waves of 2, 1 host(s) after",
        "deployment #4: 1.0.0 in waves of 2, 1 host(s), no canary phase",
    ]


def update(host: str, state: ev.HostState, version: str = "", detail: str = "") -> ev.HostUpdate:
    return ev.HostUpdate(host=host, state=state, version=version, detail=detail, deployment=1)


def step(host: str, name: str, code: int | None = 0, output: str = "") -> ev.StepResult:
    return ev.StepResult(
        host=host,
        step=name,
        action="deploy",
        exit_status=code,
        output=output,
        duration=0.25,
        deployment=1,
    )


def test_a_host_is_one_line_when_done_and_a_failure_is_said_as_it_happens() -> None:
    """A thousand hosts print a thousand lines: each host's steps are on its last line; a
    failed step shows at once with its output's last lines; a hook on this machine (no
    host in flight) is a line of its own."""
    out = Counted()
    printer = HumanPrinter(out)
    for host in ("web-01", "web-02"):
        printer(update(host, ev.HostState.DEPLOYING))
        printer(step(host, "install"))
    printer(step("web-02", "switch", 1, "ln: cannot\nmv: no space left\x1b[31m"))
    printer(update("web-02", ev.HostState.FAILED, detail="switch exited 1"))
    printer(step("web-01", "switch"))
    printer(update("web-01", ev.HostState.DEPLOYED, "1.1.0"))
    printer(step("(local)", "traffic.wave_start"))
    # A step stopped past its timeout has no exit status: said so, not "exit None".
    printer(step("web-03", "install", None, "timed out after 20s (stopped on the host)"))
    assert out.getvalue().splitlines() == [
        "   web-02: switch FAILED (exit 1) 0.25s",
        "      | ln: cannot",
        "      | mv: no space left␛",  # an escape sequence is shown, never run
        "   web-02: failed (install 0.25s)  (switch exited 1)",
        "   web-01: deployed 1.1.0 (install 0.25s, switch 0.25s)",
        "   (local): traffic.wave_start ok 0.25s",
        "   web-03: install FAILED (stopped) 0.25s",
        "      | timed out after 20s (stopped on the host)",
    ]


async def test_hosts_in_flight_are_named_when_nothing_was_said_for_a_while() -> None:
    """A long step is not silence: after PROGRESS_EVERY seconds with nothing said, a line
    names the hosts still in flight, the longest first; none once they are done."""
    out = Counted()
    printer = HumanPrinter(out, progress_every=0.05)
    for i in range(8):
        printer(update(f"web-{i:02}", ev.HostState.DEPLOYING))
    await wait_for(lambda: "in flight" in out.getvalue(), timeout=5)
    line = out.getvalue().splitlines()[0]
    assert line.startswith("   in flight: web-00, web-01, web-02, web-03, web-04 and 3 more (")
    for i in range(8):
        printer(update(f"web-{i:02}", ev.HostState.DEPLOYED, "1.1.0"))
    said = out.getvalue()
    await wait_for(lambda: printer._ticking is None, timeout=5)
    assert out.getvalue() == said  # nothing in flight: nothing more to say


def measured(host: str, rule: str, value: float | None, passed: bool | None) -> ev.Measurement:
    return ev.Measurement(rule=rule, host=host, value=value, limit="<= 0.05", passed=passed)


def test_many_canaries_are_told_per_rule_not_per_host() -> None:
    """A hundred canaries: the analysis line gives each rule's range and how many canaries
    fail it, a passing verdict a line a rule; a failing verdict still names every failure.
    Three canaries or fewer are told host by host, as before."""
    out = Counted()
    printer = HumanPrinter(out)
    hosts = [f"web-{i:03}" for i in range(100)]
    ms = [measured(h, "error-ratio", 0.001 * (i % 7), i != 5) for i, h in enumerate(hosts)]
    ms += [measured(h, "p99-latency", None, None) for h in hosts]
    printer(ev.AnalysisStarted(canaries=hosts, baseline=["web-900"], duration=30.0))
    printer(ev.AnalysisUpdate(elapsed=0.0, duration=30.0, measurements=[]))
    printer(ev.AnalysisUpdate(elapsed=30.0, duration=30.0, measurements=ms))
    passing = [measured(h, "error-ratio", 0.002, True) for h in hosts]
    reasons = [f"{h}: error-ratio = 0.002, limit <= 0.05: ok" for h in hosts]
    printer(ev.VerdictReached(verdict=ev.Verdict.PASS, reasons=reasons, measurements=passing))
    failed = [f"{h}: error-ratio = 0.09, limit <= 0.05: FAIL" for h in hosts[:2]]
    printer(ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=failed, measurements=ms))
    few = [measured(h, "error-ratio", 0.01, True) for h in hosts[:3]]
    printer(ev.AnalysisUpdate(elapsed=30.0, duration=30.0, measurements=few))
    own = [  # each canary against its own values before: a limit each
        ev.Measurement(rule="shift", host=h, value=0.2, limit=f"<= 2x before ({i})", passed=True)
        for i, h in enumerate(hosts[:4])
    ]
    printer(ev.VerdictReached(verdict=ev.Verdict.PASS, reasons=["-"] * 4, measurements=own))
    assert out.getvalue().splitlines() == [
        "   watching web-000, web-001, web-002, web-003, web-004, web-005, web-006, web-007 "
        "and 92 more for 30s; baseline: web-900",
        "   analysis    0s/30s  (no values yet)",
        "   analysis   30s/30s  100 canaries: error-ratio=0..0.006 (1 failing); p99-latency=-",
        "   verdict: PASS",
        "      error-ratio: ok on 100 canaries (0.002), limit <= 0.05",
        "   verdict: FAIL",
        "      web-000: error-ratio = 0.09, limit <= 0.05: FAIL",
        "      web-001: error-ratio = 0.09, limit <= 0.05: FAIL",
        "   analysis   30s/30s  web-000 error-ratio=0.01; web-001 error-ratio=0.01; "
        "web-002 error-ratio=0.01",
        "   verdict: PASS",
        "      shift: ok on 4 canaries (0.2), limit per canary, e.g. web-000: <= 2x before (0)",
    ]


def test_a_canary_that_stopped_answering_is_said_on_the_analysis_line() -> None:
    """Its values are what it said before it went silent: the line says so, once a host."""
    out = Counted()
    printer = HumanPrinter(out)
    silent = "stopped answering: no answer for 4s"
    ms = [
        measured("web-01", "failed-checks", 1.0, True),
        ev.Measurement(
            "traffic", "web-01", 105.0, ">= 0.5x baseline", None, status="undecided", note=silent
        ),
        ev.Measurement("p99", "web-01", 0.198, "<= 0.5", None, status="undecided", note=silent),
    ]
    printer(ev.AnalysisUpdate(elapsed=8.0, duration=17.0, measurements=ms))
    many = [measured(f"web-{i:03}", "traffic", 100.0, True) for i in range(1, 6)]
    many[2] = ev.Measurement(
        "traffic", "web-003", 40.0, ">= 0.5x baseline", None, status="undecided", note=silent
    )
    printer(ev.AnalysisUpdate(elapsed=17.0, duration=17.0, measurements=many))
    assert out.getvalue().splitlines() == [
        "   analysis    8s/17s  web-01 failed-checks=1; web-01 traffic=105; web-01 p99=0.198; "
        "web-01 stopped answering: no answer for 4s",
        "   analysis   17s/17s  5 canaries: traffic=40..100; web-003 stopped answering",
    ]


def test_a_host_rolled_back_says_the_version_it_went_back_to() -> None:
    """ "rolled back 1.0.0" read as 1.0.0 undone; the host went back *to* it."""
    out = Counted()
    printer = HumanPrinter(out)
    for host, state, version in (
        ("web-01", ev.HostState.DEPLOYED, "1.1.0"),
        ("web-02", ev.HostState.ROLLED_BACK, "1.0.0"),
    ):
        printer(ev.HostUpdate(host=host, state=state, version=version, deployment=1))
    assert out.getvalue().splitlines() == [
        "   web-01: deployed 1.1.0",
        "   web-02: rolled back to 1.0.0",
    ]


def test_a_traffic_shift_names_the_release_it_counts() -> None:
    """ "8 % on the new version" was said of a rollback --to's old release too."""
    out = Counted()
    printer = HumanPrinter(out)
    printer(ev.TrafficShifted(phase="wave_start", hosts=["web-02"], percent=50, ok=True,
                              version="1.1.0", deployment=3))  # fmt: skip
    printer(ev.TrafficShifted(phase="complete", hosts=[], percent=100, ok=False, deployment=3))
    printer(ev.TrafficShifted(phase="complete", hosts=[], percent=100, ok=True, deployment=3))
    assert out.getvalue().splitlines() == [
        "   traffic.wave_start: told 50 % of the fleet on 1.1.0",
        "   traffic.complete: FAILED",
        "   traffic.complete: told 100 % of the fleet on the release",  # an older journal's event
    ]


def test_a_deployment_whose_hosts_are_all_canaries_says_no_wave() -> None:
    """Every host a canary: "waves of none host(s) after"."""
    out = Counted()
    printer = HumanPrinter(out)
    started = ev.DeploymentStarted(
        version="1.2.0", canaries=["web-01", "web-02"], waves=[], previous={}, user="ops"
    )
    printer(dataclasses.replace(started, deployment=3))
    assert out.getvalue().splitlines() == [
        "deployment #3: 1.2.0 to canaries web-01, web-02; no wave after"
    ]
