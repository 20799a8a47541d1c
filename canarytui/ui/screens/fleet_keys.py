"""The fleet screen's keys, and which of them its footer offers now.

The footer offers the keys that act now: the deployment's (deploy, promote, promote all,
hold, roll back) when the rollout panel names them (``keys_now``: not promote while the
canary is analysed or once a rollback began, none while another process drives), the
full-screen logs' way back while they are up; the others always. A key left out still
answers: it is bound again, hidden (``as_key``), to the same action, which says why it does
nothing now: a habit is never met with silence. Idle, the footer then fits an 80-column
terminal whole.
"""

from __future__ import annotations

from collections.abc import Collection

from textual.binding import Binding, BindingType

# The keys the footer leaves out when they do not act, still answering (hidden).
_ANSWERING = (
    ("d", "deploy"),
    ("p", "promote"),
    ("P", "promote_all"),
    ("s", "hold"),
    ("r", "rollback"),
)

# In the footer in order, as many as fit; space and c: the rollout panel says them.
FLEET_KEYS: list[BindingType] = [
    # Help and quit first: a narrow terminal cuts the footer's end (help lists all).
    Binding("question_mark", "help", "Help"),
    Binding("q", "app.quit", "Quit"),
    Binding("L", "as_key('logs_full')", "Back"),  # to the grid, from the full-screen logs
    Binding("d", "deploy", "Deploy"),
    Binding("p", "promote", "Promote"),
    Binding("P", "promote_all", "Promote all"),
    Binding("s", "hold", "Hold"),  # and resume: help says
    Binding("r", "rollback", "Rollback"),
    Binding("a", "analysis", "Analysis"),
    Binding("l", "logs", "Logs"),
    Binding("enter", "details", "Host"),  # its details screen
    Binding("slash", "filter", "Filter"),
    Binding("H", "history", "History"),
    Binding("space", "toggle_canary", "Canary", show=False),
    Binding("c", "default_canaries", "Defaults", show=False),
    Binding("L", "logs_full", "Logs full screen", show=False),
    Binding("escape", "clear_filter", "Clear filter", show=False),
    Binding("z", "tiles", "Tile size", show=False),
    *(Binding(key, f"as_key('{action}')", show=False) for key, action in _ANSWERING),
]
# The fleet screen's actions on the grid's focused host (or the grid itself).
ON_THE_GRID = frozenset({"toggle_canary", "default_canaries", "logs", "details", "filter"})
# The deployment's keys: offered when the rollout panel names them (``keys_now``).
DEPLOYMENT_KEYS = frozenset({"deploy", "promote", "promote_all", "hold", "rollback"})


def offered(
    action: str,
    parameters: tuple[object, ...],
    acting: Collection[str],
    logs_up: bool,
    live: bool = True,
) -> bool:
    """Whether ``action`` acts now, and so is in the footer: ``acting`` the deployment's
    actions that do (``keys_now``), ``logs_up`` the logs are over the screen (the keys on
    the grid's focused host do nothing: nobody sees which host they would change), ``live``
    not a replay (whose keys are its own: every one stays)."""
    if action in ON_THE_GRID and logs_up:
        return False
    if action == "as_key":
        return live and (parameters != ("logs_full",) or logs_up)
    if not live:
        return True
    if action in DEPLOYMENT_KEYS:
        return action in acting
    return True
