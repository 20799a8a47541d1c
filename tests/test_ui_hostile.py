"""Hostile text from hosts and the operator, through every sink of the UI and the CLI.

Each test feeds escape sequences (colours, cursor moves, OSC 0 window title, OSC 52
clipboard, 8-bit CSI), controls (BEL, NUL, DEL, C1, CR) and markup (``[/]``,
``[@click=app.quit]x[/]``, ``[bold red]x``) through real engine events, keys, dialogs, the
journal, theme files and the CLI, then checks that the app still runs, that the screen (or
the bytes written) hold no escape or control character, that the placeholders are visible
and that markup was shown as typed.
"""

from __future__ import annotations

import ast
import asyncio
import html
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from conftest import REPO, edit_env
from rich.text import Text
from test_ui_support import Script, record_notifications, settle, until
from textual import events
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Static

from canarytui import events as ev
from canarytui.demo import DemoFleet
from canarytui.engine import locks
from canarytui.ui.app import CanaryApp
from canarytui.ui.screens.analysis import AnalysisScreen
from canarytui.ui.screens.confirm import ConfirmScreen
from canarytui.ui.screens.details import HostDetailsScreen
from canarytui.ui.screens.history import HistoryScreen
from canarytui.ui.screens.version import VersionScreen
from canarytui.ui.widgets.filter_bar import FilterBar

SIZE = (160, 50)

# Markup first: sinks that cut a long text still show it.
MARKUP = "[/] [@click=app.quit]x[/] [bold red]x"
ESCAPES = (
    "\x1b[31mred\x1b[0m \x1b[2J\x1b[H\x1b[5;5H \x1b]0;pwned\x07 \x1b]52;c;ZXZpbA==\x07 \x9b31m"
)
CONTROLS = "bell\x07 nul\x00 del\x7f c1\x85 cr\r"
HOSTILE = f"{MARKUP} {ESCAPES} {CONTROLS}"

# What must never reach a terminal: C0 (but the SVG's own newlines), DEL, C1.
_FORBIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


# Reading the screen ---------------------------------------------------------------------


def screen_text(app: App[Any]) -> str:
    """The screen as drawn (Textual's own SVG export), checked raw, returned as text."""
    svg = app.export_screenshot()
    found = sorted({f"U+{ord(c):04X}" for c in _FORBIDDEN.findall(svg)})
    assert not found, f"control characters reached the screen: {found}"
    rows: dict[str, list[str]] = {}
    for y, part in re.findall(r'<text[^>]*\by="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(y, []).append(html.unescape(part))
    lines = ["".join(parts).replace("\xa0", " ") for _, parts in sorted(rows.items(), key=_y)]
    return "\n".join(lines)


def _y(item: tuple[str, list[str]]) -> float:
    return float(item[0])


def assert_running(app: CanaryApp) -> None:
    assert app.is_running, "the app closed"
    assert app.return_code is None, f"the app exited with {app.return_code}"


def assert_shown_as_data(app: CanaryApp, *literal: str) -> str:
    """Still running, nothing raw on screen, placeholders visible, markup shown as typed."""
    assert_running(app)
    text = screen_text(app)
    assert "␛" in text, f"no escape placeholder on screen:\n{text}"
    for expected in literal:
        assert expected in text, f"{expected!r} not shown as typed"
    return text


async def started(pilot: Pilot[int], script: Script) -> None:
    await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
    await pilot.pause()


# The control: the check sees what it looks for ------------------------------------------


class _RawApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(Text("raw \x1b]0;pwned\x07 title"))


async def test_the_screen_check_sees_a_raw_escape() -> None:
    """Textual passes ESC through (it strips only BEL, BS, VT, FF, CR): the check must see it."""
    app = _RawApp()
    async with app.run_test() as pilot:
        await pilot.pause()
        try:
            screen_text(app)
        except AssertionError as exc:
            assert "U+001B" in str(exc)
        else:
            raise AssertionError("a raw ESC on screen went unnoticed")


# The fleet screen -----------------------------------------------------------------------


async def test_host_text_in_tiles_header_panel_logs_rollout_and_notifications(
    tmp_path: Path,
) -> None:
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, script)
        script.discovered(version=f"1.0.0{HOSTILE}")  # tiles, header (stable), panel
        script.health("web-01", ok=False, detail=HOSTILE)  # the panel's note
        await settle(pilot)
        assert_shown_as_data(app, "[/]")

        script.start(f"1.1.0{HOSTILE}", ["web-01"])  # header candidate, rollout title
        script.phase(ev.Phase.CANARY)
        script.host("web-01", ev.HostState.FAILED, detail=HOSTILE)
        script.step("web-01", "install", exit_status=1, output=f"{HOSTILE}\n{HOSTILE}\n")
        for _ in range(3):
            script.log("web-01", HOSTILE)
        script.emit(ev.Notice(level="error", message=HOSTILE, host="web-01"))
        measured = ev.Measurement(
            rule=HOSTILE, host="web-01", value=0.2, limit=HOSTILE, passed=False, baseline=0.01
        )
        script.emit(
            ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=[HOSTILE], measurements=[measured])
        )
        await settle(pilot)
        text = assert_shown_as_data(app, "[/]", "[@click=app.quit]x[/]")
        assert "␇" in text and "␀" in text and "␡" in text and "␍" in text
        assert app.fleet_screen.query_one("#logs").border_title is not None

        script.emit(ev.DeploymentFinished(outcome=ev.Outcome.CANARY_FAILED, summary=HOSTILE))
        await settle(pilot)
        assert_shown_as_data(app, "[@click=app.quit]x[/]")


