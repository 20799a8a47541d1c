"""One deployment's report from the journal: timeline, decisions, verdict, values, hosts.

``build_report`` turns what the journal holds of a deployment (its record, hosts, events
and decisions) into plain data: what ``canarytui report --format json`` prints and what
the Markdown rendering reads. Every text that came from a host or an operator (versions,
output, reasons, notices, details) goes through ``canarytui.textsafe``, bounded, so the
report is printable whatever the hosts said. Times are Unix seconds plus UTC text.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from canarytui import events as ev
from canarytui.journal.records import DeploymentRecord, HostRecord
from canarytui.readback import event_from_dict
from canarytui.textsafe import harmless, harmless_block

REPORT_FORMAT = 1  # the JSON's shape; bumped when a key changes meaning
OUTPUT_LINES = 20  # lines of a failed host's output kept
TEXT = 500  # characters of one line of text (a reason, a notice, a detail)
_FAILED_STATES = {"failed", "unreachable", "rollback failed", "skipped"}
NO_VERSION = "(none)"  # the host answered and printed no version: nothing installed
NOT_KNOWN = "(unknown)"  # the host never answered: what it runs is not known


def utc(ts: float | None) -> str | None:
    """``2025-03-01 14:02:07 UTC``; None for no time."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def safe(text: object, limit: int = TEXT) -> str:
    return harmless(str(text), limit)


def build_report(
    record: DeploymentRecord,
    hosts: Mapping[str, HostRecord],
    events: Sequence[Mapping[str, Any]],
    decisions: Sequence[Mapping[str, Any]],
    stopped: bool = False,
) -> dict[str, Any]:
    """The report of one deployment, as JSON-ready data (see the module's text).

    ``stopped``: the deployment is open and no process drives it (its phase then says so,
    as ``status`` and ``history`` do; the caller knows, from the machine's locks)."""
    typed = [e for e in (event_from_dict(raw) for raw in events) if e is not None]
    machines = {(d["at"], d["action"]): d.get("machine") for d in decisions}
    reached = _reached(record, typed)
    return {
        "report": REPORT_FORMAT,
        "deployment": _deployment(record, stopped),
        "change": _change(record, hosts, reached, typed, stopped),
        "timeline": [
            line
            for e in typed
            if (line := _line(e, record.started_at, machines, record.version)) is not None
        ],
        "decisions": [
            {
                "at": d["at"],
                "utc": utc(d["at"]),
                "user": safe(d["user"], 100),
                "machine": safe(d.get("machine") or "", 100),
                "action": safe(d["action"], 100),
                "detail": safe(d.get("detail") or ""),
            }
            for d in decisions
        ],
        "analysis": _analysis(typed),
        "hosts": [_host(h, record, reached.get(name), stopped) for name, h in hosts.items()],
    }


def _phase(r: DeploymentRecord, stopped: bool) -> str:
    return ev.phase_label(ev.Phase(r.phase), r.wave, r.waves, stopped)


def _deployment(r: DeploymentRecord, stopped: bool) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "env": r.env,
        "app": r.app,
        "env_file": safe(r.env_path, 1000),
        "version": safe(r.version, 200),
        "user": safe(r.user, 100),
        "machine": safe(r.machine, 100),
        "started_at": r.started_at,
        "started_utc": utc(r.started_at),
        "finished_at": r.finished_at,
        "finished_utc": utc(r.finished_at),
        "duration": None if r.finished_at is None else round(r.finished_at - r.started_at, 3),
        "open": r.is_open,
        "stopped": stopped,
        "phase": _phase(r, stopped),
        "outcome": r.outcome,
        "verdict": r.verdict,
        "summary": safe(r.summary or ""),
        "canaries": r.canaries,
        "waves": r.plan,
        "scope": None if r.scope is None else safe(r.scope, 300),
    }


def _reached(record: DeploymentRecord, typed: Sequence[ev.Event]) -> dict[str, float]:
    """When each host first ran the deployment's version (healthy after its steps)."""
    out: dict[str, float] = {}
    for e in typed:
        if (
            isinstance(e, ev.HostUpdate)
            and e.state is ev.HostState.DEPLOYED
            and e.version == record.version
        ):
            out.setdefault(e.host, e.at)
    return out


def _version(version: str | None, host: HostRecord) -> str:
    """A version as the change's counts show it; an unreachable host's none is not known."""
    if version:
        return safe(version, 200)
    return NOT_KNOWN if host.state in ("unreachable", "unknown") else NO_VERSION


