"""The operator API of one environment's engine: deploy, promote, pause, roll back.

Operator actions are calls; what the engine decides goes out as typed events, each
written to the journal before any subscriber sees it. Every call runs from one rest
point to the next (awaiting promotion, between waves, halted, finished), so the same
engine serves the headless CLI (one call per process) and the UI (one call per key
press), and a later process can continue a deployment from the journal. The phases
themselves live in ``canary``, ``promotion`` and ``rollback``; per-host work in ``hosts``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence

from canarytui import events as ev
from canarytui.config import Environment, render
from canarytui.engine import takeover
from canarytui.engine.bus import Bus, Context, RolloutState, Subscriber
from canarytui.engine.calls import NOT_AGAIN, ActionRefused, CallRunner
from canarytui.engine.canary import CanaryPhase
from canarytui.engine.discovery import Found, discover_one
from canarytui.engine.follow import Follower
from canarytui.engine.holding import LockKeeper
from canarytui.engine.hooks import HookFailed, before_analysis
from canarytui.engine.hosts import HostWork
from canarytui.engine.notify import Notifier
from canarytui.engine.outage import FleetLost
from canarytui.engine.plan import Plan, limited_to, make_plan, plan_waves
from canarytui.engine.promotion import Promotion
from canarytui.engine.releases import (
    Catalogue,
    list_releases,
    restore_doubt,
    unknown_to_restore,
)
from canarytui.engine.rollback import Rollback, nothing_to_roll_back
from canarytui.engine.start import start_deployment
from canarytui.engine.supervise import each_host
from canarytui.journal import DeploymentRecord, Journal, WayOut, local_user, machine_name
from canarytui.ssh import Fleet
from canarytui.textsafe import listed


class Engine(CallRunner):
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
        self.state = RolloutState(host_states={h: ev.HostState.UNKNOWN for h in env.host_names})
        self.bus = Bus(journal, self.state, self.user)
        self.ctx = ctx = Context(env, journal, self.fleet, self.bus, self.machine)
        self.locks = LockKeeper(ctx)
        self.hosts = HostWork(ctx, self.locks)
        self.canary = CanaryPhase(ctx, self.hosts)
        self.rollbacks = Rollback(ctx, self.locks, self.hosts)
        self.promotion = Promotion(ctx, self.locks, self.hosts, self.rollbacks)
        self.notifier = Notifier(ctx)  # the file's notify entries, told of events
        self._task: asyncio.Task[ev.Outcome] | None = None

    # What the engine knows (the state lives on the bus) -------------------------------

    @property
    def deployment(self) -> DeploymentRecord | None:
        return self.state.deployment

    @property
    def phase(self) -> ev.Phase:
        return self.state.phase

    @property
    def host_states(self) -> dict[str, ev.HostState]:
        return self.state.host_states

    @property
    def versions(self) -> dict[str, str | None]:
        return self.state.versions

    @property
    def previous(self) -> dict[str, str | None]:
        return self.state.previous

    @property
    def details(self) -> dict[str, str]:
        return self.state.details

    @property
    def last_verdict(self) -> ev.VerdictReached | None:
        return self.state.last_verdict

    @property
    def watched(self) -> set[str]:
        """Hosts probed at ``health.interval`` right now (canaries, baseline, the wave)."""
        return self.state.watched

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        return self.bus.subscribe(subscriber)

    def open_deployment(self) -> DeploymentRecord | None:
        return self.journal.open_deployment(self.env.name, self.env.app)

    def follower(self) -> Follower:
        """What other processes of this machine record for this environment from now on,
        read back from the journal into this engine's state (``Follower.poll``)."""
        if self.bus.recorded is None:
            self.bus.recorded = set()
        return Follower(self.journal, self.env.name, self.env.app, self.state, self.bus.recorded)

    def load_open(self) -> DeploymentRecord | None:
        """Adopt the journal's open deployment (left by the CLI or a killed process)."""
        record = self.open_deployment()
        if record is not None:
            self.state.adopt(record, self.journal, stopped=self.nobody_drives(record))
        return record

    async def discover(
        self,
        names: Iterable[str] | None = None,
        locks: bool = False,
        lockable: dict[str, str] | None = None,
    ) -> Found:
        """Ask hosts which version they run (``deploy.current``); unreachable ones are marked.
        ``locks``: whose lock each holds too (``state.locked_by``), in the same round trip;
        ``lockable``: why a lock could not be made, for each host where it could not."""
        targets = list(names) if names is not None else self.env.host_names
        return await each_host(targets, lambda name: discover_one(self.ctx, name, locks, lockable))

    async def releases(self, canaries: Sequence[str]) -> Catalogue:
        """The deploy dialog's list: ``deploy.releases`` on the canaries and the journal's."""
        return await list_releases(self.ctx, canaries)

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
        assume_previous: str | None = None,
        hosts: Sequence[str] | None = None,
        canary_phase: bool = True,
    ) -> ev.Outcome:
        """Lock, deploy the canaries, analyse; promote too if asked and the canary passed.

        ``assume_previous``: the version to roll back to on hosts that report none;
        ``hosts``: only the hosts these name (``select_hosts``); ``canary_phase`` False:
        straight to the waves.
        """
        self.env.validate_version(version)
        if assume_previous is not None:
            self.env.validate_version(assume_previous)
        only, scope = limited_to(self.env, hosts)
        plan = make_plan(self.env, canaries, canary_percent, only, canary_phase)
        await self.finish_stale_locks()
        open_one = self.open_deployment()
        if open_one is not None:
            raise ActionRefused(
                self.driven_elsewhere(open_one)
                or f"deployment #{open_one.id} of {open_one.version} is still open "
                f"({open_one.phase_label}): {open_one.way_out} first"
            )
        return await self._run(self._deploy(version, plan, auto_promote, assume_previous, scope))

    async def promote(
        self, *, all_waves: bool = True, retry: bool = False, skip: Sequence[str] = ()
    ) -> ev.Outcome:
        """Continue the open deployment to the next wave (or through every wave).

        ``retry``: deploy the hosts that failed again first; ``skip``: leave those failed
        hosts as they are (counted against ``max_failures``) and go on without them.
        """
        await self.finish_stale_locks()
        record = self._require_open("promote")
        if record.way_out is WayOut.NO_VERDICT and not retry and not skip:
            return await self._run(self._canary_again(all_waves))
        refused = self.promote_refused(record)
        if refused is not None:
            raise ActionRefused(refused)
        failed = self.promotion.failed()
        if retry and not failed:
            raise ActionRefused(f"deployment #{record.id}: no host failed, nothing to retry")
        refused = self.promotion.skip_refused(record.id, list(skip), failed) if skip else None
        if refused is not None:
            raise ActionRefused(refused)
        return await self._run(self._promote(all_waves, retry, list(skip)))

    async def analyse_again(self) -> ev.Outcome:
        """The canary phase of the open deployment again, when it stopped before a verdict
        (its process ended in it, or it halted there): the canaries not on the release yet
        get it, then a whole new analysis; promotion waits for the operator, as after
        ``deploy``."""
        await self.finish_stale_locks()
        record = self._require_open("analyse again")
        if record.way_out is not WayOut.NO_VERDICT:
            raise ActionRefused(f"deployment #{record.id} is {record.phase_doing}: {NOT_AGAIN}")
        return await self._run(self._canary_again(None))

    def hold(self) -> None:
        """Stop promoting after the wave in flight (or now, in a timed pause between waves)."""
        if (refused := self._hold_refused()) is not None:
            raise ActionRefused(refused)
        self.promotion.hold()
        self.bus.decision("hold", "after the wave in flight")

    def leave_halted(self) -> None:
        """The operator's answer to a failed host: stay halted (recorded, nothing runs)."""
        self._require_open("halt")
        self.bus.decision("halt", "left halted after a host failed")

    async def resume(self) -> ev.Outcome | None:
        """Undo a hold: if it has not taken effect, the waves simply go on (None); if the
        rollout stopped for it, promotion starts again as it was asked before."""
        if self.busy and self.promotion.hold_requested:
            self.promotion.release_hold()
            self.bus.decision("resume", "before the hold took effect")
            return None
        if self.state.held is None or self.state.phase is not ev.Phase.AWAITING_PROMOTION:
            raise ActionRefused("nothing to resume: the rollout is not held")
        await self.finish_stale_locks()
        self._require_open("resume")
        return await self._run(self._promote(self.promotion.all_waves, action="resume"))

    async def restore(self, version: str) -> ev.Outcome:
        """``rollback --to VERSION``: a known release (the journal's, or one a host runs)
        back on every host, in the file's waves with the health gate, no canary, no
        analysis, no pause; recorded as a rollback. Hosts already on it are left alone."""
        self.env.validate_version(version)
        known = self.journal.known_versions(self.env.name, self.env.app)
        unknown = unknown_to_restore(known, version, self.env)
        await self.finish_stale_locks()
        open_one = self.open_deployment()
        if open_one is not None:
            raise ActionRefused(
                self.driven_elsewhere(open_one)
                or f"deployment #{open_one.id} of {open_one.version} is still open "
                f"({open_one.phase_label}): roll it back (canarytui rollback) first"
            )
        if unknown is not None and version not in (await self.discover()).values():
            # Asked without locks first: a release no host runs (a typo) is refused before
            # any host is locked; the locks' own round trip asks again (``unless_running``).
            raise ActionRefused(f"{unknown}; nothing was changed")
        plan = Plan([], plan_waves(self.env.host_names, self.env.promote.waves))
        return await self._run(self._restore(version, plan, unknown))

    async def _restore(self, version: str, plan: Plan, unknown: str | None) -> ev.Outcome:
        await start_deployment(
            self.ctx, self.locks, version, plan, kind="rollback", unless_running=unknown
        )
        if (doubt := restore_doubt(self.journal, self.env, version)) is not None:
            self.bus.notice("warning", f"{doubt}: putting {version} back as asked")
        for name, was in self.state.previous.items():
            if was == version:
                self.bus.host(name, ev.HostState.DEPLOYED, version=version, detail="already on it")
        try:
            return await self.promotion.run(all_waves=True, decided=False, pauses=False)
        except asyncio.CancelledError:
            await self._interrupted()
            raise

    async def rollback(self, *, take_over: bool = False) -> ev.Outcome:
        """Roll back the open (or last) deployment everywhere it went; stops what runs.

        ``take_over``: the deployment is another machine's, known from the hosts' locks.
        """
        if take_over:
            return await self._run(self._take_over())
        if self.busy:
            running = self.open_deployment()  # a rollback --to is refused, never stopped
            if running is not None and running.kind == "rollback":
                raise ActionRefused(nothing_to_roll_back(running))
            await self._stop_for_rollback()
        await self.finish_stale_locks()
        record = self.open_deployment() or self.journal.last_deployment(self.env.name, self.env.app)
        if (refused := nothing_to_roll_back(record)) is not None or record is None:
            raise ActionRefused(refused)
        self._adopt(record)
        return await self._run(self._roll_back())

    async def _take_over(self) -> ev.Outcome:
        await takeover.take_over(self.ctx, self.locks)
        # Its number in this journal is a new one: the one its machine gave it is said.
        theirs = (self.locks.takeover_note or {}).get("deployment", "?")
        return await self._roll_back(f"(taken over from the hosts' locks: their #{theirs})")

    async def _roll_back(self, why: str = "") -> ev.Outcome:
        """The operator's rollback; stopped (Ctrl-C, a quit), it says so and stays open."""
        try:
            return await self.rollbacks.run(ev.Outcome.ROLLED_BACK, decided=True, why=why)
        except asyncio.CancelledError:
            await self._interrupted()
            raise

    def _require_open(self, action: str) -> DeploymentRecord:
        record = self.open_deployment()
        if record is None:
            raise ActionRefused(f"nothing to {action}: no deployment is open")
        self._adopt(record)
        return record

    # The rollout ----------------------------------------------------------------------

    async def _deploy(
        self,
        version: str,
        plan: Plan,
        auto_promote: bool,
        assume_previous: str | None,
        scope: str | None,
    ) -> ev.Outcome:
        await start_deployment(self.ctx, self.locks, version, plan, assume_previous, scope=scope)
        if not plan.canaries:  # no canary phase: the waves go straight on, each health-gated
            return await self._judged(None, auto_promote)
        return await self._judged(self.canary.run(), True if auto_promote else None)

    async def _canary_again(self, promote: bool | None) -> ev.Outcome:
        d = self.state.deployment
        assert d is not None
        then = {None: "", True: "; then every wave", False: "; then the next wave"}[promote]
        how = ev.stopped_in(self.state.phase)
        kept = await self.canary.still_on()  # (refused, nothing changed: a canary is down)
        self.bus.decision("analyse again", f"{how}, before a verdict{then}")
        try:
            await self.locks.ensure()
        except asyncio.CancelledError:
            await self._interrupted()  # the locks taken so far are freed
            raise
        await self.locks.stop_if_taken(d.token)
        return await self._judged(self.canary.run(kept), promote)

    async def _judged(
        self, canary: Awaitable[ev.Verdict] | None, promote: bool | None
    ) -> ev.Outcome:
        """The canary phase's verdict acted on (``canary`` None: no canary phase, the waves
        straight on): a fail rolls the canaries back, an inconclusive one stays open, a pass
        goes on if ``promote`` (every wave: True; the next: False) or waits for the operator."""
        try:
            if canary is None:
                return await self.promotion.run(all_waves=bool(promote), decided=False)
            verdict = await canary
            if verdict is ev.Verdict.FAIL:
                return await self.rollbacks.run(ev.Outcome.CANARY_FAILED, decided=False)
            self.bus.phase(ev.Phase.AWAITING_PROMOTION, wave=0)
            if verdict is ev.Verdict.INCONCLUSIVE:
                self.bus.notice(
                    "warning",
                    "analysis inconclusive: the deployment stays open; promote or roll back",
                )
                return ev.Outcome.INCONCLUSIVE
            if promote is not None:
                return await self.promotion.run(all_waves=promote, decided=False)
            return ev.Outcome.CANARY_PASSED
        except (HookFailed, FleetLost) as exc:  # before a verdict: the phase runs again
            self.state.watched = set()
            self.bus.phase(ev.Phase.HALTED)
            self.bus.notice(
                "error", str(exc) if isinstance(exc, FleetLost) else before_analysis(exc)
            )
            return ev.Outcome.HALTED
        except asyncio.CancelledError:
            await self._interrupted()
            raise

    async def _promote(
        self, all_waves: bool, retry: bool = False, skip: Sequence[str] = (), action: str = ""
    ) -> ev.Outcome:
        try:
            if retry:
                self.bus.decision("retry", listed(self.promotion.failed(), 10))
            if skip:
                self.bus.decision("skip", listed(skip, 10))
                self.promotion.skip(skip)
            return await self.promotion.run(
                all_waves,
                decided=True,
                action=action or ("continue" if retry or skip else "promote"),
            )
        except asyncio.CancelledError:
            await self._interrupted()
            raise
