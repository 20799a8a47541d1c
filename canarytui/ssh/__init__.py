"""SSH: one persistent connection per host; commands marked, bounded and stoppable."""

from canarytui.ssh.errors import (
    AuthRefused,
    CommandLost,
    CommandResult,
    CommandTimeout,
    HostKeyRefused,
    SshError,
    Unreachable,
)
from canarytui.ssh.fleet import Fleet
from canarytui.ssh.jobs import Script

__all__ = [
    "AuthRefused",
    "CommandLost",
    "CommandResult",
    "CommandTimeout",
    "Fleet",
    "HostKeyRefused",
    "Script",
    "SshError",
    "Unreachable",
]
