"""SSH: one persistent connection per host; commands marked, bounded and stoppable."""

from canarytui.ssh.errors import (
    AuthRefused,
    CommandLost,
    CommandResult,
    CommandTimeout,
    HostKeyRefused,
    ShellRefused,
    SshError,
    Unreachable,
    without_host,
)
from canarytui.ssh.fleet import Fleet
from canarytui.ssh.jobs import Script
from canarytui.ssh.remote import OwnScript
from canarytui.ssh.sessions import SessionRefused

__all__ = [
    "AuthRefused",
    "CommandLost",
    "CommandResult",
    "CommandTimeout",
    "Fleet",
    "HostKeyRefused",
    "OwnScript",
    "Script",
    "SessionRefused",
    "ShellRefused",
    "SshError",
    "Unreachable",
    "without_host",
]
