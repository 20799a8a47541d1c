"""The status command: the open deployment (from this journal, or the hosts' locks) and the
fleet, once, as a table or as one JSON object (for a team's bot or dashboard)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
from collections import Counter
from dataclasses import dataclass
from typing import Any

from canarytui import events as ev
from canarytui.cli import runner
from canarytui.cli.args import EXIT_OK
from canarytui.cli.lock import maintenance_holders, maintenance_lines, rest_state
from canarytui.cli.printers import column_widths, when
from canarytui.cli.reasons import grouped
from canarytui.config import Environment, load_env
from canarytui.journal import WayOut
from canarytui.textsafe import harmless, listed

# The table's columns' widths at the least (HOST, RUNNING, RECORDED, STATE).
_LEAST = (0, 14, 14, 15)

# What the table's RUNNING column shows for a host with no version, and how the count under
# the table says it.
_NOT_VERSIONS = {"(unreachable)": "unreachable", "-": "without a version"}


@dataclass
class Seen:
    """What `status` found: the hosts' locks and versions, and this journal's view."""

    env: Environment
    found: dict[str, Any]  # host -> takeover.HostLock
    record: Any  # the open deployment in this journal (DeploymentRecord), or None
    notes: list[str]  # why this process cannot act on it, if it cannot
    last: Any  # the last deployment, when none is open
    recorded: dict[str, Any]  # host -> HostRecord of the open deployment
    foreign: list[Any]  # takeover.ForeignDeployment not in this journal
    maintenance: dict[str, list[str]]  # owner -> hosts
    maintenance_theirs: set[str]  # the owners that are not this journal's own
    released: int | None  # a deployment whose leftover locks were released first
    # No process drives the open deployment now (it was driven from this machine, and
    # none of this machine holds it): a host it was changing was cut off, not in flight.
    stopped: bool = False
    driven: bool = False  # another live process of this machine drives it now
    # Locks a finished deployment (or a refused start) of this journal left: host -> whose.
    left: dict[str, str] | None = None
    traffic: dict[str, Any] | None = None  # what the open one last told the load balancer


def status(args: argparse.Namespace) -> int:
    """`status`: the open deployment (from this journal, or the hosts' locks) and the fleet."""
    env = load_env(args.env)
    journal = runner.journal(args, reads=True)
    from canarytui.engine import Engine, takeover
    from canarytui.engine.locks import left_behind

    async def go() -> Seen:
        engine = Engine(env, journal)
        try:
            released = await engine.finish_stale_locks()
            runner.asking(len(env.hosts), "reading the lock and version of")
            found = await engine.inspect_locks()
            record = engine.open_deployment()
            notes = []
            stopped = driven = False
            if record is not None:
                elsewhere = engine.driven_elsewhere(record)
                said = (elsewhere, engine.cannot_continue(record))
                notes = [s for s in said if s is not None]
                stopped, driven = engine.nobody_drives(record), elsewhere is not None
        finally:
            await engine.fleet.close()
        holders, theirs = maintenance_holders(found, env, journal.state_dir)
        return Seen(
            env=env,
            found=found,
            record=record,
            notes=notes,
            last=journal.last_deployment(env.name, env.app) if record is None else None,
            recorded=journal.hosts(record.id) if record is not None else {},
            traffic=journal.last_traffic(record.id) if record is not None else None,
            foreign=[
                f
                for f in takeover.deployments(found)
                if journal.by_token(f.token) is None  # (this journal's: not foreign)
            ],
            maintenance=holders,
            maintenance_theirs=theirs,
            released=released,
            stopped=stopped,
            driven=driven,
            left={
                h: f.describe()
                for f in takeover.deployments(found)
                if left_behind(journal, f.owner) is not None
                for h in f.hosts
            },
        )

    try:
        seen = asyncio.run(go())
    finally:
        journal.close()
    if getattr(args, "json", False):
        print(json.dumps(as_json(seen)))
    else:
        print_table(seen, str(journal.path))
    return EXIT_OK


@dataclass
class HostRow:
    """One host as `status` classes it, for the table and the JSON alike."""

    host: str
    running: str | None  # what it runs now (None: unreachable, or no version)
    error: str | None  # why it could not be read
    refused: str | None  # why, as `check --json` says it: unreachable, host key refused, ...
    record: Any  # its HostRecord in this journal's open deployment, or None
    other: Any  # the ForeignDeployment holding its lock, or None
    previous: str | None  # what it ran before the deployment holding its lock
    state: str  # the journal's, or locked, or at rest
    cut_off: bool = False  # changed when the process driving it stopped (``ev.CUT_OFF``)

    @property
    def shown(self) -> str:
        """The table's RUNNING column."""
        return "(unreachable)" if self.error is not None else (self.running or "-")

    @property
    def state_shown(self) -> str:
        """The table's STATE column: "deploy cut off" for a host cut off mid-step."""
        return ev.CUT_OFF[ev.HostState(self.state)] if self.cut_off else self.state


def host_rows(seen: Seen) -> list[HostRow]:
    held_by = {h: f for f in seen.foreign for h in f.hosts}
    rows = []
    for name in seen.env.host_names:
        lock = seen.found[name]
        rec = seen.recorded.get(name)
        other = held_by.get(name)
        state = rec.state if rec is not None else "locked" if other else rest_state(lock)
        if rec is None and other is None and name in (seen.left or {}):
            state = "locked (left)"
        cut_off = seen.stopped and state in ev.CUT_OFF
        error = str(lock.error) if lock.error is not None else None
        refused = lock.error.what if lock.error is not None else None
        running = lock.current if error is None else None
        rows.append(
            HostRow(name, running, error, refused, rec, other, lock.previous, state, cut_off)
        )
    return rows


def print_table(seen: Seen, journal_path: str) -> None:
    env, record = seen.env, seen.record
    rows = host_rows(seen)
    if seen.released is not None:
        print(f"released the locks deployment #{seen.released} left when it ended")
    if record is not None:
        print(
            f"{env.name}/{env.app}: deployment #{record.id} of {record.version} is OPEN: "
            + ev.phase_label(ev.Phase(record.phase), record.wave, record.waves, seen.stopped)
            + (f", verdict {record.verdict}" if record.verdict else "")
        )
        print(f"   started by {record.user}@{record.machine} at {when(record.started_at)}")
        told = seen.traffic
        if told is not None and told.get("ok") and told.get("percent"):
            # Users on the release while it stays open (a canary's share, interrupted).
            print(
                f"   traffic: the load balancer was told {told['percent']} % of the fleet on "
                f"{harmless(str(told.get('version') or record.version))} "
                f"(traffic.{told.get('phase')}, {when(told.get('at') or 0)})"
            )
        if record.scope is not None:
            print(
                f"   limited to {record.limited(len(env.hosts))}: --hosts {harmless(record.scope)}"
            )
        if not seen.driven:  # (a live process drives it: the note says where to act)
            print(f"   what is left: {record.way_out}")
            print(f"   next: {_commands(record.way_out, str(env.path))}")
        for said in seen.notes:
            print(f"   {said}")
        cut = [row.host for row in rows if row.cut_off]
        if cut:
            them = "it" if len(cut) == 1 else "them"
            again = f"promote deploys {them} again, rollback restores {them}"
            if record.kind == "rollback":  # (never undone: promote finishes it)
                again = f"promote puts {harmless(record.version)} back on {them}"
            elif record.phase == ev.Phase.ROLLING_BACK.value:  # (promote is refused)
                again = f"rollback restores {them}"
            print(
                f"   {listed(cut, 8)}: cut off mid-step when the process driving it stopped: "
                + again
            )
    else:
        last = seen.last
        said = f"{env.name}/{env.app}: no open deployment in this journal"
        if last is not None:
            said += f" (last: #{last.id} {last.version} {last.outcome or last.phase_label})"
        print(said)
    for other in seen.foreign:
        # Open on its machine, or ended there with a host it could not free: the locks
        # alone cannot tell (that machine's status can).
        print(
            f"   the hosts' locks: {other.describe()} holds {len(other.hosts)} host(s), not "
            f"in this journal ({journal_path}): open on its machine, or left there when it "
            "ended (a host unreachable then; its machine's canarytui status says which)"
        )
        print(
            f"   to roll it back from here: canarytui rollback {env.path} --take-over; if it "
            f"has ended: canarytui unlock {env.path} --force"
        )
    for line in maintenance_lines(seen.maintenance, env, seen.maintenance_theirs):
        print(line)
    running: Counter[str] = Counter()
    table = [("HOST", "RUNNING", "RECORDED", "STATE", "ROLE")]
    for row in rows:
        running[row.shown] += 1
        rec, other = row.record, row.other
        if rec is not None:
            table.append((row.host, row.shown, rec.current or "-", row.state_shown, rec.role))
        elif other is not None:  # its role in it is not known here: whose it is
            before = (row.previous or "-") + " (prev)"
            whose = f"#{other.owner.get('deployment', '?')} of {other.version}"
            table.append((row.host, row.shown, before, row.state, whose))
        else:
            table.append((row.host, row.shown, "-", row.state, ""))
    # Columns at least as wide as they were, wider for a long version or state, so that
    # every row lines up ("rollback cut off" is 16 characters).
    widths = column_widths(table, _LEAST)
    for cells in table:
        padded = [c.ljust(w) for c, w in zip(cells[:4], widths, strict=True)]
        print(f"{padded[0]}  {' '.join(padded[1:])} {cells[4]}".rstrip())
    # Why the hosts that could not be read could not, each reason once.
    errors = {row.host: (row.refused or "", row.error) for row in rows if row.error is not None}
    for line in grouped(env, errors):
        print(f"   not read: {line}")
    # Last, where a long table ends on the terminal: what the fleet runs, counted.
    parts = [f"{v} on {n}" for v, n in running.most_common() if v not in _NOT_VERSIONS]
    parts += [f"{running[k]} {word}" for k, word in _NOT_VERSIONS.items() if running[k]]
    print(f"{len(env.host_names)} host(s): {', '.join(parts)}")
    if seen.left:
        hosts = listed(list(seen.left), 8)
        print(
            f"   {hosts}: locked by {next(iter(seen.left.values()))}, which this journal "
            "left there (unreachable then): its next deployment frees it; canarytui unlock "
            "breaks it now"
        )
    left = catch_up(seen, rows)
    if left is not None:
        print(f"   {left}")


CATCH_UP_NAMED = 20  # hosts left behind named in the command that catches them up


def catch_up(seen: Seen, rows: list[HostRow]) -> str | None:
    """After a release to every host that completed, the hosts that answer with another
    version (left behind: unreachable when their wave came, or changed by hand since), and
    the command that puts the release on them alone. None: nothing to say (a deployment is
    open or held elsewhere, the last was limited or not complete, none is behind)."""
    last = seen.last
    if seen.record is not None or seen.foreign or seen.maintenance or last is None:
        return None
    if last.outcome != ev.Outcome.COMPLETE.value or last.kind != "deploy" or last.scope:
        return None
    behind = [row.host for row in rows if row.running and row.running != last.version]
    if not behind:
        return None
    said = f"{listed(behind, 8)}: not on {harmless(last.version)}, deployment #{last.id}'s"
    if len(behind) > CATCH_UP_NAMED:
        return said + " (canarytui deploy ... --hosts NAMES --no-canary catches them up)"
    path = shlex.quote(harmless(str(seen.env.path), 300))
    return (
        f"{said}; to catch up: canarytui deploy {path} {shlex.quote(last.version)} "
        f"--hosts {','.join(behind)} --no-canary"
    )


def as_json(seen: Seen) -> dict[str, Any]:
    """The same as one object: the open deployment (or the last), deployments known only
    from the hosts' locks, maintenance holds, and each host with what it runs now."""
    env, record, last = seen.env, seen.record, seen.last
    hosts = [
        {
            "host": row.host,
            "running": row.running,
            "reachable": row.error is None,
            "error": row.error,
            "refused": row.refused,
            "recorded": row.record.current if row.record is not None else None,
            "state": row.state,
            "cut_off": row.cut_off,
            "role": row.record.role if row.record is not None else None,
            "locked_by": row.other.describe() if row.other is not None else None,
            "left_lock": (seen.left or {}).get(row.host),  # this journal's, left there
        }
        for row in host_rows(seen)
    ]
    running = Counter(h["running"] for h in hosts if h["running"])
    return {
        "env": env.name,
        "app": env.app,
        "open": None
        if record is None
        else {
            "deployment": record.id,
            "kind": record.kind,
            "version": record.version,
            "phase": record.phase,
            "stopped": seen.stopped,  # no process drives it (the text's ", stopped")
            "verdict": record.verdict,
            "scope": record.scope,  # deploy --hosts as given; null: every host of the file
            "user": record.user,
            "machine": record.machine,
            "started_at": record.started_at,
            "what_is_left": record.way_out,
            "notes": seen.notes,
        },
        "last": None
        if last is None
        else {
            "deployment": last.id,
            "version": last.version,
            "outcome": last.outcome,
            "phase": last.phase,
        },
        "locked_elsewhere": [
            {
                "deployment": f.owner.get("deployment"),
                "version": f.version,
                "owner": f.describe(),
                "hosts": sorted(f.hosts),
            }
            for f in seen.foreign
        ],
        "maintenance": [{"owner": o, "hosts": h} for o, h in seen.maintenance.items()],
        "released_leftover_locks_of": seen.released,
        "traffic": None
        if seen.traffic is None
        else {k: seen.traffic.get(k) for k in ("phase", "percent", "ok", "version", "at")},
        "running": dict(running.most_common()),
        "hosts": hosts,
    }


def _commands(out: WayOut, env: str) -> str:
    """The commands that do what is left (``WayOut``), as a run's closing lines say them."""
    promote, rollback = f"canarytui promote {env}", f"canarytui rollback {env}"
    return {
        WayOut.ROLL_BACK_AGAIN: rollback,
        WayOut.CANARY_FAILED: rollback,
        WayOut.FINISH_PUTTING_BACK: promote,
        WayOut.NO_VERDICT: f"{promote} (analyses its canaries again), or {rollback}",
    }.get(out, f"{promote}, or {rollback}")
