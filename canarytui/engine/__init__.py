"""The rollout engine: the operator API (``Engine``) and what it refuses."""

from canarytui.engine.engine import (
    ActionRefused,
    Engine,
    PlanError,
    make_plan,
    pick_baseline,
    plan_waves,
)

__all__ = ["ActionRefused", "Engine", "PlanError", "make_plan", "pick_baseline", "plan_waves"]
