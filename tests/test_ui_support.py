"""Helpers for the UI tests (no tests here): a fixed environment, a scripted engine, polling.

The snapshot tests need a screen that is the same on every machine: fixed host names and
addresses, a fixed user, no clock on screen, and the UI driven by real events sent
through a real Engine's ``emit`` (journal in a temp folder, monitor off).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from canarytui import events as ev
from canarytui.config import Environment, load_env
from canarytui.engine import Engine, make_plan
from canarytui.journal import Journal
from canarytui.metrics.page import parse_page, picks
from canarytui.ui.app import CanaryApp
from canarytui.ui.widgets.log_pane import LogPane

USER = "operator"
FIXED_TIME = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
REPO = Path(__file__).resolve().parent.parent
THEMES = REPO / "themes"

ENV_TEXT = """\
name: production
app: shop
ssh:
  user: deploy
  known_hosts: known_hosts
hosts:
{hosts}
deploy:
  current: cat current/VERSION
  steps:
    - name: install
      run: fetch-release {{version}}
    - name: switch
      run: ln -sfn releases/{{version}} current
    - name: restart
      run: systemctl restart shop
health:
  check: curl -fsS localhost:8080/health
  metrics: curl -fsS localhost:8080/metrics
  interval: 2s
logs: tail -F /var/log/shop.log
canary:
  hosts: [web-01]
  analysis:
    duration: 30s{warmup}
    baseline: 3
    rules:
      - name: error-ratio
        metric: 'http_requests_total{{code=~"5..",route!="/health"}}'
        per: 'http_requests_total{{route!="/health"}}'
        max: 0.05
        max_vs_baseline: 3.0
      - name: p99-latency
        metric: 'http_request_duration_seconds{{route!="/health"}}'
        quantile: 0.99
        max_vs_baseline: 2.0
{extra_rules}promote:
  waves: [25%, 100%]
  max_failures: 1
  pause: manual
