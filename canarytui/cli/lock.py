"""`lock ENV -m REASON`: hold the environment for maintenance (every deployment refused).

The lock lives on the hosts (``engine.maintenance``), so a colleague's machine and the UI
are refused too, naming the reason, who and since when; ``canarytui unlock ENV`` from the
same journal releases it (from another, it needs ``--force``: a colleague's is held on
purpose), ``status`` shows it.

Exit status: 0 every host is held; 1 refused (the environment is locked already: the
holder is named; or this journal has an open deployment), or some hosts could not be
reached: the others stay held, which is enough to refuse any deployment (a deployment
needs every host's lock), and each unreachable host is named; when no host could be
locked, nothing is kept. 2 no (or an empty) ``-m`` reason.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from canarytui.cli import runner
from canarytui.cli.args import EXIT_ERROR, EXIT_INVALID, EXIT_OK
from canarytui.config import load_env
from canarytui.textsafe import harmless


def lock(args: argparse.Namespace) -> int:
    """`lock ENV -m REASON`: the local lock file and every host's lock, for maintenance."""
    reason = (args.message or "").strip()
    if not reason:
        print(
            "canarytui: lock: -m REASON must say why (it is shown to whoever is refused)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    env = load_env(args.env)
    from canarytui.engine import Engine
    from canarytui.engine.locks import describe_owner
    from canarytui.engine.maintenance import MaintenanceRefused, hold

    journal = runner.journal(args)

    async def go() -> Any:
        engine = Engine(env, journal)
        try:
            await engine.finish_stale_locks()
            runner.asking(len(env.hosts), "locking")
            return await hold(engine.ctx, reason)
        finally:
            await engine.fleet.close()

    try:
        held = asyncio.run(go())
    except MaintenanceRefused as exc:
        print(f"canarytui: refused: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        journal.close()
    for name, error in held.failed.items():
        print(f"{name}: NOT held: {harmless(error, 300)}", file=sys.stderr)
    total = len(env.hosts)
    if not held.locked:
        print(f"== nothing held: none of the {total} hosts could be locked", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"== {env.name}/{env.app} held for maintenance on {len(held.locked)} of {total} "
        f"hosts: {describe_owner(held.owner)}"
    )
    print(f"   deployments are refused from any machine until: canarytui unlock {env.path}")
    if held.failed:
        print(
            f"   {len(held.failed)} host(s) not held (above): a deployment is refused anyway "
            "(it needs every host's lock)"
        )
        return EXIT_ERROR
    return EXIT_OK


def maintenance_holders(
    found: dict[str, Any], env: Any, state_dir: Path
) -> tuple[dict[str, list[str]], set[str]]:
    """For `status`: who holds the environment for maintenance, and on which hosts (none
    named: this machine's local lock only); and which of them are not this journal's own
    (`canarytui lock` from here): a colleague's, that `unlock` breaks only with --force."""
    from canarytui.engine.locks import describe_owner, is_maintenance, local_lock_path, read_local

    local = read_local(local_lock_path(state_dir, env.name, env.app))
    mine = local.get("id") if local is not None and is_maintenance(local) else None
    by_owner: dict[str, list[str]] = {}
    theirs: set[str] = set()
    for name, held in found.items():
        if held.owner is not None and is_maintenance(held.owner):
            by_owner.setdefault(describe_owner(held.owner), []).append(name)
            if mine is None or held.owner.get("id") != mine:
                theirs.add(describe_owner(held.owner))
    if local is not None and is_maintenance(local):
        by_owner.setdefault(describe_owner(local), [])
    return by_owner, theirs


def maintenance_lines(holders: dict[str, list[str]], env: Any, theirs: set[str]) -> list[str]:
    """``maintenance_holders`` said: by whom, where, and how to end it (``theirs``: a
    colleague's, broken only with --force: ask them first)."""
    lines = []
    for owner, hosts in holders.items():
        if not hosts:  # this journal's local lock: the hosts' were broken (--force)
            lines.append(
                f"   HELD FOR MAINTENANCE by {owner} in this journal only: no host holds its "
                "lock now (broken with unlock --force?), so only deployments from this "
                "machine's journal are refused"
            )
        else:
            lines.append(
                f"   HELD FOR MAINTENANCE by {owner} on {len(hosts)} host(s): deployments "
                "are refused"
            )
        if owner in theirs:
            lines.append(
                f"   not this journal's: {owner} ends it (canarytui unlock {env.path}), or, "
                f"asked first, canarytui unlock {env.path} --force from here"
            )
        else:
            lines.append(f"   to release it: canarytui unlock {env.path}")
    return lines


def rest_state(held: Any) -> str:
    """A host outside any deployment, for `status`: unreachable, maintenance or idle."""
    from canarytui.engine.locks import is_maintenance

    if held.error is not None:
        return "unreachable"
    return "maintenance" if held.owner is not None and is_maintenance(held.owner) else "idle"
