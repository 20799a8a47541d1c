"""A connection's first command against its later ones, on real OpenSSH: what a login costs
before the first command can run.

    python benches/first_session.py --hosts 20

For each host in turn (one at a time: latency, not load), bare asyncssh with the fan-out
floor's options logs in, runs ``true`` twice, and closes; then again with a pause after the
login. Prints the medians (ms) of the login, the first command, the second, and the first
after the pause. On this machine the first command took ~45 ms and the second ~2 ms: after
the login sshd sends its host keys (``hostkeys-00@openssh.com``) and then the session's
confirmation, and until a session starts it has no TCP_NODELAY, so Nagle holds the
confirmation until the host keys are acknowledged, which the client's kernel delays ~40 ms
(it has nothing to send with the acknowledgement). After the pause the first command costs
what the second does. Every client pays it, the floor and canarytui alike; in a fan-out it
is hidden behind the other hosts' work except where a release waits for every host (its
lock, before anything changes). Needs root and /usr/sbin/sshd (it starts its own).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import canarytui  # noqa: F401 (first: it quiets asyncssh's DSA warnings)

# isort: split
import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fanout import floor_options
from sshd_fleet import SshdFleet

PAUSE = 0.1  # seconds after the login: longer than the delayed acknowledgement


async def one(address: str, user: str, options: dict[str, Any], pause: float) -> list[float]:
    """Login, first command, second command (ms), with ``pause`` s between login and first."""
    started = time.perf_counter()
    async with asyncssh.connect(address, username=user, **options) as conn:
        marks = [time.perf_counter()]
        await asyncio.sleep(pause)
        for _ in range(2):
            before = time.perf_counter()
            await conn.run("true", check=True)
            marks.append(time.perf_counter() - before)
    return [(marks[0] - started) * 1000, marks[1] * 1000, marks[2] * 1000]


async def main(hosts: int) -> None:
    with SshdFleet.start(hosts) as fleet:
        options = floor_options(fleet)
        print(f"first session: {hosts} OpenSSH hosts on loopback, one at a time")
        for pause in (0.0, PAUSE):
            runs = [await one(h.address, h.user, options, pause) for h in fleet.hosts]
            login, first, second = (statistics.median(r[i] for r in runs) for i in range(3))
            said = f"after a {pause * 1000:.0f} ms pause" if pause else "right after the login"
            print(
                f"  {said:24}: login {login:5.1f} ms, first command {first:5.1f} ms, "
                f"second {second:4.1f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    asyncio.run(main(parser.parse_args().hosts))