"""


# A small shop's routes: (method, route, share of the requests, share of the 5xx).
ROUTES = (
    ("GET", "/api/products", 0.5, 0.2),
    ("GET", "/api/cart", 0.3, 0.3),
    ("POST", "/api/checkout", 0.2, 0.5),
)
# Cumulative share of the requests at or under each bucket bound (seconds).
LATENCY_BUCKETS = ((0.025, 0.4), (0.05, 0.7), (0.1, 0.93), (0.25, 0.995), (0.5, 0.999), (1.0, 1.0))


BASELINE = ("web-04", "web-08")  # the baseline hosts of the scripted analyses
# The bad canary's error ratio over each 2 s interval: it leaves the baseline's band.
BAD_RATIO = (0.006, 0.09, 0.17, 0.21, 0.19, 0.23, 0.2, 0.22)


def metrics_page(requests: float, failed: float) -> str:
    """A metrics page as a web app instrumented with prometheus_client serves it:
    ``http_requests_total{method,route,code}`` (load balancers' ``/health`` probes too)
    and the ``http_request_duration_seconds`` histogram by route."""
    lines = ["# TYPE http_requests_total counter"]
    for method, route, share, error_share in ROUTES:
        bad = failed * error_share
        lines.append(
            f'http_requests_total{{method="{method}",route="{route}",code="200"}} '
            f"{requests * share - bad}"
        )
        lines.append(f'http_requests_total{{method="{method}",route="{route}",code="500"}} {bad}')
    lines.append(f'http_requests_total{{method="GET",route="/health",code="200"}} {requests}')
    lines.append("# TYPE http_request_duration_seconds histogram")
    for method, route, share, _ in ROUTES:
        served = requests * share
        labels = f'method="{method}",route="{route}"'
        for bound, below in LATENCY_BUCKETS:
            lines.append(
                f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {served * below}'
            )
        lines.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {served}')
        lines.append(f"http_request_duration_seconds_count{{{labels}}} {served}")
        lines.append(f"http_request_duration_seconds_sum{{{labels}}} {served * 0.04}")
    return "\n".join(lines) + "\n"


# A statistical rule, for the tests that show one (``Script(..., extra_rules=...)``).
LATENCY_SHIFT = """\
      - name: latency-shift
        metric: 'http_request_duration_seconds{route!="/health"}'
        quantile: 0.5
        compare: mann-whitney
        max_increase: 20%
        confidence: 0.98
"""


def write_env(
    folder: Path, hosts: int = 12, extra_rules: str = "", warmup: str | None = None
) -> Path:
    """An environment file with hosts web-01.. on 10.0.0.x (nothing listens there);
    ``warmup``: the analysis's (none by default)."""
    zones = ("eu-1", "eu-2", "us-1")
    lines = []
    for i in range(1, hosts + 1):
        role = "api" if i % 4 == 0 else "web"
        lines.append(
            f"  - {{name: web-{i:02d}, address: 10.0.0.{i}, roles: [{role}], "
            f"labels: {{zone: {zones[(i - 1) % 3]}}}}}"
        )
    path = folder / "production.yaml"
    warmup_line = f"\n    warmup: {warmup}" if warmup else ""
    text = ENV_TEXT.format(hosts="\n".join(lines), extra_rules=extra_rules, warmup=warmup_line)
    path.write_text(text, encoding="utf-8")
    return path


class _Working:
    """A call of the engine that has not ended (``Engine.busy``)."""

    def done(self) -> bool:
        return False


class Script:
    """A real Engine and Journal, driven by events as a rollout would send them."""

    def __init__(
        self,
        tmp_path: Path,
        hosts: int = 12,
        theme: str | None = None,
        extra_rules: str = "",
        warmup: str | None = None,
    ) -> None:
        self.env: Environment = load_env(write_env(tmp_path, hosts, extra_rules, warmup))
        self.journal = Journal(tmp_path / "state")
        self.engine = Engine(self.env, self.journal, user=USER)
        self.app = CanaryApp(
            self.env,
            self.journal,
            engine=self.engine,
            theme=theme,
            monitor=False,
            themes_folder=THEMES,
        )
        self.deployment: int | None = None

    # Steady state -------------------------------------------------------------------

    def discovered(self, version: str = "1.0.0") -> None:
        """Every host found on ``version`` and healthy, probed twice (so its key metrics,
        measured on the increase between samples, have values)."""
        for i, name in enumerate(self.env.host_names):
            self.engine.emit(ev.HostUpdate(host=name, state=ev.HostState.IDLE, version=version))
            latency = 0.012 + (i % 5) * 0.003
            self.health(name, ok=True, latency=latency, requests=1000.0 + i, failed=5.0)
            self.health(name, ok=True, latency=latency, requests=1300.0 + 2 * i, failed=6.0)

    def health(
        self,
        name: str,
        ok: bool | None = True,
        latency: float = 0.015,
        requests: float = 1000.0,
        failed: float = 5.0,
        detail: str = "",
    ) -> None:
        """One probe: ``requests`` served so far (health probes aside), ``failed`` of them
        5xx, as the host's metrics page counts them and the rules' selectors pick them."""
        metrics = {} if ok is None else self.readings(requests, failed)
        self.engine.emit(
            ev.HealthSample(host=name, ok=ok, latency=latency, detail=detail, metrics=metrics)
        )

    def readings(self, requests: float, failed: float) -> dict[str, dict[str, float]]:
        """What a probe keeps of a metrics page: the series the env's rules select."""
        page = parse_page(metrics_page(requests, failed), picks(self.env.canary.analysis.rules))
        return page.readings

    def log(self, name: str, line: str) -> None:
        self.engine.emit(ev.LogLine(host=name, line=line))

    # A deployment --------------------------------------------------------------------

    def start(
        self, version: str, canaries: list[str], kind: str = "deploy", machine: str = "ci"
    ) -> list[list[str]]:
        plan = make_plan(self.env, canaries)
        previous: dict[str, str | None] = {h: "1.0.0" for h in self.env.host_names}
        d = self.journal.create_deployment(
            token="t0ken" if self.deployment is None else f"t0ken-{self.deployment + 1}",
            env=self.env.name,
            app=self.env.app,
            env_path=str(self.env.path),
            version=version,
            canaries=plan.canaries,
            plan=plan.waves,
            previous=previous,
            user=USER,
            machine=machine,
            kind=kind,
        )
        self.deployment = d
        self.engine.load_open()  # the engine adopts it, as on a restart
        self.emit(
            ev.DeploymentStarted(
                version=version,
                canaries=plan.canaries,
                waves=plan.waves,
                previous=previous,
                user=USER,
            )
        )
        self.emit(
            ev.Decision(
                action="deploy",
                user=USER,
                detail=f"{version} to canaries {', '.join(plan.canaries)}",
            )
        )
        for name in self.env.host_names:
            self.host(name, ev.HostState.PENDING, "1.0.0")
        return plan.waves

    def emit(self, event: ev.Event) -> None:
        """Send an event of the current deployment through the engine."""
        self.engine.emit(dataclasses.replace(event, deployment=self.deployment))

    def working(self) -> None:
        """The engine in the middle of a call, as in a live rollout (the keys that apply
        differ from those of a deployment left open with nothing running)."""
        self.engine._task = _Working()  # type: ignore[assignment]

    def phase(self, phase: ev.Phase, wave: int | None = None) -> None:
        d = self.engine.deployment
        self.emit(ev.PhaseChanged(phase=phase, wave=wave, waves=len(d.plan) if d else 0))

    def host(
        self, name: str, state: ev.HostState, version: str | None = None, detail: str = ""
    ) -> None:
        self.emit(ev.HostUpdate(host=name, state=state, version=version, detail=detail))

    def step(
        self,
        name: str,
        step: str,
        exit_status: int | None = 0,
        output: str = "",
        action: str = "deploy",
    ) -> None:
        self.emit(
            ev.StepResult(
                host=name,
                step=step,
                action=action,
                exit_status=exit_status,
                output=output,
                duration=0.4,
            )
        )

    def deploy_host(self, name: str, version: str) -> None:
        self.host(name, ev.HostState.DEPLOYING)
        for step in ("install", "switch", "restart"):
            self.step(name, step, output=f"{step} ok")
        self.host(name, ev.HostState.DEPLOYED, version)

    def canary_passed(self, version: str, canaries: list[str]) -> list[list[str]]:
        waves = self.start(version, canaries)
        self.phase(ev.Phase.CANARY)
        for name in canaries:
            self.deploy_host(name, version)
        self.phase(ev.Phase.ANALYSIS)
        self.emit(
            ev.AnalysisStarted(canaries=canaries, baseline=["web-04", "web-08"], duration=30.0)
        )
        ms = [
            ev.Measurement(rule="failed-checks", host=c, value=0.0, limit="<= 2", passed=True)
            for c in canaries
        ]
        ms += [
            ev.Measurement(
                rule="error-ratio",
                host=c,
                value=0.004,
                limit="<= 0.05 and <= 3x baseline (0.015)",
                passed=True,
                baseline=0.005,
            )
            for c in canaries
        ]
        self.emit(ev.AnalysisUpdate(elapsed=30.0, duration=30.0, measurements=ms))
        self.emit(
            ev.VerdictReached(
                verdict=ev.Verdict.PASS, reasons=[m.describe() for m in ms], measurements=ms
            )
        )
        self.phase(ev.Phase.AWAITING_PROMOTION, wave=0)
        return waves

    # The analysis ------------------------------------------------------------------

    def canaries_analysed(self, version: str, canaries: list[str]) -> None:
        """``version`` started on ``canaries``, deployed to them, their analysis begun."""
        self.start(version, canaries)
        self.phase(ev.Phase.CANARY)
        for name in canaries:
            self.deploy_host(name, version)
        self.analysis_started(canaries)

    def analysis_started(self, canaries: list[str], duration: float = 30.0) -> None:
        self.phase(ev.Phase.ANALYSIS)
        self.emit(ev.AnalysisStarted(canaries=canaries, baseline=list(BASELINE), duration=duration))

    def bad_canary_analysis(self, updates: int = len(BAD_RATIO)) -> list[ev.Measurement]:
        """1.3.0-bad on canary web-01, ``updates`` analysis updates 2 s apart: its error
        ratio over each interval climbs to ~20 % while the baseline's stays at 0.3-0.9 %
        (undecided at first, then failed beyond doubt); p99 latency and the health budget
        pass. Returns the last update's measurements (no verdict is sent)."""
        self.start("1.3.0-bad", ["web-01"])
        self.phase(ev.Phase.CANARY)
        self.deploy_host("web-01", "1.3.0-bad")
        self.analysis_started(["web-01"])
        ms: list[ev.Measurement] = []
        for i in range(updates):
            ratio = sum(BAD_RATIO[: i + 1]) / (i + 1)
            state = "pass" if ratio <= 0.05 else ("undecided" if i < 3 else "fail")
            base = 0.005 + 0.001 * (i % 3)
            ms = [
                ev.Measurement(
                    rule="failed-checks", host="web-01", value=0.0, limit="<= 2", passed=True
                ),
                ev.Measurement(
                    rule="error-ratio",
                    host="web-01",
                    value=ratio,
                    baseline=base,
                    limit=f"<= 0.05 and <= 3x baseline ({3 * base * 1.6:.4g})",
                    passed={"pass": True, "fail": False}.get(state),
                    status=state,
                    recent=BAD_RATIO[i],
                    band=[0.003 + 0.001 * (i % 2), 0.008 + 0.001 * (i % 3)],
                    note="over the limit, but not beyond doubt at 0.999"
                    if state == "undecided"
                    else "",
                ),
                ev.Measurement(
                    rule="p99-latency",
                    host="web-01",
                    value=0.21,
                    baseline=0.2,
                    limit="<= 2x baseline (0.44)",
                    passed=True,
                    status="pass",
                    recent=0.2 + 0.01 * (i % 3),
                    band=[0.18, 0.23],
                ),
            ]
            self.emit(ev.AnalysisUpdate(elapsed=2.0 * (i + 1), duration=30.0, measurements=ms))
        return ms

    def freeze_journal_times(self) -> None:
        """History shows dates and machines: make them the same everywhere."""
        db = sqlite3.connect(self.journal.path)
        with db:
            db.execute(
                "UPDATE deployments SET started_at = ?, updated_at = ?,"
                " finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ? END",
                (FIXED_TIME, FIXED_TIME, FIXED_TIME + 95),
            )
            db.execute("UPDATE decisions SET at = ?, machine = 'ci'", (FIXED_TIME + 60,))
        db.close()

    def flush(self) -> None:
        """Deliver buffered health samples and log lines now instead of in ~100 ms."""
        self.app.fleet_screen.bridge.flush()


def record_notifications(app: CanaryApp) -> list[str]:
    """Every notification's text, as the app shows it (wraps ``App.notify``)."""
    seen: list[str] = []
    notify = app.notify

    def recording(message: str, *args: Any, **kwargs: Any) -> None:
        seen.append(message)
        notify(message, *args, **kwargs)

    app.notify = recording  # type: ignore[method-assign]
    return seen


async def settle(pilot: Pilot[int]) -> None:
    """Let every posted message be handled and the screen repaint."""
    app = pilot.app
    assert isinstance(app, CanaryApp)
    app.fleet_screen.bridge.flush()
    await pilot.pause()
    await app.workers.wait_for_complete()
    app.fleet_screen.repaint_now()
    await pilot.pause()


async def until(
    pilot: Pilot[int],
    predicate: Callable[[], bool],
    timeout: float,
    what: str | Callable[[], str],
) -> None:
    """Poll (letting the app run) until ``predicate`` holds; fail after ``timeout`` s.

    ``what`` may be a callable, to describe the state found when the wait failed.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for: {said}")
        await pilot.pause(0.05)


async def canary_logging(pilot: Pilot[int], script: Script, *lines: str) -> LogPane:
    """Deployment #1 of 1.2.0 on its canary web-01, which logged ``lines``, all in the
    log pane; returns the pane."""
    app = script.app
    await until(pilot, lambda: app.fleet_screen.is_mounted, 10, "screen mounted")
    script.discovered()
    script.start("1.2.0", ["web-01"])
    script.phase(ev.Phase.CANARY)
    for line in lines:
        script.log("web-01", line)
    pane = app.fleet_screen.query_one(LogPane)
    await until(pilot, lambda: len(pane.shown_rows) == len(lines), 5, lambda: str(pane.shown_rows))
    await settle(pilot)
    return pane
