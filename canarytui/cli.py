"""Command line: argument parsing and the headless runner.

Exit status: 0 done as asked; 2 invalid input, nothing touched; 3 canary failed and was
rolled back; 4 promotion halted or rolled back; 1 any other error; 130 interrupted
(Ctrl-C; an open deployment stays open). A user's mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import IO, Any

from canarytui import events as ev
from canarytui.config import EnvFileError, Environment, VersionError, load_env

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_CANARY_FAILED = 3
EXIT_PROMOTION_FAILED = 4
EXIT_INTERRUPTED = 130

OUTCOME_EXIT = {
    ev.Outcome.CANARY_PASSED: EXIT_OK,
    ev.Outcome.PAUSED: EXIT_OK,
    ev.Outcome.COMPLETE: EXIT_OK,
    ev.Outcome.ROLLED_BACK: EXIT_OK,
    ev.Outcome.CANARY_FAILED: EXIT_CANARY_FAILED,
    ev.Outcome.HALTED: EXIT_PROMOTION_FAILED,
    ev.Outcome.PROMOTION_ROLLED_BACK: EXIT_PROMOTION_FAILED,
    ev.Outcome.INCONCLUSIVE: EXIT_ERROR,
    ev.Outcome.ABORTED: EXIT_ERROR,
    ev.Outcome.ERROR: EXIT_ERROR,
}

COMMANDS = ("check", "deploy", "promote", "rollback", "status", "history", "unlock", "demo")

USAGE = """\
canarytui ENV.yaml                      the UI on that environment
canarytui demo [--hosts N]              embedded demo fleet + the UI
canarytui check ENV.yaml                validate, connect to every host, print version and health
canarytui deploy ENV.yaml VERSION [--canary a,b | --canary-percent N] [--auto-promote] [--json]
canarytui promote ENV.yaml [--json]     continue the open deployment to the rest
canarytui rollback ENV.yaml [--json]    roll the open (or last) deployment back where it went
canarytui status ENV.yaml               the open deployment and the fleet, once
canarytui history ENV.yaml [--json]     past deployments from the journal
canarytui unlock ENV.yaml               break a stale lock, after saying whose it was
canarytui demo --serve [--hosts N]      the demo fleet alone; prints its env file's path
canarytui demo ctl HOST down|hang|flaky|slow|up    faults on a running demo fleet

common options (anywhere on the line): --state-dir DIR (journal; default the platform's
user state dir, or $CANARYTUI_STATE_DIR), --theme NAME

