"""Dry run of a deployment: its plan, each host's version and lock, every command rendered.

``dry_run`` plans the deployment as ``Engine.deploy`` would (the same ``make_plan``, the
same baseline choice as the canary phase, the same rendering of commands), reads each
host's version (``Engine.discover``: ``deploy.current``) and lock (``takeover.inspect``),
and changes nothing: no lock taken, nothing journaled, no step run. What would refuse the
real deployment now (an open deployment, somebody's lock, an unreachable canary) is
reported in ``refusals``, not raised; bad versions and plans raise as for a real deploy.

``DryRun.as_dict()`` is the object ``canarytui deploy ... --dry-run --json`` prints:

- ``env``, ``app``, ``file``, ``version``, ``auto_promote``: what would go where.
- ``canary_phase``: false when the file has no ``canary`` section (straight to the waves).
- ``canaries``: host names; ``baseline``: the baseline sample the analysis would watch.
- ``analysis``: null without a canary phase, else ``before``, ``warmup``, ``duration``,
  ``interval`` (seconds), ``max_failed_checks``, ``baseline`` (hosts asked for),
  ``early_fail`` and ``rules`` (one line each).
- ``after_canary``: ``"stop"`` (a passing canary waits for ``promote``) or ``"promote"``.
- ``waves``: ``{"wave", "hosts", "percent", "pause_after"}`` each: ``percent`` is the share
  of the fleet on the new version once the wave is done, ``pause_after`` ``"manual"``,
  ``"none"``, a duration (``"30s"``), or null after the last wave.
- ``promote``: ``{"waves", "max_failures", "pause", "on_failure"}`` as the file says.
- ``traffic``: ``{"phase", "where", "command"}`` each, rendered (empty without ``traffic``).
- ``sample_host``, ``sample_previous``: the host the commands are rendered for (the first
  canary, else the first host of the first wave) and its version now (``{previous}``).
- ``commands``: ``{"phase", "step", "command"}`` each, in the order they would run;
  ``phase`` is ``current``, ``deploy``, ``health``, ``metrics``, ``rollback``,
  ``releases`` or ``logs``.
- ``hosts``: ``{"host", "address", "version", "reachable", "refused", "detail", "role",
  "baseline", "lock"}`` each: ``refused`` why an unreachable host could not be used
  (``unreachable``, ``host key refused``, ``login refused``, ...); ``role`` ``canary`` or
  ``wave N``; ``lock`` who holds the host's lock.
- ``open_deployment``: this journal's open deployment of the environment, or null.
- ``refusals``: why the real deployment would be refused now (empty: it would start);
  ``notes``: what it would do on the way (unreachable hosts, stale locks released).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from canarytui import events as ev
from canarytui.config import Environment, Rule, render
from canarytui.engine import locks, takeover
from canarytui.engine.canary import choose_baseline
from canarytui.engine.hooks import share_of
from canarytui.engine.locks import left_behind
from canarytui.engine.plan import Plan, make_plan, running_said, stops_at
from canarytui.openfiles import shortage
from canarytui.textsafe import listed

if TYPE_CHECKING:
    from canarytui.engine.engine import Engine


@dataclass
class HostView:
    host: str
    address: str
    version: str | None
    reachable: bool
    detail: str
    role: str
    baseline: bool = False
    refused: str | None = None
    lock: str | None = None


@dataclass
class WaveView:
    wave: int
    hosts: list[str]
    percent: int
    pause_after: str | None


@dataclass
class CommandView:
    phase: str
    step: str
    command: str


@dataclass
class TrafficView:
    phase: str
    where: str
    command: str


@dataclass
class DryRun:
    """The whole plan of one deployment, as data (printed by ``cli.dryrun``)."""

    env: str
    app: str
    file: str
    version: str
    auto_promote: bool
    canary_phase: bool
    canaries: list[str]
    baseline: list[str]
    analysis: dict[str, Any] | None
    after_canary: str
    waves: list[WaveView]
    promote: dict[str, Any]
    sample_host: str
    sample_previous: str | None
    traffic: list[TrafficView] = field(default_factory=list)
    commands: list[CommandView] = field(default_factory=list)
    hosts: list[HostView] = field(default_factory=list)
    open_deployment: str | None = None
    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def duration_text(seconds: float) -> str:
    """Seconds as the file writes them: ``500ms``, ``30s``, ``5m``."""
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def pause_text(pause: float | None) -> str:
    if pause is None:
        return "manual"
    return "none" if pause <= 0 else duration_text(pause)


def rule_line(rule: Rule) -> str:
    """One analysis rule in a line: what is measured and its limits."""
    what = rule.metric
    if rule.per:
        what = f"{rule.metric} per {rule.per}"
    if rule.quantile is not None:
        what = f"p{rule.quantile * 100:g} of {rule.metric}"
    limits = []
    if rule.max is not None:
        limits.append(f"max {rule.max:g}")
    if rule.max_vs_baseline is not None:
        limits.append(f"max {rule.max_vs_baseline:g}x baseline")
    if rule.min is not None:
        limits.append(f"min {rule.min:g}")
    if rule.min_vs_baseline is not None:
        limits.append(f"min {rule.min_vs_baseline:g}x baseline")
    if rule.compare:
        shift = [f"+{rule.max_increase}"] if rule.max_increase else []
        shift += [f"-{rule.max_decrease}"] if rule.max_decrease else []
        limits.append(
            f"{rule.compare} vs {rule.compare_to}, at most {'/'.join(shift)} "
            f"at {rule.confidence:g} confidence"
        )
    if rule.must_have_data:
        limits.append("must have data")
    if rule.optional:
        limits.append("optional")
    return f"{rule.name}: {what}: {', '.join(limits)}"


async def dry_run(
    engine: Engine,
    version: str,
    *,
    canaries: Sequence[str] | None = None,
    canary_percent: float | None = None,
    auto_promote: bool = False,
    assume_previous: str | None = None,
) -> DryRun:
    """The plan of ``deploy`` with every host's version and lock now; changes nothing."""
    env = engine.env
    env.validate_version(version)
    if assume_previous is not None:
        env.validate_version(assume_previous)
    plan = make_plan(env, canaries, canary_percent)
    found_versions = await engine.discover()
    # A host discovery could not reach is not asked again: a hung one held the dry run for
    # its connect timeout twice (10 s on the demo, where `check` took 5).
    lost = {h for h, s in engine.host_states.items() if s is ev.HostState.UNREACHABLE}
    found_locks = await takeover.inspect(engine.ctx, [h for h in env.host_names if h not in lost])
    found_locks.update({h: takeover.HostLock() for h in lost})
    phase = bool(plan.canaries)
    sample = plan.hosts[0]
    previous = found_versions.get(sample) or assume_previous
    a, p = env.canary.analysis, env.promote
    analysis = {
        "before": a.before,
        "warmup": a.warmup,
        "duration": a.duration,
        "interval": a.interval or env.health.interval,
        "max_failed_checks": a.max_failed_checks,
        "baseline": a.baseline,
        "early_fail": a.early_fail,
        "rules": [rule_line(rule) for rule in a.rules],
    }
    running = {h for h in plan.hosts if found_versions.get(h) == version}
    shares = _shares(env, plan, running)
    run = DryRun(
        env=env.name,
        app=env.app,
        file=str(env.path),
        version=version,
        auto_promote=auto_promote,
        canary_phase=phase,
        canaries=list(plan.canaries),
        baseline=choose_baseline(engine.ctx, plan.canaries, version) if phase else [],
        analysis=analysis if phase else None,
        after_canary="promote" if auto_promote or not phase else "stop",
        waves=[
            WaveView(
                i, list(hosts), shares[i], None if i == len(plan.waves) else pause_text(p.pause)
            )
            for i, hosts in enumerate(plan.waves, 1)
        ],
        promote={
            "waves": [str(w) for w in p.waves],
            "max_failures": p.max_failures,
            "pause": "manual" if p.pause is None else p.pause,
            "on_failure": p.on_failure,
        },
        sample_host=sample,
        sample_previous=previous,
        traffic=_traffic(env, plan, version, shares),
        commands=_commands(engine, sample, version, previous),
    )
    _hosts(engine, run, plan, found_versions, found_locks)
    _refusals(engine, run, plan, found_versions, found_locks, assume_previous)
    return run