async def test_filter_text_is_shown_as_typed_and_never_closes_the_app(tmp_path: Path) -> None:
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, script)
        script.discovered()
        await settle(pilot)
        await pilot.press("slash", "[", "/", "]")
        await settle(pilot)
        assert_running(app)
        assert "filter '[/]': 0 shown" in screen_text(app)
        assert "no host matches '[/]'" in screen_text(app)

        bar = app.fleet_screen.query_one(FilterBar)
        bar.value = ""
        await pilot.press(*"[@click=app.quit]x[/]")
        await settle(pilot)
        text = screen_text(app)
        assert "filter '[@click=app.quit]x[/]'" in text
        assert_running(app)

        # A paste (the terminal's, or the clipboard's) is what typing cannot be: raw bytes.
        bar.value = ""
        bar.post_message(events.Paste("web\x1b]0;pwned\x07\x1b[2J[bold red]"))
        await settle(pilot)
        assert bar.value == "web␛␛[bold red]"
        assert_shown_as_data(app, "filter 'web␛␛[bold red]'")


async def test_version_dialog_and_a_hostile_lock_owner(tmp_path: Path) -> None:
    """The dialog echoes what was typed; a lock held by someone whose owner record is
    hostile refuses the deploy with a notification naming them, as text."""
    script = Script(tmp_path)
    app = script.app
    lock = locks.local_lock_path(script.journal.state_dir, script.env.name, script.env.app)
    lock.parent.mkdir(parents=True, exist_ok=True)
    owner = {
        "token": "someone-else",
        "deployment": 7,
        "version": HOSTILE,
        "user": HOSTILE,
        "machine": HOSTILE,
        "since": time.time(),
        "pid": 1,
    }
    lock.write_text(json.dumps(owner))
    seen = record_notifications(app)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, script)
        script.discovered()
        await settle(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, VersionScreen), 5, "version dialog")
        field = app.screen.query_one(Input)
        await pilot.press(*"[/]", "enter")
        await pilot.pause()
        assert_running(app)
        assert "[/]" in screen_text(app)  # the refusal echoes it, as typed
        field.value = ""
        field.post_message(events.Paste("1.1.0\x1b]0;pwned\x07\x9b31m"))
        await pilot.pause()
        assert field.value == "1.1.0␛␛"
        assert_shown_as_data(app)

        field.value = "1.1.0"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirmation")
        await pilot.press("y")
        await until(
            pilot, lambda: any("locked by" in t for t in seen), 20, lambda: f"refusal in {seen}"
        )
        await settle(pilot)
        assert_shown_as_data(app, "[/]")

        # A confirmation names versions and hosts (the quit dialog, a deployment's version).
        app.push_screen(ConfirmScreen(f"Quit {HOSTILE}?", f"deployment of {HOSTILE}\n{HOSTILE}"))
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "confirmation")
        await pilot.pause()
        assert_shown_as_data(app, "[@click=app.quit]x[/]")
        await pilot.press("n")
        assert_running(app)


