"""Entry points for the CLI: ``canarytui demo --serve`` and the in-process ``serve`` helper."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from canarytui.demo.fleet import DemoFleet

ReadyCallback = Callable[["DemoFleet"], Awaitable[None] | None]


@contextlib.contextmanager
def journal_folder(given: str | Path | None) -> Iterator[str]:
    """Where a demo keeps its journal: the folder given (the operator's, kept), else one
    of its own, removed when the demo ends as its fleet's folder is."""
    if given:
        yield str(given)
        return
    with tempfile.TemporaryDirectory(
        prefix="canarytui-demo-state-", ignore_cleanup_errors=True
    ) as own:
        yield own


async def serve(
    hosts: int = 12,
    *,
    ready: ReadyCallback | None = None,
    stop: asyncio.Event | None = None,
    control: bool = True,
    **fleet_kwargs: Any,
) -> None:
    """Run a demo fleet in the current loop until ``stop`` is set or the task is cancelled.

    ``ready(fleet)`` (plain or async) is called once every host is up; the control channel
    for ``canarytui demo ctl`` is on unless ``control=False``. The fleet is stopped and its
    temp folder removed however this ends.
    """
    from canarytui.demo.fleet import DemoFleet

    async with DemoFleet(hosts=hosts, control=control, **fleet_kwargs) as fleet:
        if ready is not None:
            result = ready(fleet)
            if inspect.isawaitable(result):
                await result
        await (stop or asyncio.Event()).wait()


def serve_main(hosts: int, stdout: TextIO | None = None) -> int:
    """``canarytui demo --serve``: the fleet alone until Ctrl-C (SIGINT) or SIGTERM.

    The environment file's absolute path is the first line of output, so scripts can read
    it; a short summary follows. Returns 0 after a clean stop, 2 for a bad host count,
    1 if the fleet could not start.
    """
    out = stdout or sys.stdout
    try:
        return asyncio.run(_serve_main(hosts, out))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping: still nothing to add
        return 0


async def _serve_main(hosts: int, out: TextIO) -> int:
    from canarytui.demo.fleet import MAX_HOSTS
    from canarytui.demo.limits import DemoFleetRefused

    if not 1 <= hosts <= MAX_HOSTS:
        print(f"--hosts must be between 1 and {MAX_HOSTS}, got {hosts}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    served: list[DemoFleet] = []
    said = ["demo fleet stopped"]

    def stopping() -> None:
        for fleet in served[:1]:  # what it served, while it still knows: for benches
            said[1:] = [
                f"after {fleet.connections_received} SSH connections and "
                f"{fleet.commands_received} sessions"
            ]
        stop.set()

    # Handlers first: a Ctrl-C during start-up still stops cleanly once the fleet is up.
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    for sig in signals:
        loop.add_signal_handler(sig, stopping)

    def ready(fleet: DemoFleet) -> None:
        served.append(fleet)
        print(fleet.env_path, file=out, flush=True)
        print(fleet.describe(), file=out)
        print(f"  Ctrl-C stops the fleet and removes {fleet.root}", file=out, flush=True)

    try:
        await serve(hosts, ready=ready, stop=stop)
    except (OSError, DemoFleetRefused) as exc:
        print(f"the demo fleet could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    with contextlib.suppress(OSError):  # whoever read our output may be gone by now
        print(" ".join(said), file=out, flush=True)
    return 0
