"""Traffic hooks: the file's commands at phase changes, on the operator's machine or a role's hosts.

``traffic.canary_start`` runs once the canaries run the release and passed the health
gate, before the analysis (users are sent only to a healthy canary); ``wave_start`` runs
before each wave's hosts are changed. A failing one halts the rollout there (the operator
rolls back or promotes again). ``complete`` runs at the end and ``rolled_back`` at the
start of a rollback (users back on the stable release before its hosts are changed); a
failure of either is an error notice, never a reason to stop. Placeholders: ``{hosts}``
(the phase's hosts, comma-separated), ``{wave}``, ``{percent}`` (the share of the whole
fleet on the new version once the phase is done), ``{version}``, ``{app}``, ``{env}``;
each value is shell-quoted. Every run is a ``StepResult`` (action ``traffic``) in the journal, and a
``TrafficShifted`` event says what the load balancer was told.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence

from canarytui import events as ev
from canarytui.config import render
from canarytui.engine.bus import Context
from canarytui.engine.discovery import discover_one
from canarytui.engine.supervise import each_host
from canarytui.journal import DeploymentRecord
from canarytui.ssh import SshError

# A hook is a quick call to a load balancer's API, not a deploy step.
HOOK_TIMEOUT = 60.0
LOCAL = "(local)"  # the StepResult's host for a hook run on the operator's machine
TAIL_BYTES = 64 * 1024  # what is kept of a local hook's output: its end
# A hook that exits but leaves a background process holding its output open is done: what
# it wrote in this much more time is kept, then nobody listens any more.
OUTPUT_GRACE = 1.0


class HookFailed(Exception):
    """A traffic hook exited non-zero, timed out or could not be run; the message says which."""


def before_analysis(exc: HookFailed) -> str:
    """What a deployment halted by ``canary_start`` says (before any analysis)."""
    return (
        f"{exc}: the analysis was not started; roll back, or fix it and promote: the canary "
        "phase runs again"
    )


def running_it(ctx: Context, version: str) -> list[str]:
    """The hosts that run ``version`` now: deployed it, or ran it before this deployment
    and are not changed yet (their steps run again in their wave)."""
    state = ctx.state
    return [
        h
        for h, s in state.host_states.items()
        if s is ev.HostState.DEPLOYED
        or (s is ev.HostState.PENDING and state.versions.get(h) == version)
    ]


def percent_after(ctx: Context, d: DeploymentRecord, kind: str, hosts: Sequence[str]) -> int:
    """The share of the fleet (in %) on deployment ``d``'s version once the phase is done.

    Never 0 while some host runs it, never 100 while some host does not: a load balancer
    told 0 % for one canary of 500 hosts would send it nobody, and the analysis would
    judge a canary without users. A deployment limited to some hosts (``deploy --hosts``)
    counts the others as they run (``read_the_others``): hosts left behind caught up make
    100 %, one zone of three about 33 %.
    """
    state, planned = ctx.state, set(d.planned_hosts)
    if kind == "rolled_back":
        # Each host it reached goes back to what it ran before: one that ran this release
        # already runs it still (a release deployed again, then rolled back: "0 %" would
        # send the users away from every host).
        done = {h for h in planned if state.previous.get(h) == d.version}
    elif kind == "complete":  # the hosts it reached; one failed or skipped (max_failures) not
        done = set(running_it(ctx, d.version)) & planned
    else:
        done = (set(hosts) | set(running_it(ctx, d.version))) & planned
    done |= {
        h for h in ctx.env.host_names if h not in planned and state.versions.get(h) == d.version
    }
    return share_of(len(done), len(ctx.env.hosts))


async def read_the_others(ctx: Context, d: DeploymentRecord) -> None:
    """What the hosts a limited deployment leaves out run, read once a process (a version
    read, no lock; the UI knows most already): ``{percent}`` is the whole fleet's share,
    theirs too, and a guess either way would send a release too many users (a canary) or
    too few (hosts left behind caught up: the few old ones would get them all)."""
    if ctx.state.others_read == d.id:
        return
    ctx.state.others_read = d.id
    planned, known = set(d.planned_hosts), ctx.state.versions
    others = [h for h in ctx.env.host_names if h not in planned and h not in known]
    await each_host(others, lambda name: discover_one(ctx, name))


def share_of(done: int, total: int) -> int:
    """``done`` hosts of ``total`` in %: never 0 while some host runs the release, never
    100 while some does not (see ``percent_after``)."""
    share = round(100 * done / (total or 1))
    if done and done < total:
        return min(99, max(1, share))
    return share


async def fire(ctx: Context, kind: str, hosts: Sequence[str], wave: int = 0) -> None:
    """Run the ``traffic.<kind>`` command if the file has one; ``HookFailed`` if it fails."""
    command_template: str | None = getattr(ctx.env.traffic, kind)
    d = ctx.state.deployment
    if not command_template or d is None:
        return
    if d.scope is not None and "{percent}" in command_template:
        await read_the_others(ctx, d)
    percent = percent_after(ctx, d, kind, hosts)
    values = {
        "hosts": ",".join(hosts),
        "wave": str(wave),
        "percent": str(percent),
        "version": d.version,
        "app": ctx.env.app,
        "env": ctx.env.name,
    }
    command = render(command_template, values)
    role = ctx.env.traffic.on
    if role is None:
        results = {LOCAL: await _run_local(command)}
    else:
        targets = [h.name for h in ctx.env.hosts if role in h.roles]
        runs = await asyncio.gather(*(_run_remote(ctx, name, command) for name in targets))
        results = dict(zip(targets, runs, strict=True))
    failed: list[str] = []
    for where, (status, output, took) in results.items():
        ctx.bus.emit(
            ev.StepResult(
                host=where,
                step=f"traffic.{kind}",
                action="traffic",
                exit_status=status,
                output=output,
                duration=took,
                deployment=d.id,
            )
        )
        if status != 0:
            said = "did not finish" if status is None else f"exited {status}"
            tail = output.strip()[-300:]
            failed.append(f"{where} {said}" + (f": {tail}" if tail else " (no output)"))
    ctx.bus.emit(
        ev.TrafficShifted(
            phase=kind,
            hosts=list(hosts),
            percent=percent,
            ok=not failed,
            version=d.version,
            deployment=d.id,
        )
    )
    if failed:
        raise HookFailed(f"traffic.{kind} failed on " + "; ".join(failed))


async def _run_local(command: str) -> tuple[int | None, str, float]:
    """The hook on the operator's machine, in its own process group, bounded in time and output."""
    started = time.monotonic()
    # A pipe of our own rather than asyncio's: a background process the hook leaves behind
    # may hold its write end for ever, and only our own read end can be closed at will.
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        return None, f"could not start: {exc}", time.monotonic() - started
    finally:
        os.close(write_fd)
    stream = asyncio.StreamReader()
    pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0)
    )
    tail = bytearray()

    async def read() -> None:
        while chunk := await stream.read(65536):
            tail.extend(chunk)
            del tail[:-TAIL_BYTES]

    def text() -> str:
        return tail.decode("utf-8", "replace")

    timeout = HOOK_TIMEOUT
    reader = asyncio.ensure_future(read())
    try:
        async with asyncio.timeout(timeout):
            await proc.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OUTPUT_GRACE):
                await asyncio.shield(reader)
    except (TimeoutError, asyncio.CancelledError) as exc:
        # The whole group: a shell's children (a curl, a sleep) go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return None, text() + f"\n(timed out after {timeout:g}s: stopped)", timeout
    finally:
        reader.cancel()
        pipe.close()
    return proc.returncode, text(), time.monotonic() - started


async def _run_remote(ctx: Context, name: str, command: str) -> tuple[int | None, str, float]:
    started = time.monotonic()
    try:
        result = await ctx.fleet.run(name, command, HOOK_TIMEOUT)
    except SshError as exc:
        return None, str(exc), time.monotonic() - started
    return result.exit_status, result.output, result.duration
