"""Kill -9 anywhere: a headless release to N real OpenSSH hosts is SIGKILLed at many points,
then `status` and `rollback` run as new processes; prints what each point left.

    python benches/kill9.py --hosts 6 --points 24

A point is "after the Nth JSON event line" of `deploy --auto-promote --json` (each line is
an event already journaled), spread over the lock, the canary, the analysis, every wave and
the end. After recovery every host must run the stable version the journal says, with no
remote or local lock left and no traceback. Needs root and /usr/sbin/sshd.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kill_points import cli, deploy_killed_after, kill_and_recover, spread
from sshd_fleet import SshdFleet


def quick(doc: dict[str, Any]) -> None:
    doc["canary"]["analysis"].update(duration="1s", rules=[])
    doc["promote"].update(waves=[1, "50%", "100%"], pause="0s")


async def main(hosts: int, points: int) -> int:
    state = Path(tempfile.mkdtemp(prefix="canarytui-kill9-"))
    with SshdFleet.start(hosts) as fleet:
        env = fleet.write_env(edit=quick)
        started = time.monotonic()
        kinds, code = await deploy_killed_after(env, "2.0.0", state, None)
        print(f"reference run: exit {code}, {len(kinds)} events, {time.monotonic() - started:.1f}s")
        await cli("rollback", str(env), state_dir=state)
        chosen = sorted(set(spread(len(kinds), points)) | {kinds.index("deployment_finished") + 1})
        bad = 0
        print(f"{'point':>5}  {'killed after':<20} {'status':>6} {'rollback':>8}  result")
        for point in chosen:
            r = await kill_and_recover(fleet, env, state, point, "2.0.0", "1.0.0")
            bad += bool(r.problems)
            print(
                f"{point:>5}  {r.killed_after:<20} {r.status.code:>6} {r.rollback.code:>8}  "
                + ("ok" if not r.problems else "; ".join(r.problems))
            )
        print(f"== {len(chosen)} kill points, {bad} with a divergence")
        return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--points", type=int, default=24)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.hosts, args.points)))
