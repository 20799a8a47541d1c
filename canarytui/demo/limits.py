"""How big a demo fleet this process can hold: its hosts' open files against the limit.

A demo host keeps several files open while it serves (its listener, a connection, a
shell's pipes); past the process's limit, hosts fail one by one under load. A fleet that
cannot fit is refused before anything is made, saying how many hosts would.
"""

from __future__ import annotations

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
