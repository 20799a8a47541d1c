"""The host keys a connection is verified against.

The environment file's ``ssh.known_hosts`` when it names one (that file only); else the
files OpenSSH reads for that host: ``~/.ssh/config``'s ``UserKnownHostsFile`` and
``GlobalKnownHostsFile``, by default ``~/.ssh/known_hosts``, ``~/.ssh/known_hosts2``,
``/etc/ssh/ssh_known_hosts`` and ``/etc/ssh/ssh_known_hosts2`` (where a team's
configuration management often puts the fleet's keys, or its ``@cert-authority`` line).
There is never a way to skip the check: no file to read is a refusal.

Each set of files is parsed once for the fleet and again only when one of them changes:
given as paths, asyncssh would read them on every connection, which grows with the fleet's
size squared.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from canarytui.ssh.jump import file_stamp
from canarytui.textsafe import harmless

if TYPE_CHECKING:
    import asyncssh

USER_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
_HOW = "log in once with ssh to add the hosts' keys, or ssh-keyscan after checking the fingerprints"


class Untrusted(Exception):
    """No host key can be read to verify the host against (the message says why)."""


class KnownHosts:
    """The fleet's host-key files, parsed as they are first needed."""

    def __init__(self, explicit: Path | None) -> None:
        self.explicit = explicit
        self._parsed: dict[tuple[str, ...], tuple[tuple[Any, ...], asyncssh.SSHKnownHosts]] = {}

    def files(self, config: Any) -> list[str]:
        """The files for a host whose ``~/.ssh/config`` is ``config``, in OpenSSH's order."""
        if self.explicit is not None:
            return [str(self.explicit)]
        user = config.get("UserKnownHostsFile", ())  # []: "none"
        shared = config.get("GlobalKnownHostsFile", ())
        named = [*(USER_FILES if user == () else user), *(GLOBAL_FILES if shared == () else shared)]
        return [os.path.expanduser(str(p)) for p in named]

    def trusted(self, config: Any) -> tuple[asyncssh.SSHKnownHosts, str]:
        """The keys to verify the host against, and the files they came from (to name in
        a refusal). Raises ``Untrusted`` when there is no file to read."""
        import asyncssh

        files = self.files(config)
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
