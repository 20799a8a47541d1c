"""Whether the UI has a terminal to run in, asked before anything starts.

The UI reads keys from standard input, draws on standard error and sizes itself from
standard output. Without a terminal on all three it cannot work, and it does not fail
either: with no terminal at all (``ssh HOST canarytui ...`` without ``-t``, a cron job) or
with its output piped (``canarytui demo | tee``) it spun a core redrawing for ever, deaf
to SIGTERM. So the commands that open it refuse first, naming the streams.
"""

from __future__ import annotations

import os
import sys

_STREAMS = ((0, "standard input"), (1, "standard output"), (2, "standard error"))


def refused_without_terminal() -> bool:
    """True, with why and what to do said on stderr, when the UI cannot run here."""
    problem = missing_terminal()
    if problem is not None:
        print(problem, file=sys.stderr)
    return problem is not None


def missing_terminal() -> str | None:
    """None when the UI can run here; else the message that says why not and what to do."""
    missing = [name for fd, name in _STREAMS if not os.isatty(fd)]  # a closed one: False
    if not missing:
        return None
    if len(missing) == 1:
        what = f"{missing[0]} is not one"
    else:
        what = f"{', '.join(missing[:-1])} and {missing[-1]} are not terminals"
    return (
        f"canarytui: the UI needs a terminal, and {what} (a pipe, a file, or a session "
        "without a terminal): run it in a terminal (over SSH: ssh -t HOST ...). The commands "
        "work without one: canarytui deploy ENV.yaml VERSION [--json], canarytui status "
        "ENV.yaml, ... (canarytui --help)"
    )