def _shares(env: Environment, plan: Plan, running: set[str]) -> list[int]:
    """The share of the fleet (%) on the new version after the canaries (0) and each wave,
    as ``hooks.percent_after`` will count it: ``running``, the hosts that run it already,
    are on it from the start."""
    done = set(plan.canaries) | running
    shares = [share_of(len(done), len(env.hosts))]
    for wave in plan.waves:
        done |= set(wave)
        shares.append(share_of(len(done), len(env.hosts)))
    return shares


def _traffic(env: Environment, plan: Plan, version: str, shares: list[int]) -> list[TrafficView]:
    """The traffic hooks with the values each phase would give them (see ``hooks.fire``)."""
    t = env.traffic
    if not t.any:
        return []
    where = "this machine"
    if t.on is not None:
        where = f"role {t.on}: " + listed([h.name for h in env.hosts if t.on in h.roles], 8)
    phases = [("canary_start", plan.canaries, 0, shares[0])] if plan.canaries else []
    phases += [("wave_start", hosts, i, shares[i]) for i, hosts in enumerate(plan.waves, 1)]
    phases += [("complete", plan.hosts, 0, 100), ("rolled_back", plan.hosts, 0, 0)]
    out = []
    for kind, hosts, wave, percent in phases:
        template: str | None = getattr(t, kind)
        if template:
            values = {"hosts": ",".join(hosts), "wave": str(wave), "percent": str(percent)}
            values |= {"version": version, "app": env.app, "env": env.name}
            label = f"{kind} (wave {wave})" if kind == "wave_start" else kind
            out.append(TrafficView(label, where, render(template, values)))
    return out


