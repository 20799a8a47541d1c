"""The command line's printers: every event is a line, in order; the lines of a busy moment
go out in one write within FLUSH_AFTER, and at once when no event loop runs."""

from __future__ import annotations

import io
import json

from conftest import wait_for

from canarytui import events as ev
from canarytui.cli.printers import FLUSH_AFTER, HumanPrinter, JsonPrinter


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


def update(host: str, state: ev.HostState, version: str = "", detail: str = "") -> ev.HostUpdate:
    return ev.HostUpdate(host=host, state=state, version=version, detail=detail, deployment=1)


def step(host: str, name: str, code: int = 0, output: str = "") -> ev.StepResult:
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
    assert out.getvalue().splitlines() == [
        "   web-02: switch FAILED (exit 1) 0.25s",
        "      | ln: cannot",
        "      | mv: no space left␛",  # an escape sequence is shown, never run
        "   web-02: failed (install 0.25s)  (switch exited 1)",
        "   web-01: deployed 1.1.0 (install 0.25s, switch 0.25s)",
        "   (local): traffic.wave_start ok 0.25s",
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
