"""Notifications: chosen events sent to webhooks and local commands, never holding the rollout.

``Notifier`` is a subscriber of the engine's bus. For each event of a kind an entry of the
file's ``notify`` list asks for, it queues a message (a readable one-line ``text`` and the
event's dict) for that entry; one sender task per entry sends its queue in order, each
send bounded by ``TIMEOUT`` and tried once more after ``RETRY_DELAY`` if it fails. A
notification that still fails is a warning notice naming the entry, with the webhook's
URL redacted (its path and query are its secret). Nothing here raises into the engine:
queues are bounded (what overflows is dropped and said), and ``close`` drains them for at
most ``DRAIN_TIMEOUT`` at shutdown, then stops every sender task.

A webhook gets ``{"text": TEXT, "event": {...}}`` as a JSON POST (Slack's and Mattermost's
incoming webhooks read ``text``; ``&``, ``<`` and ``>`` are escaped as Slack asks, so a
host's text cannot mention a channel). A command runs on the operator's machine with
``{text}``, ``{kind}``, ``{version}``, ``{env}`` and ``{app}`` shell-quoted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

from canarytui import events as ev
from canarytui.config import render
from canarytui.config.notify import Notify
from canarytui.engine.bus import Context
from canarytui.textsafe import harmless, listed

TIMEOUT = 5.0  # one attempt at one notification
RETRY_DELAY = 1.0  # before the second (and last) attempt
DRAIN_TIMEOUT = 15.0  # what shutting down waits for queued notifications (two attempts fit)
MAX_QUEUED = 100  # notifications waiting per entry; more are dropped, and said so
MAX_TEXT = 1000  # characters of the one-line summary
MAX_BODY = 256 * 1024  # a webhook's JSON; a bigger event is sent without its details
USER_AGENT = "canarytui-notify/1"

_FAILED_HOST = {ev.HostState.FAILED, ev.HostState.UNREACHABLE, ev.HostState.ROLLBACK_FAILED}


class NotifyFailed(Exception):
    """One attempt failed; ``retry``: whether another attempt could do better."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Message:
    kind: str
    text: str
    event: dict[str, Any]
    version: str
    deployment: int | None


def kind_of(event: ev.Event) -> str | None:
    """The notification kind of an event (``config.notify.KINDS``), or None."""
    match event:
        case ev.DeploymentStarted():
            return "started"
        case ev.VerdictReached():
            return "verdict"
        case ev.WaveFinished():
            return "wave"
        case ev.FailureQuestion():
            return "failure_question"
        case ev.PhaseChanged(phase=ev.Phase.HALTED):
            return "halted"
        case ev.PhaseChanged(phase=ev.Phase.ROLLING_BACK):
            return "rolling_back"
        case ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE):
            return "complete"
        case ev.DeploymentFinished():
            return "rolled_back"
        case ev.Decision():
            return "decision"
        case ev.HostUpdate(state=state) if event.deployment is not None and state in _FAILED_HOST:
            return "host_failed"
        case ev.Notice(level="error") | ev.InternalError():
            return "error"
    return None


