"""The deployment's locks as the engine holds them: take, take over, lock late, release.

A lock belongs to the deployment (its token), so a later process continuing the same
deployment takes it over; see ``engine.locks`` for the lock files and remote scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from canarytui import events as ev
from canarytui.config import render
from canarytui.engine import locks
from canarytui.engine.bus import Context
from canarytui.engine.supervise import each_host
from canarytui.ssh import SshError

# States in which this deployment has not changed the host yet.
UNTOUCHED_STATES = {ev.HostState.UNKNOWN, ev.HostState.PENDING, ev.HostState.UNREACHABLE}
RELEASE_TIMEOUT = 10.0  # per host; a host that hangs keeps its lock for `unlock`

LockResults = dict[str, str | SshError | None]


def first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


class LockKeeper:
    """Which hosts this engine holds locked for its deployment, and the calls that change it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.holding: set[str] = set()

    def owner(self, token: str, deployment: int, version: str) -> locks.Owner:
        return locks.Owner(
            token=token,
            deployment=deployment,
            version=version,
            user=self.ctx.user,
            machine=self.ctx.machine,
        )

    def _local_path(self) -> Path:
        env = self.ctx.env
        return locks.local_lock_path(self.ctx.journal.state_dir, env.name, env.app)

    async def take(self, owner: locks.Owner, hosts: Sequence[str], discover: bool) -> LockResults:
        """Local lock, then every host's lock (with version discovery in the same trip).

        Returns each host's version (or the error that made it unreachable). On a lock
        held by someone else, releases what was taken and raises ``LockHeld``.
        """
        locks.acquire_local(self._local_path(), owner)
        results, held = await self.lock_hosts(owner, hosts, discover)
        if held:
            await self.release(owner.token)
            raise held[0]
        return results

    async def lock_hosts(
        self, owner: locks.Owner, hosts: Sequence[str], discover: bool
    ) -> tuple[LockResults, list[locks.LockHeld]]:
        env = self.ctx.env
        results: LockResults = {}
        held: list[locks.LockHeld] = []

        async def one(name: str) -> None:
            then = render(env.deploy.current, env.placeholders(name)) if discover else None
            command = locks.acquire_command(env.app, env.name, owner, then)
            try:
                result = await self.ctx.fleet.run(name, command)
            except SshError as exc:
                results[name] = exc
                return
            taken, holder, rest = locks.parse_acquire(result.stdout)
            if not taken:
                held.append(locks.LockHeld(f"host {name}", holder))
                return
            self.holding.add(name)
            results[name] = first_line(rest) if discover else None

        await each_host(hosts, one)
        return results, held

    async def release(self, token: str) -> None:
        env = self.ctx.env
        hosts = sorted(self.holding)
        self.holding.clear()
        command = locks.release_command(env.app, env.name, token)

        async def one(name: str) -> None:
            with contextlib.suppress(SshError):
                await self.ctx.fleet.run(name, command, timeout=RELEASE_TIMEOUT)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(each_host(hosts, one), RELEASE_TIMEOUT + 5.0)
        locks.release_local(self._local_path(), token)

    async def ensure(self) -> None:
        """Continue a deployment: take over its locks (ours by token) on every host."""
        state = self.ctx.state
        d = state.deployment
        assert d is not None
        owner = self.owner(d.token, d.id, d.version)
        hosts = d.canaries + [h for wave in d.plan for h in wave]
        # Discovery rides along: a host never reached before tells what it runs now.
        results = await self.take(owner, hosts, discover=True)
        learned = {}
        for name, result in results.items():
            if isinstance(result, SshError):
                self.ctx.bus.notice("warning", f"could not lock {name}: {result}", host=name)
            elif (
                state.previous.get(name) is None
                and result is not None
                and state.host_states.get(name) in UNTOUCHED_STATES
            ):
                learned[name] = state.previous[name] = result
        if learned:
            self.ctx.journal.set_previous_many(d.id, learned)

    async def late(self, name: str, failed: ev.HostState = ev.HostState.FAILED) -> bool:
        """Lock one host now; learn its version too if the deployment never knew it."""
        state = self.ctx.state
        d = state.deployment
        assert d is not None
        unknown = state.previous.get(name) is None
        owner = self.owner(d.token, d.id, d.version)
        found, held = await self.lock_hosts(owner, [name], discover=unknown)
        result = found.get(name)
        if held or isinstance(result, SshError):
            host_state = failed
            if isinstance(result, SshError) and failed is not ev.HostState.ROLLBACK_FAILED:
                host_state = ev.HostState.UNREACHABLE
            self.ctx.bus.host(name, host_state, detail=str(held[0] if held else result))
            return False
        if unknown:
            state.previous[name] = result
            self.ctx.journal.set_previous(d.id, name, result)
        return True
