"""The deployment keys that act now: the rollout panel lists them, the footer offers them.

One function for both, so the footer never offers a key the panel leaves out (``p`` while
the canary is analysed, after a rollback began, or while another process drives).
"""

from __future__ import annotations

from canarytui import events as ev
from canarytui.engine import nothing_to_roll_back
from canarytui.journal.records import WayOut
from canarytui.ui.fleet_state import FleetState

# The footer's actions for the deployment keys the panel names.
KEY_ACTIONS = {"d": "deploy", "p": "promote", "P": "promote_all", "s": "hold", "r": "rollback"}


def keys_now(state: FleetState, words: bool = True) -> list[tuple[str, str]]:
    """(key, what it does) for the deployment keys that act now. Not ``words``: the keys
    alone matter (the footer), and the hosts are not looked at for the words."""
    d, engine = state.deployment, state.engine
    phase, busy = engine.phase, engine.busy
    held = engine.state.held is not None
    # What promote takes (``way_out``): not a failed canary, nor a rollback begun; a
    # stop before the verdict (halted there, or its process ended): an analysis again.
    out = engine.way_out_now()
    promotable = out is None or out in (WayOut.PROMOTE_OR_ROLL_BACK, WayOut.FINISH_PUTTING_BACK)
    again = phase is ev.Phase.HALTED or engine.state.stopped
    if state.driven_by is not None and not busy:  # (refused here)
        keys = []
    elif out is WayOut.NO_VERDICT and again and not busy:
        keys = [("p", "analyse again"), ("r", "roll back")]
    elif phase is ev.Phase.AWAITING_PROMOTION and held:
        keys = [("s", "resume"), ("p", "next wave"), ("P", "all"), ("r", "roll back")]
    elif phase is ev.Phase.ROLLING_BACK or (phase is ev.Phase.HALTED and not promotable):
        # A rollback that did not finish, a failed canary: rolling back is what is left.
        stuck = words and any(w.rollback_failed for w in state.wave_progress())
        keys = [] if busy else [("r", "roll back again" if stuck else "roll back")]
    elif phase is ev.Phase.PROMOTING and busy:
        keys = [("s", "resume" if held else "hold"), ("r", "roll back")]
    elif phase is ev.Phase.AWAITING_PROMOTION and busy:  # a promote taking its locks again
        keys = [("s", "hold"), ("r", "roll back")]
    elif phase in (ev.Phase.AWAITING_PROMOTION, ev.Phase.HALTED, ev.Phase.PROMOTING):
        # (promoting, and nothing runs: what drove it ended mid-wave; p goes on)
        keys = [("p", "next wave"), ("P", "all"), ("r", "roll back")]
    elif phase in (ev.Phase.CANARY, ev.Phase.ANALYSIS):
        keys = [("r", "roll back")]
    elif phase is ev.Phase.COMPLETE:
        keys = [("d", "deploy")] + ([("r", "roll back")] if not nothing_to_roll_back(d) else [])
    else:
        keys = [("d", "deploy")]
    if d is not None and (state.replaying or d.kind == "rollback"):
        # A replay's keys are its banner's; r refuses a rollback --to (the way out).
        keys = [k for k in keys if not state.replaying and k[0] != "r"]
    return keys
