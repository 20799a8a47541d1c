"""Analysis quality: how often the canary analysis fails a good release, catches a bad one,
and how fast it says so. Measured over simulated canaries, never asserted.

    python benches/analysis_quality.py --runs 200 --seed 1

Every run simulates one canary and a baseline of 10 hosts serving Poisson traffic, probed
every ``interval`` through a 30 s warm-up and the ``duration`` window, and feeds the probes
to the REAL analysis (``canarytui.metrics.run.AnalysisRun``: the judge, the Wilson and
Poisson bounds, SciPy's Mann-Whitney, early failure), once per column of the table, all on
the same traffic (paired: the columns differ only by their rules). Simulated time is driven
here (``HealthSample.at`` and ``AnalysisRun.check(now)``); nothing goes over SSH. Almost all
of the run time is the analysis' own code (``--profile`` shows it).

Columns (``--threshold``, ``--mann-whitney``, repeatable): ``thr E/P@C`` is DESIGN.md's
threshold rules: error-ratio (``max: 0.05``, ``max_vs_baseline: E``), p99-latency
(``quantile: 0.99``, ``max_vs_baseline: P``), all at ``confidence: C``; ``MW +I@C`` is the
statistical variant: ``compare: mann-whitney`` on the error ratio and on p99,
``max_increase: I``. Every column also has the traffic guard (``min_vs_baseline: 0.5``).
The default columns are DESIGN.md's example (E = 2: it cannot catch a release at exactly
2x, the limit itself) and the tuned threshold (E = 1.25), then max_increase 20 % (the
example's) and 30 % (tuned: fewer inconclusive verdicts, no good release failed).
P = 1.3: with the default buckets, a p99 near 225 ms is interpolated inside the 100-250 ms
bucket, so a host whose true p99 is 1.2x the baseline's already reads about 1.3x (a higher
P would miss some x1.5 canaries, a lower one fail good hosts a little slower than the rest).

The probes' ``metrics`` are built directly in the format ``parse_page`` produces (reading
key -> {series key: cumulative value}), for speed. Before anything is measured, one host's
state is checked three ways: a real ``prometheus_client`` registry fed the same requests,
rendered by ``generate_latest`` and read by ``parse_page``; the Prometheus text this bench
renders, read by ``parse_page``; and the direct build: all three must be equal. With
``--pages`` every probe goes through the text and ``parse_page`` (slower, same results).

The simulated service (each a flag; the spread drives the false-fail rate):
  * traffic: Poisson, each host's rate drawn uniformly in ``--rps`` (50-100 requests/s);
  * 5xx: a fleet error ratio of ``--error`` (1 %); each host's own ratio is that times
    a log-normal factor of sigma ``--error-spread`` (0.10: two hosts in three within
    -10 %..+11 % of the fleet's, one in a hundred beyond -23 %..+29 %), and each
    interval's ratio varies again by a log-normal of sigma ``--jitter`` (0.10: errors come
    in small bursts, not as a pure binomial);
  * latency: log-normal, median ``--median`` (50 ms), shape ``--shape`` (0.65: p99 = 4.5x
    the median, about 225 ms), each host's median times a log-normal of sigma
    ``--latency-spread`` (0.05), each interval's again by ``--jitter`` / 2;
    observed into prometheus_client's default histogram buckets.
A comparison of one host with the others cannot tell the release from the host: a twice
worse release on a host 25 % better than the fleet looks like 1.5x, and a good host 30 %
worse than the fleet looks like 1.3x. Catching 99 % of x2 while failing at most 1 % of good
releases needs 2 * exp(-2.33 s) > exp(2.33 s), i.e. a spread s below 0.149 even with
infinite traffic (s < 0.087 for p99 x 1.5); the spreads above are chosen well inside, and
the flags show what larger ones cost.

Cases: a good release (the canary drawn like any host); twice the error ratio (the canary's
own ratio x2); p99 x 1.5 (every request 1.5x slower); p99 x 1.5 in the tail only (median
unchanged, the log-normal's shape widened so that its p99 is 1.5x).
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import statistics
import sys
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from canarytui.config import Analysis, Change, Rule
from canarytui.events import HealthSample, Verdict
from canarytui.metrics import analysis as an
from canarytui.metrics.page import parse_page, picks, reading_key
from canarytui.metrics.run import AnalysisRun

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LE = [*(repr(float(b)) for b in BUCKETS), "inf"]  # how parse_page keys a bucket's bound
ROUTE = "/api/cart"
Z99 = 2.3263478740408408  # the normal's 0.99 quantile


# -- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One set of rules judged on every simulated canary (a column of the table)."""

    name: str
    rules: tuple[Rule, ...]


