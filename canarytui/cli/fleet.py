"""Fleet commands: check (connect, probe, diagnose rules), status (once), unlock (stale locks)."""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Any

from canarytui import events as ev
from canarytui.cli import runner
from canarytui.cli.analyze import findings_lines
from canarytui.cli.args import EXIT_ERROR, EXIT_OK
from canarytui.cli.lock import maintenance_lines, rest_state
from canarytui.cli.printers import when
from canarytui.config import load_env
from canarytui.textsafe import listed

# What the status table's RUNNING column shows for a host with no version, and how the
# count under the table says it.
_NOT_VERSIONS = {"(unreachable)": "unreachable", "-": "without a version"}


def check(args: argparse.Namespace) -> int:
    """`check`: validate, connect to every host, print version and health, and every
    analysis rule whose selectors match nothing on a host (a missing metric: exit 1)."""
    env = load_env(args.env)
    from canarytui.engine import Engine
    from canarytui.engine.supervise import each_host
    from canarytui.metrics.diagnose import PROBLEM, diagnose, why_no_page
    from canarytui.metrics.page import picks
    from canarytui.metrics.sources import probe

    print(f"{env.path}: valid; {len(env.hosts)} hosts, environment {env.name}, app {env.app}")
    journal = runner.journal(args)

    async def go() -> int:
        engine = Engine(env, journal)
        fleet = engine.fleet
        try:
            runner.asking(len(env.hosts), "connecting to")
            versions = await engine.discover()
            reachable = [
                h for h in env.host_names if engine.host_states[h] is not ev.HostState.UNREACHABLE
            ]
            rules = env.canary.analysis.rules
            wanted = picks(rules)
            probed = await each_host(reachable, lambda h: probe(fleet, env, h, wanted=wanted))
            health = {h: found.sample for h, found in probed.items()}
            bad = 0
            width = max(len(h) for h in env.host_names)
            for host in env.hosts:
                name = host.name
                if engine.host_states[name] is ev.HostState.UNREACHABLE:
                    bad += 1
                    print(f"{name:<{width}}  UNREACHABLE  {_last_detail(engine, name)}")
                    continue
                sample = health.get(name)
                state = "healthy" if sample and sample.ok else "UNHEALTHY"
                bad += 0 if sample and sample.ok else 1
                detail = f"  {sample.detail}" if sample and sample.detail else ""
                print(
                    f"{name:<{width}}  {versions.get(name) or '(no version)':<14} {state}{detail}"
                )
            print(f"== {len(env.hosts) - bad} of {len(env.hosts)} hosts reachable and healthy")
            findings = {
                h: diagnose(rules, found.page, why_no_page(env.health.metrics, found.sample.detail))
                for h, found in probed.items()
                if found.sample.ok is not None  # lost since discovery: said above
            }
            lines = findings_lines(findings, len(env.hosts))
            for line in lines:
                print(line)
            if rules and not lines and findings:
                print(f"== every analysis rule's selectors match series on {len(findings)} host(s)")
            problems = any(f.level == PROBLEM for found in findings.values() for f in found)
            if problems:
                print(
                    "   a deployment's analysis would read nothing for those rules "
                    "(inconclusive, or a pass on zeros): fix them first"
                )
            return EXIT_OK if bad == 0 and not problems else EXIT_ERROR
        finally:
            await fleet.close()
            journal.close()

    return asyncio.run(go())


def _last_detail(engine: Any, name: str) -> str:
    return str(engine.details.get(name, ""))


