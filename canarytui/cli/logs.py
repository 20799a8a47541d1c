"""`logs`: the hosts' `logs` command output, merged line by line, each line host-prefixed.

Every line is made harmless (``textsafe``: escape and control sequences shown as
placeholders, never sent to the terminal) and cut to ``LINE_CHARS``. Without ``-f``, what
the hosts print within ``--for`` (default ``DEFAULT_FOR``); with ``-f``, until Ctrl-C (or
for ``--for`` when it is given): a
host whose stream is lost (it went down, its connection dropped) is followed again as soon
as it can be (the UI's back-off: 1 s, doubled up to 10 s), and stderr says so once, then
once more when its lines come again; a logs command that ends by itself is not run again.
Exit status: 0 every host was read; 1 a host could not be, or had not let us in when
the time was up (one line on stderr names it, the others go on); 2 an unknown host, a bad
duration or an environment without ``logs``; 130 Ctrl-C while following.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from canarytui import cancels
from canarytui.cli import runner
from canarytui.cli.args import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK
from canarytui.config import load_env, parse_duration
from canarytui.textsafe import harmless

DEFAULT_FOR = "2s"
LINE_CHARS = 1000  # characters of one log line shown (its host prefix aside)


def logs(args: argparse.Namespace) -> int:
    """`logs ENV [-f] [--for D] [HOST ...]`: every host (or those named), merged."""
    env = load_env(args.env)
    if not env.logs:
        print(
            f"canarytui: {env.path.name} has no `logs` command: add one (e.g. "
            "logs: tail -n 50 -F /var/log/app.log) to read the hosts' logs",
            file=sys.stderr,
        )
        return EXIT_INVALID
    unknown = [h for h in args.hosts if h not in env.host_names]
    if unknown:
        shown = ", ".join(harmless(h, 100) for h in unknown[:10])
        print(f"canarytui: host(s) not in {env.path}: {shown}", file=sys.stderr)
        return EXIT_INVALID
    try:
        seconds = parse_duration(args.duration or DEFAULT_FOR)
    except ValueError as exc:
        print(f"canarytui: --for: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if seconds <= 0 and not args.follow:
        print("canarytui: --for: the logs must be read for some time (2s, 1m)", file=sys.stderr)
        return EXIT_INVALID
    hosts = list(dict.fromkeys(args.hosts)) or env.host_names
    journal = runner.journal(args)
    try:
        # -f with --for: followed (lost streams again) for that long.
        limit = seconds if args.duration or not args.follow else None
        failed = asyncio.run(_read(env, journal, hosts, limit, args.follow))
    except KeyboardInterrupt:
        print("\ncanarytui: stopped following the logs", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        journal.close()
    return EXIT_ERROR if failed else EXIT_OK


async def _read(
    env: Any, journal: Any, hosts: list[str], seconds: float | None, follow: bool = False
) -> list[str]:
    """Stream every host's logs at once for ``seconds`` (None: until cancelled);
    ``follow``: a stream lost is followed again once its host is back.

    Returns the hosts that could not be read.
    """
    from canarytui.engine import Engine
    from canarytui.monitor import TAIL_RETRY
    from canarytui.ssh import SshError, without_host

    engine = Engine(env, journal)
    width = max(len(h) for h in hosts)
    failed: list[str] = []
    connected: set[str] = set()  # hosts that let us in (a quiet log prints nothing)
    out = sys.stdout

    async def one(name: str) -> None:
        prefix = f"{name:<{width}} | "
        backoff, said = TAIL_RETRY[0], ""  # said: why it stopped, told and not over yet
        before = cancels.asked()
        while True:
            try:
                await engine.fleet.connection(name)
                connected.add(name)
                async for line in engine.tail(name):
                    if said:
                        print(f"canarytui: {name}: following its logs again", file=sys.stderr)
                        said = ""
                    backoff = TAIL_RETRY[0]
                    out.write(prefix + harmless(line, LINE_CHARS) + "\n")
                    out.flush()
            except SshError as exc:
                why = f"could not read its logs: {without_host(env.host(name), str(exc))}"
                if not follow:
                    failed.append(name)
                    print(f"canarytui: {name}: {why}", file=sys.stderr)
                    return
            else:  # it ended by itself (a command that does not follow): not run again
                if follow:
                    print(f"canarytui: {name}: its logs command ended", file=sys.stderr)
                return
            cancels.resume(before)  # a stop a library dropped ends the loop all the same
            if why != said:  # a host down for long is said once, not at every try
                print(f"canarytui: {name}: {why}; trying again", file=sys.stderr)
                said = why
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, TAIL_RETRY[1])

    tasks = [asyncio.ensure_future(one(name)) for name in hosts]
    try:
        done, _ = await asyncio.wait(tasks, timeout=seconds)
    finally:  # the time is up, or Ctrl-C: stop every stream (on its host too), then close
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.fleet.close()
    for task in done:
        task.result()  # a bug in one host's reading is not hidden
    if seconds is not None:  # a hung host is still connecting when the time is up
        silent = [h for h in hosts if h not in connected and h not in failed]
        for name in silent:
            print(
                f"canarytui: {name}: no answer within {seconds:g}s (still connecting; "
                f"ssh.connect_timeout is {env.ssh.connect_timeout:g}s)",
                file=sys.stderr,
            )
        failed += silent
    return failed
