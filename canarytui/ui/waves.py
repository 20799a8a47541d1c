"""The rollout's rows (the canary, each wave) counted from the hosts' states: plain Python."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from canarytui import events as ev
from canarytui.journal import DeploymentRecord

# A wave's hosts counted failed (SKIPPED: against max_failures too).
_FAILED = {
    ev.HostState.FAILED,
    ev.HostState.UNREACHABLE,
    ev.HostState.ROLLBACK_FAILED,
    ev.HostState.SKIPPED,
}


@dataclass
class WaveProgress:
    label: str
    done: int
    failed: int
    active: int
    total: int
    rolled_back: int = 0
    unreachable: int = 0  # of ``failed``: never reached, not failed by a step
    cut_off: int = 0  # changed when the process driving it stopped (``ev.CUT_OFF``)
    rollback_failed: int = 0  # of ``failed``: the release is still on them


def wave_progress(
    d: DeploymentRecord, states: Mapping[str, ev.HostState], cut_off: Collection[str]
) -> list[WaveProgress]:
    """Each row of deployment ``d``: its hosts done, failed, in flight, rolled back."""
    # No canary phase (a rollback to a version, a file without canaries): no canary row.
    groups = [("canary", d.canaries)] if d.canaries else []
    groups += [(f"wave {i}", w) for i, w in enumerate(d.plan, 1)]
    out: list[WaveProgress] = []
    for label, hosts in groups:
        done = failed = active = rolled = lost = cut = stuck = 0
        for h in hosts:
            s = states.get(h)
            lost += s is ev.HostState.UNREACHABLE
            stuck += s is ev.HostState.ROLLBACK_FAILED
            if h in cut_off:
                cut += 1
                continue
            if s is ev.HostState.ROLLED_BACK:
                rolled += 1
            elif s is ev.HostState.DEPLOYED:
                done += 1
            elif s in _FAILED:
                failed += 1
            elif s in (ev.HostState.DEPLOYING, ev.HostState.ROLLING_BACK):
                active += 1
        out.append(WaveProgress(label, done, failed, active, len(hosts), rolled, lost, cut, stuck))
    return out
