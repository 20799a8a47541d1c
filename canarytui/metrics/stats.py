"""The statistics of the judge: how sure a failure is, so that noise never rolls back.

Proportions (an error ratio; the share of requests slower than a latency limit) get the
Wilson score interval; counts (traffic) a Poisson interval by normal approximation; shifts
of per-interval values the Mann-Whitney U test, from SciPy, imported only when a rule
asks for it (it is the reference implementation, with exact and tie-corrected p-values),
and then in a thread of its own as the analysis starts (``warm``): the import takes 0.6 s
on an idle 2-core machine and up to 2 s under a release's load, which on the event loop
would hold every host's commands, and the interface, that long.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from statistics import NormalDist, median

_warming: threading.Thread | None = None
_warming_lock = threading.Lock()


def warm() -> None:
    """Start importing SciPy's test in a thread now, once per process: by the time a
    statistical rule has its samples, the test is there and costs the loop nothing. A
    test asked for sooner waits for the import, as it would have without this."""
    global _warming
    with _warming_lock:
        if _warming is None:
            _warming = threading.Thread(target=_import, name="canarytui-scipy", daemon=True)
            _warming.start()


def _import() -> None:
    try:
        import scipy.stats  # noqa: F401
    except Exception:  # the test's own import says what is wrong, where it is used
        pass


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
    """p-value of "a is stochastically greater than b" (one-sided Mann-Whitney U)."""
    from scipy.stats import mannwhitneyu  # only when a statistical rule exists

    return float(mannwhitneyu(list(a), list(b), alternative="greater").pvalue)


def shift(a: Sequence[float], b: Sequence[float], relative: bool) -> float:
    """The shift of medians: relative (0.2 = +20 %) or absolute."""
    ma, mb = median(a), median(b)
    if not relative:
        return ma - mb
    if mb == 0:
        return 0.0 if ma == 0 else math.copysign(math.inf, ma)
    return (ma - mb) / abs(mb)
