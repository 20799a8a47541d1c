"""Dry run of a deployment: its plan, each host's version and lock, every command rendered.

``dry_run`` plans the deployment as ``Engine.deploy`` would (the same ``make_plan``, the
same baseline choice as the canary phase, the same rendering of commands), reads each
host's version (``deploy.current``) and lock in one round trip (``Engine.discover``
with ``locks``), and changes nothing: no lock taken, nothing journaled, no step run. What
would refuse the real deployment now (an open deployment, somebody's lock, an unreachable
canary) is reported in ``refusals``, not raised; bad versions and plans raise as for a
real deploy.

Its result, ``DryRun``, and the JSON it prints are in ``dryrun_views``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from canarytui import events as ev
from canarytui.config import Environment, Rule, render
from canarytui.engine import locks, takeover
from canarytui.engine.canary import choose_baseline
from canarytui.engine.dryrun_views import CommandView, DryRun, HostView, TrafficView, WaveView
from canarytui.engine.hooks import share_of
from canarytui.engine.locks import left_behind
from canarytui.engine.plan import Plan, limited_to, make_plan, running_said, stops_at
from canarytui.engine.releases import asked_for_releases, unlisted
from canarytui.journal import UnopenedStart
from canarytui.metrics.analysis import compared_with_baseline, no_baseline, too_few_intervals
from canarytui.openfiles import shortage
from canarytui.ssh import AuthRefused, HostKeyRefused
from canarytui.textsafe import listed

if TYPE_CHECKING:
    from canarytui.engine.engine import Engine


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
    hosts: Sequence[str] | None = None,
    canary_phase: bool = True,
) -> DryRun:
    """The plan of ``deploy`` with each of its hosts' version and lock now; changes nothing."""
    env = engine.env
    env.validate_version(version)
    if assume_previous is not None:
        env.validate_version(assume_previous)
    only, scope = limited_to(env, hosts)
    plan = make_plan(env, canaries, canary_percent, only, canary_phase)
    # Every host's version and lock, in one round trip a host: the others too (the fleet's
    # share is theirs, and a limited deployment is refused when another deployment holds
    # one of them: ``start.others_free``).
    found_versions = await engine.discover(locks=True)
    held = engine.state.locked_by  # in the order the hosts answered; said in the file's
    found_locks = {
        h: takeover.HostLock(owner=dict(held[h].fields)) for h in env.host_names if h in held
    }
    planned = set(plan.hosts)
    others = Counter(found_versions.get(h) or "unknown" for h in env.host_names if h not in planned)
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
    running = {h for h, v in found_versions.items() if v == version}
    shares = _shares(env, plan, running)
    run = DryRun(
        env=env.name,
        app=env.app,
        file=str(env.path),
        version=version,
        auto_promote=auto_promote,
        canary_phase=phase,
        canaries=list(plan.canaries),
        baseline=choose_baseline(engine.ctx, plan.canaries, version, plan.hosts) if phase else [],
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
        scope=scope,
        fleet=len(env.hosts),
        others=dict(others.most_common()) if scope is not None else {},
    )
    _hosts(engine, run, plan, found_versions, found_locks)
    _refusals(engine, run, plan, found_versions, found_locks, assume_previous)
    reached = {h.host for h in run.hosts if h.reachable}
    asked, who = asked_for_releases(plan.canaries, [h for h in plan.hosts if h in reached])
    if env.deploy.releases and asked and not run.refusals:
        said = unlisted(await engine.releases(asked), version, who)
        run.notes += [f"{said}: is it the release you meant?"] if said else []
    return run


def _shares(env: Environment, plan: Plan, running: set[str]) -> list[int]:
    """The share of the fleet (%) on the new version after the canaries (0) and each wave,
    as ``hooks.percent_after`` will count it: ``running``, the hosts that run it already
    (in the plan or not), are on it from the start."""
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
    phases += [("complete", plan.hosts, 0, shares[-1]), ("rolled_back", plan.hosts, 0, 0)]
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
    for name in plan.hosts if run.scope else engine.env.host_names:
        host = engine.env.host(name)
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
        left = left_behind(journal, held.owner) if held.owner is not None else None
        whose = (
            "a refused start's" if isinstance(left, UnopenedStart) else "a finished deployment's"
        )
        if held.owner is not None and left is None:
            held_by[name] = held.owner
        elif left is not None and name not in plan.hosts:
            run.notes.append(f"{name}: {whose} lock, outside the limit: left as it is")
        elif left is not None:
            run.notes.append(f"{name}: {whose} lock: it would be released")
    run.refusals += lock_refusals(held_by)
    reachable = {h.host: h.reachable for h in run.hosts}
    unreachable = [h for h in plan.hosts if not reachable.get(h, False)]
    canaries = [h for h in unreachable if h in plan.canaries]
    if canaries:
        run.refusals.append(f"canary unreachable: {', '.join(canaries)}; nothing would change")
    refused = {h.host: h.refused for h in run.hosts if h.refused in REFUSED_US}
    barred = [h for h in unreachable if h in refused and h not in plan.canaries]
    if barred:
        kinds = " / ".join(dict.fromkeys(refused[h] for h in barred))
        run.refusals.append(f"{listed(barred, 8)}: {kinds}; nothing would change")
    others = [h for h in unreachable if h not in plan.canaries and h not in barred]
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
    a = engine.env.canary.analysis
    short = too_few_intervals(a.rules, a.duration, a.interval or engine.env.health.interval)
    if short is not None and plan.canaries:
        run.notes.append(f"analysis.duration {short}: every verdict would be inconclusive")
    compared = compared_with_baseline(a.rules)
    if plan.canaries and (none := no_baseline(a)) is not None:
        run.notes.append(f"{none}: every verdict would be inconclusive")
    elif plan.canaries and not run.baseline and compared:
        run.notes.append(
            f"no baseline host (every host planned is a canary): {listed(compared, 4)} "
            "compare(s) the canaries with it: every verdict would be inconclusive"
        )
    # As the deployment will say once its hosts are locked.
    reached = {h: versions.get(h) if reachable.get(h) else False for h in plan.hosts}
    running = running_said(run.version, reached, run.canaries)
    run.notes += [running[1]] if running else []


# How a host that refused us is said (``SshError.what``): the start is refused for it.
REFUSED_US = {HostKeyRefused.what, AuthRefused.what}


def lock_refusals(held_by: dict[str, dict[str, Any]]) -> list[str]:
    """One line per owner of the hosts' locks (``host A, B: locked by ...``), since the
    earliest of them (``locks.by_owner``)."""
    return [
        f"host {listed(names, 8)}: locked by {locks.describe_owner(owner)}"
        for owner, names in locks.by_owner(held_by)
    ]
