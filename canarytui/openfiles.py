"""How many files this process may have open, and lifting that limit for a big fleet.

A deployment keeps one connection (a socket) open to each of its hosts from its locks to
its release, so 1,200 hosts need 1,200 sockets at once: more than the soft limit many
systems start a shell with (1,024). The soft limit may be raised up to the hard one without
privileges, as servers do at start; past the hard limit a deployment is refused before it
changes anything (``shortage`` says why and what to do), rather than failing host by host
halfway through.
"""

from __future__ import annotations

import contextlib

# Files the process needs besides its hosts' connections: the terminal, the journal and its
# two side files, the event loop's own, the agent's socket, bastions, the hooks' pipes.
RESERVE = 64
# Where an administrator raises the hard limit.
HARD_LIMIT_SETTINGS = "limits.conf's nofile, or systemd's LimitNOFILE"
_UNLIMITED = 1 << 30


def limits() -> tuple[int, int]:
    """The soft and hard limits on open files (very large where there is none)."""
    try:
        import resource
    except ImportError:  # not a POSIX system: no such limit to read
        return _UNLIMITED, _UNLIMITED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return _finite(soft, resource.RLIM_INFINITY), _finite(hard, resource.RLIM_INFINITY)


def ensure_open_files(wanted: int) -> int:
    """Lift the soft limit to ``wanted`` open files if it is lower, never past the hard
    limit; returns the soft limit in force afterwards."""
    try:
        import resource
    except ImportError:
        return _UNLIMITED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):  # a platform that caps it lower
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return limits()[0]


def needed(hosts: int) -> int:
    """Open files a deployment to ``hosts`` hosts needs at once."""
    return hosts + RESERVE


def shortage(hosts: int, soft: int) -> str | None:
    """Why ``hosts`` connections cannot be held open under a soft limit of ``soft``
    (None: they can), saying how to lift it."""
    want = needed(hosts)
    if soft >= want:
        return None
    hard = limits()[1]
    command = f"`ulimit -n {_round_up(want)}`"
    if hard < want:
        how = (
            f"the hard limit is {hard:,} too, so an administrator raises it "
            f"({HARD_LIMIT_SETTINGS}), then {command}"
        )
    else:
        how = f"run {command} in the shell that starts canarytui"
    return (
        f"a deployment keeps a connection open to each of its hosts ({hosts:,} here), and "
        f"this process may have only {soft:,} files open (ulimit -n; {want:,} needed): {how}"
    )


def _finite(value: int, infinity: int) -> int:
    return _UNLIMITED if value == infinity else value


def _round_up(n: int) -> int:
    """A round limit above ``n`` to suggest (4,096, 8,192, ...)."""
    limit = 1024
    while limit < n:
        limit *= 2
    return limit