exit status: 0 done as asked; 1 other error (lock held, canary unreachable, ...);
2 invalid input, nothing touched; 3 canary failed and was rolled back;
4 promotion halted or rolled back; 130 interrupted (the deployment stays open)
"""


class UsageError(Exception):
    pass


def _common(argv: Sequence[str]) -> tuple[list[str], dict[str, str | None]]:
    """Pull the common options out from anywhere on the line."""
    rest: list[str] = []
    found: dict[str, str | None] = {"state_dir": None, "theme": None}
    it = iter(argv)
    for arg in it:
        for opt in ("--state-dir", "--theme"):
            key = opt[2:].replace("-", "_")
            if arg == opt:
                value = next(it, None)
                if value is None:
                    raise UsageError(f"{opt} needs a value")
                found[key] = value
                break
            if arg.startswith(opt + "="):
                found[key] = arg.split("=", 1)[1]
                break
        else:
            rest.append(arg)
    return rest, found


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="canarytui", usage=USAGE, add_help=True)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("check")
    s.add_argument("env")
    s = sub.add_parser("deploy")
    s.add_argument("env")
    s.add_argument("version")
    group = s.add_mutually_exclusive_group()
    group.add_argument("--canary", help="comma-separated canary host names")
    group.add_argument("--canary-percent", type=float)
    s.add_argument("--auto-promote", action="store_true")
    s.add_argument("--json", action="store_true")
    for name in ("promote", "rollback", "history"):
        s = sub.add_parser(name)
        s.add_argument("env")
        s.add_argument("--json", action="store_true")
    for name in ("status", "unlock"):
        s = sub.add_parser(name)
        s.add_argument("env")
    s = sub.add_parser("demo")
    s.add_argument("--hosts", type=int, default=12)
    s.add_argument("--serve", action="store_true")
    s.add_argument("ctl", nargs="*", help="ctl HOST down|hang|flaky|slow|up")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    try:
        rest, common = _common(args_in)
    except UsageError as exc:
        print(f"canarytui: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if not rest:
        print(USAGE, end="", file=sys.stderr)
        return EXIT_INVALID
    if rest[0] in ("-h", "--help"):
        print(USAGE, end="")
        return EXIT_OK
    if rest[0] not in COMMANDS:
        if len(rest) != 1 or rest[0].startswith("-"):
            print(USAGE, end="", file=sys.stderr)
            return EXIT_INVALID
        return _guard(lambda: _ui(rest[0], common))
    try:
        args = _parser().parse_args(rest)
    except SystemExit as exc:  # argparse has printed its message
        return EXIT_INVALID if exc.code else EXIT_OK
    args.state_dir = common["state_dir"]
    args.theme = common["theme"]
    handler: Callable[[argparse.Namespace], int] = {
        "check": _check,
        "deploy": _deploy,
        "promote": _promote,
        "rollback": _rollback,
        "status": _status,
        "history": _history,
        "unlock": _unlock,
        "demo": _demo,
    }[args.command]
    return _guard(lambda: handler(args))


def _guard(fn: Callable[[], int]) -> int:
    from canarytui.engine import ActionRefused, PlanError
    from canarytui.engine.locks import LockHeld

    try:
        return fn()
    except EnvFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    except (VersionError, PlanError) as exc:
        print(f"canarytui: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except LockHeld as exc:
        print(
            f"canarytui: refused: {exc}\n  (if that run is dead: canarytui unlock ENV.yaml)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except ActionRefused as exc:
        print(f"canarytui: refused: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            "\ncanarytui: interrupted; an open deployment stays open in the journal "
            "(canarytui status / promote / rollback)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR


def _journal(args: argparse.Namespace) -> Any:
    from canarytui.journal import Journal

    return Journal(args.state_dir)


def _run_engine(
    args: argparse.Namespace,
    env: Environment,
    json_out: bool,
    action: Callable[[Any], Coroutine[Any, Any, int]],
) -> int:
    """Run one engine call with a printer attached; always close connections."""
    from canarytui.engine import Engine

    journal = _journal(args)
    printer = JsonPrinter(sys.stdout) if json_out else HumanPrinter(sys.stdout)

    async def go() -> int:
        engine = Engine(env, journal)
        engine.subscribe(printer)
        try:
            return await action(engine)
        finally:
            await engine.fleet.close()

    try:
        return asyncio.run(go())
    finally:
        journal.close()


# ------------------------------------------------------------------ subcommands


def _deploy(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    env.validate_version(args.version)
    canaries = [c.strip() for c in args.canary.split(",") if c.strip()] if args.canary else None

    async def action(engine: Any) -> int:
        outcome = await engine.deploy(
            args.version,
            canaries=canaries,
            canary_percent=args.canary_percent,
            auto_promote=args.auto_promote,
        )
        return _finish(engine, outcome, args.json)

    return _run_engine(args, env, args.json, action)


def _promote(args: argparse.Namespace) -> int:
    env = load_env(args.env)

    async def action(engine: Any) -> int:
        outcome = await engine.promote(all_waves=True)
        return _finish(engine, outcome, args.json)

    return _run_engine(args, env, args.json, action)


def _rollback(args: argparse.Namespace) -> int:
    env = load_env(args.env)

    async def action(engine: Any) -> int:
        outcome = await engine.rollback()
        return _finish(engine, outcome, args.json)

    return _run_engine(args, env, args.json, action)


def _finish(engine: Any, outcome: ev.Outcome, json_out: bool) -> int:
    code = OUTCOME_EXIT[outcome]
    if json_out:
        print(
            json.dumps(
                {
                    "event": "result",
                    "outcome": outcome.value,
                    "exit": code,
                    "deployment": engine.deployment.id if engine.deployment else None,
                }
            )
        )
    else:
        print(summary_text(engine, outcome))
    return code


def summary_text(engine: Any, outcome: ev.Outcome) -> str:
    d = engine.deployment
    lines = [f"== {outcome.value}" + (f": deployment #{d.id} of {d.version}" if d else "")]
    counts: dict[str, list[str]] = {}
    if d is not None:
        for h in d.canaries + [h for wave in d.plan for h in wave]:
            counts.setdefault(engine.host_states[h].value, []).append(h)
    for state, hosts in sorted(counts.items()):
        shown = ", ".join(hosts[:8]) + (f" and {len(hosts) - 8} more" if len(hosts) > 8 else "")
        lines.append(f"   {state:>15}: {len(hosts):>4}  {shown}")
    env = engine.env.path
    both = f"next: canarytui promote {env}, or canarytui rollback {env}"
    hints = {
        ev.Outcome.CANARY_PASSED: both,
        ev.Outcome.INCONCLUSIVE: both,
        ev.Outcome.HALTED: both,
        ev.Outcome.PAUSED: f"next: canarytui promote {env}",
    }
    if outcome in hints:
        lines.append("   " + hints[outcome])
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    from canarytui.engine import Engine
    from canarytui.metrics.sources import probe

    print(f"{env.path}: valid; {len(env.hosts)} hosts, environment {env.name}, app {env.app}")
    journal = _journal(args)

    async def go() -> int:
        engine = Engine(env, journal)
        fleet = engine.fleet
        try:
            versions = await engine.discover()
            samples = await asyncio.gather(
                *(
                    probe(fleet, env, h)
                    for h in env.host_names
                    if engine.host_states[h] is not ev.HostState.UNREACHABLE
                )
            )
            health = {s.host: s for s, _ in samples}
            bad = 0
            width = max(len(h) for h in env.host_names)
            for host in env.hosts:
                name = host.name
                if engine.host_states[name] is ev.HostState.UNREACHABLE:
                    bad += 1
                    print(f"{name:<{width}}  UNREACHABLE  {_last_detail(engine, name)}")
                    continue
                sample = health.get(name)
                state = "healthy" if sample and sample.ok else "UNHEALTHY"
                bad += 0 if sample and sample.ok else 1
                detail = f"  {sample.detail}" if sample and sample.detail else ""
                print(
                    f"{name:<{width}}  {versions.get(name) or '(no version)':<14} {state}{detail}"
                )
            print(f"== {len(env.hosts) - bad} of {len(env.hosts)} hosts reachable and healthy")
            return EXIT_OK if bad == 0 else EXIT_ERROR
        finally:
            await fleet.close()
            journal.close()

    return asyncio.run(go())


def _last_detail(engine: Any, name: str) -> str:
    return str(engine.details.get(name, ""))


def _status(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    journal = _journal(args)
    from canarytui.engine import Engine

    async def go() -> int:
        engine = Engine(env, journal)
        try:
            record = engine.open_deployment()
            versions = await engine.discover()
        finally:
            await engine.fleet.close()
        if record is None:
            last = journal.last_deployment(env.name, env.app)
            print(
                f"{env.name}/{env.app}: no open deployment"
                + (
                    f" (last: #{last.id} {last.version} {last.outcome or last.phase_label})"
                    if last
                    else ""
                )
            )
            recorded: dict[str, Any] = {}
        else:
            print(
                f"{env.name}/{env.app}: deployment #{record.id} of {record.version} is OPEN: "
                f"{record.phase_label}" + (f", verdict {record.verdict}" if record.verdict else "")
            )
            print(f"   started by {record.user}@{record.machine} at {_when(record.started_at)}")
            recorded = journal.hosts(record.id)
        width = max(len(h) for h in env.host_names)
        print(f"{'HOST':<{width}}  {'RUNNING':<14} {'RECORDED':<14} {'STATE':<15} ROLE")
        for name in env.host_names:
            rec = recorded.get(name)
            running = versions.get(name)
            reach = engine.host_states[name]
            shown = "(unreachable)" if reach is ev.HostState.UNREACHABLE else (running or "-")
            print(
                f"{name:<{width}}  {shown:<14} {(rec.current if rec else '') or '-':<14} "
                f"{(rec.state if rec else reach.value):<15} {rec.role if rec else ''}"
            )
        return EXIT_OK

    try:
        return asyncio.run(go())
    finally:
        journal.close()


def _history(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    journal = _journal(args)
    try:
        records = journal.history(env.name, env.app)
        if args.json:
            for r in records:
                print(
                    json.dumps(
                        {
                            "deployment": r.id,
                            "version": r.version,
                            "phase": r.phase,
                            "outcome": r.outcome,
                            "open": r.is_open,
                            "verdict": r.verdict,
                            "canaries": r.canaries,
                            "user": r.user,
                            "machine": r.machine,
                            "started_at": r.started_at,
                            "finished_at": r.finished_at,
                            "summary": r.summary,
                        }
                    )
                )
            return EXIT_OK
        if not records:
            print(f"{env.name}/{env.app}: no deployments in {journal.path}")
            return EXIT_OK
        print(f"{'#':>4}  {'STARTED':<19}  {'VERSION':<14} {'OUTCOME':<22} {'BY':<16} CANARIES")
        for r in records:
            outcome = r.outcome or f"open: {r.phase_label}"
            print(
                f"{r.id:>4}  {_when(r.started_at):<19}  {r.version:<14} {outcome:<22} "
                f"{r.user:<16} {', '.join(r.canaries)}"
            )
        return EXIT_OK
    finally:
        journal.close()


def _unlock(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    from canarytui.engine import locks as lock
    from canarytui.ssh import Fleet, SshError

    journal = _journal(args)
    path = lock.local_lock_path(journal.state_dir, env.name, env.app)
    held = lock.break_local(path)
    if held:
        print(f"broke local lock {path}: it was held by {lock.describe_owner(held)}")
    else:
        print(f"no local lock at {path}")

    async def go() -> int:
        fleet = Fleet(env)
        broken = 0
        errors = 0

        async def one(name: str) -> None:
            nonlocal broken, errors
            try:
                result = await fleet.run(name, lock.break_command(env.app, env.name))
            except SshError as exc:
                errors += 1
                print(f"{name}: could not check its lock: {exc}")
                return
            _, owner, _ = lock.parse_acquire(result.stdout)
            if result.stdout.startswith("HELD"):
                broken += 1
                print(f"{name}: broke lock held by {lock.describe_owner(owner)}")

        try:
            await asyncio.gather(*(one(h) for h in env.host_names))
        finally:
            await fleet.close()
        print(
            f"== {broken} host lock(s) broken"
            + (f", {errors} host(s) unreachable" if errors else "")
        )
        record = journal.open_deployment(env.name, env.app)
        if record is not None:
            print(
                f"   deployment #{record.id} of {record.version} is still open "
                f"({record.phase_label}): promote or roll it back"
            )
        return EXIT_OK if errors == 0 else EXIT_ERROR

    try:
        return asyncio.run(go())
    finally:
        journal.close()


def _demo(args: argparse.Namespace) -> int:
    from canarytui import demo

    if args.ctl:
        if len(args.ctl) != 3 or args.ctl[0] != "ctl":
            print(
                "canarytui: usage: canarytui demo ctl HOST down|hang|flaky|slow|up", file=sys.stderr
            )
            return EXIT_INVALID
        return int(demo.ctl_main(args.ctl[1], args.ctl[2]))
    if not 1 <= args.hosts <= 500:
        print(f"canarytui: --hosts must be between 1 and 500, got {args.hosts}", file=sys.stderr)
        return EXIT_INVALID
    if args.serve:
        return int(demo.serve_main(args.hosts))
    return _demo_ui(args)


def _demo_ui(args: argparse.Namespace) -> int:
    try:
        from canarytui.ui.app import run_demo
    except ImportError:
        return _demo_story(args)
    return int(run_demo(hosts=args.hosts, state_dir=args.state_dir, theme=args.theme))


def _demo_story(args: argparse.Namespace) -> int:
    """Headless demo: the good release promoted, then the bad one caught."""
    import tempfile

    from canarytui.demo import DemoFleet
    from canarytui.engine import Engine
    from canarytui.journal import Journal

    state_dir = args.state_dir or tempfile.mkdtemp(prefix="canarytui-demo-state-")

    async def go() -> int:
        async with DemoFleet(hosts=args.hosts) as fleet:
            env = load_env(fleet.env_path)
            journal = Journal(state_dir)
            printer = HumanPrinter(sys.stdout)
            for version in ("1.1.0", "1.3.0-bad"):
                print(f"\n##### deploying {version}")
                engine = Engine(env, journal)
                engine.subscribe(printer)
                try:
                    outcome = await engine.deploy(version, auto_promote=True)
                finally:
                    await engine.fleet.close()
                print(summary_text(engine, outcome))
            journal.close()
        return EXIT_OK

    return asyncio.run(go())


def _ui(env_path: str, common: dict[str, str | None]) -> int:
    env = load_env(env_path)
    try:
        from canarytui.ui.app import run_app
    except ImportError:
        print(
            "canarytui: the UI is not available in this build; use the subcommands "
            "(canarytui --help)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return int(run_app(env, state_dir=common["state_dir"], theme=common["theme"]))


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


# --------------------------------------------------------------------- printers


class JsonPrinter:
    """One JSON object per event per line."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __call__(self, event: ev.Event) -> None:
        self.out.write(event.to_json() + "\n")
        self.out.flush()


