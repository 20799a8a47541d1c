"""Probes over SSH: one host's health check and metrics command, as a health sample."""

from __future__ import annotations

import time

from canarytui.config import Environment, render
from canarytui.events import HealthSample
from canarytui.metrics.series import parse_metrics
from canarytui.ssh import Fleet, SshError

METRICS_LIMIT = 8 * 1024 * 1024  # bytes of a metrics page read at most


async def probe(
    fleet: Fleet,
    env: Environment,
    name: str,
    *,
    deployment: int | None = None,
    wanted: set[str] | None = None,
) -> tuple[HealthSample, dict[str, str]]:
    """Run the health check (and the metrics command if any) on one host."""
    values = env.placeholders(name)
    started = time.monotonic()
    metrics: dict[str, float] = {}
    types: dict[str, str] = {}
    try:
        result = await fleet.run(name, render(env.health.check, values), env.health.timeout)
        latency = time.monotonic() - started
        ok = result.ok
        detail = (
            ""
            if ok
            else f"health check exited {result.exit_status}: " + result.output.strip()[-200:]
        )
        if env.health.metrics:
            m = await fleet.run(
                name, render(env.health.metrics, values), env.health.timeout, limit=METRICS_LIMIT
            )
            if m.ok and m.cut:
                detail = (detail + "; " if detail else "") + (
                    f"metrics output over {METRICS_LIMIT // 1024 // 1024} MiB: not read"
                )
            elif m.ok:
                try:
                    metrics, types = parse_metrics(m.stdout, wanted)
                except ValueError as exc:
                    detail = (detail + "; " if detail else "") + f"metrics unreadable: {exc}"
            else:
                detail = (detail + "; " if detail else "") + f"metrics exited {m.exit_status}"
    except SshError as exc:
        return HealthSample(
            host=name,
            ok=None,
            latency=time.monotonic() - started,
            detail=str(exc),
            deployment=deployment,
        ), {}
    return HealthSample(
        host=name, ok=ok, latency=latency, detail=detail, metrics=metrics, deployment=deployment
    ), types
