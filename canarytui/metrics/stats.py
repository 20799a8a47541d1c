"""The statistics of the judge: how sure a failure is, so that noise never rolls back.

Proportions (an error ratio; the share of requests slower than a latency limit) get the
Wilson score interval; counts (traffic) a Poisson interval by normal approximation; shifts
of per-interval values the one-sided Mann-Whitney U test, computed here as SciPy's
``mannwhitneyu(a, b, alternative="greater")`` computes it (its reference implementation,
checked against it in the tests): the exact distribution of U when a side has at most 8
values and none is tied, else the normal approximation with the tie and continuity
corrections. SciPy itself is not imported: its import took ~1 s, in the middle of an
analysis, holding the interpreter's lock in long stretches that stalled the interface's
loop (py-spy: 27 % of the interface's samples in the analysis's first 12 s at 1,000 hosts).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from statistics import NormalDist, median

EXACT_UP_TO = 8  # values on the smaller side for which U's exact distribution is used


def z_for(confidence: float) -> float:
    """The one-sided normal quantile for a confidence (0.99 -> 2.33)."""
    return NormalDist().inv_cdf(min(max(confidence, 0.5), 0.999999))


def wilson(successes: float, trials: float, confidence: float) -> tuple[float, float]:
    """(lower, upper) one-sided Wilson bounds of a proportion at ``confidence``."""
    if trials <= 0:
        return 0.0, 1.0
    p = min(max(successes / trials, 0.0), 1.0)
    z = z_for(confidence)
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)


def poisson(count: float, confidence: float) -> tuple[float, float]:
    """(lower, upper) bounds of a count's mean (normal approximation with a correction)."""
    z = z_for(confidence)
    low = max(0.0, count - z * math.sqrt(max(count, 0.0)) - z * z / 4)
    high = count + z * math.sqrt(count + 1) + z * z / 2
    return low, high


def mann_whitney_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """p-value of "a is stochastically greater than b" (one-sided Mann-Whitney U), as
    SciPy's ``mannwhitneyu(a, b, alternative="greater")`` (method "auto", continuity
    correction). Raises ValueError for an empty side or a NaN, as SciPy does."""
    n1, n2 = len(a), len(b)
    if not n1 or not n2:
        raise ValueError("both samples need a value")
    pooled = sorted([(float(v), 0) for v in a] + [(float(v), 1) for v in b])
    if any(math.isnan(v) for v, _ in pooled):
        raise ValueError("the samples must not hold NaN")
    rank_sum = 0.0  # of a's values, a tie's values each getting the mean of its ranks
    ties: list[int] = []
    below = 0  # values ranked before this group
    for _, group in itertools.groupby(pooled, key=operator.itemgetter(0)):
        sides = [side for _, side in group]
        rank_sum += (below + (len(sides) + 1) / 2) * sides.count(0)
        if len(sides) > 1:
            ties.append(len(sides))
        below += len(sides)
    u = rank_sum - n1 * (n1 + 1) / 2
    if (n1 > EXACT_UP_TO and n2 > EXACT_UP_TO) or ties:
        return _u_normal_sf(u, n1, n2, ties)
    return _u_exact_sf(round(u), n1, n2)


def _u_exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) with no ties: the ways to reach each U are the coefficients of the
    Gaussian binomial [n1 + n2 choose n1], built one factor at a time in whole numbers."""
    ways = [1]
    for k in range(1, n1 + 1):
        step = n2 + k
        grown = ways + [0] * step
        for j in range(len(grown) - 1, step - 1, -1):  # times (1 - q^(n2+k))
            grown[j] -= grown[j - step]
        for j in range(k, len(grown)):  # divided by (1 - q^k): exact at every step
            grown[j] += grown[j - k]
        ways = grown[: k * n2 + 1]
    return min(1.0, sum(ways[max(u, 0) :]) / math.comb(n1 + n2, n1))


def _u_normal_sf(u: float, n1: int, n2: int, ties: list[int]) -> float:
    """P(U >= u) by the normal approximation with the tie and continuity corrections."""
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties)
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every value the same: U is its mean, and no shift shows
        return 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return NormalDist().cdf(-z)


def shift(a: Sequence[float], b: Sequence[float], relative: bool) -> float:
    """The shift of medians: relative (0.2 = +20 %) or absolute."""
    ma, mb = median(a), median(b)
    if not relative:
        return ma - mb
    if mb == 0:
        return 0.0 if ma == 0 else math.copysign(math.inf, ma)
    return (ma - mb) / abs(mb)
