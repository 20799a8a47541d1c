"""The fleet screen's actions as the command palette offers them (``CanaryApp``)."""

from __future__ import annotations

# (action on the fleet screen, title, help)
PALETTE_ACTIONS: list[tuple[str, str, str]] = [
    ("deploy", "Deploy", "Deploy a version to the canaries (asks the version, confirms)"),
    ("promote", "Promote", "Promote the open deployment to its next wave"),
    ("rollback", "Roll back", "Roll the open (or last) deployment back"),
    ("toggle_canary", "Toggle canary", "Pick or unpick the focused host as canary"),
    ("default_canaries", "Default canaries", "Pick the environment's default canaries"),
    ("logs", "Logs of focused host", "Follow the focused host's logs (again: canaries)"),
    ("logs_full", "Logs full screen", "The logs over the whole screen (L; / there filters)"),
    ("details", "Host details", "Everything about the focused host"),
    ("analysis", "Analysis", "Every rule on every canary against the baseline, with a chart"),
    ("filter", "Filter hosts", "Filter by name, role, label, state or version"),
    ("clear_filter", "Clear filter", "Show every host again"),
    ("tiles", "Tile size", "Compact tiles (one line a host) or full ones (z)"),
    ("history", "History", "Past deployments from the journal"),
    ("help", "Help", "Every key"),
]
