"""Standard output written by a thread of its own while the engine runs (``Relay``).

While ``relayed()`` is in force, what is written to stdout (cleaned by its ``SafeWriter``
first) goes out through a ``Relay``: the engine's loop never waits on whoever reads the
command's output, and at the end of the block everything kept is written before anything
else is (the command's summary comes after its events).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from canarytui.cli.safeio import SafeWriter
from canarytui.relay import Relay


@contextlib.contextmanager
def relayed(out: object) -> Iterator[Relay | None]:
    """While the block runs, what ``out`` (stdout's ``SafeWriter``) is given goes out
    through a ``Relay``; a stream with no descriptor (a test's) is written as before."""
    if not isinstance(out, SafeWriter):
        yield None
        return
    stream = out.stream
    try:
        fd = stream.fileno()
        stream.flush()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation, closed
        yield None
        return
    relay = Relay(stream, fd)
    out.stream = relay  # type: ignore[assignment]
    try:
        yield relay
    finally:
        out.stream = stream
        relay.close()
