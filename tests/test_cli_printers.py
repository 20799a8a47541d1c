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
