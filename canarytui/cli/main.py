"""Entry point: dispatch to a command, and turn user errors into messages and exit codes.

A command's module is imported when it runs, and only it: ``canarytui demo ctl lb`` does
not pay for the environment file's loader, the journal or the engine (a third of a second
a run). The demo file's traffic hook, run at every phase change, skips the command line
altogether (``canarytui.demo.lb``)."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import io
import json
import os
import shlex
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import FrameType
from typing import NoReturn

from canarytui.cli import stopping
from canarytui.cli.args import (
    COMMANDS,
    EXIT_ERROR,
    EXIT_HUNG_UP,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_TERMINATED,
    USAGE,
    VERSION,
    UsageError,
    common_options,
    parse,
)
from canarytui.cli.safeio import SafeWriter, safe_output
from canarytui.heap import run_as_process
from canarytui.textsafe import harmless

# Each command: (its module in canarytui.cli, its function).
HANDLERS = {
    "check": ("fleet", "check"),
    "analyze": ("analyze", "analyze"),
    "deploy": ("rollout", "deploy"),
    "promote": ("rollout", "promote"),
    "rollback": ("rollout", "rollback"),
    "status": ("status", "status"),
    "history": ("history", "history"),
    "unlock": ("fleet", "unlock"),
    "logs": ("logs", "logs"),
    "lock": ("lock", "lock"),
    "replay": ("replay", "replay"),
    "report": ("report", "report"),
    "completion": ("completion", "completion"),
    "init": ("init", "init"),
    "demo": ("demo", "demo"),
}


def _handler(module: str, name: str) -> Callable[..., int]:
    handler: Callable[..., int] = getattr(importlib.import_module(f"canarytui.cli.{module}"), name)
    return handler


def run() -> NoReturn:
    """The ``canarytui`` process (its console script, ``python -m canarytui``)."""
    run_as_process(main)


def main(argv: Sequence[str] | None = None) -> int:
    """One command. Everything it writes goes through ``cli.safeio``: what a host printed
    (versions, output, lock owners) reaches the terminal as text, never as a sequence."""
    with safe_output() as stdout, _terminated_as_interrupted() as terminated:
        try:
            code = _dispatch(list(sys.argv[1:] if argv is None else argv), stdout)
        except Exception as exc:  # a bug: one clear line; the traceback goes to a file
            print(f"canarytui: internal error: {_crash_report(exc)}", file=sys.stderr)
            return EXIT_ERROR
        if terminated and code == EXIT_INTERRUPTED:
            return STOPPED_BY[signal.Signals(terminated[0])]
        return code


# Signals that stop a command as Ctrl-C does: ``kill`` (a supervisor, a job's time limit)
# and the terminal closing (an SSH session to a jump host dropped).
STOPPED_BY = {signal.SIGTERM: EXIT_TERMINATED, signal.SIGHUP: EXIT_HUNG_UP}


@contextlib.contextmanager
def _terminated_as_interrupted() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP stop a command as Ctrl-C does: what runs is stopped in order (an
    open deployment stays open, its locks freed), and the status is 128 + the signal (143,
    129). After SIGHUP the terminal is gone: the streams that were on it go to /dev/null,
    so the stop in order is not cut short by a write that fails; output sent to a file or a
    pipe still goes there. Only the signals left as the system's are taken (not in a
    thread, not where the caller set its own, not under ``nohup``); the UI catches them
    itself while it runs (``ui.app``)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    taken = [s for s in STOPPED_BY if signal.getsignal(s) is signal.SIG_DFL]
    on_terminal = [fd for fd in (0, 1, 2) if os.isatty(fd)]  # a hung-up one says no

    def interrupt(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stopping.stopped(signum)  # the journal says why the deployment was left open
        if signum == signal.SIGHUP:
            _to_null(on_terminal)
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            raise KeyboardInterrupt  # Ctrl-C ignored (started in the background)
        signal.raise_signal(signal.SIGINT)  # whoever handles Ctrl-C now (asyncio's runner)

    for signum in taken:
        signal.signal(signum, interrupt)
    try:
        yield received
    finally:
        for signum in taken:
            signal.signal(signum, signal.SIG_DFL)


def _to_null(fds: list[int]) -> None:
    """The descriptors given /dev/null in place of a terminal that has gone."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            os.dup2(null, fd)
    os.close(null)


