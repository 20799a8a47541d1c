"""Notifications: webhooks to a local HTTP server (payload, kinds, retry, a hung server, TLS),
commands writing to a file, the rollout never held by them, and the URL's secret never shown."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import shlex
import ssl
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import edit_env, engine_for, run_cli, wait_for

from canarytui import events as ev
from canarytui.config import EnvFileError, parse_env
from canarytui.config.notify import DEFAULT_KINDS, KINDS, redact_url
from canarytui.demo import DemoFleet
from canarytui.engine import Engine, notify
from canarytui.journal import Journal

SECRET = "/services/T0001/B0002/s3cr3tT0ken"
q = shlex.quote


@dataclass
class Hook:
    """A local webhook receiver: answers each POST with the next of ``statuses`` (then 200),
    or never answers while ``hang`` is set."""

    statuses: list[int] = field(default_factory=list)
    hang: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{SECRET}?token=abc"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers["content-length"]))
            if self.hang:
                await asyncio.wait_for(self.release.wait(), 30)
                return
            self.paths.append(lines[0].split()[1])
            self.headers.append(headers)
            self.requests.append(json.loads(body))
            status = self.statuses.pop(0) if self.statuses else 200
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    receiver = Hook()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


ENV = textwrap.dedent("""\
    name: production
    app: shop
    hosts:
      - name: web-01
        address: 127.0.0.11
    deploy:
      current: cat VERSION
      steps:
        - name: switch
          run: echo {version}
    health:
      check: "true"
    """)


def env_with(notify_yaml: str, file: str = "prod.yaml") -> Any:
    return parse_env(ENV + notify_yaml, file=file)


def problems(notify_yaml: str) -> list[str]:
    with pytest.raises(EnvFileError) as info:
        env_with(notify_yaml)
    return info.value.problems


# The file ---------------------------------------------------------------------------


def test_notify_section_read() -> None:
    env = env_with(
        textwrap.dedent("""\
        notify:
          - webhook: https://chat.example.com/hooks/abc
            on: [verdict, halted, rolled_back, complete]
          - command: logger -t canarytui {text} {kind} {version} {env} {app}
        """)
    )
    webhook, command = env.notify
    assert webhook.webhook == "https://chat.example.com/hooks/abc"
    assert webhook.on == ("verdict", "halted", "rolled_back", "complete")
    assert command.command.startswith("logger") and command.on == DEFAULT_KINDS
    assert webhook.target == "webhook https://chat.example.com/…"
    assert env_with("").notify == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notify: {webhook: x}", "prod.yaml:13: notify: expected a list, got a mapping"),
        (
            "notify:\n  - on: [verdict]",
            "prod.yaml:14: notify[0]: needs a webhook: URL or a command",
        ),
        (
            "notify:\n  - webhook: https://a.example/x\n    command: echo",
            "prod.yaml:14: notify[0]: webhook and command do not go together",
        ),
        (
            "notify:\n  - command: echo\n    at: [verdict]",
            "prod.yaml:15: notify[0].at: unknown key (known: command, on, webhook)",
        ),
        (
            "notify:\n  - command: echo\n    on: [verdict, verdikt]",
            "prod.yaml:15: notify[0].on[1]: unknown event kind 'verdikt' (did you mean "
            "'verdict'? known: started, verdict",
        ),
        (
            "notify:\n  - command: echo\n    on: []",
            "prod.yaml:15: notify[0].on: name at least one event kind (known: started,",
        ),
        (
            "notify:\n  - command: echo\n    on: verdict",
            "prod.yaml:15: notify[0].on: expected a list of event kinds: write on: [verdict]",
        ),
        (
            "notify:\n  - command: echo {host}",
            "prod.yaml:14: notify[0].command: unknown placeholder {host} (known: {app}, "
            "{env}, {kind}, {text}, {version}",
        ),
        (
            "notify:\n  - webhook: null",
            "prod.yaml:14: notify[0].webhook: expected an http:// or https:// URL, got nothing",
        ),
        (
            "notify:\n  - webhook:",
            "prod.yaml:14: notify[0].webhook: expected an http:// or https:// URL, got nothing",
        ),
        (
            "notify:\n  - webhook: [a]",
            "prod.yaml:14: notify[0].webhook: expected an http:// or https:// URL, got a list",
        ),
    ],
)
def test_bad_notify_messages(text: str, expected: str) -> None:
    found = problems(text + "\n")
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "ftp://chat.example.com" + SECRET,
            "notify[0].webhook: expected an http:// or https:// URL, got ftp://chat.example.com/…",
        ),
        ("chat.example.com" + SECRET, "expected an http:// or https:// URL, got (a URL)"),
        (
            "https://chat.example.com:99999" + SECRET,
            "notify[0].webhook: not a valid URL: check its host and port",
        ),
        ("https://chat.example.com/a b" + SECRET, "a URL has no spaces (https://chat.example."),
        ("!secret https://chat.example.com" + SECRET, "got a value that is not text"),
    ],
)
def test_bad_webhook_never_shows_its_secret(url: str, expected: str) -> None:
    found = problems(f"notify:\n  - webhook: {url}\n")
    assert any(expected in p for p in found), found
    assert not any("s3cr3t" in p or "T0001" in p for p in found), found


def test_too_many_entries() -> None:
    entries = "".join("  - command: echo\n" for _ in range(21))
    assert problems("notify:\n" + entries) == ["prod.yaml:14: notify: at most 20 entries, got 21"]


def test_redact_url() -> None:
    assert redact_url("https://hooks.slack.com/services/T/B/X") == "https://hooks.slack.com/…"
    assert redact_url("http://u:pw@127.0.0.1:8080/x?t=1") == "http://127.0.0.1:8080/…"
    assert redact_url("https://chat.example.com/") == "https://chat.example.com/"
    assert redact_url("https://chat.example.com?token=1") == "https://chat.example.com/…"
    assert redact_url("http://[::1]:9/x") == "http://[::1]:9/…"
    assert redact_url("not a url") == "(a URL)"


# The notifier on the engine's bus, without hosts ------------------------------------


def engine_with(state_dir: Path, entries: list[dict[str, Any]]) -> Engine:
    lines = ["notify:"]
    for entry in entries:
        lines.append(f"  - {next(iter(entry))}: {json.dumps(next(iter(entry.values())))}")
        if "on" in entry:
            lines.append(f"    on: {json.dumps(entry['on'])}")
    return Engine(env_with("\n".join(lines) + "\n"), Journal(state_dir))


def verdict(value: ev.Verdict = ev.Verdict.FAIL) -> ev.VerdictReached:
    return ev.VerdictReached(
        verdict=value,
        reasons=["web-01: error-ratio = 0.3 > 0.05 <!channel>"],
        measurements=[ev.Measurement("error-ratio", "web-01", 0.3, "<= 0.05", False)],
    )


def notices(engine: Engine) -> list[ev.Notice]:
    return [e for e in engine.seen if isinstance(e, ev.Notice)]  # type: ignore[attr-defined]


def watch(engine: Engine) -> Engine:
    engine.seen = []  # type: ignore[attr-defined]
    engine.subscribe(engine.seen.append)  # type: ignore[attr-defined]
    return engine


def notify_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("notify[")]


async def test_payload_and_kinds(hook: Hook, state_dir: Path) -> None:
    engine = watch(engine_with(state_dir, [{"webhook": hook.url(), "on": ["verdict", "complete"]}]))
    engine.bus.emit(ev.PhaseChanged(phase=ev.Phase.CANARY))  # no such kind: not sent
    engine.bus.emit(ev.Decision(action="promote", user="alice"))  # not asked for
    engine.bus.emit(verdict())
    await wait_for(lambda: len(hook.requests) == 1)
    await engine.notifier.close()
    assert len(hook.requests) == 1 and hook.connections == 1
    (payload,) = hook.requests
    assert set(payload) == {"text", "event"}
    # Slack-compatible: readable text at the top level, its mention syntax escaped.
    assert payload["text"] == (
        "[production] canary verdict FAIL: web-01: error-ratio = 0.3 &gt; 0.05 &lt;!channel&gt;"
    )
    event = payload["event"]
    assert event["event"] == "verdict" and event["verdict"] == "fail"
    assert event["env"] == "production" and event["app"] == "shop"
    assert event["measurements"][0]["value"] == 0.3
    assert hook.paths == [SECRET + "?token=abc"]
    assert hook.headers[0]["content-type"] == "application/json"
    assert engine.notifier.sent == 1 and notices(engine) == []
    assert notify_tasks() == []


async def test_500_then_success_is_retried(
    hook: Hook, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "RETRY_DELAY", 0.05)
    hook.statuses = [500]
    engine = watch(engine_with(state_dir, [{"webhook": hook.url()}]))
    engine.bus.emit(verdict(ev.Verdict.PASS))
    await wait_for(lambda: len(hook.requests) == 2)
    await engine.notifier.close()
    assert hook.requests[0] == hook.requests[1]
    assert hook.requests[0]["text"] == (
        "[production] canary verdict PASS: every rule passed (1 value(s) measured)"
    )
    assert engine.notifier.sent == 1 and engine.notifier.failed == 0
    assert notices(engine) == []


async def test_client_error_is_not_retried_and_said(hook: Hook, state_dir: Path) -> None:
    hook.statuses = [404, 404]
    engine = watch(engine_with(state_dir, [{"webhook": hook.url()}]))
    engine.bus.emit(verdict())
    await engine.notifier.close()
    assert len(hook.requests) == 1
    (notice,) = notices(engine)
    assert notice.level == "warning"
    assert notice.message == (
        f"notification (verdict) to notify[0] (webhook http://127.0.0.1:{hook.port}/…) "
        "failed: HTTP 404; the rollout goes on"
    )


async def test_unreachable_webhook_is_a_notice(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "RETRY_DELAY", 0.05)
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nobody listens on that port any more
    engine = watch(engine_with(state_dir, [{"webhook": f"http://127.0.0.1:{port}{SECRET}"}]))
    engine.bus.emit(verdict())
    await engine.notifier.close()
    (notice,) = notices(engine)
    assert f"to notify[0] (webhook http://127.0.0.1:{port}/…) failed: " in notice.message
    assert notice.message.count("ConnectionRefusedError") == 2
    assert SECRET not in notice.message


async def test_queue_is_bounded_and_close_stops_every_task(
    hook: Hook, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "MAX_QUEUED", 3)
    monkeypatch.setattr(notify, "TIMEOUT", 0.2)
    monkeypatch.setattr(notify, "RETRY_DELAY", 0.01)
    hook.hang = True
    engine = watch(engine_with(state_dir, [{"webhook": hook.url(), "on": ["decision"]}]))
    for i in range(10):
        engine.bus.emit(ev.Decision(action=f"hold-{i}", user="alice"))
    await engine.notifier.close(timeout=1.0)
    said = [n.message for n in notices(engine)]
    assert any("notification(s) to notify[0]" in m and "were dropped" in m for m in said), said
    assert any("notification(s) not sent: still waiting after 1s" in m for m in said), said
    assert any("no answer within 0.2s; then no answer within 0.2s" in m for m in said), said
    assert not any(SECRET in m for m in said)
    assert notify_tasks() == []
    engine.bus.emit(ev.Decision(action="late", user="alice"))  # closed: nothing starts
    assert notify_tasks() == []


async def test_command_notification_writes_a_file(state_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "said.txt"
    command = f"printf '%s|%s|%s|%s\\n' {{kind}} {{env}} {{app}} {{text}} >> {q(str(out))}"
    failing = "sh -c 'echo nope >&2; exit 3'"
    engine = watch(
        engine_with(
            state_dir,
            [{"command": command, "on": ["verdict", "decision"]}, {"command": failing}],
        )
    )
    engine.bus.emit(ev.Decision(action="promote", user="alice", detail="it's $(fine)"))
    engine.bus.emit(verdict())
    engine.bus.emit(ev.WaveFinished(wave=1, waves=2, succeeded=["web-01"], failed=[]))
    await engine.notifier.close()
    assert out.read_text().splitlines() == [
        "decision|production|shop|[production] alice decided promote (it's $(fine))",
        "verdict|production|shop|[production] canary verdict FAIL: web-01: "
        "error-ratio = 0.3 > 0.05 <!channel>",
    ]
    (notice,) = notices(engine)  # the second entry: only the verdict is its kind
    assert notice.message == (
        "notification (verdict) to notify[1] (command sh …) failed: exited 3: nope; "
        "then exited 3: nope; the rollout goes on"
    )


async def test_hung_command_is_stopped(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "TIMEOUT", 0.3)
    monkeypatch.setattr(notify, "RETRY_DELAY", 0.01)
    pids = tmp_path / "pids"
    engine = watch(engine_with(state_dir, [{"command": f"echo $$ >> {q(str(pids))}; sleep 60"}]))
    engine.bus.emit(verdict())
    await engine.notifier.close()
    (notice,) = notices(engine)
    assert "no answer within 0.3s; then no answer within 0.3s" in notice.message
    assert all(map(_gone, pids.read_text().split()))  # both runs, and their sleeps


def _gone(pid: str) -> bool:
    """No such process (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_https_webhook_verifies_the_certificate(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    receiver = Hook()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0, ssl=tls)
    receiver.port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(notify, "RETRY_DELAY", 0.01)
    try:
        engine = watch(engine_with(state_dir, [{"webhook": receiver.url("https")}]))
        engine.bus.emit(verdict())
        await engine.notifier.close()
        (notice,) = notices(engine)  # not trusted: refused, and said
        assert "TLS certificate not trusted" in notice.message and receiver.requests == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        engine = watch(engine_with(state_dir, [{"webhook": receiver.url("https")}]))
        engine.bus.emit(verdict())
        await engine.notifier.close()
        assert notices(engine) == [] and len(receiver.requests) == 1
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# A real deployment on the demo fleet --------------------------------------------------


def with_notify(demo: DemoFleet, dest: Path, entries: list[dict[str, Any]]) -> Path:
    def edit(data: dict[str, Any]) -> None:
        data["notify"] = entries

    return edit_env(demo.env_path, dest, edit)


async def test_bad_release_announced(demo: DemoFleet, hook: Hook, tmp_path: Path) -> None:
    log = tmp_path / "kinds.txt"
    env_path = with_notify(
        demo,
        tmp_path / "env.yaml",
        [
            {"webhook": hook.url(), "on": ["started", "verdict", "rolled_back", "complete"]},
            {"command": f"echo {{kind}} {{version}} >> {q(str(log))}", "on": list(KINDS)},
        ],
    )
    engine = engine_for(env_path, tmp_path / "state")
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.3.0-bad", auto_promote=True), 90)
    finally:
        await engine.notifier.close()
        await engine.fleet.close()
    assert outcome is ev.Outcome.CANARY_FAILED
    kinds = [r["event"]["event"] for r in hook.requests]
    assert kinds == ["deployment_started", "verdict", "deployment_finished"]
    texts = [r["text"] for r in hook.requests]
    assert texts[0].startswith("[demo] deployment #1 of 1.3.0-bad started by ")
    assert "canaries web-01" in texts[0]
    assert texts[1].startswith("[demo] deployment #1 of 1.3.0-bad: canary verdict FAIL: ")
    assert texts[2] == (
        "[demo] deployment #1 of 1.3.0-bad: canary failed: 1 host(s) rolled back from 1.3.0-bad"
    )
    said = log.read_text().split("\n")
    assert {"started 1.3.0-bad", "verdict 1.3.0-bad", "rolling_back 1.3.0-bad"} <= set(said)
    assert "rolled_back 1.3.0-bad" in said and "complete 1.3.0-bad" not in said
    assert notify_tasks() == []


async def test_hung_webhook_never_holds_the_rollout(
    demo: DemoFleet, hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "TIMEOUT", 1.0)
    monkeypatch.setattr(notify, "RETRY_DELAY", 0.05)
    hook.hang = True
    env_path = with_notify(
        demo, tmp_path / "env.yaml", [{"webhook": hook.url(), "on": ["verdict"]}]
    )
    engine = engine_for(env_path, tmp_path / "state")
    seen: list[ev.Event] = []
    engine.subscribe(seen.append)
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.1.0"), 90)
        # The deployment is at rest while the verdict's notification has neither been
        # answered nor given up on: sending it held nothing.
        assert outcome is ev.Outcome.CANARY_PASSED
        assert engine.notifier.sent == engine.notifier.failed == 0
        await wait_for(lambda: hook.connections >= 1)
        await engine.notifier.close()
        assert engine.notifier.failed == 1
    finally:
        await engine.fleet.close()
    warned = [e for e in seen if isinstance(e, ev.Notice) and "notification" in e.message]
    assert [e.level for e in warned] == ["warning"]
    assert warned[0].message == (
        f"notification (verdict) to notify[0] (webhook http://127.0.0.1:{hook.port}/…) failed: "
        "no answer within 1s; then no answer within 1s; the rollout goes on"
    )
    assert warned[0].deployment == 1
    journal = Journal(tmp_path / "state")
    try:
        stored = json.dumps(journal.events(1))
    finally:
        journal.close()
    assert "notify[0] (webhook" in stored and "s3cr3t" not in stored


async def test_cli_never_prints_the_secret(demo: DemoFleet, hook: Hook, tmp_path: Path) -> None:
    hook.statuses = [500] * 20
    env_path = with_notify(
        demo, tmp_path / "env.yaml", [{"webhook": hook.url(), "on": ["verdict"]}]
    )
    state = tmp_path / "state"
    runs = [
        await run_cli("check", str(env_path), state_dir=state),
        await run_cli("deploy", str(env_path), "1.1.0", "--dry-run", state_dir=state),
        await run_cli("deploy", str(env_path), "1.3.0-bad", state_dir=state),
    ]
    assert [r.code for r in runs] == [0, 0, 3], [r.err for r in runs]
    assert "notify[0] (webhook http://127.0.0.1:" in runs[2].out
    assert "failed: HTTP 500; then HTTP 500" in runs[2].out
    for r in runs:
        assert "s3cr3t" not in r.out + r.err and "T0001" not in r.out + r.err
    bad = tmp_path / "bad.yaml"
    bad.write_text(env_path.read_text().replace(hook.url(), "ftp://chat.example.com" + SECRET))
    result = await run_cli("check", str(bad), state_dir=state)
    assert result.code == 2
    assert "webhook: expected an http:// or https:// URL, got ftp://chat.example.com/…" in (
        result.err
    )
    assert "s3cr3t" not in result.err


def test_every_kind_has_a_sender() -> None:
    """Each kind the file accepts is produced by some event (a typo'd mapping fails here)."""
    samples: list[ev.Event] = [
        ev.DeploymentStarted(version="1", canaries=[], waves=[], previous={}, user="u"),
        verdict(),
        ev.WaveFinished(wave=1, waves=1, succeeded=[], failed=[]),
        ev.FailureQuestion(wave=1, waves=1, failures=[], skippable=0),
        ev.PhaseChanged(phase=ev.Phase.HALTED),
        ev.PhaseChanged(phase=ev.Phase.ROLLING_BACK),
        ev.DeploymentFinished(outcome=ev.Outcome.ROLLED_BACK, summary=""),
        ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary=""),
        ev.Decision(action="hold", user="u"),
        ev.HostUpdate(host="h", state=ev.HostState.FAILED, deployment=1),
        ev.Notice(level="error", message="x"),
    ]
    assert sorted(filter(None, map(notify.kind_of, samples))) == sorted(KINDS)
    assert notify.kind_of(ev.HostUpdate(host="h", state=ev.HostState.FAILED)) is None
    assert notify.kind_of(ev.Notice(level="warning", message="x")) is None
