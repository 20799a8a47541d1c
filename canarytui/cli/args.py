"""Arguments: usage text, exit codes, common options and the argparse parser.

Exit status: 0 done as asked; 2 invalid input, nothing touched; 3 canary failed and was
rolled back; 4 promotion halted or rolled back; 1 any other error; 130 interrupted
(Ctrl-C; an open deployment stays open); 143 stopped by SIGTERM and 129 by its terminal
closing (SIGHUP), as Ctrl-C stops it. A user's mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence

from canarytui import __version__
from canarytui import events as ev
from canarytui.cli import helptext
from canarytui.cli.helptext import USAGE

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_CANARY_FAILED = 3
EXIT_PROMOTION_FAILED = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # SIGTERM: stopped as Ctrl-C stops, 128 + 15
EXIT_HUNG_UP = 129  # SIGHUP (the terminal closed): the same, 128 + 1


def _comma_list(value: str, refused: str) -> list[str]:
    """A comma list's items, in order; none is refused (exit 2) with ``refused``: an option
    given "$HOSTS" with the variable empty means a mistake, not the default."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(refused)
    return items


def host_names(value: str) -> list[str]:
    """``--canary a,b``: the names (none is not the file's canaries)."""
    return _comma_list(
        value,
        "names no host: give host names (a,b), or leave --canary out for the environment "
        "file's canaries",
    )


def host_items(value: str) -> list[str]:
    """``--hosts a,web-*,role=api``: the items (none is not every host)."""
    return _comma_list(
        value,
        "names no host: give host names, patterns (web-*) or role=NAME, comma-separated; "
        "or leave --hosts out to deploy to every host of the file",
    )


OUTCOME_EXIT = {
    ev.Outcome.CANARY_PASSED: EXIT_OK,
    ev.Outcome.PAUSED: EXIT_OK,
    ev.Outcome.COMPLETE: EXIT_OK,
    ev.Outcome.ROLLED_BACK: EXIT_OK,
    ev.Outcome.CANARY_FAILED: EXIT_CANARY_FAILED,
    ev.Outcome.HALTED: EXIT_PROMOTION_FAILED,
    ev.Outcome.PROMOTION_ROLLED_BACK: EXIT_PROMOTION_FAILED,
    ev.Outcome.INCONCLUSIVE: EXIT_ERROR,
    ev.Outcome.ABORTED: EXIT_ERROR,
    ev.Outcome.ERROR: EXIT_ERROR,
}

COMMANDS = (
    "check",
    "analyze",
    "deploy",
    "promote",
    "rollback",
    "status",
    "history",
    "unlock",
    "logs",
    "lock",
    "replay",
    "report",
    "init",
    "completion",
    "demo",
)

VERSION = f"canarytui {__version__}"


class UsageError(Exception):
    """A malformed command line, caught before argparse: exit status 2."""


def common_options(argv: Sequence[str]) -> tuple[list[str], dict[str, str | None]]:
    """Pull the common options out from anywhere on the line."""
    rest: list[str] = []
    found: dict[str, str | None] = {"state_dir": None, "theme": None}
    it = iter(argv)
    for arg in it:
        for opt in ("--state-dir", "--theme"):
            key = opt[2:].replace("-", "_")
            if arg == opt:
                value = next(it, None)
                if value is None:
                    raise UsageError(f"{opt} needs a value")
                found[key] = value
                break
            if arg.startswith(opt + "="):
                found[key] = arg.split("=", 1)[1]
                break
        else:
            rest.append(arg)
    return rest, found


_VALUED = {"logs": ("--for",), "report": ("--format",)}  # their options with a value


