"""The terminal driver: the screen goes out through a ``Relay``, never holding the loop.

Textual writes each frame to a queue that a thread empties into the terminal; the queue
holds 30 frames, and then the event loop waits for the terminal. A terminal that stops
reading (an SSH link to a jump host that stalls, a terminal emulator that hangs) soon held
the UI's loop, and the engine in it: with the terminal unread from the canary phase, an 8 s
analysis had not reached its verdict 40 s later (probes, step timeouts and the analysis
clock all stop; on the command line, the same stall made the steps running then "time out"
when reading resumed, and a healthy release was rolled back). Here the frames go to a
``Relay`` instead: held in memory (bounded) and written by a thread, so the deployment goes
on at its own pace while the screen waits, and the screen catches up when the terminal
reads again.
"""

from __future__ import annotations

from textual.drivers.linux_driver import LinuxDriver

from canarytui.relay import Relay


class RelayedDriver(LinuxDriver):
    """Textual's Linux driver, its output written by a ``Relay``."""

    _relay: Relay | None = None

    def write(self, data: str) -> None:
        relay = self._relay
        if relay is None:
            relay = self._relay = self.open_relay()
        relay.write(data)
        relay.flush()  # a frame is written whole: send it now (it does not wait)

    def open_relay(self) -> Relay:
        """The relay to the terminal, opened by the first write of application mode."""
        out = self._file
        assert out is not None, "Textual's driver has a terminal to write to"
        return Relay(out, out.fileno(), name="canarytui-screen")

    def close(self) -> None:
        """Write what the terminal has not taken yet, then end as Textual's driver does."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()
        super().close()
