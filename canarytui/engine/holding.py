"""The deployment's locks as the engine holds them: take, take over, lock late, release.

A lock belongs to the deployment (its token), so a later process continuing the same
deployment takes it over; see ``locks`` (owners, the local file) and ``lockscripts``
(the hosts' side). What a host replies is trusted only once parsed and validated.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from canarytui import events as ev
from canarytui import openfiles
from canarytui.config import render
from canarytui.engine import locks, lockscripts
from canarytui.engine.bus import Context
from canarytui.engine.leftlocks import Left, lock_freeing_left, say_freed
from canarytui.engine.lockerrors import LockRefused, TakenOver, UnreadableReply
from canarytui.engine.reported import reported_version
from canarytui.engine.supervise import each_host
from canarytui.engine.waiting import waits_said
from canarytui.ssh import OwnScript, Script, SshError, without_host
from canarytui.textsafe import listed

# States in which this deployment has not changed the host yet.
UNTOUCHED_STATES = {ev.HostState.UNKNOWN, ev.HostState.PENDING, ev.HostState.UNREACHABLE}
RELEASE_TIMEOUT = 10.0  # per host; a host that hangs keeps its lock (see left_behind)
# A rollback is likeliest minutes after a release: its connections stay open that long.
KEEP_AFTER_RELEASE = 300.0

LockResults = dict[str, str | SshError | None]


class LockKeeper:
    """Which hosts this engine holds locked for its deployment, and the calls that change it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.holding: set[str] = set()
        ctx.fleet.pinned = self.holding  # the deployment's connections are kept open
        # Each locked host's shell: the lock's session stays open, and the host's steps,
        # health gate and release go down it (one session a host for a whole release).
        self.shells: dict[str, Script] = {}
        # After a take-over, the note the release leaves on the hosts for the first machine.
        self.takeover_note: dict[str, Any] | None = None
        # Hosts held since before the operator's last decision and not locked again for it:
        # the next script each runs takes its lock again first (``check``), in the same
        # round trip, rather than every host being locked again before any is changed.
        self.unchecked: set[str] = set()
        # The note a host's check found: another machine rolled the deployment back.
        self.taken: dict[str, Any] | None = None
        # Hosts that may carry the deployment's lock though it is not held here, so the
        # release tries them too: locked by an earlier process and not again here
        # (unreachable), or whose lock command was cut off in flight (Ctrl-C).
        self.left_locked: set[str] = set()
        self.answered: set[str] = set()  # hosts that have answered the locks being taken
        # The shell, and its session, that defined a host's lock check (``lockcheck``).
        self.checks: dict[str, tuple[Script, int] | None] = {}
        self.unreleased: set[str] = set()  # hosts a release could not free (unreachable)
        self.freed_later: list[str] = []  # freed refused starts' locks: said once open

    def owner(self, token: str, deployment: int, version: str) -> locks.Owner:
        return locks.Owner(
            token=token,
            deployment=deployment,
            version=version,
            user=self.ctx.user,
            machine=self.ctx.machine,
        )

    def local_path(self) -> Path:
        env = self.ctx.env
        return locks.local_lock_path(self.ctx.journal.state_dir, env.name, env.app)

    async def take(self, owner: locks.Owner, hosts: Sequence[str], discover: bool) -> LockResults:
        """Local lock, then every host's lock (with version discovery in the same trip).

        Returns each host's version (or the error that made it unusable). On a lock
        held by someone else, releases what was taken and raises ``LockHeld``.
        """
        locks.acquire_local(self.local_path(), owner)
        try:
            results, held = await self.lock_hosts(owner, hosts, discover)
        except TakenOver:
            await self.release(owner.token)
            raise
        if held:
            await self.release(owner.token)
            raise _together(held, hosts)
        return results

    async def lock_hosts(
        self, owner: locks.Owner, hosts: Sequence[str], discover: bool
    ) -> tuple[LockResults, list[locks.LockHeld]]:
        env = self.ctx.env
        fleet = self.ctx.fleet
        results: LockResults = {}
        held: list[locks.LockHeld] = []
        taken: list[dict[str, Any]] = []
        freed: list[tuple[Left, str]] = []  # a lock of ours left there, and the host freed

        async def one(name: str) -> None:
            current = render(env.deploy.current, env.placeholders(name)) if discover else None
            known = self.ctx.state.previous.get(name)
            taking = self.taking
            command = lockscripts.acquire_command(
                env.app, env.name, owner, current, known, taking=taking
            )
            mine = lockscripts.check_function(env.app, env.name, owner, taking)
            command = OwnScript(mine + command)
            try:
                result, reply, left = await lock_freeing_left(
                    self.ctx, name, command, self.shell(name)
                )
                if left is not None and reply.has("LOCKED"):
                    freed.append((left, name))
            except SshError as exc:
                self.let_go(name)
                results[name] = exc
                return
            except asyncio.CancelledError:
                shell = self.shells.get(name)
                if shell is not None and shell.sent:  # its lock may be made all the same
                    self.left_locked.add(name)
                raise
            if reply.has("LOCKED"):
                self.holding.add(name)
                shell = self.shells.get(name)  # its session knows the check (``lockcheck``)
                self.checks[name] = (shell, shell.opened) if shell is not None else None
                self.unchecked.discard(name)
                self.left_locked.discard(name)
                results[name] = reported_version(env, reply.sections.get("PREVIOUS"))
                return
            if reply.has("TAKEN"):
                taken.append(reply.owner("TAKEN"))
            elif reply.has("HELD"):
                held.append(locks.LockHeld(f"host {name}", reply.owner("HELD")))
            elif reply.has("UNLOCKABLE"):
                results[name] = lockscripts.Unlockable(fleet.host(name), reply)
            else:
                results[name] = UnreadableReply(
                    fleet.host(name),
                    "its reply to the lock command could not be read "
                    f"(exit {result.exit_status}): {result.output.strip()[-200:]!r}",
                )
                # The lock may have been made before the reply went wrong: never leave it.
                await self._release_on(
                    name, lockscripts.release_command(env.app, env.name, owner.token)
                )
            self.let_go(name)

        async def answering(name: str) -> None:
            try:
                await one(name)
            finally:
                self.answered.add(name)

        self.answered = set()
        await each_host(hosts, answering)
        self.freed_later = say_freed(self.ctx, freed)
        if taken:
            raise TakenOver(taken[0])
        return results, held

    def shell(self, name: str) -> Script:
        """The host's shell for this deployment (opened by its first command)."""
        shell = self.shells.get(name)
        if shell is None:
            shell = self.shells[name] = self.ctx.fleet.shell()
        return shell

    def let_go(self, name: str) -> None:
        """End the host's shell (it reads the end of its input: nothing more runs)."""
        shell = self.shells.pop(name, None)
        if shell is not None:
            shell.close()

    async def release(self, token: str) -> None:
        """Free our locks (remote first, then local); after a take-over, leave its note.

        Each host's release goes down its shell, which then ends; a host whose shell was
        lost is released in a session of its own."""
        env = self.ctx.env
        hosts = sorted(self.holding | self.left_locked)
        self.holding.clear()
        self.left_locked.clear()
        self.unchecked.clear()
        self.checks.clear()
        self.taken = None
        note, self.takeover_note = self.takeover_note, None
        command = lockscripts.release_command(env.app, env.name, token, note)
        released: set[str] = set()

        async def one(name: str) -> None:
            if await self._release_on(name, command):
                released.add(name)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RELEASE_TIMEOUT + 5.0):
                await each_host(hosts, one)
        for name in list(self.shells):  # none, unless the release ran out of time
            self.let_go(name)
        kept = [name for name in hosts if name not in released]
        self.unreleased.update(kept)
        if kept:
            self.ctx.bus.notice(
                "warning",
                f"the lock on {listed(kept, 8)} could not be released (unreachable): the "
                "next deployment from this journal frees it; `canarytui unlock` breaks it "
                "from anywhere",
                host=kept[0] if len(kept) == 1 else None,
            )
        locks.release_local(self.local_path(), token)
        self.ctx.fleet.keep_open(hosts, KEEP_AFTER_RELEASE)

    async def ensure(self, only: Collection[str] | None = None) -> dict[str, str]:
        """Continue a deployment (an operator's promote or rollback): take over its locks
        (ours by token) on the hosts this process does not hold, before any is changed; the
        ones it holds are checked in their next script (``check``), a round trip saved on
        each. A take-over found there is in ``taken`` (the caller raises ``TakenOver``).
        ``only``: the hosts to lock now (a rollback's); the others are not waited for (a
        hung one held a rollback for its timeout): one that is changed is locked at its turn
        (``late``), the locks of the rest are freed at the release.

        Returns the version each host locked here printed: what it ran when its lock was
        made (for a lock made now, what it runs now)."""
        state = self.ctx.state
        d = state.deployment
        assert d is not None
        owner = self.owner(d.token, d.id, d.version)
        hosts = d.planned_hosts
        short = openfiles.shortage(len(hosts), self.ctx.fleet.open_files)
        if short is not None:  # continued all the same: a rollback is never refused
            self.ctx.bus.notice("warning", f"{short}: hosts past the limit will fail")
        self.unchecked = {h for h in hosts if h in self.holding}
        self.taken = None
        unheld = self.ctx.state.unreachable_first(h for h in hosts if h not in self.unchecked)
        # Unreachable since it started (skipped since, maybe): never locked by it, no lock
        # to free (or say left). A skipped host is not changed by a promote: not locked
        # again, its lock (if it took one) freed at the release.
        out, before = {ev.HostState.UNREACHABLE, ev.HostState.SKIPPED}, state.previous
        never = {h for h in unheld if state.host_states.get(h) in out and before.get(h) is None}
        skipped = set(state.in_states(unheld, {ev.HostState.SKIPPED}))
        if only is not None or skipped:
            keep = set(unheld) - skipped if only is None else set(only)
            self.left_locked.update(h for h in unheld if h not in keep and h not in never)
            unheld = [h for h in unheld if h in keep]
        if not unheld:
            locks.acquire_local(self.local_path(), owner)  # as take() does: still ours?
            return {}
        # Seconds at a thousand hosts.
        self.ctx.bus.notice("info", f"locking {len(unheld)} host(s) again for deployment #{d.id}")
        # Discovery rides along: a host never reached before tells what it ran first.
        async with waits_said(self.ctx.bus, self, unheld):
            results = await self.take(owner, unheld, discover=True)
        learned = {}
        lost = [name for name in unheld if isinstance(results.get(name), SshError)]
        self.left_locked.update(h for h in lost if h not in never)
        if lost:  # one notice however many (a host's turn tries again and says why)
            self.ctx.bus.notice(
                "warning",
                f"could not lock {len(lost)} host(s): {listed(lost, 8)} "
                f"({without_host(self.ctx.env.host(lost[0]), str(results[lost[0]]))}); "
                "each is tried again at its turn",
                host=lost[0] if len(lost) == 1 else None,
            )
        for name, result in results.items():
            if (
                isinstance(result, str)
                and state.previous.get(name) is None
                and state.host_states.get(name) in UNTOUCHED_STATES
            ):
                learned[name] = state.previous[name] = result
        if learned:
            self.ctx.journal.set_previous_many(d.id, learned)
        return {name: v for name, v in results.items() if isinstance(v, str)}

    def untaken(self) -> bool:
        """No host's check found the deployment rolled back by another machine."""
        return self.taken is None

    async def stop_if_taken(self, token: str) -> None:
        """After hosts were checked: if one found the deployment taken over by another
        machine, raise ``TakenOver``, having freed what is left of our locks once it rolled
        back; while it rolls back, the hosts' locks (the same token) are its own: let be."""
        if self.taken is not None:
            note = self.taken
            if note.get("outcome") == "rolled back":
                await self.release(token)
            else:
                for name in list(self.shells):
                    self.let_go(name)
                for held in (self.holding, self.left_locked, self.unchecked):
                    held.clear()
                locks.release_local(self.local_path(), token)
            raise TakenOver(note)

    @property
    def taking(self) -> bool:
        """This process rolls back a deployment taken over from another machine: the note
        it left on the hosts is its own, no reason to stop."""
        d = self.ctx.state.deployment
        return self.takeover_note is not None or (d is not None and d.taken_over)

    async def late(self, name: str, failed: ev.HostState = ev.HostState.FAILED) -> bool:
        """Lock one host now; learn its version too if the deployment never knew it.
        Raises ``LockRefused`` when it finds the deployment rolled back by another machine."""
        state = self.ctx.state
        d = state.deployment
        assert d is not None
        unknown = state.previous.get(name) is None
        owner = self.owner(d.token, d.id, d.version)
        try:
            found, held = await self.lock_hosts(owner, [name], discover=unknown)
        except TakenOver as exc:  # as a lock check finds it (``checked``): left as it is
            self.taken = self.taken or exc.note
            raise LockRefused("left as it is: another machine rolled it back", taken=True) from None
        result = found.get(name)
        if held or isinstance(result, SshError):
            host_state = failed
            gone = isinstance(result, SshError) and not isinstance(result, lockscripts.Unlockable)
            if gone and failed is not ev.HostState.ROLLBACK_FAILED:
                host_state = ev.HostState.UNREACHABLE
            if held:
                self.ctx.bus.host(name, host_state, detail=str(held[0]))
            else:
                assert isinstance(result, SshError)
                self.ctx.bus.lost(name, host_state, result)
            return False
        if unknown:
            if result is None and failed is ev.HostState.FAILED:
                await self._unlock_one(name, d.token)
                self.ctx.bus.host(
                    name,
                    failed,
                    detail="not deployed: it reports no valid version, so it could not be "
                    "rolled back (check deploy.current on it)",
                )
                return False
            state.previous[name] = result
            self.ctx.journal.set_previous(d.id, name, result)
        return True

    async def _unlock_one(self, name: str, token: str) -> None:
        env = self.ctx.env
        self.holding.discard(name)
        await self._release_on(name, lockscripts.release_command(env.app, env.name, token))

    async def _release_on(self, name: str, command: str) -> bool:
        """A release command, the last script of the host's shell (or, that shell lost, in
        a session of its own); then the shell is let go. False: the host failed it and
        keeps its lock (the next deployment of this journal frees it: ``left_behind``)."""
        try:
            await self.ctx.fleet.run(
                name, command, RELEASE_TIMEOUT, shell=self.shells.get(name), keep=False
            )
        except SshError:
            return False
        finally:
            self.let_go(name)
        return True

    async def finish_stale(self) -> int | None:
        """Locks left by a deployment of ours that is over (killed between its end and the
        release): release them now. Returns that deployment's number, if any."""
        held = locks.read_local(self.local_path())
        token = held.get("token") if held else None
        if not isinstance(token, str):
            return None
        record = self.ctx.journal.deployment_by_token(token)
        if record is None or record.is_open:
            return None
        if locks.releasing(self.ctx.journal, record):
            return None  # its process lives: releasing them now (at scale, seconds)
        self.holding.update(record.planned_hosts)
        await self.release(token)
        return record.id


def _together(held: list[locks.LockHeld], planned: Sequence[str]) -> locks.LockHeld:
    """The refusal: the first host's lock, and how many hosts the same owner holds (a
    maintenance of the whole environment read as one host's)."""
    first = held[0]

    def same(owner: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in owner.items() if k != "since"}  # locked one by one

    his = {h.where.removeprefix("host ") for h in held if same(h.owner) == same(first.owner)}
    if len(his) < 2:
        return first
    names = [n for n in planned if n in his]  # in the file's order, not the replies'
    return locks.LockHeld(f"{len(names)} of {len(planned)} hosts ({listed(names, 3)})", first.owner)