def _change(
    r: DeploymentRecord,
    hosts: Mapping[str, HostRecord],
    reached: Mapping[str, float],
    typed: Sequence[ev.Event],
    stopped: bool,
) -> dict[str, Any]:
    """What a change ticket asks: what, when, who, how, the result, and how to back out."""
    before = Counter(_version(h.previous, h) for h in hosts.values())
    after = Counter(_version(h.current, h) for h in hosts.values())
    waves = ", ".join(str(len(w)) for w in r.plan)
    if r.kind == "rollback":
        method = f"{r.version} put back on every host, in waves of {waves}, no analysis"
    elif r.canaries:
        method = f"canary on {', '.join(r.canaries)} with automated analysis, then waves of {waves}"
    else:
        method = f"no canary phase: waves of {waves}, each host health-gated"
    failed_steps = sum(1 for e in typed if isinstance(e, ev.StepResult) and not e.ok)
    # A host can fail with no step failed (unreachable, its health gate, skipped).
    failed_hosts = sorted(safe(h.host, 200) for h in hosts.values() if h.state in _FAILED_STATES)
    warnings = sum(
        1
        for e in typed
        if (isinstance(e, ev.Notice) and e.level in ("warning", "error"))
        or isinstance(e, ev.InternalError)
    )
    previous = [v for v in before if v not in (NO_VERSION, NOT_KNOWN)]
    version = safe(r.version, 200)
    if r.kind == "rollback" and r.is_open:  # (a rollback of it would put back what it escaped)
        back_out = f"canarytui promote {r.env_path} (it finishes putting {version} back)"
    elif r.kind == "rollback":
        back_out = (
            f"none: it is itself a back-out (rollback --to {version}); another known release "
            f"in waves: canarytui rollback {r.env_path} --to VERSION"
        )
    elif r.is_open:
        back_out = f"canarytui rollback {r.env_path} (the deployment is open)"
    elif r.outcome == ev.Outcome.COMPLETE.value and r.scope is not None:
        # `--to` would put every host of the file back, not only the ones it was limited to.
        back_out = f"canarytui rollback {r.env_path} (its hosts back to their previous version)"
    elif r.outcome == ev.Outcome.COMPLETE.value and len(previous) == 1:
        back_out = f"canarytui rollback {r.env_path} --to {previous[0]}"
    elif r.outcome == ev.Outcome.COMPLETE.value:
        back_out = f"canarytui rollback {r.env_path} (each host back to its previous version)"
    else:
        back_out = "none needed: the deployment ended rolled back"
    return {
        "what": f"{r.app} {version} to {r.env} ({len(hosts)} hosts"
        + ("" if r.scope is None else f", limited by --hosts {safe(r.scope, 300)}")
        + ")",
        "requested_by": f"{safe(r.user, 100)} on {safe(r.machine, 100)}",
        "window": f"{utc(r.started_at)} to {utc(r.finished_at) or '(still open)'}",
        "method": method,
        "result": (r.outcome or f"open: {_phase(r, stopped)}")
        + (f": {safe(r.summary)}" if r.summary else ""),
        "versions_before": dict(before),
        "versions_after": dict(after),
        "hosts_reached": len(reached),
        "failed_steps": failed_steps,
        "failed_hosts": failed_hosts,
        "warnings_and_errors": warnings,
        "back_out": safe(back_out, 1000),
    }


