"""The journal: SQLite (WAL) record of deployments, host outcomes, events and decisions.

Private to its user (state dir 0700, files 0600), versioned (PRAGMA user_version), and its
failures are one exception, JournalError, whose message names the file, what failed and
what to do. Imports only sqlite3 and platformdirs (never asyncssh or textual).
"""

from canarytui.journal.errors import JournalError
from canarytui.journal.files import default_state_dir
from canarytui.journal.records import (
    TAKE_OVER,
    DeploymentRecord,
    HostRecord,
    UnopenedStart,
    WayOut,
    local_user,
    machine_name,
    way_out,
)
from canarytui.journal.schema import SCHEMA, SCHEMA_VERSION
from canarytui.journal.store import Journal

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "TAKE_OVER",
    "DeploymentRecord",
    "HostRecord",
    "Journal",
    "JournalError",
    "UnopenedStart",
    "WayOut",
    "default_state_dir",
    "local_user",
    "machine_name",
    "way_out",
]
