"""The replay command: the UI replays one past deployment from the journal, touching no host.

``canarytui replay ENV.yaml ID [--speed 10]``. The speed and the deployment are checked
before the UI starts: a bad speed, or an ID that is not one of this environment's
deployments, is exit status 2 with a message (naming the environment and its latest
deployments); then the UI opens on the replay with no monitor, no discovery and no
connection, and ``q`` quits it (exit 0).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from canarytui.cli import runner
from canarytui.cli.args import EXIT_ERROR, EXIT_INVALID, EXIT_OK
from canarytui.cli.terminal import refused_without_terminal
from canarytui.config import Environment, load_env

MIN_SPEED, MAX_SPEED = 0.1, 1000.0  # as canarytui.ui.replay, which is not imported early


def replay(args: argparse.Namespace) -> int:
    """`replay`: check the speed and the ID, then the UI on that deployment's replay."""
    speed = _speed(args.speed)
    if speed is None:
        return EXIT_INVALID
    env = load_env(args.env)
    journal = runner.journal(args, reads=True)
    try:
        record = runner.deployment_by_id(journal, env, args.id, "replay")
        return _run(env, journal, record.id, speed, args.theme)
    finally:
        journal.close()


def _speed(text: str) -> float | None:
    try:
        speed = float(text.strip().removesuffix("x"))
    except ValueError:
        speed = float("nan")
    if not MIN_SPEED <= speed <= MAX_SPEED:  # NaN fails this too
        print(
            f"canarytui: replay: --speed must be a number from {MIN_SPEED:g} to "
            f"{MAX_SPEED:g} (e.g. 10 for ten times as fast), got {text!r}",
            file=sys.stderr,
        )
        return None
    return speed


def _run(env: Environment, journal: Any, deployment: int, speed: float, theme: str | None) -> int:
    try:
        from canarytui.ui.app import CanaryApp
        from canarytui.ui.replay import ReplayError, ReplayRequest, load_recording
    except ImportError:
        print("canarytui: the UI is not available in this build", file=sys.stderr)
        return EXIT_ERROR
    try:
        recording = load_recording(journal, env, deployment)
    except ReplayError as exc:
        print(f"canarytui: replay: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if refused_without_terminal():
        return EXIT_INVALID
    app = CanaryApp(
        env, journal, theme=theme, monitor=False, replay=ReplayRequest(recording, speed)
    )
    result = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code or EXIT_ERROR)
    return int(result or EXIT_OK)
