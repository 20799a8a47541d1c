"""The rollout engine: the operator API (``Engine``), its plan, and what it refuses."""

from canarytui.engine.engine import ActionRefused, Engine
from canarytui.engine.plan import (
    Plan,
    PlanError,
    already_running,
    make_plan,
    pick_baseline,
    plan_waves,
    some_running,
    stops_at,
)

__all__ = [
    "ActionRefused",
    "Engine",
    "Plan",
    "PlanError",
    "already_running",
    "make_plan",
    "pick_baseline",
    "plan_waves",
    "some_running",
    "stops_at",
]
