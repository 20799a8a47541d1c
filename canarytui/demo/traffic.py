"""The simulated traffic: the app's endpoints, their latencies per release, and its counters.

The app serves five routes the way a small shop would: most requests are cheap reads, a few
are checkouts that wait on a payment service, and load balancers probe ``/health`` many
times a second (fast, and never failing while the app is healthy). A release's latencies
are lognormal per endpoint and binned once into the histogram's buckets, as cells
(endpoint, answer, bucket) in a lookup table of 65,536 entries; a tick draws one 16-bit
random number per request, all in one ``getrandbits`` call, and counts the cells it lands
on: no latency per request, and no Python loop per request either. A 404 is a cell of its
own; the requests that fail are the first ones drawn (the draws are independent, so which
ones they are does not matter).
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import NormalDist

# Histogram buckets (seconds): prometheus_client's defaults up to 0.1, then finer up to 0.5,
# where a good release's p99 (~0.2 s) and a slow one's (~0.6 s) fall, so a p99 read back
# from the buckets tells them apart by about the real factor of three. A real app passes
# such a list as ``Histogram(..., buckets=BUCKETS)``.
BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
)
SLOTS = len(BUCKETS) + 1  # one per finite bucket, plus one for requests above the last
SLOW = 0.5  # seconds: the log warns about requests slower than this
SLOW_FROM = bisect.bisect_right(BUCKETS, SLOW)  # the first slot whose requests are slower
LATENCY_SIGMA = 0.6  # spread of every endpoint's lognormal latency

HEALTH_ROUTE = "/health"
HEALTH_PER_SECOND = 45.0  # probes a host gets from its load balancers and monitoring
NOT_FOUND_RATIO = 0.03  # share of a not-found-prone endpoint's requests answered 404
UNAVAILABLE_SHARE = 0.3  # share of the 5xx answered 503 (the rest: 500)


@dataclass(frozen=True)
class Endpoint:
    """One method and route of the app, as the traffic uses it on a good release."""

    method: str
    route: str
    share: float  # of the app's requests (probes aside)
    median: float  # seconds
    not_found: bool = False  # can answer 404 (an unknown product, an expired cart)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/", 0.20, 0.015),
    Endpoint("GET", "/api/products", 0.38, 0.025, not_found=True),
    Endpoint("GET", "/api/cart", 0.20, 0.030, not_found=True),
    Endpoint("POST", "/api/cart", 0.12, 0.040),
    Endpoint("POST", "/api/checkout", 0.10, 0.090),
)
ROUTES: tuple[str, ...] = tuple(sorted({e.route for e in ENDPOINTS} | {HEALTH_ROUTE}))
_ROUTE_INDEX = {route: i for i, route in enumerate(ROUTES)}
HEALTH = _ROUTE_INDEX[HEALTH_ROUTE]

# Every (method, route, code) series the app can produce, created at start with 0, as
# prometheus_client's docs advise (``counter.labels(...)`` for each known combination):
# a series that appears only with the first error is a series a rule cannot rely on.
REQUEST_SERIES: tuple[tuple[str, str, str], ...] = (
    *(
        (e.method, e.route, code)
        for e in ENDPOINTS
        for code in ("200", "404", "500", "503")
        if code != "404" or e.not_found
    ),
    ("GET", HEALTH_ROUTE, "200"),
    ("GET", HEALTH_ROUTE, "503"),
)
_SERIES_INDEX = {series: i for i, series in enumerate(REQUEST_SERIES)}
_HEALTH_OK = _SERIES_INDEX[("GET", HEALTH_ROUTE, "200")]
_HEALTH_FAILED = _SERIES_INDEX[("GET", HEALTH_ROUTE, "503")]


def _binned(median: float, sigma: float) -> tuple[list[float], list[float]]:
    """A lognormal's probability and mean latency in each histogram slot."""
    normal = NormalDist(math.log(median), sigma)
    size = 2000
    sums = [0.0] * SLOTS
    hits = [0] * SLOTS
    for i in range(size):
        latency = math.exp(normal.inv_cdf((i + 0.5) / size))
        slot = bisect.bisect_left(BUCKETS, latency)
        sums[slot] += latency
        hits[slot] += 1
    return [n / size for n in hits], [s / n if n else 0.0 for s, n in zip(sums, hits, strict=True)]


