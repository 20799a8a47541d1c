"""What a remote command gives back, and the ways a host can fail to give it."""

from __future__ import annotations

from dataclasses import dataclass

from canarytui.config import Host


class SshError(Exception):
    """A host could not be used; the message names the host, ``what`` the kind of failure
    (a column of `check`: a refused host key is not a network problem)."""

    what = "not usable"

    def __init__(self, host: Host, message: str) -> None:
        super().__init__(said_of(host) + message)
        self.host = host


def said_of(host: Host) -> str:
    """How an ``SshError``'s message starts: the host, and where it was reached."""
    return f"{host.name} ({host.endpoint}): "


def without_host(host: Host | tuple[str, str], message: str) -> str:
    """An ``SshError``'s message without its host and address (``host``: the host, or its
    name and endpoint), for a place that says them beside it (a panel titled with the
    host, a table's row); another message as it is."""
    start = said_of(host) if isinstance(host, Host) else f"{host[0]} ({host[1]}): "
    return message[len(start) :] if message.startswith(start) else message


class Unreachable(SshError):
    """The host refused, timed out or dropped the connection."""

    what = "unreachable"


class HostKeyRefused(SshError):
    """The host's key is unknown or changed: the connection is refused, never accepted."""

    what = "host key refused"


class AuthRefused(SshError):
    """The host refused every key offered."""

    what = "login refused"


class CommandLost(Unreachable):
    """The connection went away while a command ran: it may have had an effect."""


class ShellRefused(SshError):
    """The host's login shell did not run canarytui's commands as a POSIX shell does."""

    what = "shell refused"


class CommandTimeout(SshError):
    """A command did not finish within its timeout; it was stopped on the host if it could be."""

    what = "timed out"


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str
    duration: float
    cut: int = 0  # bytes of output dropped to keep memory bounded (the head of a long output)

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def output(self) -> str:
        """stdout then stderr, saying how much was cut if the output was too long."""
        text = self.stdout
        if self.stderr:
            text = f"{text}{'' if not text or text.endswith(chr(10)) else chr(10)}{self.stderr}"
        if self.cut:
            text = f"[{self.cut} bytes of earlier output not kept]\n{text}"
        return text
