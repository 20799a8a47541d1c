"""The engine never imports textual: the UI is one consumer of its events among three."""

from __future__ import annotations

import subprocess
import sys

ENGINE = [
    "canarytui.config",
    "canarytui.events",
    "canarytui.ssh",
    "canarytui.metrics.series",
    "canarytui.metrics.sources",
    "canarytui.metrics.analysis",
    "canarytui.journal",
    "canarytui.engine.locks",
    "canarytui.engine",
    "canarytui.cli",
    "canarytui.demo.fleet",
    "canarytui.monitor",
]


def test_engine_modules_do_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_cli_start_up_imports_nothing_heavy() -> None:
    """`canarytui --help` and a bad file's message must not pay for asyncssh or textual."""
    code = (
        "import sys\nfrom canarytui import cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'asyncssh', 'textual'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