class HumanPrinter:
    """Per-host progress lines, for people watching a terminal or reading a CI log."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._last_analysis = 0.0

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, event: ev.Event) -> None:
        match event:
            case ev.DeploymentStarted(version=v, canaries=c, waves=w):
                sizes = ", ".join(str(len(x)) for x in w) or "none"
                self._say(
                    f"deployment #{event.deployment}: {v} to canaries {', '.join(c)}; "
                    f"waves of {sizes} host(s) after"
                )
            case ev.PhaseChanged():
                self._say(f"-- {event.label}")
            case ev.HostUpdate(host=h, state=s, version=v, detail=d) if event.deployment:
                if s in (ev.HostState.PENDING, ev.HostState.IDLE):
                    return
                extra = (
                    f" {v}" if v and s in (ev.HostState.DEPLOYED, ev.HostState.ROLLED_BACK) else ""
                )
                self._say(f"   {h}: {s.value}{extra}" + (f"  ({d})" if d else ""))
            case ev.StepResult(host=h, step=st, exit_status=code, duration=dur, output=out):
                mark = "ok" if code == 0 else f"FAILED (exit {code})"
                self._say(f"   {h}: {st} {mark} {dur:.2f}s")
                if code != 0 and out.strip():
                    for line in out.strip().splitlines()[-5:]:
                        self._say(f"      | {line}")
            case ev.AnalysisStarted(canaries=c, baseline=b, duration=dur):
                self._say(
                    f"   watching {', '.join(c)} for {dur:g}s; baseline: {', '.join(b) or 'none'}"
                )
            case ev.AnalysisUpdate(elapsed=el, duration=dur, measurements=ms):
                now = time.monotonic()
                if now - self._last_analysis < 2.0 and el < dur:
                    return
                self._last_analysis = now
                shown = "; ".join(
                    f"{m.host} {m.rule}=" + ("-" if m.value is None else f"{m.value:.3g}")
                    for m in ms
                )
                self._say(f"   analysis {el:4.0f}s/{dur:g}s  {shown}")
            case ev.VerdictReached(verdict=v, reasons=rs):
                self._say(f"   verdict: {v.value.upper()}")
                for r in rs:
                    self._say(f"      {r}")
            case ev.WaveStarted(wave=i, waves=n, hosts=hs):
                self._say(f"   wave {i}/{n}: {len(hs)} host(s)")
            case ev.WaveFinished(wave=i, waves=n, succeeded=ok, failed=bad):
                self._say(
                    f"   wave {i}/{n} done: {len(ok)} ok, {len(bad)} failed"
                    + (f" ({', '.join(bad)})" if bad else "")
                )
            case ev.Notice(level=lv, message=m):
                self._say(f"   [{lv}] {m}")
            case ev.Decision(action=a, user=u, detail=d):
                self._say(f"   decision: {a} by {u}" + (f" ({d})" if d else ""))
            case ev.DeploymentFinished(outcome=o, summary=s):
                self._say(f"-- {o.value}: {s}")
            case _:
                return
