"""The host details screen (enter on a tile): the series the rules read, as a metrics page
writes them."""

from __future__ import annotations

from pathlib import Path

from test_ui_support import LATENCY_BUCKETS, Script, settle, until
from textual.widgets import Static

from canarytui import events as ev
from canarytui.metrics.page import series_text
from canarytui.ui.screens.details import HostDetailsScreen


def test_a_reading_key_reads_as_the_series_on_the_page() -> None:
    assert series_text('c:http_requests_total{code="500"}')[2] == 'http_requests_total{code="500"}'
    assert series_text("g:up{}")[2] == "up"
    assert series_text('0.005|h_bucket{route="/"}') == (
        'h_bucket{route="/"}',
        0.005,
        'h_bucket{route="/",le="0.005"}',
    )
    assert series_text("inf|h_bucket{}")[2] == 'h_bucket{le="+Inf"}'
    keys = ["inf|h_bucket{}", "10.0|h_bucket{}", "0.01|h_bucket{}", "2.5|h_bucket{}"]
    assert [series_text(k)[1] for k in sorted(keys, key=series_text)] == [0.01, 2.5, 10.0, 1e999]


async def test_the_details_list_a_histograms_buckets_by_their_le_in_order(tmp_path: Path) -> None:
    """Each bucket as ``name{labels,le="0.05"}``, a series' buckets from the smallest bound
    to ``+Inf``; no internal key (``0.05|name{...}``) on screen."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
        script.discovered()
        await settle(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(script.app.screen, HostDetailsScreen), 5, "details")
        await settle(pilot)
        screen = script.app.screen
        assert isinstance(screen, HostDetailsScreen)
        lines = str(screen._metrics()).splitlines()
        assert not any("|" in line for line in lines), lines
        route = 'http_request_duration_seconds_bucket{method="GET",route="/api/cart"'
        listed = [line.split()[0] for line in lines if line.lstrip().startswith(route)]
        bounds = [str(b) for b, _ in LATENCY_BUCKETS] + ["+Inf"]
        assert listed == [f'{route},le="{b}"}}' for b in bounds], listed


async def test_a_host_whose_release_failed_part_way_shows_its_version_as_last_known(
    tmp_path: Path,
) -> None:
    """A host cut off mid-release (a step hung, its rollback failed): the grid, the panel
    and the details said "1.0.0" while the host ran the new release (its switch had run).
    Its version is marked as last known (``1.0.0?``), and the details say what it may run."""
    script = Script(tmp_path)
    async with script.app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: script.app.fleet_screen.is_mounted, 10, "screen mounted")
        script.discovered()
        script.start("1.1.0", ["web-01"])
        script.phase(ev.Phase.CANARY)
        script.host("web-01", ev.HostState.ROLLBACK_FAILED, detail="timed out")
        await settle(pilot)
        state = script.app.fleet_screen.state
        assert state.version_text("web-01") == "1.0.0?"
        assert state.version_text("web-02") == "1.0.0"  # not changed: as known
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(script.app.screen, HostDetailsScreen), 5, "details")
        await settle(pilot)
        shown = " ".join(str(script.app.screen.query_one("#info", Static).render()).split())
        assert (
            "version 1.0.0 as last known: its release stopped part way, it may run 1.1.0 now"
        ) in shown, shown