def threshold_column(spec: str, args: argparse.Namespace) -> Column:
    """``E[/P][@C]``: error-ratio max_vs_baseline E, p99 max_vs_baseline P, confidence C."""
    body, _, conf_text = spec.partition("@")
    error_text, _, p99_text = body.partition("/")
    conf = float(conf_text) if conf_text else args.confidence
    p99 = float(p99_text) if p99_text else args.p99_factor
    rules = (
        Rule(
            name="error-ratio",
            metric='http_requests_total{code=~"5.."}',
            per="http_requests_total",
            max=0.05,
            max_vs_baseline=float(error_text),
            min_count=args.min_count,
            confidence=conf,
        ),
        Rule(
            name="p99-latency",
            metric='http_request_duration_seconds{route!="/health"}',
            quantile=0.99,
            max_vs_baseline=p99,
            min_count=args.min_count,
            confidence=conf,
        ),
        traffic_rule(args),
    )
    return Column(f"thr {float(error_text):g}x/{p99:g}x@{conf:g}", rules)


def statistical_column(spec: str, args: argparse.Namespace) -> Column:
    """``I[@C]``: Mann-Whitney on the error ratio and on p99, max_increase I %, confidence C."""
    increase_text, _, conf_text = spec.partition("@")
    conf = float(conf_text) if conf_text else args.mw_confidence
    increase = Change(float(increase_text), True)
    rules = (
        Rule(
            name="error-ratio-shift",
            metric='http_requests_total{code=~"5.."}',
            per="http_requests_total",
            compare="mann-whitney",
            max_increase=increase,
            confidence=conf,
        ),
        Rule(
            name="p99-shift",
            metric='http_request_duration_seconds{route!="/health"}',
            quantile=0.99,
            compare="mann-whitney",
            max_increase=increase,
            confidence=conf,
        ),
        traffic_rule(args),
    )
    return Column(f"MW +{increase}@{conf:g}", rules)


def traffic_rule(args: argparse.Namespace) -> Rule:
    """The traffic guard, in every column (a canary without traffic proves nothing)."""
    return Rule(
        name="traffic",
        metric="http_requests_total",
        min_vs_baseline=0.5,
        min_count=args.min_count,
        confidence=args.confidence,
    )


# -- the simulated fleet -----------------------------------------------------------------------


@dataclass
class Fleet:
    """Each host's true behaviour and its counters (cumulative, as a page shows them)."""

    names: list[str]
    rate: np.ndarray  # requests/s
    error: np.ndarray  # true 5xx ratio
    median: np.ndarray  # latency median (s)
    shape: np.ndarray  # log-normal sigma
    ok: np.ndarray = field(init=False)
    errors: np.ndarray = field(init=False)
    buckets: np.ndarray = field(init=False)  # cumulative observations per bucket (+Inf last)
    latency_sum: np.ndarray = field(init=False)
    fresh: np.ndarray = field(init=False)  # restarted at t=0 (the canary): series born on use

    def __post_init__(self) -> None:
        n = len(self.names)
        self.ok = np.zeros(n)
        self.errors = np.zeros(n)
        self.buckets = np.zeros((n, len(LE)))
        self.latency_sum = np.zeros(n)
        self.fresh = np.zeros(n, dtype=bool)