TABLE_BITS = 16  # a cell's probability is rounded to a multiple of 2**-16


@dataclass(frozen=True)
class Mix:
    """A release's requests as cells (endpoint, answer, bucket), to draw from."""

    table: bytes  # 2**TABLE_BITS entries, each a cell's number, as often as it is likely
    # Per cell: (the series it counts in, its route, its slot, the mean latency there).
    cells: tuple[tuple[int, int, int, float], ...]
    # Per cell: the series of its endpoint's 500 and 503, for the requests that fail.
    errors: tuple[tuple[int, int], ...]

    def draw(self, rng: random.Random, count: int) -> bytes:
        """``count`` requests' cells, one byte each."""
        bits = rng.getrandbits(TABLE_BITS * count).to_bytes(2 * count, "little")
        return bytes(map(self.table.__getitem__, memoryview(bits).cast("H")))


@functools.cache
def mix(factor: float) -> Mix:
    """The app's requests on a release whose latencies are ``factor`` times a good one's."""
    cells: list[tuple[float, int, int, int, float]] = []
    errors: list[tuple[int, int]] = []
    for e in ENDPOINTS:
        probs, means = _binned(e.median * factor, LATENCY_SIGMA)
        answers = [("200", 1 - NOT_FOUND_RATIO), ("404", NOT_FOUND_RATIO)]
        for code, share in answers if e.not_found else [("200", 1.0)]:
            series = _SERIES_INDEX[(e.method, e.route, code)]
            for slot, (p, m) in enumerate(zip(probs, means, strict=True)):
                if p > 0:
                    cells.append((e.share * share * p, series, _ROUTE_INDEX[e.route], slot, m))
                    errors.append(
                        (
                            _SERIES_INDEX[(e.method, e.route, "500")],
                            _SERIES_INDEX[(e.method, e.route, "503")],
                        )
                    )
    if len(cells) > 256:
        raise ValueError("too many cells for a table of bytes")
    # Largest remainders: each cell gets its share of the table's entries, rounded, and
    # the entries left over go to the cells that lost the most in the rounding.
    size = 1 << TABLE_BITS
    total = sum(c[0] for c in cells)
    quotas = [c[0] / total * size for c in cells]
    counts = [int(q) for q in quotas]
    by_loss = sorted(range(len(cells)), key=lambda i: counts[i] - quotas[i])
    for i in by_loss[: size - sum(counts)]:
        counts[i] += 1
    return Mix(
        table=b"".join(bytes([i]) * n for i, n in enumerate(counts)),
        cells=tuple(c[1:] for c in cells),
        errors=tuple(errors),
    )


# Probes answer from memory: a millisecond or two. Nearly all land in the first bucket
# (the usual one); the few others are drawn one slot at a time.
_HEALTH_PROBS, _HEALTH_MEANS = _binned(0.0015, 0.4)
_HEALTH_USUAL = max(range(SLOTS), key=_HEALTH_PROBS.__getitem__)
_HEALTH_RARE = tuple(
    (slot, p, _HEALTH_MEANS[slot])
    for slot, p in enumerate(_HEALTH_PROBS)
    if p and slot != _HEALTH_USUAL
)