def _line(
    e: ev.Event, start: float, machines: Mapping[Any, Any], version: str
) -> dict[str, Any] | None:
    """One timeline entry (phases, decisions, verdicts, waves, problems); None: not one.
    ``version``: the deployment's (a rollback --to's: the one it puts back)."""
    who: str | None = None
    match e:
        case ev.DeploymentStarted(version=v, canaries=c, waves=w, user=user):
            who = user
            sizes = ", ".join(str(len(x)) for x in w)
            first = f"canaries {', '.join(c)}" if c else "no canary phase"
            what = f"started {v}: {first}; " + (f"waves of {sizes} host(s)" if w else "no wave")
        case ev.PhaseChanged():
            what = f"phase: {e.label}"
        case ev.Decision(action=action, user=user, detail=detail):
            machine = machines.get((e.at, action))
            who = f"{user}@{machine}" if machine else user
            what = f"decided {action}" + (f": {detail}" if detail else "")
        case ev.AnalysisStarted(canaries=c, baseline=b, duration=d):
            what = f"analysis: {', '.join(c)} against {', '.join(b) or 'no baseline'} for {d:g}s"
        case ev.VerdictReached(verdict=v, reasons=reasons):
            more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
            what = f"verdict {v.value.upper()}" + (f": {reasons[0]}{more}" if reasons else "")
        case ev.WaveStarted(wave=i, waves=n, hosts=hs):
            what = f"wave {i}/{n} started: {len(hs)} host(s)"
        case ev.WaveFinished(wave=i, waves=n, succeeded=ok, failed=bad, not_started=left):
            what = f"wave {i}/{n} done: {len(ok)} ok, {len(bad)} failed" + (
                f" ({', '.join(bad)})" if bad else ""
            )
            what += f", {len(left)} not started" if left else ""
        case ev.TrafficShifted(phase=phase, percent=pc, ok=good):
            on = f"told {pc}% of the fleet on {safe(version, 200)}"  # (as planned)
            what = f"traffic.{phase}: " + (on if good else "FAILED")
        case ev.FailureQuestion(failures=fs):
            what = f"waiting for an operator: {', '.join(f.host for f in fs)} failed"
        case ev.HostUpdate(host=h, state=s, detail=d) if s.value in _FAILED_STATES:
            what = f"{h}: {s.value}" + (f": {d}" if d else "")
        case ev.StepResult(host=h, step=st, action=a, exit_status=code) if code != 0:
            said = "did not finish" if code is None else f"exited {code}"
            what = f"{h}: {a} step {st} {said}"
        case ev.Notice(level=level, message=m):
            what = f"[{level}] {m}"
        case ev.InternalError(message=m):
            what = f"internal error: {m}"
        case ev.DeploymentFinished(outcome=o, summary=s):
            what = f"finished: {o.value}: {s}"
        case _:
            return None
    return {
        "at": e.at,
        "utc": utc(e.at),
        "offset": round(e.at - start, 3),
        "event": e.kind,
        "who": None if who is None else safe(who, 200),
        "what": safe(what),
    }


def _analysis(typed: Sequence[ev.Event]) -> dict[str, Any] | None:
    """The analysis: who was watched, the verdict with every value, and each update's."""
    started = next((e for e in typed if isinstance(e, ev.AnalysisStarted)), None)
    verdict = next((e for e in reversed(typed) if isinstance(e, ev.VerdictReached)), None)
    updates = [e for e in typed if isinstance(e, ev.AnalysisUpdate)]
    if started is None and verdict is None:
        return None
    return {
        "canaries": started.canaries if started else [],
        "baseline": started.baseline if started else [],
        "duration": started.duration if started else None,
        # How long the canaries were watched before the verdict (early_fail: less).
        "watched": round(verdict.at - started.at, 1) if started and verdict else None,
        "verdict": verdict.verdict.value if verdict else None,
        "verdict_utc": utc(verdict.at) if verdict else None,
        "reasons": [safe(r) for r in verdict.reasons] if verdict else [],
        "measurements": [_measurement(m) for m in verdict.measurements] if verdict else [],
        "updates": [
            {
                "at": u.at,
                "elapsed": round(u.elapsed, 3),
                "measurements": [_measurement(m) for m in u.measurements],
            }
            for u in updates
        ],
    }


def _measurement(m: ev.Measurement) -> dict[str, Any]:
    data = asdict(m)
    data.update(
        rule=safe(m.rule, 200),
        host=safe(m.host, 200),
        limit=safe(m.limit, 200),
        note=safe(m.note),
        state=m.state,
    )
    return data


def _host(
    h: HostRecord, r: DeploymentRecord, reached: float | None, stopped: bool
) -> dict[str, Any]:
    """One host's row. ``cut_off``: it was being changed when the process driving the
    deployment stopped (``stopped``): not in flight, as ``status`` says it."""
    output = h.output or ""
    failed = h.state in _FAILED_STATES or (h.exit_status not in (None, 0))
    cut_off = stopped and h.state in {str(s) for s in ev.CUT_OFF}
    return {
        "host": safe(h.host, 200),
        "role": h.role,
        "previous": None if h.previous is None else safe(h.previous, 200),
        "new": safe(r.version, 200) if reached is not None else None,
        "reached_utc": utc(reached),
        # What it ran when this deployment last saw it: not now (a later one may have
        # changed it; ``status`` says now).
        "after": None if h.current is None else safe(h.current, 200),
        "state": h.state,
        "cut_off": cut_off,
        "state_said": ev.CUT_OFF[ev.HostState(h.state)] if cut_off else h.state,
        "last_step": None if h.last_step is None else safe(h.last_step, 200),
        "exit_status": h.exit_status,
        "output": harmless_block(output.rstrip("\n"), TEXT, OUTPUT_LINES) if failed else "",
    }