async def test_history_and_details_show_journal_and_host_text_as_text(tmp_path: Path) -> None:
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, script)
        script.discovered(version=f"1.0.0{HOSTILE}")
        script.health("web-01", ok=False, detail=HOSTILE)
        script.engine.emit(
            ev.HealthSample(
                host="web-01",
                ok=True,
                latency=0.01,
                metrics={
                    "values:http_requests_total": {
                        f'c:http_requests_total{{path="{HOSTILE}"}}': 1.0
                    }
                },
            )
        )
        script.start(f"2.0.0{HOSTILE}", ["web-01"])
        script.emit(ev.Decision(action=HOSTILE, user=HOSTILE, detail=HOSTILE))
        script.step("web-01", "install", exit_status=1, output=HOSTILE)
        script.host("web-01", ev.HostState.ROLLED_BACK, f"1.0.0{HOSTILE}")
        script.emit(ev.DeploymentFinished(outcome=ev.Outcome.ROLLED_BACK, summary=HOSTILE))
        await settle(pilot)

        await pilot.press("H")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), 5, "history")
        await settle(pilot)
        assert_shown_as_data(app, "[/]")

        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.fleet_screen, 5, "back")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, HostDetailsScreen), 5, "details")
        await settle(pilot)
        assert_shown_as_data(app, "[/]", "[@click=app.quit]x[/]")


async def test_analysis_view_shows_rules_hosts_limits_and_notes_as_text(tmp_path: Path) -> None:
    """Rule names (the env file's), limits, notes and baseline hosts (the journal's) in the
    table, the chart's title and legend, the summary and the detail line."""
    script = Script(tmp_path)
    app = script.app
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, script)
        script.discovered()
        script.start("1.3.0-bad", ["web-01"])
        script.emit(ev.AnalysisStarted(canaries=["web-01"], baseline=[HOSTILE], duration=30.0))
        for i in range(3):
            measured = ev.Measurement(
                rule=HOSTILE,
                host="web-01",
                value=0.2,
                limit=HOSTILE,
                passed=None,
                status="undecided",
                baseline=0.01,
                recent=0.1 * i,
                band=[0.0, 0.02],
                note=HOSTILE,
            )
            script.emit(ev.AnalysisUpdate(elapsed=2.0 * i, duration=30.0, measurements=[measured]))
        script.emit(
            ev.VerdictReached(
                verdict=ev.Verdict.INCONCLUSIVE, reasons=[HOSTILE], measurements=[measured]
            )
        )
        await settle(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AnalysisScreen), 5, "analysis view")
        await settle(pilot)
        text = assert_shown_as_data(app, "[/]", "[@click=app.quit]x[/]")
        assert "␇" in text
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.fleet_screen, 5, "back")
        assert_running(app)


async def test_theme_problems_are_shown_as_text(tmp_path: Path) -> None:
    themes = tmp_path / "themes"
    themes.mkdir()
    # A file name holds no "/": markup and escapes it can hold.
    (themes / "[@click=app.quit]x[bold red]\x1b]0;pwned\x07.yaml").write_text("name: evil\n")
    (themes / "named.yaml").write_text(f"name: {json.dumps(HOSTILE)}\nprimary: '#123456'\n")
    (themes / "broken.yaml").write_text(f"name: [unclosed {json.dumps(HOSTILE)}\n")
    script = Script(tmp_path)
    app = CanaryApp(
        script.env,
        script.journal,
        engine=script.engine,
        theme="[/]\x1b]0;pwned\x07",
        monitor=False,
        themes_folder=themes,
    )
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        await settle(pilot)
        assert app.theme == "dark"
        assert len(app.theme_problems) == 4
        assert "[/]" not in app.theme_names and "evil" not in app.theme_names
        assert_shown_as_data(app, "[@click=app.quit]x[bold red]␛.yaml", "[/]")


# Every notification is plain text -------------------------------------------------------


def test_every_notify_call_in_the_ui_passes_markup_false() -> None:
    """A notification's message is markup by default in Textual: every canarytui call
    says ``markup=False`` (``CanaryApp.notify`` sanitises what they say)."""
    missing = []
    for path in sorted((REPO / "canarytui" / "ui").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "notify"
                and not (isinstance(node.func.value, ast.Call))  # super().notify(..., markup=)
            ):
                markup = next((k for k in node.keywords if k.arg == "markup"), None)
                if not (
                    markup is not None
                    and isinstance(markup.value, ast.Constant)
                    and markup.value.value is False
                ):
                    missing.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert missing == []


# The command line -----------------------------------------------------------------------

# What the hosts print: escapes, OSC 0 and 52, BEL, C1 as UTF-8 (U+009B, U+0085) and as a
# raw byte (0x9b, invalid UTF-8), and markup.
PRINTF = (
    r"printf '\033[31mred\033[0m \033]0;pwned\007 \033]52;c;ZXZpbA==\007 \302\233 31m"
    r" \302\205 \233 bell\007 [/] [@click=app.quit]x[/]\n'"
)

