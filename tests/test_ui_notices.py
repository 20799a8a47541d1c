"""What the operator is told when a call ends (``ui.notices``): pure functions."""

from __future__ import annotations

from canarytui import events as ev
from canarytui.ui import notices


def test_an_error_says_the_deployment_stays_open_not_only_error() -> None:
    """A promotion stopped by an error said "promote: error" and nothing more."""
    note = notices.for_outcome("promote", ev.Outcome.ERROR, version="1.2.0", wave=2, waves=3)
    assert note.severity == "error" and note.message.startswith("promote stopped by an error")
    assert "stays open, halted" in note.message and note.message != "promote: error"


def test_complete_short_of_the_fleet_is_a_warning_with_the_summary() -> None:
    said = "1.2.0 on 23 of 24 hosts"
    note = notices.for_outcome(
        "promote", ev.Outcome.COMPLETE, version="1.2.0", wave=3, waves=3, short_of=said
    )
    assert (note.message, note.severity) == ("complete: 1.2.0 on 23 of 24 hosts", "warning")
    note = notices.for_outcome("promote", ev.Outcome.COMPLETE, version="1.2.0", wave=3, waves=3)
    assert (note.message, note.severity) == ("1.2.0: on every host", "information")
