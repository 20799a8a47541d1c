"""Metrics from a Prometheus server: one host's series at each probe, read as its page would be.

``health.prometheus`` replaces the ``health.metrics`` command: instead of reading a page
over SSH, each probe asks the server (its HTTP API, from the operator's machine) for the
series the rules read, restricted to the host's ``instance`` label, and turns the answer
into the very readings ``page.parse_page`` makes of a page. Everything after that is the
same judge: ``series`` takes counters' increases (a drop is a restart) and the buckets'
increases between probes, ``measure`` sums a window of them into a ratio of two counters'
increases, a plain counter's increase or a gauge's last value, and
``histogram_quantile`` of the summed buckets, and ``analysis`` tests them.

Why not one PromQL expression per rule (``sum(increase(SEL{instance=...}[window]))``,
``histogram_quantile(q, sum by (le) (increase(SEL_bucket{...}[window])))``)? Those give a
window's value and nothing else, while the judge needs more: per-interval values for the
Mann-Whitney rules, the canaries' own ``before`` samples, a window that starts when the
warm-up ends, and real counts behind a ratio or a quantile to tell a failure beyond doubt
from noise. ``increase()`` extrapolates to the window's edges, so its counts are fractions
that no binomial test can trust. Taking the counters as they stand at each probe gives
every one of these, with the same arithmetic for both sources, so a rule means the same
wherever its numbers come from (``canarytui analyze`` shows the same values). The price is
the server's resolution: a sample is as fresh as the last scrape, so the analysis interval
should be no shorter than the scrape interval.

One instant query per probe: every series of the picked names with the host's instance
(the selectors' matchers are applied here, as on a page, so diagnostics still see which
labels a metric has). ``instance`` and ``job``, the labels the server adds to whatever it
scrapes, are dropped, so a rule reads the same series from either source. Whether a plain
name is a counter comes from the server's metadata (cached a minute). A server that cannot
be reached, or answers an error, leaves the probe without a page and says why: every rule
then has no data, never a pass.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import math
import re
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from canarytui.config import Host
from canarytui.config.model import Prometheus
from canarytui.metrics.page import BUCKETS, NAMES_KEPT, Page, Pick, add_sample
from canarytui.textsafe import harmless

ANSWER_LIMIT = 8 * 1024 * 1024  # bytes of one answer read at most
SERIES_LIMIT = 100_000  # series of one answer taken at most
MESSAGE_LIMIT = 300  # characters of the server's own words quoted
CACHE_SECONDS = 60.0  # metric types and an instance's names are asked again after this
CACHE_LIMIT = 10_000
TARGET_LABELS = frozenset({"instance", "job"})
WORKERS = 8  # requests in flight at once (blocking urllib, in its own threads)
_COUNTERS = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_INSTANCE_RE = re.compile(r"(?<!\$)\{(host|address|port)\}")
_CHUNK = 65536


class PrometheusError(Exception):
    """The server could not be asked, or its answer was an error or unusable."""


def instance_of(template: str, host: Host) -> str:
    """The ``instance`` label of ``host``'s series (``{port}``: its SSH port, 22 if unset)."""
    values = {"host": host.name, "address": host.address, "port": str(host.port or 22)}
    return _INSTANCE_RE.sub(lambda m: values[m.group(1)], template)


def shown_url(url: str) -> str:
    """The URL as messages show it: without the user and password it may carry."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return harmless(f"{parts.scheme}://{host}{port}{parts.path}", 200)


def quoted(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def names_of(pick: Pick) -> tuple[str, ...]:
    """The sample names a pick may read: a histogram's buckets, or a name, its counter's
    ``_total`` or its histogram's ``_count``."""
    name = pick.selector.name
    if pick.kind == BUCKETS:
        return (f"{name}_bucket",)
    return (name, f"{name}_total", f"{name}_count")


def query_for(wanted: Iterable[Pick], instance: str) -> str:
    """The one instant query of a probe (``up`` too: whether the host is scraped at all)."""
    names = sorted({"up", *(n for pick in wanted for n in names_of(pick))})
    return '{__name__=~"' + "|".join(names) + '",instance=' + quoted(instance) + "}"


Series = tuple[str, dict[str, str], float]  # name, labels (target labels dropped), value