# ... as shown: a whole sequence is one ␛ (U+009B then " " is a CSI with an intermediate
# byte; "31m" is left), the raw 0x9b byte is not UTF-8.
SHOWN = "␛red␛ ␛ ␛ ␛31m ␛ � bell␇ [/] [@click=app.quit]x[/]"


def hostile_env(demo: DemoFleet, folder: Path, *, probes: bool = False) -> Path:
    """The demo fleet's file with a first step that prints hostile text (and fails when
    deploying 1.1.0); with ``probes``, the version and health commands print it too (the
    health check then fails, so that ``check`` shows what it said)."""

    def edit(data: dict[str, Any]) -> None:
        step = {"name": "hostile", "run": f"{PRINTF}; test {{version}} != 1.1.0"}
        data["deploy"]["steps"].insert(0, step)
        if probes:
            data["deploy"]["current"] = f"{PRINTF}; " + data["deploy"]["current"]
            data["health"]["check"] = f"{PRINTF}; false"

    return edit_env(demo.env_path, folder / ("probes.yaml" if probes else "hostile.yaml"), edit)


async def run_cli_bytes(
    *args: str, state_dir: Path, timeout: float = 90.0
) -> tuple[int, bytes, bytes]:
    """``python -m canarytui ARGS``: exit status and the exact bytes written."""
    env = dict(os.environ, CANARYTUI_STATE_DIR=str(state_dir))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarytui",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out, err


def assert_terminal_safe(data: bytes) -> str:
    """No ESC, no BEL, no other control, no C1: as bytes, and as the UTF-8 text they are."""
    assert b"\x1b" not in data and b"\x07" not in data and b"\x00" not in data
    text = data.decode("utf-8")  # strict: a lone 0x9b byte would not decode
    found = sorted({f"U+{ord(c):04X}" for c in _FORBIDDEN.findall(text.replace("\n", ""))})
    assert not found, f"controls written: {found}"
    return text


async def test_cli_human_output_is_sanitised(demo: DemoFleet, tmp_path: Path) -> None:
    env = str(hostile_env(demo, tmp_path))
    state = tmp_path / "state"

    probes = str(hostile_env(demo, tmp_path, probes=True))
    code, out, err = await run_cli_bytes("check", probes, state_dir=state)
    text = assert_terminal_safe(out) + assert_terminal_safe(err)
    assert code == 1 and "Traceback" not in text, (code, text)
    assert f"UNHEALTHY  health check exited 1: {SHOWN}" in text, text
    code, out, err = await run_cli_bytes("status", probes, state_dir=state)
    assert_terminal_safe(out)
    assert_terminal_safe(err)

    code, out, err = await run_cli_bytes("deploy", env, "1.1.0", state_dir=state)
    text = assert_terminal_safe(out)
    assert_terminal_safe(err)
    assert code in (1, 3, 4), (code, text, err)
    assert "hostile FAILED" in text
    assert f"| {SHOWN}" in text, text

    code, out, err = await run_cli_bytes("history", env, state_dir=state)
    assert_terminal_safe(out)
    assert_terminal_safe(err)


async def test_cli_json_output_stays_exact_and_escaped(demo: DemoFleet, tmp_path: Path) -> None:
    env = str(hostile_env(demo, tmp_path))
    _, out, err = await run_cli_bytes("deploy", env, "1.1.0", "--json", state_dir=tmp_path / "s")
    assert_terminal_safe(out)
    assert_terminal_safe(err)
    lines = out.decode().splitlines()
    events_out = [json.loads(line) for line in lines]  # every line is JSON
    assert events_out[-1]["event"] == "result"
    step = next(e for e in events_out if e["event"] == "step" and e["step"] == "hostile")
    # The data itself is untouched: the host's bytes, escaped by JSON, read back exactly.
    assert "\x1b]0;pwned\x07" in step["output"] and "\x9b 31m" in step["output"]
    assert "\\u001b]0;pwned\\u0007" in out.decode()


async def test_cli_refusal_names_a_hostile_lock_owner_as_text(
    demo: DemoFleet, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    lock = locks.local_lock_path(state, "demo", "shop")
    lock.parent.mkdir(parents=True)
    lock.write_text(
        json.dumps(
            {"token": "x", "deployment": 3, "version": HOSTILE, "user": HOSTILE, "machine": "m"}
        )
    )
    code, out, err = await run_cli_bytes("deploy", str(demo.env_path), "1.1.0", state_dir=state)
    assert code == 1
    text = assert_terminal_safe(err)
    assert "locked by [/] [@click=app.quit]x[/]" in text and "␛" in text, text
    assert_terminal_safe(out)