def bucket_shares(median: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """P(latency <= bound) for each host and bucket (the +Inf bucket last, 1)."""
    z = (np.log(BUCKETS)[None, :] - np.log(median)[:, None]) / shape[:, None]
    cdf = ndtr(z)
    return np.concatenate([cdf, np.ones((len(median), 1))], axis=1)


def make_fleet(rng: np.random.Generator, args: argparse.Namespace, case: str) -> Fleet:
    n = 1 + args.baseline
    low, high = args.rps
    fleet = Fleet(
        names=["canary", *(f"web-{i:02d}" for i in range(1, n))],
        rate=rng.uniform(low, high, n),
        error=args.error * np.exp(rng.normal(0.0, args.error_spread, n)),
        median=args.median * np.exp(rng.normal(0.0, args.latency_spread, n)),
        shape=np.full(n, args.shape),
    )
    if case == "errors x2":
        fleet.error[0] *= 2
    elif case == "p99 x1.5":
        fleet.median[0] *= 1.5
    elif case == "p99 x1.5 tail":
        fleet.shape[0] += math.log(1.5) / Z99
    # The baseline hosts have been up for a while (a day of traffic on their counters);
    # the canary restarted at t=0 with the release.
    up = rng.uniform(3600, 86400, n) * fleet.rate
    up[0] = 0.0
    fleet.fresh[0] = True
    fleet.errors = np.round(up * fleet.error)
    fleet.ok = np.round(up) - fleet.errors
    fleet.buckets = np.round(up[:, None] * bucket_shares(fleet.median, fleet.shape))
    fleet.latency_sum = up * fleet.median * math.exp(args.shape**2 / 2)
    return fleet


def serve(fleet: Fleet, rng: np.random.Generator, seconds: float, jitter: float) -> None:
    """One interval of traffic on every host."""
    n = len(fleet.names)
    requests = rng.poisson(fleet.rate * seconds)
    ratio = np.clip(fleet.error * np.exp(rng.normal(0.0, jitter, n)), 0.0, 1.0)
    errors = rng.binomial(requests, ratio)
    median = fleet.median * np.exp(rng.normal(0.0, jitter / 2, n))
    cdf = bucket_shares(median, fleet.shape)
    shares = np.diff(cdf, axis=1, prepend=0.0)
    shares = np.clip(shares, 0.0, None)
    shares /= shares.sum(axis=1, keepdims=True)
    counts = rng.multinomial(requests, shares)
    fleet.errors += errors
    fleet.ok += requests - errors
    fleet.buckets += np.cumsum(counts, axis=1)
    fleet.latency_sum += requests * median * np.exp(fleet.shape**2 / 2)


# -- probes: what parse_page would have read ---------------------------------------------------


@dataclass(frozen=True)
class Keys:
    errors: str  # values:http_requests_total{code=~"5.."}
    requests: str  # values:http_requests_total
    latency: str  # buckets:http_request_duration_seconds{route!="/health"}


def keys_of(rules: Sequence[Rule]) -> Keys:
    by_name = {r.name: r for r in rules}
    return Keys(
        errors=reading_key(by_name["error-ratio"]),
        requests=reading_key(by_name["error-ratio"], per=True),
        latency=reading_key(by_name["p99-latency"]),
    )


OK_SERIES = f'c:http_requests_total{{code="200",method="GET",route="{ROUTE}"}}'
ERR_SERIES = f'c:http_requests_total{{code="500",method="GET",route="{ROUTE}"}}'
BUCKET_SERIES = [f'{le}|http_request_duration_seconds_bucket{{route="{ROUTE}"}}' for le in LE]


def readings(fleet: Fleet, i: int, keys: Keys) -> dict[str, dict[str, float]]:
    """Host ``i``'s readings, exactly as parse_page gives them for the rules' picks."""
    ok, err = float(fleet.ok[i]), float(fleet.errors[i])
    out: dict[str, dict[str, float]] = {}
    fresh = bool(fleet.fresh[i])
    if fresh and ok + err == 0:
        return out  # labelled series are born on first use: nothing on the page yet
    requests: dict[str, float] = {}
    if ok or not fresh:
        requests[OK_SERIES] = ok
    if err or not fresh:
        requests[ERR_SERIES] = err
    out[keys.requests] = requests
    out[keys.errors] = {ERR_SERIES: err} if ERR_SERIES in requests else {}
    out[keys.latency] = dict(zip(BUCKET_SERIES, fleet.buckets[i].tolist(), strict=True))
    return out


def page_text(fleet: Fleet, i: int) -> str:
    """Host ``i``'s metrics page, in generate_latest's format."""
    ok, err = float(fleet.ok[i]), float(fleet.errors[i])
    fresh = bool(fleet.fresh[i])
    lines = [
        "# HELP http_requests_total Requests.",
        "# TYPE http_requests_total counter",
    ]
    for code, value in (("200", ok), ("500", err)):
        if value or not fresh:
            labels = f'code="{code}",method="GET",route="{ROUTE}"'
            lines.append(f"http_requests_total{{{labels}}} {value!r}")
            lines.append(f"http_requests_created{{{labels}}} 1.7e+09")
    lines += [
        "# HELP http_request_duration_seconds Latency.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    if ok + err or not fresh:
        for le, value in zip(LE, fleet.buckets[i].tolist(), strict=True):
            bound = "+Inf" if le == "inf" else le
            lines.append(
                f'http_request_duration_seconds_bucket{{le="{bound}",route="{ROUTE}"}} {value!r}'
            )
        total = float(fleet.buckets[i][-1])
        lines.append(f'http_request_duration_seconds_count{{route="{ROUTE}"}} {total!r}')
        lines.append(
            f'http_request_duration_seconds_sum{{route="{ROUTE}"}} {float(fleet.latency_sum[i])!r}'
        )
        lines.append(f'http_request_duration_seconds_created{{route="{ROUTE}"}} 1.7e+09')
    lines += [
        "# HELP process_open_fds fds",
        "# TYPE process_open_fds gauge",
        "process_open_fds 12.0",
    ]
    return "\n".join(lines) + "\n"


def self_check(rules: Sequence[Rule], seed: int) -> None:
    """The direct build, this bench's page and a real prometheus_client page agree."""
    from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
    from prometheus_client import Counter as PromCounter

    wanted = picks(rules)
    keys = keys_of(rules)
    registry = CollectorRegistry()
    requests = PromCounter(
        "http_requests", "Requests.", ["method", "route", "code"], registry=registry
    )
    latency = Histogram("http_request_duration_seconds", "Latency.", ["route"], registry=registry)
    Gauge("process_open_fds", "fds", registry=registry).set(12)
    rng = np.random.default_rng(seed)
    fleet = Fleet(["canary"], np.array([80.0]), np.array([0.01]), np.array([0.05]), np.ones(1))
    fleet.fresh[0] = True
    for step in range(4):
        page = parse_page(generate_latest(registry).decode(), wanted).readings
        mine = parse_page(page_text(fleet, 0), wanted).readings
        direct = readings(fleet, 0, keys)
        if not page == mine == direct:
            raise SystemExit(f"self-check failed at step {step}:\n{page}\n{mine}\n{direct}")
        # Serve a few hundred requests on both: the same latencies, the same outcomes.
        values = rng.lognormal(math.log(0.05), 0.65, 300 + 100 * step)
        failed = rng.random(len(values)) < 0.02 * step
        for v, bad in zip(values, failed, strict=True):
            requests.labels("GET", ROUTE, "500" if bad else "200").inc()
            latency.labels(ROUTE).observe(float(v))
        fleet.errors += failed.sum()
        fleet.ok += len(values) - failed.sum()
        per_bucket = np.bincount(np.searchsorted(BUCKETS, values, side="left"), minlength=len(LE))
        fleet.buckets[0] += np.cumsum(per_bucket)
        fleet.latency_sum[0] += values.sum()


# -- one simulated canary ----------------------------------------------------------------------


@dataclass
class Outcome:
    verdict: Verdict
    stopped: float  # simulated seconds since the analysis started
    early: bool  # stopped before the window's end
    states: dict[str, str]  # rule -> the canary's final state
    truth: tuple[float, float]  # the canary's true error ratio and p99, / the baseline's mean


def simulate(
    case: str, seed: int, args: argparse.Namespace, columns: Sequence[Column]
) -> dict[str, Outcome]:
    """One canary and its baseline, judged by every column on the same traffic."""
    rng = np.random.default_rng(seed)
    fleet = make_fleet(rng, args, case)
    keys = keys_of(columns[0].rules)
    wanted = picks([r for c in columns for r in c.rules])
    runs = {
        column.name: AnalysisRun(
            Analysis(
                duration=args.duration,
                warmup=args.warmup,
                interval=args.interval,
                baseline=args.baseline,
                early_fail=not args.no_early_fail,
                rules=column.rules,
            ),
            fleet.names[:1],
            fleet.names[1:],
            started=0.0,
        )
        for column in columns
    }
    p99 = fleet.median * np.exp(Z99 * fleet.shape)
    truth = (float(fleet.error[0] / fleet.error[1:].mean()), float(p99[0] / p99[1:].mean()))
    out: dict[str, Outcome] = {}
    now = 0.0
    while len(out) < len(runs):
        samples = []
        for i, host in enumerate(fleet.names):
            if args.pages:
                metrics = parse_page(page_text(fleet, i), wanted).readings
            else:
                metrics = readings(fleet, i, keys)
            samples.append(HealthSample(host=host, ok=True, latency=0.01, metrics=metrics, at=now))
        for name, run in runs.items():
            if name in out:
                continue
            for sample in samples:
                run.add(sample)
            if run.check(now):
                verdict, _, measurements = run.finish()
                states = {m.rule: m.state for m in measurements if m.host == "canary"}
                out[name] = Outcome(verdict, now, now < run.ends, states, truth)
        serve(fleet, rng, args.interval, args.jitter)
        now += args.interval
    return out


# -- the report --------------------------------------------------------------------------------

CASES = ("good", "errors x2", "p99 x1.5", "p99 x1.5 tail")


def share(outcomes: Sequence[Outcome], test: Callable[[Outcome], bool]) -> str:
    k = sum(1 for o in outcomes if test(o))
    return f"{k:>3}/{len(outcomes)} {100 * k / len(outcomes):5.1f} %"


def fail_times(outcomes: Sequence[Outcome], warmup: float) -> str:
    """Median and p90 of the judged time to a fail verdict (since the warm-up ended)."""
    times = sorted(o.stopped - warmup for o in outcomes if o.verdict is Verdict.FAIL)
    if not times:
        return "-"
    p90 = times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)]
    return f"{statistics.median(times):.0f} / {p90:.0f} s"


