"""Snapshots of the screens at 120x40 (one at 80x24), driven by real engine events (no SSH,
no clock).

Review ``snapshot_report.html`` after a failure; update with ``--snapshot-update`` only
when the new picture is what the docstring says it should be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_ui_support import LATENCY_SHIFT, Script, settle, until
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
    quiet: bool = False,
    size: tuple[int, int] = SIZE,
) -> bool:
    """Discover the fleet, run ``setup(script)``, let the screen settle, press keys.
    ``quiet``: the notifications the setup raised are dismissed before the keys."""

    async def run_before(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
        await pilot.pause()
        script.discovered()
        if setup is not None:
            setup(script)
        await settle(pilot)
        if quiet:
            script.app.clear_notifications()
            await pilot.pause()
        if press:
            await pilot.press(*press)
            await settle(pilot)
        if after is not None:
            await after(pilot)
            await settle(pilot)

    return bool(snap_compare(script.app, terminal_size=size, run_before=run_before))


def test_idle_fleet(snap_compare: Any, tmp_path: Path) -> None:
    """Twelve healthy hosts on 1.0.0 in green tiles (three a row), the cursor bar on web-01,
    the side panel on web-01 (address 10.0.0.1:22, role web, zone=eu-1, version 1.0.0,
    health ok with a sparkline, key metrics error-ratio 0.003333 and p99-latency 0.2385 read
    from its metrics page), the rollout panel saying there is no deployment yet with web-01
    as the default canary, header phase idle, stable 1.0.0, candidate -; the footer lists
    ? Help and q Quit first, then the rollout's keys, a Analysis among them."""
    assert snap(snap_compare, Script(tmp_path))


def test_canaries_selected(snap_compare: Any, tmp_path: Path) -> None:
    """web-02 and web-06 picked with space: their tiles carry a ◇ canary badge, the grid
    title says 2 canaries picked, the rollout panel lists web-02, web-06 as canaries; the
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


def test_log_filter(snap_compare: Any, tmp_path: Path) -> None:
    """web-01's log lines over the whole screen (L), filtered by `error` (/, then typed):
    only the ERROR line of its four, its escape sequences shown as ␛; the pane's title
    `logs · canaries web-01 · /error: 1 line(s)`; the filter's line docked at the bottom
    with `error` typed in it, the logs above it in view, not dimmed."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        s.start("1.2.0", ["web-01"])
        s.phase(ev.Phase.CANARY)
        for line in LOG_LINES:
            s.log("web-01", line)

    assert snap(snap_compare, script, setup, press=("L", "slash", *"error"), quiet=True)


def test_analysis_failed_with_reasons(snap_compare: Any, tmp_path: Path) -> None:
    """1.3.0-bad on canary web-01: verdict FAIL in the rollout panel with the failing rule
    on one line, cut with … at the panel's edge (✗ web-01 error-ratio 0.21 vs 0.005,
    <= 0…), then the key a analysis (nothing else applies while it rolls back); the phase
    rolling back, web-01 in the rolling-back colour, its key metrics (error-ratio 0.1017)
    in the side panel; a notification says the verdict in full (limit <= 0.05 and <= 3x
    baseline)."""
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
        s.health("web-01", ok=True, latency=0.019, requests=1600, failed=66)
        s.emit(
            ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=[ms[1].describe()], measurements=ms)
        )
        s.working()
        s.phase(ev.Phase.ROLLING_BACK)
        s.host("web-01", ev.HostState.ROLLING_BACK)

    assert snap(snap_compare, script, setup)


def test_awaiting_promotion(snap_compare: Any, tmp_path: Path) -> None:
    """1.1.0 passed on canary web-01 (deployed colour, ◆ canary badge, version 1.1.0);
    header phase awaiting promotion; rollout panel: canary 1/1, wave 1 0/3, wave 2 0/8,
    analysis 30s of 30s, verdict PASS with one ✓ line per measurement (failed-checks 0,
    error-ratio 0.004 vs 0.005, cut with … at the panel's edge), keys p promote, r roll back
    and a analysis."""
    script = Script(tmp_path)
    assert snap(snap_compare, script, lambda s: s.canary_passed("1.1.0", ["web-01"]))


def test_awaiting_promotion_in_a_small_terminal(snap_compare: Any, tmp_path: Path) -> None:
    """The same moment in 80x24: header " production/shop", the phase, "1.0.0 → 1.1.0";
    the host panel cut after its first part (address to health); the rollout panel below it
    at full height: canary 1/1, waves 0/3 and 0/8, analysis 30s of 30s, verdict PASS, its
    first two ✓ lines and the keys; the footer ends in "^p palette"."""
    script = Script(tmp_path)
    setup = lambda s: s.canary_passed("1.1.0", ["web-01"])  # noqa: E731
    assert snap(snap_compare, script, setup, quiet=True, size=(80, 24))


