"""The host keys a connection is verified against.

The environment file's ``ssh.known_hosts`` when it names one (that file only); else the
files OpenSSH reads for that host: ``~/.ssh/config``'s ``UserKnownHostsFile`` and
``GlobalKnownHostsFile``, by default ``~/.ssh/known_hosts``, ``~/.ssh/known_hosts2``,
``/etc/ssh/ssh_known_hosts`` and ``/etc/ssh/ssh_known_hosts2`` (where a team's
configuration management often puts the fleet's keys, or its ``@cert-authority`` line).
There is never a way to skip the check: no file to read is a refusal. A file's name in
``~/.ssh/config`` may hold OpenSSH's tokens (``%d``, ``%h``, ``%k``, ``%n``, ``%p``,
``%r``, ``%u``, ...) and ``${VARIABLE}``s, expanded for each host as OpenSSH does: a
directory of one known_hosts file per host is a common layout.

Each set of files is parsed once for the fleet and again only when one of them changes:
given as paths, asyncssh would read them on every connection, which grows with the fleet's
size squared.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canarytui.ssh.jump import file_stamp, local_user
from canarytui.textsafe import harmless

if TYPE_CHECKING:
    import asyncssh

USER_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
# OpenSSH's tokens for UserKnownHostsFile and GlobalKnownHostsFile (ssh_config(5), TOKENS).
_TOKENS = "%%, %C, %d, %h, %i, %k, %L, %l, %n, %p, %r, %u"
_EXPANDED = re.compile(r"%(.?)|\$\{([^}]*)\}")
_HOW = "log in once with ssh to add the hosts' keys, or ssh-keyscan after checking the fingerprints"


class Untrusted(Exception):
    """No host key can be read to verify the host against (the message says why)."""


class KnownHosts:
    """The fleet's host-key files, parsed as they are first needed."""

    def __init__(self, explicit: Path | None) -> None:
        self.explicit = explicit
        self._parsed: dict[tuple[str, ...], tuple[tuple[Any, ...], asyncssh.SSHKnownHosts]] = {}

    def files(self, config: Any, host: str) -> list[str]:
        """The files for ``host`` (as the environment file gives its address), whose
        ``~/.ssh/config`` is ``config``, in OpenSSH's order. Raises ``Untrusted`` for a
        name whose tokens OpenSSH would refuse too."""
        if self.explicit is not None:
            return [str(self.explicit)]
        named: list[str] = []
        for option, default in (
            ("UserKnownHostsFile", USER_FILES),
            ("GlobalKnownHostsFile", GLOBAL_FILES),
        ):
            given = config.get(option, ())  # []: "none"
            named += (
                default if given == () else [expand(str(p), config, host, option) for p in given]
            )
        return [os.path.expanduser(p) for p in named]

    def trusted(self, config: Any, host: str) -> tuple[asyncssh.SSHKnownHosts, str]:
        """The keys to verify the host against, and the files they came from (to name in
        a refusal). Raises ``Untrusted`` when there is no file to read."""
        import asyncssh

        files = self.files(config, host)
        present = [f for f in files if os.path.isfile(f)]
        if not present and self.explicit is not None:
            raise Untrusted(
                f"host key cannot be verified: known_hosts file {self.explicit} not found "
                f"(host keys are always checked). Add the hosts' keys to it ({_HOW}), or "
                "set ssh.known_hosts to the file that has them"
            )
        if not present:
            raise Untrusted(
                "host key cannot be verified: no known_hosts file (looked for "
                f"{', '.join(files)}; host keys are always checked): {_HOW}, or set "
                "ssh.known_hosts to the file that has them"
            )
        key = tuple(present)
        stamp = tuple(file_stamp(f) for f in present)
        known = self._parsed.get(key)
        if known is None or known[0] != stamp:
            try:
                keys = asyncssh.read_known_hosts(list(present))
            except (OSError, ValueError) as exc:
                raise Untrusted(
                    f"host key cannot be verified: {', '.join(present)} unreadable: "
                    + harmless(str(exc), 300)
                ) from None
            known = self._parsed[key] = (stamp, keys)
        return known[1], ", ".join(present)


def expand(name: str, config: Any, host: str, option: str) -> str:
    """A known-hosts file's name from ``~/.ssh/config`` with its tokens and ``${VAR}``s
    replaced for ``host``, as ssh does; ``Untrusted`` for one it would refuse."""
    if "%" not in name and "${" not in name:
        return name
    hostname = str(config.get("Hostname") or host)
    port = str(config.get("Port") or 22)
    remote = str(config.get("User") or local_user())
    local = socket.gethostname()
    tokens = {
        "%": "%",
        "d": os.path.expanduser("~"),
        "h": hostname,
        "i": str(os.getuid()),
        "k": str(config.get("HostKeyAlias") or host),
        "L": local.split(".")[0],
        "l": local,
        "n": host,
        "p": port,
        "r": remote,
        "u": local_user(),
    }

    def one(match: re.Match[str]) -> str:
        token, variable = match.group(1), match.group(2)
        if variable is not None:
            value = os.environ.get(variable)
            if value is None:
                raise Untrusted(
                    f"~/.ssh/config: {option} {harmless(name, 200)}: the environment "
                    f"variable {harmless(variable, 60)} is not set"
                )
            return value
        if token == "C":  # the connection's hash: %l%h%p%r
            return hashlib.sha1((local + hostname + port + remote).encode()).hexdigest()
        if token in tokens:
            return tokens[token]
        raise Untrusted(
            f"~/.ssh/config: {option} {harmless(name, 200)}: unknown token "
            f"%{harmless(token, 4)} (the tokens there: {_TOKENS})"
        )

    return _EXPANDED.sub(one, name)
