"""Probes: one host's health check over SSH and its metrics (command or Prometheus), as a sample."""

from __future__ import annotations

import time
from dataclasses import dataclass

from canarytui.config import Environment, render
from canarytui.events import HealthSample
from canarytui.metrics import prometheus
from canarytui.metrics.page import Page, Pick, parse_page
from canarytui.ssh import Fleet, SshError

METRICS_LIMIT = 8 * 1024 * 1024  # bytes of a metrics page read at most


@dataclass(frozen=True)
class Probe:
    """A probe's sample, and the page it read (for diagnostics; None without one)."""

    sample: HealthSample
    page: Page | None = None


async def probe(
    fleet: Fleet,
    env: Environment,
    name: str,
    *,
    deployment: int | None = None,
    wanted: list[Pick] | None = None,
) -> Probe:
    """Run the health check (and the metrics command if any) on one host; with
    ``health.prometheus``, its metrics come from that server instead."""
    values = env.placeholders(name)
    started = time.monotonic()
    page: Page | None = None
    try:
        result = await fleet.run(name, render(env.health.check, values), env.health.timeout)
        # The host's answer, from when the check was sent: not the wait for a free
        # ``max_parallel`` slot, which a busy deployment makes seconds long.
        latency = result.duration
        ok = result.ok
        details = (
            []
            if ok
            else [f"health check exited {result.exit_status}: " + result.output.strip()[-200:]]
        )
        if env.health.prometheus is not None:
            page, why = await prometheus.probe_page(
                env.health.prometheus, env.host(name), wanted or [], env.health.timeout
            )
            if why:
                details.append(why)
        elif env.health.metrics:
            m = await fleet.run(
                name, render(env.health.metrics, values), env.health.timeout, limit=METRICS_LIMIT
            )
            if not m.ok:
                details.append(f"metrics exited {m.exit_status}")
            elif m.cut:
                details.append(f"metrics output over {METRICS_LIMIT // 1024 // 1024} MiB: not read")
            else:
                try:
                    page = parse_page(m.stdout, wanted or [])
                except ValueError as exc:
                    details.append(f"metrics unreadable: {exc}")
    except SshError as exc:
        sample = HealthSample(
            host=name,
            ok=None,
            latency=time.monotonic() - started,
            detail=str(exc),
            deployment=deployment,
        )
        return Probe(sample)
    sample = HealthSample(
        host=name,
        ok=ok,
        latency=latency,
        detail="; ".join(details),
        metrics=page.readings if page is not None else {},
        deployment=deployment,
    )
    return Probe(sample, page)
