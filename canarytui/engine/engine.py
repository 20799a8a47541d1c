"""The rollout engine: plan, deploy the canaries, analyse, promote in waves, roll back.

Operator actions are calls (``deploy``, ``promote``, ``rollback``, ``pause``); what the
engine decides goes out as typed events, each written to the journal before any
subscriber sees it. Every call runs from one rest point to the next (awaiting
promotion, between waves, halted, finished), so the same engine serves the headless CLI
(one call per process) and the UI (one call per key press), and a later process can
continue a deployment from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from canarytui import events as ev
from canarytui.config import Environment, Step, WaveSpec, canaries_by_percent, render
from canarytui.engine import locks as lock
from canarytui.journal import DeploymentRecord, Journal, local_user, machine_name
from canarytui.metrics import analysis as an
from canarytui.metrics.series import HostSeries, wanted_metrics
from canarytui.metrics.sources import probe
from canarytui.ssh import CommandLost, CommandTimeout, Fleet, SshError

Subscriber = Callable[[ev.Event], None]

# A host that answers its health check within this many tries after a deploy is healthy.
HEALTH_GATE_TRIES = 3


class ActionRefused(Exception):
    """An operator action that is not valid now; the message says why and what to do."""


class PlanError(ValueError):
    """Bad canary choice (unknown host, empty, the whole fleet)."""


@dataclass(frozen=True)
class Plan:
    canaries: list[str]
    waves: list[list[str]]


def plan_waves(rest: Sequence[str], specs: Sequence[WaveSpec]) -> list[list[str]]:
    """Cumulative shares (or counts) of the remaining hosts -> disjoint waves.

    The last wave always reaches every remaining host; waves that would add no host
    are dropped.
    """
    n = len(rest)
    waves: list[list[str]] = []
    if n == 0:
        return waves
    done = 0
    for spec in specs:
        target = math.ceil(n * spec.value / 100.0) if spec.percent else int(spec.value)
        target = max(1, min(n, target))
        if target > done:
            waves.append(list(rest[done:target]))
            done = target
    if done < n:
        waves.append(list(rest[done:]))
    return waves


def make_plan(
    env: Environment, canaries: Sequence[str] | None = None, canary_percent: float | None = None
) -> Plan:
    names = env.host_names
    if canaries:
        unknown = [c for c in canaries if c not in names]
        if unknown:
            raise PlanError(f"canary host(s) not in {env.path.name}: {', '.join(unknown)}")
        chosen = [n for n in names if n in set(canaries)]
    elif canary_percent is not None:
        if not 0 < canary_percent <= 100:
            raise PlanError(f"--canary-percent must be between 0 and 100, got {canary_percent:g}")
        chosen = canaries_by_percent(names, canary_percent)
    else:
        chosen = env.default_canaries()
    if not chosen:
        raise PlanError("at least one canary host is needed")
    rest = [n for n in names if n not in set(chosen)]
    return Plan(chosen, plan_waves(rest, env.promote.waves))


def pick_baseline(candidates: Sequence[str], count: int) -> list[str]:
    """Spread the baseline sample over the fleet rather than taking its first hosts."""
    if count <= 0 or not candidates:
        return []
    if count >= len(candidates):
        return list(candidates)
    step = len(candidates) / count
    return [candidates[int(i * step)] for i in range(count)]


class Engine:
    """One environment's rollout engine. Knows nothing about how it is shown."""

    def __init__(
        self,
        env: Environment,
        journal: Journal,
        *,
        fleet: Fleet | None = None,
        user: str | None = None,
    ) -> None:
        self.env = env
        self.journal = journal
        self.fleet = fleet or Fleet(env)
        self.user = user or local_user()
        self.machine = machine_name()
        self._subscribers: list[Subscriber] = []
        self.deployment: DeploymentRecord | None = None
        self.host_states: dict[str, ev.HostState] = {
            h: ev.HostState.UNKNOWN for h in env.host_names
        }
        self.versions: dict[str, str | None] = {}
        self.previous: dict[str, str | None] = {}
        self.details: dict[str, str] = {}  # the last thing said about each host
        self.phase = ev.Phase.IDLE
        self.last_verdict: ev.VerdictReached | None = None
        self._task: asyncio.Task[ev.Outcome] | None = None
        self._pause_requested = False
        self._holding: set[str] = set()
        self._wanted = wanted_metrics(env.canary.analysis.rules)
        self.watched: set[str] = set()  # hosts probed at health.interval right now
        self.subscriber_errors: list[BaseException] = []

    # Events -----------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def emit(self, event: ev.Event) -> None:
        """Journal first, then the consumers; a failing consumer never stops a rollout."""
        self.journal.record(event)
        self._apply(event)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # a consumer's bug must not stop a deployment
                self.subscriber_errors.append(exc)

    def _apply(self, event: ev.Event) -> None:
        match event:
            case ev.HostUpdate(host=host, state=state, version=version, detail=detail):
                self.host_states[host] = state
                self.details[host] = detail
                if version is not None:
                    self.versions[host] = version
            case ev.PhaseChanged(phase=phase):
                self.phase = phase
            case ev.VerdictReached():
                self.last_verdict = event

    def _d(self) -> int | None:
        return self.deployment.id if self.deployment else None

    def _phase(self, phase: ev.Phase, wave: int | None = None) -> None:
        waves = len(self.deployment.plan) if self.deployment else 0
        self.emit(ev.PhaseChanged(phase=phase, wave=wave, waves=waves, deployment=self._d()))

    def _host(
        self, name: str, state: ev.HostState, version: str | None = None, detail: str = ""
    ) -> None:
        self.emit(
            ev.HostUpdate(
                host=name, state=state, version=version, detail=detail, deployment=self._d()
            )
        )

    def _notice(self, level: str, message: str, host: str | None = None) -> None:
        self.emit(ev.Notice(level=level, message=message, host=host, deployment=self._d()))

    def _decision(self, action: str, detail: str = "") -> None:
        self.emit(ev.Decision(action=action, user=self.user, detail=detail, deployment=self._d()))

    # Queries ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    def open_deployment(self) -> DeploymentRecord | None:
        return self.journal.open_deployment(self.env.name, self.env.app)

    def load_open(self) -> DeploymentRecord | None:
        """Adopt the journal's open deployment (left by the CLI or a killed process)."""
        record = self.open_deployment()
        if record is not None:
            self._adopt(record)
        return record

    def _adopt(self, record: DeploymentRecord) -> None:
        self.deployment = record
        self.phase = ev.Phase(record.phase)
        for name, h in self.journal.hosts(record.id).items():
            if name in self.host_states:
                self.host_states[name] = ev.HostState(h.state)
                self.versions[name] = h.current
                self.previous[name] = h.previous

    async def discover(self, names: Iterable[str] | None = None) -> dict[str, str | None]:
        """Ask hosts which version they run (``deploy.current``); unreachable ones are marked."""
        targets = list(names) if names is not None else self.env.host_names

        async def one(name: str) -> tuple[str, str | None]:
            command = render(self.env.deploy.current, self.env.placeholders(name))
            try:
                result = await self.fleet.run(name, command)
            except SshError as exc:
                self.emit(ev.HostUpdate(host=name, state=ev.HostState.UNREACHABLE, detail=str(exc)))
                return name, None
            version = _first_line(result.stdout) if result.ok else None
            state = self.host_states.get(name, ev.HostState.UNKNOWN)
            in_deployment = (
                self.deployment is not None
                and self.deployment.is_open
                and (
                    name in self.deployment.canaries
                    or any(name in wave for wave in self.deployment.plan)
                )
            )
            if state in (ev.HostState.UNKNOWN, ev.HostState.UNREACHABLE) and not in_deployment:
                state = ev.HostState.IDLE
            self.emit(
                ev.HostUpdate(
                    host=name,
                    state=state,
                    version=version,
                    detail="" if result.ok else result.output.strip()[-200:],
                )
            )
            return name, version

        return dict(await asyncio.gather(*(one(n) for n in targets)))

    async def tail(self, name: str) -> AsyncIterator[str]:
        """The host's live log lines (the file's ``logs`` command)."""
        if not self.env.logs:
            return
        command = render(self.env.logs, self.env.placeholders(name))
        async for line in self.fleet.stream(name, command):
            yield line

    # Operator calls -------------------------------------------------------------

    async def deploy(
        self,
        version: str,
        *,
        canaries: Sequence[str] | None = None,
        canary_percent: float | None = None,
        auto_promote: bool = False,
    ) -> ev.Outcome:
        """Lock, deploy the canaries, analyse; promote too if asked and the canary passed."""
        self.env.validate_version(version)
        plan = make_plan(self.env, canaries, canary_percent)
        open_one = self.open_deployment()
        if open_one is not None:
            raise ActionRefused(
                f"deployment #{open_one.id} of {open_one.version} is still open "
                f"({open_one.phase_label}): promote or roll it back first"
            )
        return await self._run(self._deploy(version, plan, auto_promote))

    async def promote(self, *, all_waves: bool = True) -> ev.Outcome:
        """Continue the open deployment to the next wave (or through every wave)."""
        record = self._require_open("promote")
        phase = ev.Phase(record.phase)
        if phase not in (ev.Phase.AWAITING_PROMOTION, ev.Phase.HALTED, ev.Phase.PROMOTING):
            raise ActionRefused(
                f"deployment #{record.id} is {record.phase_label}: there is nothing to promote "
                "until the canary has a verdict"
                + ("; roll it back" if phase in (ev.Phase.CANARY, ev.Phase.ANALYSIS) else "")
            )
        if record.verdict == ev.Verdict.FAIL.value:
            raise ActionRefused(f"deployment #{record.id}: the canary failed; roll it back")
        return await self._run(self._promote(all_waves, decided=True))

    async def rollback(self) -> ev.Outcome:
        """Roll back the open (or last) deployment everywhere it went; stops what runs."""
        if self.busy:
            assert self._task is not None
            running = self.deployment
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            if running is None or self.deployment is None:
                raise ActionRefused("the deployment was stopped before it changed anything")
        record = self.open_deployment() or self.journal.last_deployment(self.env.name, self.env.app)
        if record is None:
            raise ActionRefused("nothing to roll back: this environment has no deployment")
        if record.phase == ev.Phase.ROLLED_BACK.value or (
            not record.is_open and record.outcome != ev.Outcome.COMPLETE.value
        ):
            raise ActionRefused(
                f"nothing to roll back: deployment #{record.id} of {record.version} is "
                f"already {record.outcome or record.phase_label}"
            )
        self._adopt(record)
        return await self._run(self._rollback(ev.Outcome.ROLLED_BACK, decided=True))

    def pause(self) -> None:
        """Stop promoting after the wave in flight (the deployment stays open)."""
        if self.phase is not ev.Phase.PROMOTING:
            raise ActionRefused(f"nothing to pause: the deployment is {self.phase.value}")
        self._pause_requested = True
        self._decision("pause", "after the wave in flight")

    async def _run(self, coro: Coroutine[Any, Any, ev.Outcome]) -> ev.Outcome:
        if self.busy:
            coro.close()
            raise ActionRefused("the engine is busy with another action")
        task = asyncio.ensure_future(coro)
        self._task = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # Our caller was cancelled (Ctrl-C, UI quit): stop the work, leave it open.
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                raise
            # The work itself was stopped: an operator's rollback took over.
            return ev.Outcome.ABORTED

    def _require_open(self, action: str) -> DeploymentRecord:
        record = self.open_deployment()
        if record is None:
            raise ActionRefused(f"nothing to {action}: no deployment is open")
        self._adopt(record)
        return record

    # Locks ----------------------------------------------------------------------------

    def _owner(self, token: str, deployment: int, version: str) -> lock.Owner:
        return lock.Owner(
            token=token,
            deployment=deployment,
            version=version,
            user=self.user,
            machine=self.machine,
        )

    def _local_lock_path(self) -> object:
        return lock.local_lock_path(self.journal.state_dir, self.env.name, self.env.app)

    async def _take_locks(
        self, owner: lock.Owner, hosts: Sequence[str], discover: bool
    ) -> dict[str, str | SshError | None]:
        """Local lock, then every host's lock (with version discovery in the same trip).

        Returns each host's version (or the error that made it unreachable). On a lock
        held by someone else, releases what was taken and raises ``LockHeld``.
        """
        path = lock.local_lock_path(self.journal.state_dir, self.env.name, self.env.app)
        lock.acquire_local(path, owner)
        results, held = await self._lock_hosts(owner, hosts, discover)
        if held:
            await self._release_locks(owner.token)
            raise held[0]
        return results

    async def _lock_hosts(
        self, owner: lock.Owner, hosts: Sequence[str], discover: bool
    ) -> tuple[dict[str, str | SshError | None], list[lock.LockHeld]]:
        results: dict[str, str | SshError | None] = {}
        held: list[lock.LockHeld] = []

        async def one(name: str) -> None:
            then = None
            if discover:
                then = render(self.env.deploy.current, self.env.placeholders(name))
            command = lock.acquire_command(self.env.app, self.env.name, owner, then)
            try:
                result = await self.fleet.run(name, command)
            except SshError as exc:
                results[name] = exc
                return
            taken, holder, rest = lock.parse_acquire(result.stdout)
            if not taken:
                held.append(lock.LockHeld(f"host {name}", holder))
                return
            self._holding.add(name)
            results[name] = _first_line(rest) if discover else None

        await asyncio.gather(*(one(n) for n in hosts))
        return results, held

    async def _release_locks(self, token: str) -> None:
        hosts = sorted(self._holding)
        self._holding.clear()
        try:
            await asyncio.wait_for(
                lock.release_remote(self.fleet, hosts, self.env.app, self.env.name, token), 15.0
            )
        except TimeoutError:
            pass
        lock.release_local(
            lock.local_lock_path(self.journal.state_dir, self.env.name, self.env.app), token
        )

    async def _ensure_locks(self) -> None:
        """Continue a deployment: take over its locks (ours by token) on every host."""
        assert self.deployment is not None
        d = self.deployment
        owner = self._owner(d.token, d.id, d.version)
        hosts = d.canaries + [h for wave in d.plan for h in wave]
        # Discovery rides along: a host never reached before tells what it runs now.
        results = await self._take_locks(owner, hosts, discover=True)
        learned = {}
        for name, result in results.items():
            if isinstance(result, SshError):
                self._notice("warning", f"could not lock {name}: {result}", host=name)
            elif (
                self.previous.get(name) is None
                and result is not None
                and self.host_states.get(name) in _UNTOUCHED_STATES
            ):
                learned[name] = self.previous[name] = result
        if learned:
            self.journal.set_previous_many(d.id, learned)

    # The rollout ----------------------------------------------------------------------

    async def _deploy(self, version: str, plan: Plan, auto_promote: bool) -> ev.Outcome:
        token = uuid.uuid4().hex
        hosts = plan.canaries + [h for wave in plan.waves for h in wave]
        # The deployment gets its number first, so every lock can say whose it is; it is
        # discarded again if the locks cannot be had (nothing happened then).
        d = self.journal.create_deployment(
            token=token,
            env=self.env.name,
            app=self.env.app,
            env_path=str(self.env.path),
            version=version,
            canaries=plan.canaries,
            plan=plan.waves,
            previous={},
            user=self.user,
            machine=self.machine,
        )
        owner = self._owner(token, d, version)
        self.deployment = None
        try:
            found = await self._take_locks(owner, hosts, discover=True)
            unreachable = [c for c in plan.canaries if isinstance(found.get(c), SshError)]
            if unreachable:
                errors = "; ".join(str(found[c]) for c in unreachable)
                raise ActionRefused(f"canary unreachable, nothing was changed: {errors}")
        except BaseException:
            await asyncio.shield(self._release_locks(token))
            self.journal.discard(d)
            raise
        previous = {h: (v if not isinstance(v, SshError) else None) for h, v in found.items()}
        self.journal.set_previous_many(d, previous)
        record = self.journal.deployment(d)
        assert record is not None
        self.deployment = record
        self.previous = previous
        self._pause_requested = False
        self.emit(
            ev.DeploymentStarted(
                version=version,
                canaries=plan.canaries,
                waves=plan.waves,
                previous=previous,
                user=self.user,
                deployment=d,
            )
        )
        self._decision("deploy", f"{version} to canaries {', '.join(plan.canaries)}")
        for name, v in found.items():
            if isinstance(v, SshError):
                self._host(name, ev.HostState.UNREACHABLE, detail=str(v))
            else:
                self._host(name, ev.HostState.PENDING, version=v)
        try:
            return await self._canary_then_maybe_promote(auto_promote)
        except asyncio.CancelledError:
            await self._interrupted()
            raise

    async def _canary_then_maybe_promote(self, auto_promote: bool) -> ev.Outcome:
        assert self.deployment is not None
        d = self.deployment
        self._phase(ev.Phase.CANARY)
        self.watched = set(d.canaries)
        ok = await self._deploy_hosts(d.canaries, d.version)
        if not all(ok.values()):
            failed = [h for h, good in ok.items() if not good]
            self.emit(
                ev.VerdictReached(
                    verdict=ev.Verdict.FAIL,
                    reasons=[
                        f"{h}: deploy {self.host_states[h].value}: {self.details.get(h, '')}"
                        for h in failed
                    ],
                    measurements=[],
                    deployment=d.id,
                )
            )
            return await self._rollback(ev.Outcome.CANARY_FAILED, decided=False)
        result = await self._analyse()
        if result is ev.Verdict.FAIL:
            return await self._rollback(ev.Outcome.CANARY_FAILED, decided=False)
        self._phase(ev.Phase.AWAITING_PROMOTION, wave=0)
        if result is ev.Verdict.INCONCLUSIVE:
            self._notice(
                "warning", "analysis inconclusive: the deployment stays open; promote or roll back"
            )
            return ev.Outcome.INCONCLUSIVE
        if auto_promote:
            return await self._promote(all_waves=True, decided=False)
        return ev.Outcome.CANARY_PASSED

    async def _analyse(self) -> ev.Verdict:
        assert self.deployment is not None
        d = self.deployment
        cfg = self.env.canary.analysis
        self._phase(ev.Phase.ANALYSIS)
        deployed = set(d.canaries)
        candidates = [
            h
            for h in self.env.host_names
            if h not in deployed and self.host_states.get(h) != ev.HostState.UNREACHABLE
        ]
        baseline = pick_baseline(candidates, cfg.baseline)
        self.watched = set(d.canaries) | set(baseline)
        self.emit(
            ev.AnalysisStarted(
                canaries=d.canaries, baseline=baseline, duration=cfg.duration, deployment=d.id
            )
        )
        canary_series = {h: HostSeries() for h in d.canaries}
        base_series = {h: HostSeries() for h in baseline}
        interval = self.env.health.interval
        started = time.monotonic()
        deadline = started + cfg.duration
        measurements: list[ev.Measurement] = []
        while True:
            tick = time.monotonic()
            await self._probe_round(canary_series, base_series)
            measurements = an.measure(cfg, canary_series, base_series)
            elapsed = min(time.monotonic() - started, cfg.duration)
            self.emit(
                ev.AnalysisUpdate(
                    elapsed=elapsed,
                    duration=cfg.duration,
                    measurements=measurements,
                    deployment=d.id,
                )
            )
            over_budget = [
                h for h, s in canary_series.items() if s.failed_checks > cfg.max_failed_checks
            ]
            if over_budget or time.monotonic() >= deadline:
                break
            await asyncio.sleep(
                max(0.0, min(interval - (time.monotonic() - tick), deadline - time.monotonic()))
            )
        verdict, reasons = an.verdict(measurements, cfg.rules, canary_series)
        self.emit(
            ev.VerdictReached(
                verdict=verdict, reasons=reasons, measurements=measurements, deployment=d.id
            )
        )
        self.watched = set()
        return verdict

    async def _probe_round(self, *groups: dict[str, HostSeries]) -> None:
        async def one(name: str, series: HostSeries) -> None:
            sample, types = await probe(self.fleet, self.env, name, wanted=self._wanted)
            series.add(sample, types)
            self.emit(sample)

        await asyncio.gather(*(one(h, s) for group in groups for h, s in group.items()))

    async def _promote(self, all_waves: bool, decided: bool) -> ev.Outcome:
        assert self.deployment is not None
        d = self.deployment
        if decided:
            self._decision("promote", "through every wave" if all_waves else "next wave")
            await self._ensure_locks()
        self._pause_requested = False
        try:
            failures = 0
            budget = self.env.promote.max_failures
            total = len(d.plan)
            for index, wave in enumerate(d.plan, 1):
                todo = [h for h in wave if self.host_states.get(h) != ev.HostState.DEPLOYED]
                if not todo:
                    continue
                self._phase(ev.Phase.PROMOTING, wave=index)
                self.emit(ev.WaveStarted(wave=index, waves=total, hosts=todo, deployment=d.id))
                self.watched = set(todo)
                ok = await self._deploy_hosts(todo, d.version)
                failed = [h for h, good in ok.items() if not good]
                # Counted over the waves reached so far: a host down in a later wave
                # counts when its turn comes (it may be back by then).
                failures = sum(
                    1
                    for w in d.plan[:index]
                    for h in w
                    if self.host_states.get(h) in _FAILED_STATES
                )
                self.emit(
                    ev.WaveFinished(
                        wave=index,
                        waves=total,
                        succeeded=[h for h in todo if ok[h]],
                        failed=failed,
                        deployment=d.id,
                    )
                )
                self.watched = set()
                if failures > budget:
                    self._notice(
                        "error",
                        f"{failures} host(s) failed during promotion "
                        f"(max_failures {budget}): {', '.join(failed)}",
                    )
                    if self.env.promote.on_failure == "rollback":
                        return await self._rollback(ev.Outcome.PROMOTION_ROLLED_BACK, decided=False)
                    self._phase(ev.Phase.HALTED, wave=index)
                    return ev.Outcome.HALTED
                if index == total:
                    break
                pause = self.env.promote.pause
                if self._pause_requested or (pause is None and not all_waves):
                    self._phase(ev.Phase.AWAITING_PROMOTION, wave=index)
                    return ev.Outcome.PAUSED
                if pause:
                    await asyncio.sleep(pause)
            summary = (
                f"{d.version} on {len(d.canaries) + sum(map(len, d.plan)) - failures} "
                f"of {len(d.canaries) + sum(map(len, d.plan))} hosts"
            )
            self._phase(ev.Phase.COMPLETE)
            self.emit(
                ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary=summary, deployment=d.id)
            )
            await self._release_locks(d.token)
            return ev.Outcome.COMPLETE
        except asyncio.CancelledError:
            await self._interrupted()
            raise

    async def _rollback(self, outcome: ev.Outcome, decided: bool) -> ev.Outcome:
        assert self.deployment is not None
        d = self.deployment
        if decided:
            self._decision("rollback", f"from {self.phase.value}")
            if not d.is_open:
                self.journal.reopen(d.id)
            await self._ensure_locks()
        self._phase(ev.Phase.ROLLING_BACK)
        order = d.canaries + [h for wave in d.plan for h in wave]
        targets = [h for h in order if self.host_states.get(h) in _TOUCHED_STATES]
        results = await asyncio.gather(*(self._rollback_host(h) for h in targets))
        broken = [h for h, ok in zip(targets, results, strict=True) if not ok]
        if broken:
            self._phase(ev.Phase.HALTED)
            self._notice(
                "error",
                f"rollback failed on {', '.join(broken)}: the deployment "
                "stays open; fix the host(s) and roll back again",
            )
            return ev.Outcome.ERROR
        # Hosts the release never reached are simply idle again, in the journal too.
        for name in order:
            if self.host_states.get(name) is ev.HostState.PENDING:
                self._host(name, ev.HostState.IDLE)
        self._phase(ev.Phase.ROLLED_BACK)
        summary = f"{len(targets)} host(s) rolled back from {d.version}"
        self.emit(ev.DeploymentFinished(outcome=outcome, summary=summary, deployment=d.id))
        await self._release_locks(d.token)
        return outcome

    async def _interrupted(self) -> None:
        """Cancelled (Ctrl-C, UI quit): the deployment stays open; the locks are freed."""
        if self.deployment is None:
            return
        d = self.deployment
        self.watched = set()
        with contextlib.suppress(Exception):
            self._notice(
                "warning",
                f"interrupted during {self.phase.value}: deployment "
                f"#{d.id} stays open (promote or roll it back later)",
            )
        release = asyncio.ensure_future(self._release_locks(d.token))
        with contextlib.suppress(Exception):
            await asyncio.shield(release)

    # Per host ---------------------------------------------------------------------------

    async def _deploy_hosts(self, names: Sequence[str], version: str) -> dict[str, bool]:
        results = await asyncio.gather(*(self._deploy_host(n, version) for n in names))
        return dict(zip(names, results, strict=True))

    async def _deploy_host(self, name: str, version: str) -> bool:
        touched = False
        try:
            # Never change a host without holding its lock (it may have been unreachable
            # when the deployment started, or this process continues another's).
            if name not in self._holding and not await self._late_lock(name):
                return False
            previous = self.previous.get(name)
            values = self.env.placeholders(name, version, previous)
            self._host(name, ev.HostState.DEPLOYING)
            for step, action, command in self._host_commands(self.env.deploy.steps, values):
                ok = await self._step(name, step, action, command)
                touched = True
                if not ok:
                    return False
            if not await self._health_gate(name, values):
                return False
        except SshError as exc:
            # Lost mid-way, the release may be half there: FAILED gets it rolled back.
            touched = touched or isinstance(exc, CommandTimeout | CommandLost)
            state = ev.HostState.FAILED if touched else ev.HostState.UNREACHABLE
            self._host(name, state, detail=str(exc))
            return False
        self._host(name, ev.HostState.DEPLOYED, version=version)
        return True

    async def _late_lock(self, name: str, failed: ev.HostState = ev.HostState.FAILED) -> bool:
        """Lock one host now; learn its version too if the deployment never knew it."""
        d = self.deployment
        assert d is not None
        unknown = self.previous.get(name) is None
        owner = self._owner(d.token, d.id, d.version)
        found, held = await self._lock_hosts(owner, [name], discover=unknown)
        result = found.get(name)
        if held or isinstance(result, SshError):
            state = failed
            if isinstance(result, SshError) and failed is not ev.HostState.ROLLBACK_FAILED:
                state = ev.HostState.UNREACHABLE
            self._host(name, state, detail=str(held[0] if held else result))
            return False
        if unknown:
            self.previous[name] = result
            self.journal.set_previous(d.id, name, result)
        return True

    async def _rollback_host(self, name: str) -> bool:
        previous = self.previous.get(name)
        if not previous:
            self._host(
                name,
                ev.HostState.ROLLBACK_FAILED,
                detail="no previous version known for this host: roll it back by hand",
            )
            return False
        steps, version_is_previous = self.env.deploy.rollback_steps()
        d = self.deployment
        assert d is not None
        values = self.env.placeholders(
            name, previous if version_is_previous else d.version, previous
        )
        try:
            if name not in self._holding and not await self._late_lock(
                name, ev.HostState.ROLLBACK_FAILED
            ):
                return False
            self._host(name, ev.HostState.ROLLING_BACK)
            for step, action, command in self._host_commands(steps, values, "rollback"):
                if not await self._step(
                    name, step, action, command, failed=ev.HostState.ROLLBACK_FAILED
                ):
                    return False
        except SshError as exc:
            self._host(name, ev.HostState.ROLLBACK_FAILED, detail=str(exc))
            return False
        self._host(name, ev.HostState.ROLLED_BACK, version=previous)
        return True

    def _host_commands(
        self, steps: Iterable[Step], values: dict[str, str], action: str = "deploy"
    ) -> list[tuple[str, str, str]]:
        hooks = self.env.deploy.hooks
        out: list[tuple[str, str, str]] = []
        if hooks.before_host:
            out.append(("before_host", "hook", render(hooks.before_host, values)))
        for step in steps:
            out.append((step.name, action, render(step.run, values)))
        if hooks.after_host:
            out.append(("after_host", "hook", render(hooks.after_host, values)))
        return out

    async def _step(
        self,
        name: str,
        step: str,
        action: str,
        command: str,
        failed: ev.HostState = ev.HostState.FAILED,
    ) -> bool:
        started = time.monotonic()
        try:
            result = await self.fleet.run(name, command)
        except CommandTimeout as exc:
            self.emit(
                ev.StepResult(
                    host=name,
                    step=step,
                    action=action,
                    exit_status=None,
                    output=str(exc),
                    duration=time.monotonic() - started,
                    deployment=self._d(),
                )
            )
            raise
        self.emit(
            ev.StepResult(
                host=name,
                step=step,
                action=action,
                exit_status=result.exit_status,
                output=result.output,
                duration=result.duration,
                deployment=self._d(),
            )
        )
        if not result.ok:
            self._host(
                name,
                failed,
                detail=f"{step} exited {result.exit_status}: " + result.output.strip()[-300:],
            )
            return False
        return True

    async def _health_gate(self, name: str, values: dict[str, str]) -> bool:
        command = render(self.env.health.check, values)
        result = None
        for attempt in range(HEALTH_GATE_TRIES):
            result = await self.fleet.run(name, command, self.env.health.timeout)
            if result.ok:
                return True
            if attempt + 1 < HEALTH_GATE_TRIES:
                await asyncio.sleep(self.env.health.interval)
        assert result is not None
        self._host(
            name,
            ev.HostState.FAILED,
            detail=f"unhealthy after deploy: health check exited {result.exit_status} "
            f"{HEALTH_GATE_TRIES} times " + result.output.strip()[-200:],
        )
        return False


# States in which this deployment has not changed the host yet.
_UNTOUCHED_STATES = {ev.HostState.UNKNOWN, ev.HostState.PENDING, ev.HostState.UNREACHABLE}
_FAILED_STATES = {ev.HostState.FAILED, ev.HostState.UNREACHABLE}
# States in which the release may have reached the host: those are rolled back.
_TOUCHED_STATES = {
    ev.HostState.DEPLOYING,
    ev.HostState.DEPLOYED,
    ev.HostState.FAILED,
    ev.HostState.ROLLING_BACK,
    ev.HostState.ROLLBACK_FAILED,
}


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None
