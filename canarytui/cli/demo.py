"""Demo and UI launchers: demo (UI or headless story), demo --serve, demo ctl, ENV.yaml's UI."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from canarytui.cli.args import EXIT_ERROR, EXIT_INVALID, EXIT_OK
from canarytui.cli.terminal import refused_without_terminal


def demo(args: argparse.Namespace) -> int:
    """`demo`: the demo fleet with the UI, or alone (--serve), or a fault on it (ctl)."""
    from canarytui import demo as embedded

    if args.ctl:
        if args.ctl[0] == "ctl" and args.ctl[1:2] == ["lb"]:
            from canarytui.demo.control import lb_main

            return lb_main(args.ctl[2:], args.socket)
        if len(args.ctl) != 3 or args.ctl[0] != "ctl":
            print(
                "canarytui: usage: canarytui demo ctl HOST down|hang|flaky|slow|up "
                "[--socket PATH]\n"
                "       canarytui demo ctl lb [VERSION PERCENT] [--socket PATH]",
                file=sys.stderr,
            )
            return EXIT_INVALID
        return int(embedded.ctl_main(args.ctl[1], args.ctl[2], socket_path=args.socket))
    if not 1 <= args.hosts <= 500:
        print(f"canarytui: --hosts must be between 1 and 500, got {args.hosts}", file=sys.stderr)
        return EXIT_INVALID
    if args.serve:
        return int(embedded.serve_main(args.hosts))
    return demo_ui(args)


def demo_ui(args: argparse.Namespace) -> int:
    """The UI on a fresh demo fleet; the headless story when the UI is not installed."""
    try:
        from canarytui.ui.app import run_demo
    except ImportError:
        return demo_story(args)
    if refused_without_terminal():  # before the fleet starts
        return EXIT_INVALID
    return int(run_demo(hosts=args.hosts, state_dir=given_state(args), theme=args.theme))


def given_state(args: argparse.Namespace) -> str | None:
    """The journal folder the operator named, by ``--state-dir`` or ``$CANARYTUI_STATE_DIR``
    (one folder, as for every command: `history` and `report` then read the demo's
    deployments); None: the demo keeps a journal of its own, removed at its end."""
    from canarytui.demo.control import STATE_DIR_ENV

    return args.state_dir or os.environ.get(STATE_DIR_ENV) or None


def demo_story(args: argparse.Namespace) -> int:
    """Headless demo: the good release promoted, then the bad one caught."""
    from canarytui.cli.printers import HumanPrinter
    from canarytui.cli.rollout import summary_text
    from canarytui.config import load_env
    from canarytui.demo import DemoFleet, journal_folder
    from canarytui.demo.limits import DemoFleetRefused
    from canarytui.engine import Engine
    from canarytui.journal import Journal

    async def go() -> int:
        async with DemoFleet(hosts=args.hosts, client=True) as fleet:
            env = load_env(fleet.env_path)
            # Made once the fleet is up: a fleet refused leaves nothing behind.
            with journal_folder(given_state(args)) as state:
                journal = Journal(state)
                endpoints = {h.name: h.endpoint for h in env.hosts}
                printer = HumanPrinter(sys.stdout, endpoints=endpoints)
                for version in ("1.1.0", "1.3.0-bad"):
                    print(f"\n##### deploying {version}")
                    engine = Engine(env, journal)
                    engine.subscribe(printer)
                    try:
                        outcome = await engine.deploy(version, auto_promote=True)
                    finally:
                        await engine.fleet.close()
                    print(summary_text(engine, outcome))
                journal.close()
        return EXIT_OK

    try:
        return asyncio.run(go())
    except DemoFleetRefused as exc:
        print(f"canarytui: the demo fleet could not start: {exc}", file=sys.stderr)
        return EXIT_ERROR


def ui(env_path: str, common: dict[str, str | None]) -> int:
    """`canarytui ENV.yaml`: the UI on that environment."""
    from canarytui.config import load_env

    env = load_env(env_path)
    try:
        from canarytui.ui.app import run_app
    except ImportError:
        print(
            "canarytui: the UI is not available in this build; use the subcommands "
            "(canarytui --help)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if refused_without_terminal():  # the file's mistakes are said first
        return EXIT_INVALID
    return int(run_app(env, state_dir=common["state_dir"], theme=common["theme"]))
