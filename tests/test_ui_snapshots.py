"""Snapshots of the screens at 120x40, driven by real engine events (no SSH, no clock).

Review ``snapshot_report.html`` after a failure; update with ``--snapshot-update`` only
when the new picture is what the docstring says it should be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_ui_support import Script, settle, until
from textual.pilot import Pilot

from canarytui import events as ev

SIZE = (120, 40)

LOG_LINES = [
    "2026-01-01T00:00:01.000Z INFO  shop[web-01] GET /api/cart 200 31ms",
    "2026-01-01T00:00:01.100Z INFO  shop[web-01] GET /api/search 200 44ms",
    "2026-01-01T00:00:01.200Z \x1b[31mERROR\x1b[0m shop[web-01] POST /api/checkout 500 "
    "upstream timeout (payments)",
    "2026-01-01T00:00:01.300Z WARN  shop[web-01] \x1b]0;pwned\x07connection pool 80% busy",
]


def snap(
    snap_compare: Any,
    script: Script,
    setup: Any = None,
    press: tuple[str, ...] = (),
    after: Any = None,
) -> bool:
    """Discover the fleet, run ``setup(script)``, let the screen settle, press keys."""

    async def run_before(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
        await pilot.pause()
        script.discovered()
        if setup is not None:
            setup(script)
        await settle(pilot)
        if press:
            await pilot.press(*press)
            await settle(pilot)
        if after is not None:
            await after(pilot)
            await settle(pilot)

    return bool(snap_compare(script.app, terminal_size=SIZE, run_before=run_before))


def test_idle_fleet(snap_compare: Any, tmp_path: Path) -> None:
    """Twelve healthy hosts on 1.0.0 in green tiles (three a row), the cursor bar on web-01,
    the side panel on web-01 (address 10.0.0.1:22, role web, zone=eu-1, version 1.0.0,
    health ok with a sparkline), the rollout panel saying there is no deployment yet with
    web-01 as the default canary, header phase idle, stable 1.0.0, candidate -."""
    assert snap(snap_compare, Script(tmp_path))


def test_canaries_selected(snap_compare: Any, tmp_path: Path) -> None:
    """web-02 and web-06 picked with space: their tiles carry a ◇ canary badge, the grid
    title says 2 canary picked, the rollout panel lists web-02, web-06 as canaries; the
    cursor is on web-06 and the side panel shows it."""
    script = Script(tmp_path)
    assert snap(snap_compare, script, press=("right", "space", "down", "space"))


def test_canary_deploying(snap_compare: Any, tmp_path: Path) -> None:
    """Deployment #1 of 1.2.0, phase canary: web-01 in the deploying colour (state
    deploying, step switch), the other hosts pending; header candidate 1.2.0; the side
    panel shows web-01's last step (deploy switch: exit 0) and the log pane web-01's log
    lines with each escape sequence shown as a visible ␛ (no colour applied, no title
    change): `␛ERROR␛ shop[web-01] ...` and `␛connection pool 80…`."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        s.start("1.2.0", ["web-01"])
        s.phase(ev.Phase.CANARY)
        s.host("web-01", ev.HostState.DEPLOYING)
        s.step("web-01", "install", output="fetched 1.2.0 (14.2 MB)")
        s.step("web-01", "switch", output="current -> releases/1.2.0")
        for line in LOG_LINES:
            s.log("web-01", line)

    assert snap(snap_compare, script, setup)


def test_analysis_failed_with_reasons(snap_compare: Any, tmp_path: Path) -> None:
    """1.3.0-bad on canary web-01: verdict FAIL in the rollout panel with its reason and the
    measured values (error-ratio 0.21 against baseline 0.005, limit <= 0.05 and <= 3x
    baseline), the phase rolling back, web-01 in the rolling-back colour; a notification
    says the verdict."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        s.start("1.3.0-bad", ["web-01"])
        s.phase(ev.Phase.CANARY)
        s.deploy_host("web-01", "1.3.0-bad")
        s.phase(ev.Phase.ANALYSIS)
        s.emit(
            ev.AnalysisStarted(canaries=["web-01"], baseline=["web-04", "web-08"], duration=30.0)
        )
        ms = [
            ev.Measurement(
                rule="failed-checks", host="web-01", value=0.0, limit="<= 2", passed=True
            ),
            ev.Measurement(
                rule="error-ratio",
                host="web-01",
                value=0.21,
                limit="<= 0.05 and <= 3x baseline (0.015)",
                passed=False,
                baseline=0.005,
            ),
        ]
        s.emit(ev.AnalysisUpdate(elapsed=12.0, duration=30.0, measurements=ms))
        s.health("web-01", ok=True, latency=0.019, requests=1200, failed=47)
        s.emit(
            ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=[ms[1].describe()], measurements=ms)
        )
        s.phase(ev.Phase.ROLLING_BACK)
        s.host("web-01", ev.HostState.ROLLING_BACK)

    assert snap(snap_compare, script, setup)


def test_awaiting_promotion(snap_compare: Any, tmp_path: Path) -> None:
    """1.1.0 passed on canary web-01 (deployed colour, ◆ canary badge, version 1.1.0);
    header phase awaiting promotion; rollout panel: canary 1/1, wave 1 0/3, wave 2 0/8,
    analysis 30s of 30s, verdict PASS, keys p promote and r roll back."""
    script = Script(tmp_path)
    assert snap(snap_compare, script, lambda s: s.canary_passed("1.1.0", ["web-01"]))


def test_promoting_a_wave(snap_compare: Any, tmp_path: Path) -> None:
    """Wave 1 of 2 in flight: header phase promoting wave 1/2; web-02 deployed, web-03
    deploying, web-04 failed (its tile in the failing colour, its note in the side panel
    after moving there); the rollout panel shows wave 1 with 1 done, 1 failed of 3."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        waves = s.canary_passed("1.1.0", ["web-01"])
        s.phase(ev.Phase.PROMOTING, wave=1)
        s.emit(ev.Decision(action="promote", user=s.engine.user, detail="next wave"))
        s.emit(ev.WaveStarted(wave=1, waves=len(waves), hosts=waves[0]))
        s.deploy_host("web-02", "1.1.0")
        s.host("web-03", ev.HostState.DEPLOYING)
        s.host("web-04", ev.HostState.DEPLOYING)
        s.step(
            "web-04",
            "restart",
            exit_status=1,
            output="Job for shop.service failed because the control process exited",
        )
        s.host(
            "web-04", ev.HostState.FAILED, detail="restart exited 1: Job for shop.service failed"
        )

    assert snap(snap_compare, script, setup, press=("right", "right", "right"))