def why(outcomes: Sequence[Outcome], verdict: Verdict) -> str:
    """Which rules made these verdicts (fail: the failed ones; else the undecided ones)."""
    tally: Tally[str] = Tally()
    for o in outcomes:
        if o.verdict is not verdict:
            continue
        for rule, state in o.states.items():
            if state != "pass":
                tally[f"{rule} {state}"] += 1
    return ", ".join(f"{k} {v}" for k, v in tally.most_common()) or "-"


def truths(outcomes: Sequence[Outcome]) -> str:
    """The canaries' true error ratio and p99 against the baseline hosts' mean."""
    shown = ", ".join(f"{e:.2f}/{p:.2f}" for e, p in sorted(o.truth for o in outcomes)[:8])
    return f"  their true error ratio/p99 vs the baseline's: {shown}"


def report(results: dict[str, dict[str, list[Outcome]]], args: argparse.Namespace) -> None:
    sets = list(next(iter(results.values())))
    rows: list[tuple[str, list[str], str]] = []
    for case in CASES:
        if case not in results:
            continue
        by_set = results[case]
        if case == "good":
            rows.append(
                (
                    "good: failed",
                    [share(by_set[s], lambda o: o.verdict is Verdict.FAIL) for s in sets],
                    "<= 1 %",
                )
            )
            rows.append(
                (
                    "good: inconclusive",
                    [share(by_set[s], lambda o: o.verdict is Verdict.INCONCLUSIVE) for s in sets],
                    "(friction)",
                )
            )
            continue
        rows.append(
            (
                f"{case}: caught",
                [share(by_set[s], lambda o: o.verdict is Verdict.FAIL) for s in sets],
                ">= 99 %",
            )
        )
        rows.append(
            (
                f"{case}: time to fail, median/p90",
                [fail_times(by_set[s], args.warmup) for s in sets],
                f"<= {args.duration / 3:.0f} s",
            )
        )
    width = max(len(r[0]) for r in rows) + 1
    cell = max(17, *(len(s) + 2 for s in sets))
    print(f"\n{'':{width}}" + "".join(f"{s:>{cell}}" for s in sets) + f"{'target':>11}")
    for label, cells, target in rows:
        print(f"{label:{width}}" + "".join(f"{c:>{cell}}" for c in cells) + f"{target:>11}")
    print(
        f"\n(time to fail: simulated seconds of judging, since the {args.warmup:g} s warm-up "
        f"ended; the operator waits {args.warmup:g} s more; one probe every {args.interval:g} s)"
    )
    print("\nwhy (rule state on the canary: count of runs):")
    for case in CASES:
        for s in sets:
            outcomes = results.get(case, {}).get(s)
            if not outcomes:
                continue
            if case == "good":
                print(f"  {case:14} {s:22} failed: {why(outcomes, Verdict.FAIL)}")
                failed = [o for o in outcomes if o.verdict is Verdict.FAIL]
                if failed:
                    print(f"  {'':14} {'':22} {truths(failed)}")
                print(f"  {'':14} {'':22} inconclusive: {why(outcomes, Verdict.INCONCLUSIVE)}")
            else:
                missed = [o for o in outcomes if o.verdict is not Verdict.FAIL]
                if missed:
                    tally = Tally(o.verdict.value for o in missed)
                    print(
                        f"  {case:14} {s:22} missed: {dict(tally)}; "
                        f"undecided: {why(missed, Verdict.INCONCLUSIVE)}"
                    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="simulated canaries per case")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cases", default=",".join(CASES), help="comma list of: " + ", ".join(CASES)
    )
    parser.add_argument("--pages", action="store_true", help="every probe through parse_page")
    parser.add_argument("--profile", action="store_true", help="cProfile: where the time goes")
    sim = parser.add_argument_group("the simulated service")
    sim.add_argument("--rps", type=float, nargs=2, default=(50.0, 100.0), metavar=("LOW", "HIGH"))
    sim.add_argument("--error", type=float, default=0.01, help="fleet 5xx ratio")
    sim.add_argument("--error-spread", type=float, default=0.10, help="host-to-host, log sigma")
    sim.add_argument("--median", type=float, default=0.05, help="latency median, seconds")
    sim.add_argument("--shape", type=float, default=0.65, help="latency log-normal sigma")
    sim.add_argument("--latency-spread", type=float, default=0.05, help="host-to-host, log sigma")
    sim.add_argument("--jitter", type=float, default=0.10, help="interval-to-interval, log sigma")
    sim.add_argument("--baseline", type=int, default=10)
    sim.add_argument("--interval", type=float, default=10.0)
    sim.add_argument("--duration", type=float, default=300.0)
    sim.add_argument("--warmup", type=float, default=30.0)
    rules = parser.add_argument_group("the rules and the judge")
    rules.add_argument(
        "--threshold",
        action="append",
        metavar="E[/P][@C]",
        help="a column of threshold rules: error-ratio max_vs_baseline E, p99 max_vs_baseline P,"
        " confidence C (repeatable; default: 2 and 1.25, i.e. DESIGN.md's example and tuned)",
    )
    rules.add_argument(
        "--mann-whitney",
        action="append",
        metavar="I[@C]",
        help="a column of statistical rules: max_increase I %%, confidence C (repeatable;"
        " default: 20 and 30)",
    )
    rules.add_argument("--p99-factor", type=float, default=1.3, help="default P")
    rules.add_argument("--confidence", type=float, default=Rule.confidence, help="default C")
    rules.add_argument("--mw-confidence", type=float, default=0.98, help="default C of MW")
    rules.add_argument("--min-count", type=int, default=100)
    rules.add_argument("--early-strictness", type=float, default=an.EARLY_STRICTNESS)
    rules.add_argument("--min-intervals", type=int, default=an.MIN_INTERVALS)
    rules.add_argument("--no-early-fail", action="store_true")
    args = parser.parse_args()

    # Variants of the judge's constants, for this process only.
    an.EARLY_STRICTNESS = args.early_strictness
    an.MIN_INTERVALS = args.min_intervals
    columns = [threshold_column(spec, args) for spec in args.threshold or ["2", "1.25"]]
    columns += [statistical_column(spec, args) for spec in args.mann_whitney or ["20", "30"]]
    self_check(columns[0].rules, args.seed)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")

    low, high = args.rps
    print(
        f"{args.runs} runs per case, seed {args.seed}; 1 canary vs {args.baseline} baseline hosts; "
        f"probe every {args.interval:g} s, warm-up {args.warmup:g} s, duration {args.duration:g} s"
        f", early_fail {'off' if args.no_early_fail else 'on'}"
        f"{', every probe through parse_page' if args.pages else ''}"
    )
    print(
        f"service: {low:g}-{high:g} req/s per host (Poisson), 5xx {args.error:g} "
        f"(host spread {args.error_spread:g}, jitter {args.jitter:g}), latency log-normal median "
        f"{1000 * args.median:g} ms, p99 {math.exp(Z99 * args.shape):.2f}x median "
        f"(host spread {args.latency_spread:g}, jitter {args.jitter / 2:g})"
    )
    print(
        "columns: thr E/P@C = error-ratio max 0.05 and <= E x baseline, p99 <= P x baseline;"
        " MW +I@C = Mann-Whitney on the per-interval error ratio and p99, max_increase I;"
        f" every column with traffic >= 0.5x baseline; min_count {args.min_count}"
    )
    print(
        f"judge: EARLY_STRICTNESS {an.EARLY_STRICTNESS:g}, MIN_INTERVALS {an.MIN_INTERVALS}",
        flush=True,
    )

    started = time.perf_counter()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    results: dict[str, dict[str, list[Outcome]]] = {}
    for index, case in enumerate(cases):
        t0 = time.perf_counter()
        per_set: dict[str, list[Outcome]] = {c.name: [] for c in columns}
        for run in range(args.runs):
            seed = args.seed * 1_000_003 + CASES.index(case) * 100_003 + run
            for name, outcome in simulate(case, seed, args, columns).items():
                per_set[name].append(outcome)
        results[case] = per_set
        print(
            f"  [{index + 1}/{len(cases)}] {case}: {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    report(results, args)
    print(f"\nrun time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
