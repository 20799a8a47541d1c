"""The rollout engine: the operator API (``Engine``), its plan, and what it refuses."""

from canarytui.engine.engine import ActionRefused, Engine
from canarytui.engine.plan import (
    Plan,
    PlanError,
    make_plan,
    pick_baseline,
    plan_waves,
    running_said,
    stops_at,
)
from canarytui.engine.rollback import nothing_to_roll_back, rolled_back_by

__all__ = [
    "ActionRefused",
    "Engine",
    "Plan",
    "PlanError",
    "make_plan",
    "nothing_to_roll_back",
    "pick_baseline",
    "plan_waves",
    "rolled_back_by",
    "running_said",
    "stops_at",
]