def test_rolled_back(snap_compare: Any, tmp_path: Path) -> None:
    """After the bad canary: phase rolled back (header in the failing colour), web-01 back
    on 1.0.0 in the rolled-back colour, the hosts the deployment never reached idle again,
    the rollout panel with canary 0/1, 1 rolled back, verdict FAIL with the measured value,
    outcome canary failed and the summary '1 host(s) rolled back from 1.3.0-bad';
    candidate is -."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        s.start("1.3.0-bad", ["web-01"])
        s.phase(ev.Phase.CANARY)
        s.deploy_host("web-01", "1.3.0-bad")
        s.phase(ev.Phase.ANALYSIS)
        m = ev.Measurement(
            rule="error-ratio",
            host="web-01",
            value=0.21,
            limit="<= 0.05",
            passed=False,
            baseline=0.005,
        )
        s.emit(ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=[m.describe()], measurements=[m]))
        s.phase(ev.Phase.ROLLING_BACK)
        s.host("web-01", ev.HostState.ROLLING_BACK)
        for step in ("install", "switch", "restart"):
            s.step("web-01", step, action="rollback", output=f"{step} 1.0.0 ok")
        s.host("web-01", ev.HostState.ROLLED_BACK, "1.0.0")
        s.phase(ev.Phase.ROLLED_BACK)
        s.emit(
            ev.DeploymentFinished(
                outcome=ev.Outcome.CANARY_FAILED, summary="1 host(s) rolled back from 1.3.0-bad"
            )
        )

    assert snap(snap_compare, script, setup)


def test_history(snap_compare: Any, tmp_path: Path) -> None:
    """The history screen (H): deployment #1 of 1.3.0-bad, canary web-01, verdict fail,
    outcome canary failed, by operator, started 2026-01-01 00:00:00; below it the decision
    (operator@ci deploy) and each host's previous -> current version and state."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        s.start("1.3.0-bad", ["web-01"])
        s.deploy_host("web-01", "1.3.0-bad")
        m = ev.Measurement(
            rule="error-ratio", host="web-01", value=0.21, limit="<= 0.05", passed=False
        )
        s.emit(ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=[m.describe()], measurements=[m]))
        s.host("web-01", ev.HostState.ROLLED_BACK, "1.0.0")
        s.phase(ev.Phase.ROLLED_BACK)
        s.emit(
            ev.DeploymentFinished(
                outcome=ev.Outcome.CANARY_FAILED, summary="1 host(s) rolled back from 1.3.0-bad"
            )
        )
        s.freeze_journal_times()

    assert snap(snap_compare, script, setup, press=("H",))


def test_help(snap_compare: Any, tmp_path: Path) -> None:
    """The help dialog (?) over the fleet: every key with what it does, and the note that
    every confirmation takes y or enter for yes and n or escape for no."""
    assert snap(snap_compare, Script(tmp_path), press=("question_mark",))


def test_filter(snap_compare: Any, tmp_path: Path) -> None:
    """'/' then 'api': the filter box at the bottom holds 'api'; only web-04, web-08 and
    web-12 (role api) are on the grid; the grid title says filter 'api': 3 shown."""
    assert snap(snap_compare, Script(tmp_path), press=("slash", "a", "p", "i"))


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast"])
def test_theme(snap_compare: Any, tmp_path: Path, theme: str) -> None:
    """The promoting-a-wave picture in each shipped theme: every state colour (healthy,
    deployed, deploying, failing, pending, canary badge) readable on its background."""
    script = Script(tmp_path, theme=theme)

    def setup(s: Script) -> None:
        s.canary_passed("1.1.0", ["web-01"])
        s.phase(ev.Phase.PROMOTING, wave=1)
        s.deploy_host("web-02", "1.1.0")
        s.host("web-03", ev.HostState.DEPLOYING)
        s.host("web-04", ev.HostState.FAILED, detail="restart exited 1")
        s.host("web-05", ev.HostState.UNREACHABLE, detail="unreachable: timed out")
        s.host("web-06", ev.HostState.ROLLED_BACK, "1.0.0")

    assert snap(snap_compare, script, setup)