def _commands(engine: Engine, name: str, version: str, previous: str | None) -> list[CommandView]:
    """Every command the deployment runs on ``name``, rendered as it would be sent."""
    env = engine.env
    plain = env.placeholders(name)
    values = env.placeholders(name, version, previous)
    out = [CommandView("current", "deploy.current", render(env.deploy.current, plain))]
    for step, _action, command in engine.hosts.commands(env.deploy.steps, values):
        out.append(CommandView("deploy", step, command))
    out.append(CommandView("health", "health.check", render(env.health.check, values)))
    if env.health.metrics:
        out.append(CommandView("metrics", "health.metrics", render(env.health.metrics, plain)))
    steps, version_is_previous = env.deploy.rollback_steps()
    back = env.placeholders(name, (previous or "") if version_is_previous else version, previous)
    for step, _action, command in engine.hosts.commands(steps, back, "rollback"):
        out.append(CommandView("rollback", step, command))
    if env.deploy.releases:
        out.append(CommandView("releases", "deploy.releases", render(env.deploy.releases, plain)))
    if env.logs:
        out.append(CommandView("logs", "logs", render(env.logs, plain)))
    return out


def _hosts(
    engine: Engine,
    run: DryRun,
    plan: Plan,
    versions: dict[str, str | None],
    found: dict[str, takeover.HostLock],
) -> None:
    roles = {h: "canary" for h in plan.canaries}
    for index, wave in enumerate(plan.waves, 1):
        roles.update({h: f"wave {index}" for h in wave})
    baseline = set(run.baseline)
    for host in engine.env.hosts:
        name = host.name
        held = found.get(name)
        run.hosts.append(
            HostView(
                host=name,
                address=host.endpoint,
                version=versions.get(name),
                reachable=engine.host_states.get(name) is not ev.HostState.UNREACHABLE,
                refused=engine.state.refused.get(name),
                detail=engine.details.get(name, ""),
                role=roles.get(name, "-"),
                baseline=name in baseline,
                lock=locks.describe_owner(held.owner) if held and held.owner else None,
            )
        )


