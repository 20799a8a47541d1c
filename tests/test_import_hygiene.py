"""The engine never imports textual: the UI is one consumer of its events among three."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


def test_loading_ssh_and_the_demo_prints_no_warning_of_the_libraries() -> None:
    """What asyncssh's use of DSA makes cryptography say at import would stand above every
    command's output (and in the terminal the UI leaves): not the operator's to act on."""
    code = "import canarytui.ssh, canarytui.demo.fleet, canarytui.engine\n"
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stderr == ""


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


def _no_fleet_loading_none_of(run: str, heavy: set[str]) -> None:
    """``run`` (code that leaves its exit status in ``status``) in a fresh interpreter,
    against a socket nobody listens on: status 1, the message, none of ``heavy`` loaded."""
    code = f"import sys\n{run}\nprint(status, sorted(set(sys.modules) & {heavy!r}))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "1 []", out
    assert "no demo fleet listens on /nonexistent/s" in out.stderr


def test_a_command_imports_its_own_module_only() -> None:
    """`canarytui demo ctl lb` loads neither the environment file's reader (yaml), the
    journal, the engine nor asyncssh (it took 0.64 s a run when the command line imported
    them all, back when it was the demo file's traffic hook)."""
    _no_fleet_loading_none_of(
        "from canarytui.cli.main import main\n"
        "status = main(['demo', 'ctl', 'lb', '1.1.0', '10', '--socket', '/nonexistent/s'])",
        {"canarytui.config", "canarytui.journal", "canarytui.engine", "asyncssh", "yaml"},
    )


def test_the_demo_files_traffic_hook_loads_the_control_client_only() -> None:
    """The demo file's traffic hook (``python -m canarytui.demo.lb``) runs at every phase
    change of a release, which waits for it: it loads neither the command line nor asyncio
    (with them it took ~80 ms a run, half of it their start-up), and says the same as
    ``canarytui demo ctl lb`` when no fleet listens."""
    _no_fleet_loading_none_of(
        "from canarytui.demo.lb import main\n"
        "status = main(['1.1.0', '10', '--socket', '/nonexistent/s'])",
        {"canarytui.cli", "asyncio", "asyncssh", "yaml", "canarytui.config"},
    )


def test_the_interface_leaves_ssh_and_the_metrics_parser_for_later() -> None:
    """asyncssh (with cryptography), prometheus_client (with http.server and email) and
    the HTTP client that asks a Prometheus server (http.client, email) are no part of the
    first screen: they come with the first connection, the first page, the first question."""
    code = (
        "import sys\nimport canarytui.ui.app\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'asyncssh', 'cryptography', 'prometheus_client', 'http', 'email'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "canarytui"
MAX_MODULE_LINES = 400


def test_layers_are_kept() -> None:
    """The design's layers (pyproject.toml, [tool.importlinter]): imports only go down."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
            str(REPO / "pyproject.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_one_job_said_in_its_first_line() -> None:
    """A newcomer finds each concern in a file named after it, its job in line one."""
    too_long = []
    undocumented = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(REPO)}: {lines} lines")
        doc = ast.get_docstring(ast.parse(text))
        if not doc or not doc.splitlines()[0].strip():
            undocumented.append(str(path.relative_to(REPO)))
    assert too_long == []
    assert undocumented == []


def test_no_wait_for_that_can_lose_a_cancel() -> None:
    """On Python 3.11, ``asyncio.wait_for`` returns the result when its awaitable ends in
    the same turn as a cancel, and the cancel is lost (an operator's abort, and the next
    step runs anyway): bounds are ``asyncio.timeout``, which keeps it."""
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "wait_for":
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []
