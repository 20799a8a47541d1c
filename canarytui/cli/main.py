"""Entry point: dispatch to a command, and turn user errors into messages and exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from canarytui.cli import demo, fleet, history, rollout
from canarytui.cli.args import (
    COMMANDS,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    USAGE,
    UsageError,
    common_options,
    parser,
)
from canarytui.config import EnvFileError, VersionError


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    try:
        rest, common = common_options(args_in)
    except UsageError as exc:
        print(f"canarytui: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not rest:
        print(USAGE, end="", file=sys.stderr)
        return EXIT_INVALID
    if rest[0] in ("-h", "--help"):
        print(USAGE, end="")
        return EXIT_OK
    if rest[0] not in COMMANDS:
        if len(rest) != 1 or rest[0].startswith("-"):
            print(USAGE, end="", file=sys.stderr)
            return EXIT_INVALID
        return _guard(lambda: demo.ui(rest[0], common))
    try:
        args = parser().parse_args(rest)
    except SystemExit as exc:  # argparse has printed its message
        return EXIT_INVALID if exc.code else EXIT_OK
    args.state_dir = common["state_dir"]
    args.theme = common["theme"]
    handler: Callable[[argparse.Namespace], int] = {
        "check": fleet.check,
        "deploy": rollout.deploy,
        "promote": rollout.promote,
        "rollback": rollout.rollback,
        "status": fleet.status,
        "history": history.history,
        "unlock": fleet.unlock,
        "demo": demo.demo,
    }[args.command]
    return _guard(lambda: handler(args))


def _guard(fn: Callable[[], int]) -> int:
    """Run one command; a user's error becomes a message and an exit status, not a traceback."""
    try:
        return fn()
    except EnvFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    except VersionError as exc:
        print(f"canarytui: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print(
            "\ncanarytui: interrupted; an open deployment stays open in the journal "
            "(canarytui status / promote / rollback)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = _refusal(exc)
        if code is None:
            raise
        return code


def _refusal(exc: Exception) -> int | None:
    """The exit status for the engine's refusals (None: not one of them).

    The engine is imported only here, once something has failed, so that a bad env file's
    message does not pay for asyncssh. Whatever raised one of these had imported it already.
    """
    if "canarytui.engine" not in sys.modules:
        return None
    from canarytui.engine import ActionRefused, PlanError
    from canarytui.engine.locks import LockHeld

    if isinstance(exc, PlanError):
        print(f"canarytui: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if isinstance(exc, LockHeld):
        print(
            f"canarytui: refused: {exc}\n  (if that run is dead: canarytui unlock ENV.yaml)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if isinstance(exc, ActionRefused):
        print(f"canarytui: refused: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(exc, BrokenPipeError):
        return EXIT_ERROR
    return None
