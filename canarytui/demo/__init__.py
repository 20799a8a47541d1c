"""The embedded demo fleet: real SSH servers on loopback running a simulated app.

Public API (imported lazily, so ``canarytui demo ctl`` does not pay for asyncssh):

- ``DemoFleet``: async context manager, N hosts in this process.
- ``serve(hosts, ready=..., stop=...)``: run a fleet with its control channel in any loop.
- ``serve_main(hosts)``: ``canarytui demo --serve``.
- ``ctl_main(host, mode)``: ``canarytui demo ctl HOST MODE``.
- ``journal_folder(given)``: the demo's journal folder (its own one removed at the end).
- ``FAULT_MODES``, ``RELEASES``: the fault modes and the releases the demo ships.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canarytui.demo.app import RELEASES
    from canarytui.demo.control import FAULT_MODES, ctl_main
    from canarytui.demo.entry import journal_folder, serve, serve_main
    from canarytui.demo.fleet import DemoFleet

__all__ = [
    "FAULT_MODES",
    "RELEASES",
    "DemoFleet",
    "ctl_main",
    "journal_folder",
    "serve",
    "serve_main",
]

_HOMES = {
    "DemoFleet": "canarytui.demo.fleet",
    "serve": "canarytui.demo.entry",
    "serve_main": "canarytui.demo.entry",
    "journal_folder": "canarytui.demo.entry",
    "ctl_main": "canarytui.demo.control",
    "FAULT_MODES": "canarytui.demo.control",
    "RELEASES": "canarytui.demo.app",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