def status(args: argparse.Namespace) -> int:
    """`status`: the open deployment (from this journal, or the hosts' locks) and the fleet."""
    env = load_env(args.env)
    journal = runner.journal(args)
    from canarytui.engine import Engine, takeover

    async def go() -> int:
        engine = Engine(env, journal)
        try:
            finished = await engine.finish_stale_locks()
            if finished is not None:
                print(f"released the locks deployment #{finished} left when it ended")
            runner.asking(len(env.hosts), "reading the lock and version of")
            found = await engine.inspect_locks()
            record = engine.open_deployment()
        finally:
            await engine.fleet.close()
        recorded: dict[str, Any] = {}
        foreign = [
            f for f in takeover.deployments(found) if journal.deployment_by_token(f.token) is None
        ]
        if record is not None:
            print(
                f"{env.name}/{env.app}: deployment #{record.id} of {record.version} is OPEN: "
                f"{record.phase_label}" + (f", verdict {record.verdict}" if record.verdict else "")
            )
            print(f"   started by {record.user}@{record.machine} at {when(record.started_at)}")
            print(f"   what is left: {record.way_out}")
            for said in (engine.driven_elsewhere(record), engine.cannot_continue(record)):
                if said is not None:
                    print(f"   {said}")
            recorded = journal.hosts(record.id)
        else:
            last = journal.last_deployment(env.name, env.app)
            print(
                f"{env.name}/{env.app}: no open deployment in this journal"
                + (
                    f" (last: #{last.id} {last.version} {last.outcome or last.phase_label})"
                    if last
                    else ""
                )
            )
        for other in foreign:
            print(
                f"   the hosts' locks: {other.describe()} is OPEN on {len(other.hosts)} "
                f"host(s), not in this journal ({journal.path})"
            )
            print(f"   to roll it back from here: canarytui rollback {env.path} --take-over")
        for line in maintenance_lines(found, env, journal.state_dir):
            print(line)
        held_by = {h: f for f in foreign for h in f.hosts}
        width = max(len(h) for h in env.host_names)
        running: Counter[str] = Counter()
        print(f"{'HOST':<{width}}  {'RUNNING':<14} {'RECORDED':<14} {'STATE':<15} ROLE")
        for name in env.host_names:
            lock = found[name]
            shown = "(unreachable)" if lock.error is not None else (lock.current or "-")
            running[shown] += 1
            rec = recorded.get(name)
            if rec is not None:
                line = f"{(rec.current or '-'):<14} {rec.state:<15} {rec.role}"
            elif name in held_by:
                before = (lock.previous or "-") + " (prev)"
                other = held_by[name]  # its role in it is not known here: whose it is
                whose = f"#{other.owner.get('deployment', '?')} of {other.version}"
                line = f"{before:<14} {'locked':<15} {whose}"
            else:
                line = f"{'-':<14} {rest_state(lock):<15}"
            print(f"{name:<{width}}  {shown:<14} {line}".rstrip())
        # Last, where a long table ends on the terminal: what the fleet runs, counted.
        parts = [f"{v} on {n}" for v, n in running.most_common() if v not in _NOT_VERSIONS]
        parts += [f"{running[k]} {word}" for k, word in _NOT_VERSIONS.items() if running[k]]
        print(f"{len(env.host_names)} host(s): {', '.join(parts)}")
        return EXIT_OK

    try:
        return asyncio.run(go())
    finally:
        journal.close()


def unlock(args: argparse.Namespace) -> int:
    """`unlock`: break stale locks, saying whose they were; an open deployment's need --force."""
    env = load_env(args.env)
    from canarytui.engine import Engine, lockscripts, takeover
    from canarytui.engine import locks as lock
    from canarytui.engine.supervise import each_host
    from canarytui.ssh import SshError

    journal = runner.journal(args)

    def is_open(token: object) -> bool:
        """Open in this journal, or unknown to it (another machine's, maybe running)."""
        if not isinstance(token, str):
            return False  # an unreadable owner: nothing can continue it
        record = journal.deployment_by_token(token)
        return record is None or record.is_open

    path = lock.local_lock_path(journal.state_dir, env.name, env.app)
    local = lock.read_local(path)
    refused: dict[str, dict[str, Any]] = {}  # where a lock was not broken: its owner
    if local is not None and is_open(local.get("token")) and not args.force:
        refused[f"local lock {path}"] = local
    elif local is not None:
        lock.break_local(path)
        print(f"broke local lock {path}: it was held by {lock.describe_owner(local)}")
    else:
        print(f"no local lock at {path}")

    async def go() -> int:
        engine = Engine(env, journal)
        fleet = engine.fleet
        broken = 0
        try:
            runner.asking(len(env.hosts), "reading the lock of")
            found = await takeover.inspect(engine.ctx)
            targets = []
            for name, held in found.items():
                if held.error is not None:
                    print(f"{name}: could not check its lock: {held.error}")
                elif held.owner is not None:
                    if is_open(held.owner.get("token")) and not args.force:
                        refused[name] = held.owner
                    else:
                        targets.append(name)

            async def one(name: str) -> None:
                nonlocal broken
                try:
                    result = await fleet.run(name, lockscripts.break_command(env.app, env.name))
                except SshError as exc:
                    print(f"{name}: could not break its lock: {exc}")
                    return
                reply = lockscripts.parse_reply(result.stdout)
                if reply.has("HELD"):
                    broken += 1
                    print(f"{name}: broke lock held by {lock.describe_owner(reply.owner())}")

            await each_host(targets, one)
        finally:
            await fleet.close()
        errors = sum(1 for held in found.values() if held.error is not None)
        print(
            f"== {broken} host lock(s) broken"
            + (f", {errors} host(s) unreachable" if errors else "")
        )
        for owner, where in lock.by_owner(refused):  # one line a deployment
            print(
                f"   NOT broken: {listed(where, 8)}: held by {lock.describe_owner(owner)}, "
                "a deployment that may still be open. Breaking these locks lets another "
                "deployment start while those hosts may be half-way through it. Roll it "
                "back instead (canarytui rollback "
                f"{env.path}, or from another machine: canarytui rollback {env.path} "
                "--take-over), or break them anyway with --force."
            )
        record = journal.open_deployment(env.name, env.app)
        if record is not None:  # a live process of this machine driving it says so
            print(
                "   "
                + (
                    engine.driven_elsewhere(record)
                    or f"deployment #{record.id} of {record.version} is still open "
                    f"({record.phase_label}): {record.way_out}"
                )
            )
        return EXIT_OK if errors == 0 and not refused else EXIT_ERROR

    try:
        return asyncio.run(go())
    finally:
        journal.close()
