"""The UI's memory of each host (health history, key metrics' samples, the last step), made
for a host the first time something asks for it."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from canarytui.metrics.series import HostSeries

HEALTH_HISTORY = 60  # samples kept per host for the sparkline
METRIC_WINDOW = 8  # samples with metrics kept per host for its key metrics


@dataclass
class HostView:
    """The UI's per-host memory."""

    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=HEALTH_HISTORY))
    ok: bool | None = None  # last health result (None: unreachable)
    probed: bool = False  # any sample yet?
    latency: float | None = None
    sampled_at: float = 0.0  # when the last sample was taken (time.time())
    health_detail: str = ""
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    series: HostSeries = field(
        default_factory=lambda: HostSeries(samples=deque(maxlen=METRIC_WINDOW))
    )
    last_step: str | None = None
    last_action: str | None = None
    last_exit: int | None = None
    last_output: str = ""
    last_duration: float | None = None
    last_of: int | None = None  # the deployment the last step was of


class HostViews(Mapping[str, HostView]):
    """Each host's view, made the first time it is asked for: a 5,000-host fleet's first
    screen draws a few hundred tiles, and 5,000 views cost ~25 ms to make up front."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = list(names)
        self._known = frozenset(self._names)
        self._views: dict[str, HostView] = {}

    def __getitem__(self, name: str) -> HostView:
        view = self._views.get(name)
        if view is None:
            if name not in self._known:
                raise KeyError(name)
            view = self._views[name] = HostView()
        return view

    def get(self, name: str, default: HostView | None = None) -> HostView | None:  # type: ignore[override]
        view = self._views.get(name)  # the common case first: every event asks
        if view is not None:
            return view
        return self[name] if name in self._known else default

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
