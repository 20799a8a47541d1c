"""What the journal returns: a deployment and each of its hosts, and who and where a user is."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sqlite3
from dataclasses import dataclass

from canarytui import events as ev


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def machine_name() -> str:
    return socket.gethostname() or "localhost"


@dataclass(frozen=True)
class HostRecord:
    host: str
    role: str
    previous: str | None
    current: str | None
    state: str
    last_step: str | None
    exit_status: int | None
    output: str | None
    updated_at: float


@dataclass(frozen=True)
class DeploymentRecord:
    id: int
    token: str
    env: str
    app: str
    env_path: str
    version: str
    phase: str
    wave: int | None
    waves: int
    is_open: bool
    outcome: str | None
    verdict: str | None
    summary: str | None
    canaries: list[str]
    plan: list[list[str]]
    user: str
    machine: str
    started_at: float
    updated_at: float
    finished_at: float | None
    kind: str = "deploy"  # "rollback": a known version put back (rollback --to)

    @property
    def phase_label(self) -> str:
        return ev.phase_label(ev.Phase(self.phase), self.wave, self.waves)

    @property
    def phase_doing(self) -> str:
        """What it is, after "the deployment is": ``in its analysis``."""
        return ev.phase_doing(ev.Phase(self.phase), self.wave, self.waves)

    @property
    def way_out(self) -> str:
        """What can still be done with it, open: ``promote or roll it back``."""
        return ev.way_out(ev.Phase(self.phase), self.kind, self.verdict)


def deployment_from_row(row: sqlite3.Row) -> DeploymentRecord:
    data = dict(row)
    data["canaries"] = json.loads(data["canaries"])
    data["plan"] = json.loads(data["plan"])
    data["is_open"] = bool(data["is_open"])
    return DeploymentRecord(**data)