def to_page(series: Sequence[Series], wanted: Sequence[Pick], types: dict[str, str]) -> Page:
    """An answer's series -> the page the host would have given for ``wanted`` (pure).

    A name on its own is read as named; only when no series has it are its ``_total``
    (a counter's family) and ``_count`` (a histogram's) read, as on a page.
    """
    page = Page()
    present = {name for name, _, _ in series}
    by_name: dict[str, list[Pick]] = {}
    for pick in wanted:
        names = names_of(pick)
        if pick.kind != BUCKETS and pick.selector.name in present:
            names = names[:1]
        for name in names:
            by_name.setdefault(name, []).append(pick)
    for name, labels, value in series:
        if len(page.names) < NAMES_KEPT:
            page.names.add(name)
        if math.isnan(value):
            continue
        counter = name.endswith(_SUFFIXES) or types.get(name) in _COUNTERS
        for pick in by_name.get(name, []):
            add_sample(page, pick, name, labels, value, counter)
    return page


async def probe_page(
    cfg: Prometheus, host: Host, wanted: Sequence[Pick], timeout: float
) -> tuple[Page | None, str]:
    """The host's readings from the server, or None and why (a probe's detail)."""
    try:
        return await read(cfg.url, instance_of(cfg.instance, host), wanted, timeout), ""
    except PrometheusError as exc:
        return None, f"metrics from Prometheus {shown_url(cfg.url)}: {exc}"


async def read(url: str, instance: str, wanted: Sequence[Pick], timeout: float) -> Page:
    """Ask the server at ``url`` for ``wanted`` of one instance; PrometheusError says why not."""
    deadline = time.monotonic() + timeout
    query = query_for(wanted, instance)
    data = await _ask(url, "/api/v1/query", {"query": query, "timeout": f"{timeout:g}s"}, timeout)
    series = series_of(data)
    if not series:
        raise PrometheusError(
            f"no series has instance={quoted(harmless(instance, 200))}: is the host scraped, "
            "and does health.prometheus.instance give its instance label?"
        )
    up = [value for name, _, value in series if name == "up"]
    if up and all(value != 1 for value in up):
        raise PrometheusError(
            f"its last scrape of instance={quoted(harmless(instance, 200))} failed (up is 0)"
        )
    plain = {n for n, _, _ in series if not n.endswith(_SUFFIXES) and n != "up"}
    types = await _types(url, plain, deadline)
    page = to_page(series, wanted, types)
    if any(pick.key not in page.readings for pick in wanted):
        # A rule reads a metric the host does not have: its names, for "did you mean".
        for name in await _names(url, instance, deadline):
            if len(page.names) >= NAMES_KEPT:
                break
            page.names.add(name)
    return page


def series_of(data: Any) -> list[Series]:
    """The API's instant vector -> name, labels (target labels dropped) and value of each."""
    if not isinstance(data, dict) or data.get("resultType") != "vector":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise PrometheusError(f"expected an instant vector, got {harmless(str(kind), 40)}")
    result = data.get("result")
    if not isinstance(result, list):
        raise PrometheusError("the answer has no result list")
    if len(result) > SERIES_LIMIT:
        raise PrometheusError(f"{len(result)} series: more than {SERIES_LIMIT} for one host")
    out: list[Series] = []
    for item in result:
        try:
            metric, (_, text) = item["metric"], item["value"]
            labels = {str(k): str(v) for k, v in metric.items() if k not in TARGET_LABELS}
            name = labels.pop("__name__")
            out.append((name, labels, float(text)))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise PrometheusError("a series in the answer is not name, labels and value") from None
    return out


_cache: dict[tuple[str, ...], tuple[float, Any]] = {}


def _cached(key: tuple[str, ...]) -> Any:
    found = _cache.get(key)
    return found[1] if found is not None and found[0] > time.monotonic() else None


def _remember(key: tuple[str, ...], value: Any) -> None:
    if len(_cache) >= CACHE_LIMIT:
        _cache.clear()
    _cache[key] = (time.monotonic() + CACHE_SECONDS, value)


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