def test_promoting_a_wave(snap_compare: Any, tmp_path: Path) -> None:
    """Wave 1 of 2 in flight: header phase promoting wave 1/2; web-02 deployed, web-03
    deploying, web-04 failed (its tile in the failing colour, its note in the side panel
    after moving there); the rollout panel shows wave 1 with 1 done, 1 failed of 3."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        waves = s.canary_passed("1.1.0", ["web-01"])
        s.working()
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
    outcome canary failed and the summary '1 host(s) rolled back from 1.3.0-bad', keys
    d deploy and a analysis; candidate is -."""
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


def test_deploy_to_the_hosts_the_filter_shows(snap_compare: Any, tmp_path: Path) -> None:
    """Ten hosts on 1.1.0, web-05 and web-09 left on 1.0.0; the filter version=1.0 shows
    those two; d 1.1.0 enter: first "Deploy 1.1.0 to only the 2 host(s) the filter shows
    (version=1.0): web-05, web-09; no canary among them: straight to 2 wave(s), each host
    health-gated, without canary or analysis. The others are not changed (o)", then "Or
    every host (a): deploy 1.1.0 to 1 canary host(s): web-01?" with the hosts on 1.1.0
    already said, and three buttons: Only 2 (o), All 12 (a), No (n)."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        s.discovered("1.1.0")
        for name in ("web-05", "web-09"):
            s.host(name, ev.HostState.IDLE, "1.0.0")

    keys = ("slash", *"version=1.0", "enter", "d", "1", "full_stop", "1", "full_stop", "0")
    assert snap(snap_compare, script, setup, press=(*keys, "enter"), quiet=True)


def test_help(snap_compare: Any, tmp_path: Path) -> None:
    """The help dialog (?) over the fleet: every key with what it does (a: the analysis
    view among them; d says that with the filter on, o deploys to the hosts it shows
    only), and the note that every confirmation takes y or enter for yes and n or escape
    for no."""
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
        s.working()
        s.phase(ev.Phase.PROMOTING, wave=1)
        s.deploy_host("web-02", "1.1.0")
        s.host("web-03", ev.HostState.DEPLOYING)
        s.host("web-04", ev.HostState.FAILED, detail="restart exited 1")
        s.host("web-05", ev.HostState.UNREACHABLE, detail="unreachable: timed out")
        s.host("web-06", ev.HostState.ROLLED_BACK, "1.0.0")

    assert snap(snap_compare, script, setup)


# The analysis view (a) and the verdict in the rollout panel -----------------------------


def test_analysis_view_during_a_failing_analysis(snap_compare: Any, tmp_path: Path) -> None:
    """`a` while 1.3.0-bad is analysed on canary web-01 (analysis 16s of 30s, 14s left, no
    verdict yet): the table's focused row is error-ratio on web-01, value 0.1645 against
    baseline 0.006, limit <= 0.05 and <= 3x baseline (0.0288), verdict FAIL; p99-latency
    and failed-checks pass. The chart under it plots web-01's error ratio over each interval
    (a yellow braille line) that starts inside the baseline's shaded band (web-04, web-08,
    under 1 %, along the bottom), crosses the dashed max 0.05 line and stays near 20 %, up
    to the ▲ 16s mark of the 30 s window; the line under the chart repeats the row in full."""
    script = Script(tmp_path)
    assert snap(snap_compare, script, lambda s: s.bad_canary_analysis(), press=("a",), quiet=True)


def passed_with_a_statistical_rule(s: Script) -> None:
    """1.2.0 on canaries web-01 and web-05: 15 updates over the 30 s window, then PASS."""
    canaries = ["web-01", "web-05"]
    s.canaries_analysed("1.2.0", canaries)
    ms: list[ev.Measurement] = []
    for i in range(15):
        ms = [
            ev.Measurement(rule="failed-checks", host=c, value=0.0, limit="<= 2", passed=True)
            for c in canaries
        ]
        for n, c in enumerate(canaries):
            ms.append(
                ev.Measurement(
                    rule="error-ratio",
                    host=c,
                    value=0.004 + 0.001 * n,
                    baseline=0.005,
                    limit="<= 0.05 and <= 3x baseline (0.0201)",
                    passed=True,
                    recent=0.003 + 0.001 * ((i + n) % 4),
                    band=[0.002, 0.008],
                )
            )
        for n, c in enumerate(canaries):
            ms.append(
                ev.Measurement(
                    rule="p99-latency",
                    host=c,
                    value=0.19 + 0.01 * n,
                    baseline=0.2,
                    limit="<= 2x baseline (0.42)",
                    passed=True,
                    recent=0.18 + 0.01 * ((i + n) % 3),
                    band=[0.17, 0.23],
                )
            )
        for n, c in enumerate(canaries):
            enough = i >= 4
            ms.append(
                ev.Measurement(
                    rule="latency-shift",
                    host=c,
                    value=0.031 + 0.001 * n,
                    baseline=0.03,
                    limit="shift within +20% vs baseline (Mann-Whitney, 0.98)",
                    passed=True if enough else None,
                    status="pass" if enough else "no data",
                    effect=(0.04 + 0.03 * n) if enough else None,
                    confidence=(0.412 + 0.1 * n) if enough else None,
                    recent=0.029 + 0.002 * ((2 * i + n) % 4),
                    band=[0.026 + 0.001 * (i % 2), 0.036 - 0.001 * (i % 3)],
                    note=""
                    if enough
                    else f"{i + 1} interval values on the canary, {2 * (i + 1)} on the baseline: "
                    "5 needed on each side",
                )
            )
        s.emit(ev.AnalysisUpdate(elapsed=2.0 * (i + 1), duration=30.0, measurements=ms))
    s.emit(
        ev.VerdictReached(
            verdict=ev.Verdict.PASS, reasons=[m.describe() for m in ms], measurements=ms
        )
    )
    s.phase(ev.Phase.AWAITING_PROMOTION, wave=0)


def test_analysis_view_after_a_pass_with_a_statistical_rule(
    snap_compare: Any, tmp_path: Path
) -> None:
    """`a` after 1.2.0 passed on canaries web-01 and web-05 (analysis 30s of 30s, verdict
    PASS in the success colour): eight rows, every verdict pass; the cursor moved down to
    latency-shift on web-01, whose effect (+4%) and confidence (0.412) are shown, as are
    web-05's (+7%, 0.512); the failed-checks rows come last. The chart plots web-01's median
    latency over each interval wandering inside the baseline's shaded band (about 0.026 to
    0.036) over the whole 30 s window, with no limit line (a statistical rule)."""
    script = Script(tmp_path, extra_rules=LATENCY_SHIFT)
    assert snap(
        snap_compare,
        script,
        passed_with_a_statistical_rule,
        press=("a", "down", "down", "down", "down"),
        quiet=True,
    )


def test_rollout_panel_long_verdict_fits(snap_compare: Any, tmp_path: Path) -> None:
    """A FAIL verdict on canaries web-01 and web-05 with long rule names, values and limits:
    under verdict FAIL the rollout panel shows the reason that is not a measurement
    (• web-05: 3 failed health checks, at mos…), then one line per failing rule (✗), then
    the undecided (?) and no-data (·) ones, each on a single line cut with … at the panel's
    edge (no line wraps), six at most and '… 2 more: a shows them all', then the key
    a analysis (nothing else applies while it rolls back)."""
    script = Script(tmp_path)

    def setup(s: Script) -> None:
        canaries = ["web-01", "web-05"]
        s.canaries_analysed("1.3.0-bad", canaries)
        ms = []
        for c in canaries:
            ms += [
                ev.Measurement(
                    rule="error-ratio-of-the-checkout-and-payment-routes",
                    host=c,
                    value=0.2134,
                    baseline=0.0051,
                    limit="<= 0.05 and <= 3x baseline (0.01832)",
                    passed=False,
                    status="fail",
                ),
                ev.Measurement(
                    rule="p99-latency",
                    host=c,
                    value=0.731,
                    baseline=0.204,
                    limit="<= 0.5 and <= 2x baseline (0.4413)",
                    passed=False,
                    status="fail",
                ),
                ev.Measurement(
                    rule="latency-shift",
                    host=c,
                    value=0.052,
                    baseline=0.031,
                    reference="before",
                    limit="shift within +20% vs before (Mann-Whitney, 0.98)",
                    passed=None,
                    status="undecided",
                    effect=0.68,
                    confidence=0.91,
                    note="shift beyond the tolerance, but not beyond doubt at 0.98",
                ),
                ev.Measurement(
                    rule="traffic", host=c, value=None, limit=">= 0.5x baseline", passed=None
                ),
            ]
        reasons = [m.describe() for m in ms if m.state == "fail"]
        reasons.append("web-05: 3 failed health checks, at most 2 tolerated (max_failed_checks)")
        s.emit(ev.VerdictReached(verdict=ev.Verdict.FAIL, reasons=reasons, measurements=ms))
        s.working()
        s.phase(ev.Phase.ROLLING_BACK)

    assert snap(snap_compare, script, setup, quiet=True)


def test_failure_dialog(snap_compare: Any, tmp_path: Path) -> None:
    """on_failure: ask: web-04 and web-05 failed in wave 1 of 2; the dialog shows each host's
    step, exit status and the end of its output (escape sequences visible), the four choices,
    and that one more host may be skipped within max_failures, so skip is disabled."""
    from canarytui.ui.screens.failure import FailureScreen

    script = Script(tmp_path)

    async def ask(pilot: Pilot[int]) -> None:
        question = ev.FailureQuestion(
            wave=1,
            waves=2,
            failures=[
                ev.HostFailure(
                    host="web-04",
                    step="restart",
                    exit_status=1,
                    output="Job for shop.service failed.\n\x1b[31mdisk full\x1b[0m on /srv",
                ),
                ev.HostFailure(
                    host="web-05", step="", exit_status=None, output="", detail="unreachable"
                ),
            ],
            skippable=1,
        )
        script.app.push_screen(FailureScreen(question, "1.1.0"))

    assert snap(snap_compare, script, after=ask, quiet=True)