class Traffic:
    """The app's request counters and latency histograms since it (re)started."""

    def __init__(self) -> None:
        self.requests = [0] * len(REQUEST_SERIES)  # per REQUEST_SERIES
        self.buckets = [[0] * SLOTS for _ in ROUTES]  # per route, per slot (not cumulative)
        self.sums = [0.0] * len(ROUTES)  # per route, seconds
        self.served = 0  # every request, probes included

    def serve(
        self,
        rng: random.Random,
        count: int,
        probes: int,
        error_ratio: float,
        factor: float,
        healthy: bool,
    ) -> tuple[int, int]:
        """``count`` app requests and ``probes`` health probes; how many failed, how many
        were slower than ``SLOW``."""
        requests, buckets, sums = self.requests, self.buckets, self.sums
        failed = slow = 0
        if count:
            m = mix(factor)
            draws = m.draw(rng, count)
            cells = m.cells
            for cell, hits in Counter(draws).items():
                series, route, slot, mean = cells[cell]
                requests[series] += hits
                buckets[route][slot] += hits
                sums[route] += hits * mean
                if slot >= SLOW_FROM:
                    slow += hits
            # The first draws fail: they were drawn independently, any would do.
            failed = binomial(rng, count, error_ratio)
            errors, rnd = m.errors, rng.random
            for cell in draws[:failed]:
                requests[cells[cell][0]] -= 1
                requests[errors[cell][rnd() < UNAVAILABLE_SHARE]] += 1
        if probes:
            requests[_HEALTH_OK if healthy else _HEALTH_FAILED] += probes
            health = buckets[HEALTH]
            usual = probes
            for slot, p, mean in _HEALTH_RARE:
                hits = min(usual, binomial(rng, probes, p))
                health[slot] += hits
                sums[HEALTH] += hits * mean
                usual -= hits
            health[_HEALTH_USUAL] += usual
            sums[HEALTH] += usual * _HEALTH_MEANS[_HEALTH_USUAL]
        self.served += count + probes
        return failed, slow


def binomial(rng: random.Random, n: int, p: float) -> int:
    """A Binomial(n, p) draw by geometric skips: O(successes), not O(n)."""
    if p <= 0 or n <= 0:
        return 0
    if p >= 1:
        return n
    variance = n * p * (1 - p)
    if variance > 3:
        # Many expected successes: the normal approximation is close enough, and O(1).
        return min(n, max(0, round(rng.gauss(n * p, math.sqrt(variance)))))
    if p > 0.5:
        return n - binomial(rng, n, 1 - p)
    log_q = math.log(1 - p)
    successes = 0
    trial = 0
    while True:
        trial += int(math.log(1.0 - rng.random()) / log_q) + 1
        if trial > n:
            return successes
        successes += 1


# ------------------------------------------------------------------- load balancer


@dataclass(frozen=True)
class Split:
    """What the load balancer was last told: ``percent`` % of the users to the hosts that
    run ``version``, the rest to the others; no version: every host its equal share."""

    version: str | None = None
    percent: float = 0.0

    def describe(self) -> str:
        if self.version is None:
            return "every host an equal share of the users"
        return f"{self.percent:g} % of the users to {self.version}, the rest to the others"


class Balancer:
    """The demo fleet's load balancer: weights per backend, as a real one keeps them.

    Each host's weight is its share of the users against an equal split (1.0: the share
    it would have with every host equal). The hosts running the split's release share its
    percent equally, the others share the rest, so with ``{percent}`` set to the share of
    the fleet on the release (what the demo's hooks send) every host keeps its fair share;
    a lower percent starves the new release's hosts, a higher one floods them. When every
    host (or none) runs the release, there is one group and every host an equal share.
    """

    RECOUNT_SECONDS = 0.2  # the hosts' releases are counted at most this often

    def __init__(self, versions: Callable[[], Iterable[str | None]]) -> None:
        self._versions = versions
        self.split = Split()
        self.generation = 0  # changes with every split, so apps can log the news
        self._counted_at = -math.inf
        self._on = 0
        self._total = 0

    def set(self, version: str | None, percent: float) -> Split:
        """A new split; returns the one it replaces."""
        if not (math.isfinite(percent) and 0 <= percent <= 100):
            raise ValueError(f"percent must be between 0 and 100, got {percent:g}")
        previous = self.split
        self.split = Split(version, float(percent)) if version is not None else Split()
        self.generation += 1
        self._counted_at = -math.inf
        return previous

    def counts(self) -> tuple[int, int]:
        """(hosts running the split's release, hosts in all), at most RECOUNT_SECONDS old."""
        now = time.monotonic()
        if now - self._counted_at >= self.RECOUNT_SECONDS:
            versions = list(self._versions())
            self._total = len(versions)
            self._on = sum(1 for v in versions if v == self.split.version)
            self._counted_at = now
        return self._on, self._total

    def weight(self, version: str | None) -> float:
        """The share of the users a host running ``version`` gets, against an equal split."""
        split = self.split
        if split.version is None:
            return 1.0
        on, total = self.counts()
        if on == 0 or on == total:
            return 1.0
        if version == split.version:
            return split.percent / 100 * total / on
        return (100 - split.percent) / 100 * total / (total - on)