async def _types(url: str, names: Iterable[str], deadline: float) -> dict[str, str]:
    """The metric types the server knows of ``names`` (unknown: left out, read as gauges)."""
    out: dict[str, str] = {}
    for name in sorted(names):
        found = _cached(("type", url, name))
        if found is None:
            params = {"metric": name, "limit": "1"}
            try:
                data = await _ask(url, "/api/v1/metadata", params, _left(deadline))
            except PrometheusError:
                continue  # the values were read; only their kind is unknown this time
            entries = data.get(name) if isinstance(data, dict) else None
            first = entries[0] if isinstance(entries, list) and entries else {}
            found = str(first.get("type", "")) if isinstance(first, dict) else ""
            _remember(("type", url, name), found)
        if found:
            out[name] = found
    return out


async def _names(url: str, instance: str, deadline: float) -> list[str]:
    """Every metric name the server has for the instance (bounded; none if it will not say)."""
    found = _cached(("names", url, instance))
    if found is None:
        match = "{instance=" + quoted(instance) + "}"
        try:
            path = "/api/v1/label/__name__/values"
            data = await _ask(url, path, {"match[]": match}, _left(deadline))
        except PrometheusError:
            return []
        found = [str(n) for n in data[:NAMES_KEPT]] if isinstance(data, list) else []
        _remember(("names", url, instance), found)
    return list(found)


_pool: ThreadPoolExecutor | None = None


async def _ask(url: str, path: str, params: dict[str, str], timeout: float) -> Any:
    """One GET of the server's API: its ``data``, or PrometheusError with its own words."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="canarytui-prometheus")
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_pool, _fetch, url, path, params, timeout)
    try:
        async with asyncio.timeout(timeout + 0.5):
            status, body = await future
    except TimeoutError:
        raise PrometheusError(f"no answer within {timeout:g}s") from None
    return _answer(status, body)


def _fetch(url: str, path: str, params: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """The blocking request (in a worker thread): status and body, read within ``timeout``.

    The HTTP client is imported here, on the first question: it brings ``email`` and
    ``http`` with it (~15 ms), which a UI with no Prometheus source never needs."""
    import http.client
    import urllib.error
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    target = urllib.parse.urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path.rstrip("/") + path,
            urllib.parse.urlencode(params),
            "",
        )
    )
    request = urllib.request.Request(target, headers={"Accept": "application/json"})
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    # The environment's proxies are used as any HTTP client would, but never for loopback.
    proxies = urllib.request.ProxyHandler({} if _loopback(parts.hostname) else None)
    opener = urllib.request.build_opener(proxies)
    deadline = time.monotonic() + timeout
    try:
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, _body(response, deadline)
        except urllib.error.HTTPError as exc:
            return exc.code, _body(exc, deadline) if exc.fp is not None else b""
    except PrometheusError:
        raise
    except TimeoutError:
        raise PrometheusError(f"no answer within {timeout:g}s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise PrometheusError(f"no answer within {timeout:g}s") from None
        raise PrometheusError(f"cannot ask it: {_said(exc.reason)}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise PrometheusError(f"cannot ask it: {_said(exc)}") from None


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _body(response: Any, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(_CHUNK):
        size += len(chunk)
        if size > ANSWER_LIMIT:
            raise PrometheusError(f"an answer over {ANSWER_LIMIT // 1024 // 1024} MiB: not read")
        if time.monotonic() > deadline:
            raise PrometheusError("the answer did not arrive in time")
        chunks.append(chunk)
    return b"".join(chunks)


def _said(what: object) -> str:
    text = str(what) or type(what).__name__
    return harmless(text, MESSAGE_LIMIT)


def _answer(status: int, body: bytes) -> Any:
    """The API's envelope: ``data`` on success; the server's error otherwise."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        envelope = None
    if not isinstance(envelope, dict) or envelope.get("status") not in ("success", "error"):
        start = body[:MESSAGE_LIMIT].decode("utf-8", "replace").strip()
        said = f": {harmless(start, MESSAGE_LIMIT)}" if start else ""
        raise PrometheusError(f"HTTP {status}, not an answer of the Prometheus API{said}")
    if envelope["status"] == "error" or status >= 400:
        kind = _said(envelope.get("errorType") or "error")
        said = _said(envelope.get("error"))
        raise PrometheusError(f"the server answered {status}: {kind}: {said}")
    return envelope.get("data")