def summary(event: ev.Event, env: str, version: str) -> str:
    """The event in one readable line, for a chat message or a log."""
    if event.deployment is not None:
        d = f"deployment #{event.deployment}" + (f" of {version}" if version else "")
    else:
        d = version
    lead = f"{d}: " if d else ""
    match event:
        case ev.DeploymentStarted(canaries=canaries, waves=waves, user=user):
            sizes = ", ".join(str(len(w)) for w in waves)
            first = f"canaries {listed(canaries)}" if canaries else "no canary phase"
            then = f"; then {len(waves)} wave(s) of {sizes} host(s)" if waves else ""
            text = f"{d or 'deployment'} started by {user}: {first}{then}"
        case ev.VerdictReached(verdict=ev.Verdict.PASS, measurements=values):
            text = f"{lead}canary verdict PASS: every rule passed ({len(values)} value(s) measured)"
        case ev.VerdictReached(verdict=verdict, reasons=reasons):
            why = f": {reasons[0]}" + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")
            text = f"{lead}canary verdict {verdict.value.upper()}" + (why if reasons else "")
        case ev.WaveFinished(wave=i, waves=n, succeeded=ok, failed=bad, not_started=left):
            failed = f" ({listed(bad)})" if bad else ""
            text = f"{lead}wave {i}/{n} done, {len(ok)} ok, {len(bad)} failed{failed}"
            text += f", {len(left)} not started" if left else ""
        case ev.FailureQuestion(wave=i, waves=n, failures=failures):
            hosts = listed([f.host for f in failures])
            text = (
                f"{lead}{hosts} failed in wave {i}/{n}; halted until someone retries, "
                "skips them or rolls back"
            )
        case ev.PhaseChanged():
            text = f"{lead}{event.label}"
        case ev.DeploymentFinished(outcome=outcome, summary=said):
            text = f"{lead}{outcome.value}: {said}"
        case ev.Decision(action=action, user=user, detail=detail):
            text = f"{lead}{user} decided {action}" + (f" ({detail})" if detail else "")
        case ev.HostUpdate(host=host, state=state, detail=detail):
            text = f"{lead}{host} {state.value}" + (f": {detail}" if detail else "")
        case ev.Notice(message=message) | ev.InternalError(message=message):
            text = f"{lead}error: {message}"
        case _:
            text = f"{lead}{event.kind}"
    return harmless(f"[{env}] {text}", MAX_TEXT)


