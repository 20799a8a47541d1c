"""A deployment another process drives, followed from the journal.

Two processes of one machine share a journal: an operator starts a release from the
command line and a colleague opens the UI, or one UI watches another's. The process that
drives the deployment records every event before it shows it; the other one reads those
events back here (every ``poll``), applies them to its engine's state as its own would be,
and hands them to its view. Its own events are told apart by their journal ids (the bus
keeps them while a follower asks), so nothing is shown twice, whichever process acts.
"""

from __future__ import annotations

from canarytui import events as ev
from canarytui.engine.bus import RolloutState
from canarytui.journal import Journal
from canarytui.readback import event_from_dict

# Events read at most per poll: a burst (a thousand hosts said pending) is read over a few
# polls rather than in one long stop of the reader's loop.
BATCH = 2000


class Follower:
    """Reads what other processes record for one environment's app, applied to ``state``.

    Starts after the journal's last event: what is older is what the state was adopted
    from (``Engine.load_open``)."""

    def __init__(
        self, journal: Journal, env: str, app: str, state: RolloutState, recorded: set[int]
    ) -> None:
        self.journal = journal
        self.env = env
        self.app = app
        self.state = state
        self._recorded = recorded  # the bus's: the ids of this process's own events
        self._after = journal.last_event_id()

    @property
    def caught_up(self) -> bool:
        """Whether every event recorded so far (by any process) has been read."""
        return self._after >= self.journal.last_event_id()

    def poll(self) -> list[ev.Event]:
        """The events other processes recorded since the last poll, oldest first, each
        applied to the state (a deployment it had not followed is adopted from the journal
        first, as on start); events this process recorded, kinds this version cannot read
        and hosts this environment file does not list are skipped."""
        rows = self.journal.events_after(self.env, self.app, self._after, BATCH)
        if not rows:
            self._recorded.clear()
            return []
        self._after = rows[-1][0]
        events: list[ev.Event] = []
        for stored, data in rows:
            if stored in self._recorded:
                continue
            event = event_from_dict(data)
            if event is None or event.deployment is None:
                continue
            host = getattr(event, "host", None)
            if host is not None and host not in self.state.host_states:
                continue  # a host of another copy of the file, not of this one
            if event.deployment != self.state.deployment_id:
                # Another deployment (begun since, or an older one rolled back): its
                # hosts' versions before it, their states and its phase, from the journal.
                record = self.journal.deployment(event.deployment)
                if record is None:
                    continue
                self.state.adopt(record, self.journal)
            self.state.apply(event)
            events.append(event)
        self._recorded.difference_update(i for i in list(self._recorded) if i <= self._after)
        if events and self.state.deployment is not None:
            # Its phase, verdict and outcome as the journal has them now.
            self.state.deployment = self.journal.deployment(self.state.deployment.id)
        return events
