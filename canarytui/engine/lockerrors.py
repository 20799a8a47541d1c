"""What can go wrong with a deployment's locks on its hosts: a reply that is not a lock's,
a host whose lock is no longer the deployment's, a deployment another machine rolled back."""

from __future__ import annotations

from typing import Any

from canarytui.ssh import SshError


class UnreadableReply(SshError):
    """A host answered a lock command with something that is not a lock reply."""


class LockRefused(Exception):
    """A host's lock check (``LockKeeper.check``) failed: nothing of its steps ran.
    ``taken``: another machine rolled the deployment back (the host is left as it is)."""

    def __init__(self, why: str, taken: bool = False) -> None:
        super().__init__(why)
        self.taken = taken


class TakenOver(Exception):
    """Another machine rolled this deployment back while this one was away."""

    def __init__(self, note: dict[str, Any]) -> None:
        self.note = note
        who = f"{note.get('user', '?')}@{note.get('machine', '?')}"
        super().__init__(f"taken over and rolled back by {who}")