def slack_escaped(text: str) -> str:
    """Slack reads ``<!channel>`` and ``<url|label>`` in ``text``: these three are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def target_name(index: int, target: Notify) -> str:
    """``notify[0] (webhook https://chat.example.com/…)``: the file's entry, no secret."""
    if target.webhook is not None:
        return f"notify[{index}] ({target.target})"
    program = (target.command or "").split(maxsplit=1)[:1] or ["?"]
    return f"notify[{index}] (command {harmless(program[0], 60)} …)"


class Notifier:
    """Sends the bus's events to the file's ``notify`` entries; see the module's text."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.targets = ctx.env.notify
        self.sent = 0  # notifications delivered (tests, the UI could show it)
        self.failed = 0  # notifications given up on (after the retry)
        self._queues: list[asyncio.Queue[Message]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._dropped = [0] * len(self.targets)
        self._closed = False
        self._speaking = False  # our own notices are not notified again
        self._unsubscribe = ctx.bus.subscribe(self) if self.targets else None

    def __call__(self, event: ev.Event) -> None:
        if self._closed or self._speaking:
            return
        kind = kind_of(event)
        if kind is None or not any(kind in t.on for t in self.targets):
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to send from (nothing in the engine emits outside one)
        if not self._workers:
            self._start()
        d = self.ctx.state.deployment
        version = str(getattr(event, "version", "") or (d.version if d else ""))
        message = Message(
            kind=kind,
            text=summary(event, self.ctx.env.name, version),
            event={**event.to_dict(), "env": self.ctx.env.name, "app": self.ctx.env.app},
            version=version,
            deployment=event.deployment,
        )
        for i, target in enumerate(self.targets):
            if kind not in target.on:
                continue
            try:
                self._queues[i].put_nowait(message)
            except asyncio.QueueFull:
                self._dropped[i] += 1

    def _start(self) -> None:
        for i, target in enumerate(self.targets):
            queue: asyncio.Queue[Message] = asyncio.Queue(MAX_QUEUED)
            self._queues.append(queue)
            self._workers.append(
                asyncio.create_task(self._work(i, target, queue), name=f"notify[{i}]")
            )

    async def _work(self, index: int, target: Notify, queue: asyncio.Queue[Message]) -> None:
        while True:
            message = await queue.get()
            try:
                await self._deliver(index, target, message)
            except Exception as exc:  # a bug here must not end the sender, nor the rollout
                self._warn(message, f"{target_name(index, target)}: {type(exc).__name__}")
            finally:
                queue.task_done()
            if self._dropped[index]:
                dropped, self._dropped[index] = self._dropped[index], 0
                self._warn(
                    message,
                    f"{dropped} notification(s) to {target_name(index, target)} were dropped: "
                    f"more than {MAX_QUEUED} waited for it (too slow)",
                )

    async def _deliver(self, index: int, target: Notify, message: Message) -> None:
        errors: list[str] = []
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(TIMEOUT):
                    await self._send(target, message)
                self.sent += 1
                return
            except TimeoutError:
                errors.append(f"no answer within {TIMEOUT:g}s")
                retry = True
            except NotifyFailed as exc:
                errors.append(str(exc))
                retry = exc.retry
            except (OSError, ssl.SSLError, ValueError) as exc:
                errors.append(_os_error(exc))
                retry = True
            if attempt == 1 and retry:
                await asyncio.sleep(RETRY_DELAY)
            else:
                break
        self.failed += 1
        tried = "; then ".join(errors)
        self._warn(
            message,
            f"notification ({message.kind}) to {target_name(index, target)} failed: {tried}; "
            "the rollout goes on",
        )

    async def _send(self, target: Notify, message: Message) -> None:
        if target.webhook is not None:
            body = json.dumps(
                {"text": slack_escaped(message.text), "event": message.event},
                default=str,
            ).encode()
            if len(body) > MAX_BODY:
                small = {"event": message.kind, "deployment": message.deployment}
                body = json.dumps(
                    {"text": slack_escaped(message.text), "event": {**small, "truncated": True}}
                ).encode()
            status = await post_json(target.webhook, body)
            if not 200 <= status < 300:
                # A client error other than "slow down" will not be cured by asking again.
                again = status >= 500 or status in (408, 429)
                raise NotifyFailed(f"HTTP {status}", retry=again)
            return
        assert target.command is not None
        values = {
            "text": message.text,
            "kind": message.kind,
            "version": message.version,
            "env": self.ctx.env.name,
            "app": self.ctx.env.app,
        }
        await run_command(render(target.command, values))

    def _warn(self, message: Message, text: str) -> None:
        self._speaking = True
        try:
            with contextlib.suppress(Exception):  # a full journal: the rollout says so itself
                self.ctx.bus.emit(
                    ev.Notice(level="warning", message=text, deployment=message.deployment)
                )
        finally:
            self._speaking = False

    async def close(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Stop taking events; send what is queued for at most ``timeout``; stop the senders."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if not self._workers:
            return
        joins = asyncio.gather(*(q.join() for q in self._queues))
        try:
            async with asyncio.timeout(timeout):
                await joins
        except TimeoutError:
            left = sum(q.qsize() for q in self._queues)
            self.failed += left
            with contextlib.suppress(Exception):
                self.ctx.bus.emit(
                    ev.Notice(
                        level="warning",
                        message=f"{left} notification(s) not sent: still waiting after "
                        f"{timeout:g}s when canarytui stopped",
                        deployment=self.ctx.state.deployment_id,
                    )
                )
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._queues = []


def _os_error(exc: BaseException) -> str:
    """A connection error in words; never the URL (asyncio's messages hold only host, port)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return harmless(f"{type(exc).__name__}: {text}", 300)


async def post_json(url: str, body: bytes) -> int:
    """POST ``body`` as JSON; the HTTP status. HTTP/1.1, one connection, TLS for https."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    tls = ssl.create_default_context() if https else None
    reader, writer = await asyncio.open_connection(
        host, port, ssl=tls, server_hostname=host if https else None
    )
    try:
        path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        query = urllib.parse.quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
        shown_host = f"[{host}]" if ":" in host else host.encode("idna").decode("ascii")
        lines = [
            f"POST {path}{'?' + query if query else ''} HTTP/1.1",
            f"Host: {shown_host}" + (f":{parts.port}" if parts.port else ""),
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"User-Agent: {USER_AGENT}",
            "Connection: close",
        ]
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            secret = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{secret}".encode()).decode()
            lines.append(f"Authorization: Basic {token}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body)
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.decode("latin-1").split(maxsplit=2)
        if not status_line:
            raise NotifyFailed("the connection closed without an answer")
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            shown = harmless(status_line[:60].decode("latin-1").strip(), 60)
            raise NotifyFailed(f"not an HTTP answer ({shown!r})")
        return int(fields[1])
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()


async def run_command(command: str) -> None:
    """The command on this machine in its own process group; ``NotifyFailed`` if it fails.

    Cancelled (the attempt's timeout), the whole group is killed: a shell's children too.
    """
    proc = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = await proc.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await proc.wait()
        raise
    if proc.returncode != 0:
        said = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise NotifyFailed(f"exited {proc.returncode}: {harmless(said[0], 200)}")
