"""Fleet commands: check (connect, probe, diagnose rules), unlock (stale locks)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from canarytui import events as ev
from canarytui.cli import runner
from canarytui.cli.analyze import findings_lines
from canarytui.cli.args import EXIT_ERROR, EXIT_OK
from canarytui.cli.reasons import as_earlier
from canarytui.config import load_env
from canarytui.textsafe import listed


def check(args: argparse.Namespace) -> int:
    """`check`: validate, connect to every host, print version and health, every
    analysis rule whose selectors match nothing on a host (a missing metric: exit 1), and
    every host where a deployment's lock cannot be made (exit 1);
    with ``--json``, the same as one object."""
    env = load_env(args.env)
    from canarytui.engine import Engine
    from canarytui.engine.locks import by_owner, describe_owner
    from canarytui.engine.supervise import each_host
    from canarytui.metrics.analysis import no_baseline, too_few_intervals
    from canarytui.metrics.diagnose import PROBLEM, diagnose, group, why_no_page
    from canarytui.metrics.page import picks
    from canarytui.metrics.sources import probe

    as_json = getattr(args, "json", False)
    if not as_json:
        print(f"{env.path}: valid; {len(env.hosts)} hosts, environment {env.name}, app {env.app}")
    journal = runner.journal(args)

    async def go() -> int:
        engine = Engine(env, journal)
        fleet = engine.fleet
        try:
            runner.asking(len(env.hosts), "connecting to")
            unlockable: dict[str, str] = {}  # why a deployment's lock could not be made
            versions = await engine.discover(lockable=unlockable)
            reachable = [
                h for h in env.host_names if engine.host_states[h] is not ev.HostState.UNREACHABLE
            ]
            rules = env.canary.analysis.rules
            wanted = picks(rules)
            probed = await each_host(reachable, lambda h: probe(fleet, env, h, wanted=wanted))
        finally:
            await fleet.close()
            journal.close()
        # Somebody's lock (a maintenance one, another deployment's): a deployment would be
        # refused. A finished deployment's of this journal is freed by the next one.
        held = {h: by for h, by in engine.state.locked_by.items() if not by.left_here}
        rows: list[dict[str, Any]] = []
        for name in env.host_names:
            up = engine.host_states[name] is not ev.HostState.UNREACHABLE
            sample = probed[name].sample if name in probed else None
            rows.append(
                {
                    "host": name,
                    "version": versions.get(name) if up else None,
                    "reachable": up,
                    "refused": None if up else engine.state.refused.get(name, "unreachable"),
                    # None: not known (unreachable, or its SSH lost while probed).
                    "healthy": None if not up or sample is None or sample.ok is None else sample.ok,
                    "detail": (sample.detail if sample else "")
                    if up
                    else _last_detail(engine, name),
                    "lock_problem": unlockable.get(name),
                    "locked_by": held[name].owner if name in held else None,
                }
            )
        findings = {
            h: diagnose(rules, found.page, why_no_page(env.health.metrics, found.sample.detail))
            for h, found in probed.items()
            if found.sample.ok is not None  # lost since discovery: said above
        }
        good = sum(1 for r in rows if r["healthy"])
        a = env.canary.analysis
        short = too_few_intervals(a.rules, a.duration, a.interval or env.health.interval)
        short = short if env.canary.enabled else None
        none = no_baseline(a) if env.canary.enabled else None
        unread = any(f.level == PROBLEM for found in findings.values() for f in found)
        versionless = [r["host"] for r in rows if r["reachable"] and r["version"] is None]
        problems = bool(unlockable or short or none or held or versionless) or unread
        code = EXIT_OK if good == len(rows) and not problems else EXIT_ERROR
        if as_json:
            print(
                json.dumps(
                    {
                        "env": env.name,
                        "app": env.app,
                        "hosts": rows,
                        "reachable_and_healthy": good,
                        "rule_findings": [
                            {
                                "rules": list(f.rules),
                                "level": f.level,
                                "message": f.message,
                                "hosts": hosts,
                            }
                            for f, hosts in group(findings)
                        ],
                        "analysis_problem": (short and f"analysis.duration {short}") or none,
                        "ok": code == EXIT_OK,
                    }
                )
            )
            return code
        width = max(len(h) for h in env.host_names)
        lost = as_earlier(
            env, {r["host"]: (r["refused"], r["detail"]) for r in rows if not r["reachable"]}
        )
        # The version column as wide as its widest (every row's state in line).
        wide = max([14, *(len(r["version"] or "(no version)") for r in rows if r["reachable"])])
        for row in rows:
            name = row["host"]
            if not row["reachable"]:
                where, why = lost[name]
                print(f"{name:<{width}}  {str(row['refused']).upper()}  {where}: {why}")
                continue
            state = {True: "healthy", False: "UNHEALTHY", None: "UNKNOWN"}[row["healthy"]]
            detail = f"  {row['detail']}" if row["detail"] else ""
            if row["healthy"] is None:  # an SSH failure: no word on the application
                detail = f"  health not read: {row['detail'] or 'no answer'}"
            if row["lock_problem"]:
                detail += f"  CANNOT LOCK: {row['lock_problem']}"
            if row["locked_by"]:
                detail += f"  LOCKED by {row['locked_by']}"
            print(f"{name:<{width}}  {row['version'] or '(no version)':<{wide}} {state}{detail}")
        print(f"== {good} of {len(rows)} hosts reachable and healthy")
        if unlockable:
            print(
                f"== a deployment would be refused: its lock cannot be made on "
                f"{listed(sorted(unlockable, key=env.host_names.index), 8)} (let the SSH user "
                "write its ~/.canarytui there, or take the host out of the file)"
            )
        for owner, names in by_owner({h: held[h].fields for h in env.host_names if h in held}):
            who = describe_owner(owner)
            print(f"== a deployment would be refused: {listed(names, 8)} locked by {who}")
        if versionless:
            print(
                f"== a deployment would be refused: {listed(versionless, 8)} report(s) no valid "
                "version (fix deploy.current, or deploy with --previous VERSION)"
            )
        if short:
            print(f"== analysis.duration {short}: every deployment's verdict would be inconclusive")
        if none:
            print(f"== {none}: every deployment's verdict would be inconclusive")
        lines = findings_lines(findings, len(env.hosts))
        for line in lines:
            print(line)
        if rules and not lines and findings:
            print(f"== every analysis rule's selectors match series on {len(findings)} host(s)")
        if unread:
            print(
                "   a deployment's analysis would read nothing for those rules "
                "(inconclusive, or a pass on zeros): fix them first"
            )
        return code

    return asyncio.run(go())


def _last_detail(engine: Any, name: str) -> str:
    return str(engine.details.get(name, ""))


def unlock(args: argparse.Namespace) -> int:
    """`unlock`: break stale locks, saying whose they were; an open deployment's need --force."""
    env = load_env(args.env)
    from canarytui.engine import Engine, lockscripts, takeover
    from canarytui.engine import locks as lock
    from canarytui.engine.supervise import each_host
    from canarytui.ssh import SshError, without_host

    journal = runner.journal(args)

    path = lock.local_lock_path(journal.state_dir, env.name, env.app)
    local = lock.read_local(path)
    mine = local.get("id") if local is not None and lock.is_maintenance(local) else None

    def is_open(owner: dict[str, Any]) -> bool:
        """Kept without --force: a deployment open in this journal, or unknown to it
        (another machine's, maybe running); a maintenance lock that is not this journal's
        own (``canarytui lock`` here): a colleague's, held on purpose."""
        if lock.is_maintenance(owner):
            return mine is None or owner.get("id") != mine
        token = owner.get("token")
        if not isinstance(token, str):
            return False  # an unreadable owner: nothing can continue it
        record = journal.by_token(token)  # (a refused start's never opened)
        return record is None or record.is_open

    refused: dict[str, dict[str, Any]] = {}  # where a lock was not broken: its owner
    if local is not None and is_open(local) and not args.force:
        refused[f"local lock {path}"] = local
    elif local is not None:
        lock.break_local(path)
        print(f"broke local lock {path}: it was held by {lock.describe_owner(local)}")
    else:
        print(f"no local lock at {path}")

    async def go() -> int:
        engine = Engine(env, journal)
        fleet = engine.fleet
        broken: dict[str, dict[str, Any]] = {}  # host -> whose lock it was
        failed: dict[str, str] = {}  # host -> why its lock could not be checked or broken
        try:
            runner.asking(len(env.hosts), "reading the lock of")
            found = await takeover.inspect(engine.ctx)
            targets = []
            for name, held in found.items():
                if held.error is not None:
                    why = without_host(env.host(name), str(held.error))
                    failed[name] = f"could not check its lock: {why}"
                elif held.owner is not None:
                    if is_open(held.owner) and not args.force:
                        refused[name] = held.owner
                    else:
                        targets.append(name)

            async def one(name: str) -> None:
                try:
                    result = await fleet.run(name, lockscripts.break_command(env.app, env.name))
                except SshError as exc:
                    failed[name] = (
                        f"could not break its lock: {without_host(env.host(name), str(exc))}"
                    )
                    return
                reply = lockscripts.parse_reply(result.stdout)
                if reply.has("HELD"):
                    broken[name] = reply.owner()

            await each_host(targets, one)
        finally:
            await fleet.close()
        # In the file's order, whatever order the hosts answered in; one line an owner.
        for name in env.host_names:
            if name in failed:
                print(f"{name}: {failed[name]}")
        in_order = {name: broken[name] for name in env.host_names if name in broken}
        for owner, where in lock.by_owner(in_order):
            print(f"broke the lock on {listed(where, 8)}: held by {lock.describe_owner(owner)}")
        print(
            f"== {len(broken)} host lock(s) broken"
            + (f", {len(failed)} host(s) could not be checked or unlocked" if failed else "")
        )
        for owner, where in lock.by_owner(refused):  # one line a deployment
            if lock.is_maintenance(owner):
                print(
                    f"   NOT broken: {listed(where, 8)}: held for maintenance by "
                    f"{lock.describe_owner(owner)}, not from this journal: ask them (they "
                    "end it with canarytui unlock), or break it anyway with --force."
                )
                continue
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
        return EXIT_OK if not failed and not refused else EXIT_ERROR

    try:
        return asyncio.run(go())
    finally:
        journal.close()
