"""Fleet commands: check (connect and probe), status (once), unlock (break stale locks)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from canarytui import events as ev
from canarytui.cli import runner
from canarytui.cli.args import EXIT_ERROR, EXIT_OK
from canarytui.cli.printers import when
from canarytui.config import load_env


def check(args: argparse.Namespace) -> int:
    """`check`: validate, connect to every host, print version and health."""
    env = load_env(args.env)
    from canarytui.engine import Engine
    from canarytui.engine.supervise import each_host
    from canarytui.metrics.sources import probe

    print(f"{env.path}: valid; {len(env.hosts)} hosts, environment {env.name}, app {env.app}")
    journal = runner.journal(args)

    async def go() -> int:
        engine = Engine(env, journal)
        fleet = engine.fleet
        try:
            versions = await engine.discover()
            reachable = [
                h for h in env.host_names if engine.host_states[h] is not ev.HostState.UNREACHABLE
            ]
            probed = await each_host(reachable, lambda h: probe(fleet, env, h))
            health = {h: sample for h, (sample, _) in probed.items()}
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
            return EXIT_OK if bad == 0 else EXIT_ERROR
        finally:
            await fleet.close()
            journal.close()

    return asyncio.run(go())


def _last_detail(engine: Any, name: str) -> str:
    return str(engine.details.get(name, ""))


def status(args: argparse.Namespace) -> int:
    """`status`: the open deployment and the fleet, once."""
    env = load_env(args.env)
    journal = runner.journal(args)
    from canarytui.engine import Engine

    async def go() -> int:
        engine = Engine(env, journal)
        try:
            record = engine.open_deployment()
            versions = await engine.discover()
        finally:
            await engine.fleet.close()
        if record is None:
            last = journal.last_deployment(env.name, env.app)
            print(
                f"{env.name}/{env.app}: no open deployment"
                + (
                    f" (last: #{last.id} {last.version} {last.outcome or last.phase_label})"
                    if last
                    else ""
                )
            )
            recorded: dict[str, Any] = {}
        else:
            print(
                f"{env.name}/{env.app}: deployment #{record.id} of {record.version} is OPEN: "
                f"{record.phase_label}" + (f", verdict {record.verdict}" if record.verdict else "")
            )
            print(f"   started by {record.user}@{record.machine} at {when(record.started_at)}")
            recorded = journal.hosts(record.id)
        width = max(len(h) for h in env.host_names)
        print(f"{'HOST':<{width}}  {'RUNNING':<14} {'RECORDED':<14} {'STATE':<15} ROLE")
        for name in env.host_names:
            rec = recorded.get(name)
            running = versions.get(name)
            reach = engine.host_states[name]
            shown = "(unreachable)" if reach is ev.HostState.UNREACHABLE else (running or "-")
            print(
                f"{name:<{width}}  {shown:<14} {(rec.current if rec else '') or '-':<14} "
                f"{(rec.state if rec else reach.value):<15} {rec.role if rec else ''}"
            )
        return EXIT_OK

    try:
        return asyncio.run(go())
    finally:
        journal.close()


def unlock(args: argparse.Namespace) -> int:
    """`unlock`: break the local and the hosts' locks, saying whose they were."""
    env = load_env(args.env)
    from canarytui.engine import locks as lock
    from canarytui.engine.supervise import each_host
    from canarytui.ssh import Fleet, SshError

    journal = runner.journal(args)
    path = lock.local_lock_path(journal.state_dir, env.name, env.app)
    held = lock.break_local(path)
    if held:
        print(f"broke local lock {path}: it was held by {lock.describe_owner(held)}")
    else:
        print(f"no local lock at {path}")

    async def go() -> int:
        fleet = Fleet(env)
        broken = 0
        errors = 0

        async def one(name: str) -> None:
            nonlocal broken, errors
            try:
                result = await fleet.run(name, lock.break_command(env.app, env.name))
            except SshError as exc:
                errors += 1
                print(f"{name}: could not check its lock: {exc}")
                return
            _, owner, _ = lock.parse_acquire(result.stdout)
            if result.stdout.startswith("HELD"):
                broken += 1
                print(f"{name}: broke lock held by {lock.describe_owner(owner)}")

        try:
            await each_host(env.host_names, one)
        finally:
            await fleet.close()
        print(
            f"== {broken} host lock(s) broken"
            + (f", {errors} host(s) unreachable" if errors else "")
        )
        record = journal.open_deployment(env.name, env.app)
        if record is not None:
            print(
                f"   deployment #{record.id} of {record.version} is still open "
                f"({record.phase_label}): promote or roll it back"
            )
        return EXIT_OK if errors == 0 else EXIT_ERROR

    try:
        return asyncio.run(go())
    finally:
        journal.close()
