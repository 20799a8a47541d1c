"""Kill -9 the headless deploy anywhere (lock, canary, analysis, each wave, the very end):
the next processes say where it stands and roll it back, and nothing diverges (real sshd).
benches/kill9.py runs the same over more points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kill_points import cli, deploy_killed_after, divergences, kill_and_recover, spread
from sshd_fleet import FleetFactory

pytestmark = pytest.mark.sshd


def quick(doc: dict[str, Any]) -> None:
    doc["canary"]["analysis"].update(duration="1s", rules=[])
    doc["promote"].update(waves=[1, 2, "100%"], pause="0s")


async def test_kill_9_anywhere_then_status_and_rollback(
    sshd_fleet: FleetFactory, state_dir: Path
) -> None:
    fleet = sshd_fleet(4)
    env = fleet.write_env(edit=quick)
    kinds, code = await deploy_killed_after(env, "2.0.0", state_dir, None)
    assert code == 0 and kinds[-1] == "result"
    assert (await cli("rollback", str(env), state_dir=state_dir)).code == 0
    assert divergences(fleet, state_dir, "1.0.0") == []
    # Points spread over the whole run, plus right after "complete" (before the release).
    points = sorted(set(spread(len(kinds), 7)) | {kinds.index("deployment_finished") + 1})
    # The points fall in every part of the run: locking, the canary, its analysis, each
    # wave (three of them) and the end.
    waves = [i + 1 for i, kind in enumerate(kinds) if kind == "wave_started"]
    analysis = kinds.index("analysis_started") + 1
    marks = [analysis, *waves, kinds.index("deployment_finished") + 1]
    assert len(waves) == 3
    assert all(any(a < p <= b for p in points) for a, b in zip([0, *marks], marks, strict=False))
    for point in points:
        recovery = await kill_and_recover(fleet, env, state_dir, point, "2.0.0", "1.0.0")
        assert recovery.problems == [], (point, recovery)
