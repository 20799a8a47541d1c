"""Probes: one host's health check over SSH and its metrics (command or Prometheus), as a sample."""

from __future__ import annotations

import time
from dataclasses import dataclass

from canarytui.config import Environment, render
from canarytui.events import HealthSample
from canarytui.metrics import prometheus
from canarytui.metrics.page import Page, Pick, parse_page
from canarytui.ssh import CommandResult, Fleet, SshError, without_host

METRICS_LIMIT = 8 * 1024 * 1024  # bytes of a metrics page read at most


@dataclass(frozen=True)
class Probe:
    """A probe's sample, and the page it read (for diagnostics; None without one); with
    ``also``, that command's result (None if it did not end); ``error``: why the host
    gave no answer at all."""

    sample: HealthSample
    page: Page | None = None
    also: CommandResult | None = None
    error: SshError | None = None


async def probe(
    fleet: Fleet,
    env: Environment,
    name: str,
    *,
    deployment: int | None = None,
    wanted: list[Pick] | None = None,
    also: str | None = None,
) -> Probe:
    """Run the health check (and the metrics command if any) on one host; with
    ``health.prometheus``, its metrics come from that server instead.

    The check and the metrics command go as one script, one round trip (the check alone,
    as a plain command): the metrics are read whatever the check said (a failing release's
    error ratio is what the rules judge), and a metrics command that fails or times out
    leaves the check's answer as it was. ``also``: one more command in the same script,
    last (the UI's refresh at rest asks the host's version and lock so)."""
    values = env.placeholders(name)
    started = time.monotonic()
    timeout = env.health.timeout
    commands: list[tuple[str, float | None]] = [(render(env.health.check, values), timeout)]
    if env.health.metrics and env.health.prometheus is None:
        commands.append((render(env.health.metrics, values), timeout))
    metrics = len(commands) > 1
    if also is not None:
        commands.append((also, None))
    results: list[CommandResult] = []
    page: Page | None = None
    details: list[str] = []
    try:
        if len(commands) == 1:  # sent as it is: a script would add a subshell on the host
            results.append(await fleet.run(name, *commands[0]))
        else:
            await fleet.run_steps(
                name, commands, lambda _i, r: results.append(r), limit=METRICS_LIMIT, each=True
            )
    except SshError as exc:
        if not results:  # the check itself: nothing to tell of the host's health
            sample = HealthSample(
                host=name,
                ok=None,
                latency=time.monotonic() - started,
                detail=str(exc),
                deployment=deployment,
            )
            return Probe(sample, error=exc)
        if also is None or len(results) < len(commands) - 1:  # not ``also``'s: no health
            details.append(f"metrics: {without_host(env.host(name), str(exc))}")
    check = results[0]
    ok = check.ok
    if not ok:
        said = check.output.strip()[-200:]
        details.insert(0, f"health check exited {check.exit_status}: {said}")
    if env.health.prometheus is not None:
        page, why = await prometheus.probe_page(
            env.health.prometheus, env.host(name), wanted or [], timeout
        )
        if why:
            details.append(why)
    elif metrics and len(results) > 1:
        page = _page(results[1], wanted or [], details)
    answer = results[-1] if also is not None and len(results) == len(commands) else None
    sample = HealthSample(
        host=name,
        ok=ok,
        # The host's answer, from when the check was sent: not the wait for a free
        # ``max_parallel`` slot, which a busy deployment makes seconds long.
        latency=check.duration,
        detail="; ".join(details),
        metrics=page.readings if page is not None else {},
        deployment=deployment,
    )
    return Probe(sample, page, answer)


def _page(m: CommandResult, wanted: list[Pick], details: list[str]) -> Page | None:
    """The metrics command's page, or None with why in ``details``."""
    if not m.ok:
        details.append(f"metrics exited {m.exit_status}")
    elif m.cut:
        details.append(f"metrics output over {METRICS_LIMIT // 1024 // 1024} MiB: not read")
    else:
        try:
            return parse_page(m.stdout, wanted)
        except ValueError as exc:
            details.append(f"metrics unreadable: {exc}")
    return None