def _refusals(
    engine: Engine,
    run: DryRun,
    plan: Plan,
    versions: dict[str, str | None],
    found: dict[str, takeover.HostLock],
    assume_previous: str | None,
) -> None:
    """What would stop ``deploy`` now, as it would say it; what it would do on the way."""
    journal = engine.journal
    record = engine.open_deployment()
    if record is not None:
        run.open_deployment = (
            f"deployment #{record.id} of {record.version} ({record.phase_label}), "
            f"started by {record.user}@{record.machine}"
        )
        run.refusals.append(
            f"deployment #{record.id} of {record.version} is still open "
            f"({record.phase_label}): {record.way_out} first"
        )

    def stale(owner: dict[str, Any]) -> bool:
        """The local lock of a finished deployment of this journal: the real run releases
        it (``LockKeeper.finish_stale``); a host's, ``left_behind``."""
        token = owner.get("token")
        done = journal.deployment_by_token(token) if isinstance(token, str) else None
        return done is not None and not done.is_open

    short = shortage(len(plan.hosts), engine.fleet.open_files)
    if short is not None:
        run.refusals.append(short)
    path = locks.local_lock_path(journal.state_dir, engine.env.name, engine.env.app)
    local = locks.read_local(path)
    if local is not None and stale(local):
        run.notes.append(f"local lock {path} is a finished deployment's: it would be released")
    elif local is not None:
        run.refusals.append(f"local lock {path}: locked by {locks.describe_owner(local)}")
    held_by: dict[str, dict[str, Any]] = {}
    for name, held in found.items():
        if held.owner is not None and left_behind(journal, held.owner) is None:
            held_by[name] = held.owner
        elif held.owner is not None:
            run.notes.append(f"{name}: a finished deployment's lock: it would be released")
    run.refusals += lock_refusals(held_by)
    reachable = {h.host: h.reachable for h in run.hosts}
    unreachable = [h for h in plan.hosts if not reachable.get(h, False)]
    canaries = [h for h in unreachable if h in plan.canaries]
    if canaries:
        run.refusals.append(f"canary unreachable: {', '.join(canaries)}; nothing would change")
    others = [h for h in unreachable if h not in plan.canaries]
    if others:
        run.notes.append(f"unreachable now: {listed(others)} (marked, and tried again in its wave)")
        said = stops_at(plan, others, engine.env.promote)
        run.notes += [said] if said else []
    unknown = [h for h in plan.hosts if reachable.get(h) and versions.get(h) is None]
    if unknown and assume_previous is None:
        run.refusals.append(
            f"{', '.join(unknown)} report(s) no valid version (deploy.current printed nothing "
            "that matches version_pattern), so they could not be rolled back: fix "
            "deploy.current, or say which version to roll them back to (--previous VERSION)"
        )
    elif unknown:
        run.notes.append(f"{', '.join(unknown)}: no valid version; assumed {assume_previous}")
    # As the deployment will say once its hosts are locked.
    reached = {h: versions.get(h) if reachable.get(h) else False for h in plan.hosts}
    running = running_said(run.version, reached, run.canaries)
    run.notes += [running[1]] if running else []


def lock_refusals(held_by: dict[str, dict[str, Any]]) -> list[str]:
    """One line per owner of the hosts' locks (``host A, B: locked by ...``), since the
    earliest of them (``locks.by_owner``)."""
    return [
        f"host {listed(names, 8)}: locked by {locks.describe_owner(owner)}"
        for owner, names in locks.by_owner(held_by)
    ]
