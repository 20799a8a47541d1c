"""The host details screen (enter on a tile): the series the rules read, as a metrics page
writes them."""

from __future__ import annotations

from pathlib import Path

from test_ui_support import LATENCY_BUCKETS, Script, settle, until

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
