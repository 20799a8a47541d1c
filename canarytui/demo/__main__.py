"""``python -m canarytui.demo [--hosts N]`` or ``python -m canarytui.demo ctl HOST MODE``.

A developer's shortcut; users go through ``canarytui demo --serve`` / ``canarytui demo ctl``.
"""

from __future__ import annotations

import argparse

from canarytui.demo.control import FAULT_MODES, ctl_main
from canarytui.demo.entry import serve_main
from canarytui.heap import run_as_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canarytui.demo")
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--hosts", type=int, default=12, help="number of hosts (default 12)")
    ctl = sub.add_parser("ctl", help="put a host of the running demo in a fault mode")
    ctl.add_argument("host")
    ctl.add_argument("mode", choices=list(FAULT_MODES))
    args = parser.parse_args(argv)
    if args.command == "ctl":
        return ctl_main(args.host, args.mode)
    return serve_main(args.hosts)


if __name__ == "__main__":
    run_as_process(main)