def options_first(rest: list[str]) -> list[str]:
    """argparse takes a subcommand's positionals in one run: the options of `logs` and
    `report` (`report ENV --format json 12`) are put before their positionals."""
    if not rest or rest[0] not in _VALUED:
        return rest
    options: list[str] = []
    positionals: list[str] = []
    it = iter(rest[1:])
    for arg in it:
        if not arg.startswith("-") or arg == "-" or arg[1:].isdigit():  # (-5: an ID, wrong)
            positionals.append(arg)
            continue
        if arg not in _VALUED[rest[0]]:
            options.append(arg)
            continue
        value = next(it, None)
        if value is None:  # its value missing: left last, for argparse to say so
            return [rest[0], *options, *positionals, arg]
        options += [arg, value]
    return [rest[0], *options, *positionals]


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line parsed; an option its command does not know is that command's
    error (its own usage, and the option most like it), not the whole usage of canarytui."""
    p = parser()
    args, extra = p.parse_known_args(options_first(argv))
    if extra:
        sub = subcommands(p)[args.command]
        known = [o for action in sub._actions for o in action.option_strings]
        close = difflib.get_close_matches(extra[0], known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if extra[0].startswith("-") and close else ""
        sub.error(f"unrecognized arguments: {' '.join(extra)}{hint}")  # exits, status 2
    return args


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each command of ``parser()``, by name."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parser() -> argparse.ArgumentParser:
    """The subcommands; the common options have been taken out before it runs."""
    p = argparse.ArgumentParser(prog="canarytui", usage=USAGE, add_help=True)
    # Answered before this parser runs (``main``); here for the completion scripts.
    p.add_argument("-V", "--version", action="version", version=VERSION)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("check", help="validate, connect, print versions, health and rule problems")
    s.add_argument("env", help="the environment file")
    s.add_argument(
        "--json",
        action="store_true",
        help="one JSON object instead of the text: each host (version, reachable, why not, "
        "healthy, detail), the rules' findings, ok",
    )
    s = sub.add_parser(
        "analyze",
        prog="canarytui analyze",
        description="The environment's analysis rules evaluated now on the running fleet, "
        "the canaries against a baseline sample, for --for (default canary.analysis.duration). "
        "Nothing is deployed, locked or journaled. Exit status: 0 the rules pass, 3 they "
        "would fail the canaries, 1 inconclusive (or a canary unreachable), 2 bad input.",
        help="the analysis rules now on the running fleet, canaries against the baseline; "
        "nothing is deployed, locked or journaled",
    )
    s.add_argument("env", help="the environment file")
    s.add_argument(
        "--canary",
        type=host_names,
        help="comma-separated canary host names (default: the file's canaries)",
    )
    s.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        help="how long to watch (e.g. 30s, 1m; default: canary.analysis.duration)",
    )
    s.add_argument(
        "--json",
        action="store_true",
        help='events as JSON lines, then a final {"event": "result", ...} line',
    )
    s = sub.add_parser("deploy", help="deploy a version to the canaries, analyse, promote")
    s.add_argument("env", help="the environment file")
    s.add_argument("version", help="the release to deploy (must match version_pattern)")
    group = s.add_mutually_exclusive_group()
    group.add_argument("--canary", type=host_names, help="comma-separated canary host names")
    group.add_argument(
        "--canary-percent", type=float, metavar="N", help="a share of the fleet as canaries"
    )
    group.add_argument(
        "--no-canary",
        action="store_true",
        help="no canary phase: the waves go straight on, each host health-gated (a host "
        "left behind, caught up with --hosts)",
    )
    s.add_argument(
        "--hosts",
        type=host_items,
        metavar="ITEMS",
        help="only these hosts, comma-separated: names, patterns (web-*) or role=NAME; "
        "canaries, baseline and waves are chosen among them; the others are read (what they "
        "run, whose locks they hold), never locked nor changed",
    )
    s.add_argument(
        "--auto-promote",
        action="store_true",
        help="after a passing canary, go through every wave without stopping",
    )
    s.add_argument(
        "--previous",
        metavar="VERSION",
        help="the version to roll back to on hosts that report no valid version",
    )
    s.add_argument(
        "--json", action="store_true", help="events as JSON lines, then a result (a refusal too)"
    )
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (canaries, baseline, waves, pauses, analysis, every command "
        "rendered for the first canary) with each host's version and lock; nothing is changed "
        "and no lock taken. Exit 0: a deployment would start now; 1: it would be refused now",
    )
    for name, said in (
        (
            "promote",
            "continue the open deployment to the next wave or every wave (stopped before "
            "its canary's verdict: its analysis again first)",
        ),
        ("rollback", "roll the open (or last) deployment back, or a known release back"),
        ("history", "past deployments from the journal"),
    ):
        s = sub.add_parser(name, help=said)
        s.add_argument("env", help="the environment file")
        s.add_argument(
            "--json",
            action="store_true",
            help="JSON lines instead of text"
            + (", then a result (a refusal too)" if name != "history" else ""),
        )
        if name == "rollback":
            s.add_argument(
                "--take-over",
                action="store_true",
                help="roll back another machine's open deployment, known from the hosts' locks",
            )
            s.add_argument(
                "--to",
                metavar="VERSION",
                help="put this known release back on every host, in waves, health-gated, "
                "without analysis (recorded as a rollback); known: one this journal saw on "
                "the hosts (a completed deployment's, or what they ran before one), or one "
                "a host runs now",
            )
        if name == "promote":
            s.add_argument(
                "--wave", action="store_true", help="only the next wave (default: every wave)"
            )
            again = s.add_mutually_exclusive_group()
            again.add_argument(
                "--retry", action="store_true", help="deploy the hosts that failed again, go on"
            )
            again.add_argument(
                "--skip",
                metavar="HOST,...",
                help="leave these failed hosts as they are (counted against max_failures), go on",
            )
    s = sub.add_parser("status", help="the open deployment and the fleet, once")
    s.add_argument("env", help="the environment file")
    s.add_argument(
        "--json",
        action="store_true",
        help="one JSON object instead of the table: the open (or last) deployment, locks held "
        "from elsewhere, maintenance holds, and each host's version now",
    )
    s = sub.add_parser("unlock", help="break a stale lock, after saying whose it was")
    s.add_argument("env", help="the environment file")
    s.add_argument(
        "--force",
        action="store_true",
        help="break the locks of a deployment that may still be open",
    )
    s = sub.add_parser(
        "logs",
        prog="canarytui logs",
        description="The hosts' `logs` command output, merged, each line prefixed with its "
        "host; escape and control sequences are shown as placeholders. Exit status: 0 every "
        "host read, 1 a host could not be read (named on stderr), 2 bad input, 130 Ctrl-C.",
        help="the hosts' logs, merged, host-prefixed",
    )
    s.add_argument("env", help="the environment file")
    s.add_argument("hosts", nargs="*", metavar="HOST", help="hosts to read (default: every host)")
    s.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="follow until Ctrl-C (a host whose stream is lost is followed again once back)",
    )
    s.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        help="how long to read (default 2s; with -f: until Ctrl-C unless given)",
    )
    s = sub.add_parser(
        "lock",
        prog="canarytui lock",
        description="Hold the environment for maintenance: the hosts' locks (and this "
        "machine's) name the reason, so every deployment, from any machine or the UI, is "
        "refused saying it; canarytui unlock ENV.yaml releases it. Exit status: 0 every host "
        "held; 1 already locked (the holder is named), an open deployment, or hosts that could "
        "not be reached (the others stay held, which refuses any deployment); 2 no -m.",
        help="hold the environment for maintenance (deploys refused)",
    )
    s.add_argument("env", help="the environment file")
    s.add_argument("-m", "--message", required=True, metavar="REASON", help="why (required)")
    s = sub.add_parser(
        "replay",
        prog="canarytui replay",
        description="The UI replays one past deployment from the journal, with its original "
        "timing divided by --speed (long idle gaps capped at 2 s); nothing is sent to any host. "
        "Exit status: 0 quit with q; 2 an ID that is not this environment's, or a bad --speed.",
        help="the UI replays a past deployment from the journal; no host is touched",
    )
    s.add_argument("env", help="the environment file")
    s.add_argument("id", metavar="ID", help="the deployment's number (canarytui history)")
    s.add_argument("--speed", default="10", help="how many times as fast (0.1 to 1000; default 10)")
    s = sub.add_parser(
        "report",
        prog="canarytui report",
        description="One deployment from the journal, for a change ticket or a post-mortem: "
        "what, who and when (UTC), its timeline of phases and decisions, the verdict with "
        "every measured value, and each host's version before, new and after it. Exit "
        "status: 0 printed; 2 an ID that is not this environment's (the latest are named).",
        help="one deployment's report: timeline, decisions, verdict and values, hosts",
    )
    s.add_argument("env", help="the environment file")
    s.add_argument(
        "id", metavar="ID", nargs="?", help="the deployment's number (default: the last one)"
    )
    s.add_argument(
        "--format",
        choices=("md", "json"),
        default="md",
        help="md: a Markdown document (default); json: one JSON object",
    )
    s = sub.add_parser(
        "init",
        prog="canarytui init",
        description="Write a commented environment file to start from: the fleet from an "
        "Ansible inventory (hosts_from) or the given hosts, the first host as the canary. "
        "Exit status: 0 written; 2 a bad inventory or host name, or the file exists "
        "(nothing written).",
        help="a commented environment file to start from",
    )
    s.add_argument("--inventory", metavar="FILE", help="an Ansible inventory (INI or YAML)")
    s.add_argument("--hosts", metavar="A,B", help="host names (or ~/.ssh/config aliases)")
    s.add_argument("-o", "--output", metavar="FILE", help="write it there (default: stdout)")
    s.add_argument("--force", action="store_true", help="overwrite the -o file if it exists")
    s = sub.add_parser("demo", help="the embedded demo fleet and the UI on it")
    s.add_argument("--hosts", type=int, default=12, help="how many demo hosts (default 12)")
    s.add_argument("--serve", action="store_true", help="the fleet alone, no UI (Ctrl-C stops)")
    s.add_argument("ctl", nargs="*", help="ctl HOST down|hang|flaky|slow|up, or ctl lb")
    s.add_argument("--socket", help="ctl: that fleet's control socket (default: the running one)")
    s = sub.add_parser(
        "completion",
        description="A completion script for bash or zsh, generated from these very options: "
        "subcommands, options, environment files, and (asked while completing) the file's "
        "host names, the journal's versions and deployment IDs.",
        help="print a shell completion script",
    )
    s.add_argument("shell", nargs="?", choices=("bash", "zsh"), help="bash or zsh")
    for kind in ("hosts", "versions", "known", "ids"):  # what the scripts ask, completing
        s.add_argument(f"--{kind}", dest=f"list_{kind}", metavar="ENV", help=argparse.SUPPRESS)
    s.add_argument("--word", default="", help=argparse.SUPPRESS)
    helptext.finish(sub)
    return p
