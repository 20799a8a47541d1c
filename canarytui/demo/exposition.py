"""The app's metrics page: the Prometheus text format exactly as ``prometheus_client`` writes it.

That is ``generate_latest()`` of an app that defines

    REQUESTS = Counter("http_requests", "...", ["method", "route", "code"])
    LATENCY = Histogram("http_request_duration_seconds", "...", ["route"], buckets=BUCKETS)
    IN_FLIGHT = Gauge("http_requests_in_flight", "...")
    INFO = Info("app", "...")

with the default registry's process and platform collectors and the ``_created`` series
turned off (``PROMETHEUS_DISABLE_CREATED_SERIES=True``): labels sorted by name, values
written as Go writes floats (``12.0``, ``1.234567e+06``). Every line's label part is
formatted once, at import; a page is then a join of prefixes and numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from canarytui.demo.traffic import BUCKETS, REQUEST_SERIES, ROUTES, Traffic

PYTHON_INFO = (
    'python_info{implementation="CPython",major="3",minor="11",patchlevel="9",version="3.11.9"}'
)


def go_float(value: float) -> str:
    """A number as prometheus_client writes it (its ``floatToGoString``)."""
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(float(value))
    dot = text.find(".")
    # Go switches to exponents sooner than Python: from 1e6 on.
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _count(n: int) -> str:
    """A count: ``12.0`` below a million (the usual case, without a float's repr)."""
    return f"{n}.0" if 0 <= n < 1_000_000 else go_float(n)


def label_value(value: str) -> str:
    """A label value escaped as the text format wants (backslash, quote, newline)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _family(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


_REQUESTS_HEAD = _family(
    "http_requests_total", "counter", "HTTP requests answered, by method, route and status code."
)
_REQUEST_PREFIXES = tuple(
    f'http_requests_total{{code="{code}",method="{method}",route="{route}"}} '
    for method, route, code in REQUEST_SERIES
)
_LATENCY_HEAD = _family(
    "http_request_duration_seconds", "histogram", "Time to answer an HTTP request, by route."
)
_BUCKET_PREFIXES = tuple(
    tuple(
        f'http_request_duration_seconds_bucket{{le="{go_float(bound)}",route="{route}"}} '
        for bound in (*BUCKETS, math.inf)
    )
    for route in ROUTES
)
_COUNT_PREFIXES = tuple(f'http_request_duration_seconds_count{{route="{r}"}} ' for r in ROUTES)
_SUM_PREFIXES = tuple(f'http_request_duration_seconds_sum{{route="{r}"}} ' for r in ROUTES)
_IN_FLIGHT_HEAD = _family(
    "http_requests_in_flight", "gauge", "HTTP requests being answered right now."
)
_INFO_HEAD = _family("app_info", "gauge", "The release the app runs.")
_PROCESS_HEADS = {
    name: _family(name, kind, help_text)
    for name, kind, help_text in (
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
        ),
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        ),
        ("process_open_fds", "gauge", "Number of open file descriptors."),
        ("process_max_fds", "gauge", "Maximum number of open file descriptors."),
    )
}
_PYTHON = _family("python_info", "gauge", "Python platform information") + PYTHON_INFO + " 1.0\n"


@dataclass(frozen=True)
class Process:
    """The process metrics of the app (prometheus_client's ``ProcessCollector``)."""

    start_time: float  # seconds since the epoch
    cpu_seconds: float
    resident_bytes: int
    virtual_bytes: int
    open_fds: int
    max_fds: int = 65536


def page(traffic: Traffic, process: Process, version: str, in_flight: int) -> str:
    """The whole page, as ``curl localhost:8000/metrics`` would print it."""
    heads = _PROCESS_HEADS
    out = [
        heads["process_virtual_memory_bytes"],
        f"process_virtual_memory_bytes {go_float(process.virtual_bytes)}\n",
        heads["process_resident_memory_bytes"],
        f"process_resident_memory_bytes {go_float(process.resident_bytes)}\n",
        heads["process_start_time_seconds"],
        f"process_start_time_seconds {go_float(process.start_time)}\n",
        heads["process_cpu_seconds_total"],
        f"process_cpu_seconds_total {go_float(process.cpu_seconds)}\n",
        heads["process_open_fds"],
        f"process_open_fds {_count(process.open_fds)}\n",
        heads["process_max_fds"],
        f"process_max_fds {_count(process.max_fds)}\n",
        _PYTHON,
        _REQUESTS_HEAD,
    ]
    for prefix, n in zip(_REQUEST_PREFIXES, traffic.requests, strict=True):
        out += (prefix, _count(n), "\n")
    out.append(_LATENCY_HEAD)
    for route in range(len(ROUTES)):
        cumulative = 0
        for prefix, n in zip(_BUCKET_PREFIXES[route], traffic.buckets[route], strict=True):
            cumulative += n
            out += (prefix, _count(cumulative), "\n")
        out += (_COUNT_PREFIXES[route], _count(cumulative), "\n")
        out += (_SUM_PREFIXES[route], go_float(traffic.sums[route]), "\n")
    out += (
        _IN_FLIGHT_HEAD,
        f"http_requests_in_flight {_count(in_flight)}\n",
        _INFO_HEAD,
        f'app_info{{version="{label_value(version)}"}} 1.0\n',
    )
    return "".join(out)
