"""How big a demo fleet this process can hold, and where its hosts' files go.

A demo host keeps several files open while it serves (its listener, a connection, a
shell's pipes); past the process's limit, hosts fail one by one under load. A fleet that
cannot fit is refused before anything is made, saying how many hosts would.

A host's sandbox is rewritten all the time (its health and metrics files, its log, what
the deploy steps make); a fleet's folder goes in memory when a memory-backed folder has
room for it (``fleet_parent``).
"""

from __future__ import annotations

import os
import tempfile

from canarytui.demo.app import LOG_LIMIT
from canarytui.openfiles import HARD_LIMIT_SETTINGS, ensure_open_files, limits

# Open files: a host's listener, its connection, a shell's pipes and pidfd, the app's FIFO
# and log; and what the fleet needs besides (its loop, the control socket, the hooks).
FILES_PER_HOST = 7
FILES_RESERVE = 256


class DemoFleetRefused(Exception):
    """The fleet cannot run here as asked (nothing was started); the message says why and
    what to do."""


def open_files_shortage(hosts: int, client: bool = False) -> str | None:
    """Why ``hosts`` demo hosts cannot run in this process (None: they can), once its soft
    limit on open files is lifted as far as the hard one allows. ``client``: a client (the
    UI, the headless story) runs in this process too, with a connection to each host."""
    each = FILES_PER_HOST + (1 if client else 0)
    wanted = hosts * each + FILES_RESERVE
    soft = ensure_open_files(wanted)
    if soft >= wanted:
        return None
    fit = (soft - FILES_RESERVE) // each
    capped = "the hard limit is no higher" if limits()[1] <= soft else "the system allows no more"
    fewer = f"ask for at most {fit} hosts (--hosts {fit}), or " if fit >= 1 else ""
    return (
        f"a demo fleet of {hosts:,} hosts keeps up to {wanted:,} files open, and this process "
        f"may open only {soft:,} (ulimit -n; {capped}): {fewer}have an administrator raise "
        f"the limit ({HARD_LIMIT_SETTINGS})"
    )


# A host's files at their largest: its log at its cap and what else its sandbox holds
# (releases, health, the metrics page: a few KB), with room to spare.
HOST_BYTES = LOG_LIMIT + 64 * 1024
# Folders in memory (tmpfs), the user's own first. A file created and renamed there costs
# ~10 us against ~115 us on a journaled disk (ext4): a thousand-host release does tens of
# thousands (its hosts' files, its steps' mkdir, ln and mv).
MEMORY_FOLDERS = ("$XDG_RUNTIME_DIR", "/dev/shm")


def _memory_folders() -> list[str]:
    folders = (os.path.expandvars(name) for name in MEMORY_FOLDERS)
    # An unset variable stays as written: not a path.
    return [folder for folder in folders if os.path.isabs(folder)]


def fleet_parents() -> list[str]:
    """Every folder a fleet's own folder may be in (a dead fleet's is swept from each)."""
    return list(dict.fromkeys([*_memory_folders(), tempfile.gettempdir()]))


def fleet_parent(hosts: int) -> str | None:
    """The folder a new fleet's own folder goes in: the first memory folder that this user
    can write to and that has twice ``hosts`` hosts' largest files free; None (the temp
    folder) when ``TMPDIR`` names one (the operator's choice) or none has the room."""
    if os.environ.get("TMPDIR"):
        return None
    wanted = 2 * hosts * HOST_BYTES
    for folder in _memory_folders():
        try:
            free = os.statvfs(folder)
        except OSError:
            continue
        writable = os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
        if writable and free.f_bavail * free.f_frsize >= wanted:
            return folder
    return None
