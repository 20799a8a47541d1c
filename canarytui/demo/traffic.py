"""The statistics of the simulated traffic: latency buckets, a model per release, draws.

A release's latencies are lognormal; they are binned once per release into the histogram's
buckets, so a tick draws how many requests land in each bucket (a multinomial) instead of
one latency per request.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from dataclasses import dataclass
from statistics import NormalDist

# Histogram buckets (seconds). Finer between 50 ms and 500 ms, where a good release's p99
# (~0.15 s) and a slow one's (~0.45 s) fall, so a p99 read back from bucket increases tells
# them apart by about the real factor of three.
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

# A good release: lognormal latencies with median 35 ms and sigma 0.6 give p99 ~ 0.14 s.
LATENCY_MEDIAN = 0.035
LATENCY_SIGMA = 0.6


@dataclass(frozen=True)
class LatencyModel:
    """Where a release's request latencies fall: one slot per bucket, plus one above the last."""

    probs: tuple[float, ...]  # probability of each slot
    mean: tuple[float, ...]  # mean latency of the requests in each slot
    slow_from: int  # first slot whose requests are slower than 500 ms


_SLOTS = tuple(range(len(BUCKETS) + 1))


@functools.cache
def latency_model(factor: float) -> LatencyModel:
    """Lognormal latencies binned once per release, so a tick draws slots, not latencies.

    A tick then draws how many requests fall in each slot (a multinomial), which costs a
    fraction of one ``lognormvariate`` per request: that matters at 500 hosts x 50
    requests a second.
    """
    normal = NormalDist(math.log(LATENCY_MEDIAN * factor), LATENCY_SIGMA)
    size = 4000
    sums = [0.0] * len(_SLOTS)
    hits = [0] * len(_SLOTS)
    for i in range(size):
        latency = math.exp(normal.inv_cdf((i + 0.5) / size))
        slot = bisect.bisect_left(BUCKETS, latency)
        sums[slot] += latency
        hits[slot] += 1
    mean = tuple(total / n if n else 0.0 for total, n in zip(sums, hits, strict=True))
    probs = tuple(n / size for n in hits)
    return LatencyModel(probs, mean, bisect.bisect_right(BUCKETS, 0.5))


def multinomial(rng: random.Random, n: int, probs: tuple[float, ...]) -> list[int]:
    """How many of ``n`` draws land in each slot, as conditional binomials."""
    out = []
    remaining, mass = n, 1.0
    for p in probs[:-1]:
        x = binomial(rng, remaining, p / mass) if remaining and mass > 0 and p > 0 else 0
        out.append(x)
        remaining -= x
        mass -= p
    out.append(remaining)
    return out


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