def _crash_report(exc: Exception) -> str:
    """Say what failed, and keep the traceback in a private file for the bug report."""
    what = f"{type(exc).__name__}: {exc}"[:500]
    try:
        fd, path = tempfile.mkstemp(prefix="canarytui-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write("".join(traceback.format_exception(exc)))
    except OSError:
        return f"{what} (a bug in canarytui, not in what you did)"
    return f"{what}\n  a bug in canarytui, not in what you did; the details are in {path}"


def _dispatch(args_in: list[str], stdout: SafeWriter | None) -> int:
    try:
        rest, common = common_options(args_in)
    except UsageError as exc:
        print(f"canarytui: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if common["state_dir"]:
        # The option says what $CANARYTUI_STATE_DIR says, for all of this process and what
        # it starts: a demo fleet's pointer file (what `demo ctl` reads), a hook's canarytui.
        os.environ["CANARYTUI_STATE_DIR"] = os.path.abspath(common["state_dir"])
    if not rest:
        print(USAGE, end="", file=sys.stderr)
        return EXIT_INVALID
    if rest[0] in ("-h", "--help"):
        print(USAGE, end="")
        return EXIT_OK
    if rest[0] in ("-V", "--version"):
        print(VERSION)
        return EXIT_OK
    if rest[0] not in COMMANDS:
        said = _not_a_command(rest[0])
        if said is not None:
            print(f"canarytui: {said}", file=sys.stderr)
            return EXIT_INVALID
        if len(rest) != 1:
            print(
                f"canarytui: {harmless(rest[0], 100)!r} is no command, and the UI takes one "
                f"environment file and nothing after it (got: {harmless(' '.join(rest[1:]), 100)}"
                "); canarytui --help lists the commands",
                file=sys.stderr,
            )
            return EXIT_INVALID
        return _guard(lambda: _handler("demo", "ui")(rest[0], common), env=rest[0])
    told = io.StringIO()
    try:
        with contextlib.redirect_stderr(told):
            args = parse(rest)
    except SystemExit as exc:  # argparse has said why (kept, to say it here)
        sys.stderr.write(told.getvalue())
        if not exc.code:
            return EXIT_OK
        if "--json" in rest or "--format=json" in rest or ("--format", "json") in pairwise(rest):
            # A script reading only stdout learns how it ended, as from any refusal.
            why = told.getvalue().strip().splitlines()[-1:] or ["invalid command line"]
            print(Failed(EXIT_INVALID, why[0], "invalid").json())
        return EXIT_INVALID
    sys.stderr.write(told.getvalue())
    if stdout is not None and getattr(args, "json", False):
        stdout.json_lines = True  # exact JSON lines (json.dumps escapes every control)
    args.state_dir = common["state_dir"]
    args.theme = common["theme"]
    handler: Callable[[argparse.Namespace], int] = _handler(*HANDLERS[args.command])
    env = getattr(args, "env", None)
    changes = args.command in ("deploy", "promote", "rollback") and not getattr(args, "dry_run", 0)
    return _guard(
        lambda: handler(args),
        result_line=_ends_with_result(args),
        env=env,
        changes=changes,
        # (a rollback --to opens its own; a take-over opens this journal's record of it)
        opens=args.command == "deploy"
        or bool(getattr(args, "to", None) or getattr(args, "take_over", False)),
    )


def _ends_with_result(args: argparse.Namespace) -> bool:
    """Whether a refusal or an error is said on stdout too, as a ``result`` object: every
    ``--json`` run (a stream of events ends with one anyway; the one-object commands,
    ``check``, ``status``, a dry run, print it instead of their object), so a script
    reading stdout alone always has JSON to read."""
    return bool(getattr(args, "json", False)) or getattr(args, "format", None) == "json"


def _not_a_command(word: str) -> str | None:
    """What to say of a first word that is neither a command nor an environment file to
    open in the UI; None: it may be a file (the UI's own reading says if it is not)."""
    if word.startswith("-"):
        return f"unknown option {harmless(word, 100)!r} (canarytui --help lists them all)"
    if "." in word or os.sep in word or os.path.exists(word):
        return None
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    if close:
        shown = harmless(word, 100)
        return f"unknown command {shown!r}: did you mean {close[0]}? (canarytui --help)"
    return None


def _guard(
    fn: Callable[[], int],
    result_line: bool = False,
    env: str | None = None,
    changes: bool = True,
    opens: bool = False,
) -> int:
    """Run one command; a user's error becomes a message and an exit status, not a traceback.

    ``result_line`` (a command whose ``--json`` ends with a result): the refusal or error is
    that result too, on stdout, so a script reading only stdout still learns how it ended.
    A run stopped (Ctrl-C, SIGTERM, SIGHUP) ends without one: its exit status (130, 143,
    129) says so.
    ``env``: the environment file it was given, for the commands a refusal suggests.
    ``changes``: it may have left a deployment open (one that reads only says no more);
    ``opens``: it opens one (deploy): stopped before it did, it left none.
    """
    stopping.forget()
    try:
        return fn()
    except KeyboardInterrupt:
        # Stopped while locking, nothing opened: "an open deployment stays open" misled.
        which = stopping.opened()
        said = f"; deployment #{which} stays open in the journal (canarytui status says)"
        if changes and (how := stopping.ended()) is not None:
            said = f" once its deployment had ended ({how}): nothing of it stays open"
        elif changes and not which and opens:
            said = " before a deployment opened: no host's release was changed"
        elif changes and not which:  # (a promote, a rollback: before it took one up)
            said = " before it took up a deployment: nothing was changed"
        print("\ncanarytui: interrupted" + (said if changes else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR  # whoever read the output is gone: nothing to tell
    except Exception as exc:
        found = _user_error(exc) or _refusal(exc, env)
        if found is None:
            raise
        failed = found
    print(failed.message, file=sys.stderr)
    if result_line:
        print(failed.json())
    return failed.code


@dataclass(frozen=True)
class Failed:
    """A command that ended on a user's error or a refusal: its exit status, what stderr
    says, and the result line's outcome (``invalid``, ``refused``, ``error``)."""

    code: int
    message: str
    outcome: str

    def json(self) -> str:
        lines = self.message.strip().removeprefix("canarytui: ").splitlines()
        said = " ".join(line.strip() for line in lines)
        return json.dumps(
            {
                "event": "result",
                "outcome": self.outcome,
                "exit": self.code,
                "deployment": None,
                "error": harmless(said, 2000),
            }
        )


def _user_error(exc: Exception) -> Failed | None:
    """A bad command line, file or version, or a journal that cannot be used (None: not
    one of them). Their modules are asked only if something imported them: whatever raised
    one of these had."""
    if isinstance(exc, UsageError):
        return Failed(EXIT_INVALID, f"canarytui: {exc}", "invalid")
    if "canarytui.config" in sys.modules:
        from canarytui.config import EnvFileError, VersionError

        if isinstance(exc, EnvFileError):
            return Failed(EXIT_INVALID, "\n".join(map(str, exc.problems)), "invalid")
        if isinstance(exc, VersionError):
            return Failed(EXIT_INVALID, f"canarytui: {exc}", "invalid")
    if "canarytui.journal" in sys.modules:
        from canarytui.journal import JournalError

        if isinstance(exc, JournalError):  # its message names the file, what failed, what to do
            return Failed(EXIT_ERROR, f"canarytui: journal: {exc.detail}", "error")
    return None


def _refusal(exc: Exception, env: str | None = None) -> Failed | None:
    """The engine's refusals (None: not one of them).

    The engine is imported only here, once something has failed, so that a bad env file's
    message does not pay for asyncssh. Whatever raised one of these had imported it already.
    """
    if "canarytui.engine" not in sys.modules:
        return None
    from canarytui.engine import ActionRefused, PlanError
    from canarytui.engine.locks import LockHeld, is_maintenance

    if isinstance(exc, PlanError):
        return Failed(EXIT_INVALID, f"canarytui: {exc}", "invalid")
    if isinstance(exc, LockHeld):
        path = shlex.quote(harmless(env, 300)) if env else "ENV.yaml"
        if is_maintenance(exc.owner):
            hint = (
                "held for maintenance: its holder ends it (canarytui unlock "
                f"{path}, from the journal that took it; from another, with --force)"
            )
        else:
            # Running, open (awaiting promotion, halted) or dead: unlocking is right only
            # for the last, and only if it changed nothing.
            hint = (
                f"another deployment: canarytui status {path} shows it; it goes on where "
                "it was started (promote, rollback), or is rolled back from here: "
                f"canarytui rollback {path} --take-over; only if its run died before "
                f"changing anything: canarytui unlock {path}"
            )
        return Failed(EXIT_ERROR, f"canarytui: refused: {exc}\n  ({hint})", "refused")
    if isinstance(exc, ActionRefused):
        return Failed(EXIT_ERROR, f"canarytui: refused: {exc}", "refused")
    return None
