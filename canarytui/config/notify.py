"""Reader of the notify section: webhooks and local commands told of chosen event kinds.

A webhook's URL usually carries its secret (Slack's ``/services/T000/B000/XXXX``, a token
in the query), so it is never shown whole: messages, the dry run and notices show
``redact_url`` (scheme, host and port; path and query replaced by ``…``).
"""

from __future__ import annotations

import difflib
import urllib.parse
from dataclasses import dataclass

from yaml.nodes import Node, ScalarNode, SequenceNode

from canarytui.config.limits import shown
from canarytui.config.reader import NULL, STR, NodeReader, kind

# Event kinds a notification can be sent on, and what each means (README, `--help`).
KINDS: dict[str, str] = {
    "started": "a deployment started (its canaries, its waves)",
    "verdict": "the canary analysis reached a verdict (pass, fail, inconclusive)",
    "wave": "a wave of the promotion finished",
    "failure_question": "hosts failed in a wave and on_failure: ask waits for an answer",
    "halted": "the rollout halted (a host failed, a hook failed, an internal error)",
    "rolling_back": "a rollback started",
    "rolled_back": "a deployment was rolled back (the canary failed, or an operator asked)",
    "complete": "a deployment was promoted to every host",
    "decision": "an operator decided (promote, hold, resume, retry, skip, rollback)",
    "host_failed": "a host failed, was unreachable, or its rollback failed",
    "error": "an error notice or an internal error",
}
# Sent when an entry has no `on`: what a channel announcing releases wants to hear.
DEFAULT_KINDS = (
    "started",
    "verdict",
    "failure_question",
    "halted",
    "rolled_back",
    "complete",
    "error",
)
# A command's placeholders: the one-line summary, the event kind and the deployment's.
NOTIFY_PLACEHOLDERS = frozenset({"text", "kind", "version", "env", "app"})
MAX_TARGETS = 20  # entries in `notify`: each gets its own queue and sender


@dataclass(frozen=True)
class Notify:
    """One entry of ``notify``: a webhook (JSON POST) or a local command, and its kinds."""

    webhook: str | None = None
    command: str | None = None
    on: tuple[str, ...] = DEFAULT_KINDS

    @property
    def target(self) -> str:
        """How the entry is named in messages: never the webhook's path or query."""
        if self.webhook is not None:
            return f"webhook {redact_url(self.webhook)}"
        return f"command {self.command!r}"


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/XYZ?t=1`` -> ``https://hooks.slack.com/…``.

    User info (``user:password@``) is dropped; anything unparsable is shown as ``(a URL)``.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(a URL)"
    if not parts.scheme or not host:
        return "(a URL)"
    host = f"[{host}]" if ":" in host else host
    where = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    secret = parts.path not in ("", "/") or parts.query or parts.fragment
    return where + ("/…" if secret else "/")


def read_notify(r: NodeReader, node: Node | None) -> tuple[Notify, ...]:
    items = r.sequence(node, "notify")
    if not items:
        return ()
    if len(items) > MAX_TARGETS:
        r.problem(node, "notify", f"at most {MAX_TARGETS} entries, got {len(items)}")
        return ()
    out = []
    for i, item in enumerate(items):
        target = _read_target(r, item, f"notify[{i}]")
        if target is not None:
            out.append(target)
    return tuple(out)


def _read_target(r: NodeReader, node: Node, path: str) -> Notify | None:
    m = r.mapping(node, path, {"webhook", "command", "on"})
    if m is None:
        return None
    if "webhook" in m and "command" in m:
        r.problem(node, path, "webhook and command do not go together: write two entries")
        return None
    if "webhook" not in m and "command" not in m:
        r.problem(node, path, "needs a webhook: URL or a command: to run")
        return None
    on = _read_kinds(r, m.get("on"), f"{path}.on")
    if "command" in m:
        command = r.command(m["command"], f"{path}.command", None, NOTIFY_PLACEHOLDERS)
        return None if command is None or on is None else Notify(command=command, on=on)
    url = _read_url(r, m["webhook"], f"{path}.webhook")
    return None if url is None or on is None else Notify(webhook=url, on=on)


def _read_url(r: NodeReader, node: Node, path: str) -> str | None:
    """An http(s) URL; every message about it shows it redacted, never its path or query."""
    if isinstance(node, ScalarNode) and node.tag != STR:
        # Not `kind(node)`: it would quote the value, and a tagged value may be the URL.
        said = "nothing" if node.tag == NULL else "a value that is not text"
        r.problem(node, path, f"expected an http:// or https:// URL, got {said}")
        return None
    if not isinstance(node, ScalarNode):
        r.problem(node, path, f"expected an http:// or https:// URL, got {kind(node)}")
        return None
    url = r.string(node, path, None)
    if url is None:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        r.problem(node, path, "not a valid URL: check its host and port")
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        r.problem(node, path, f"expected an http:// or https:// URL, got {redact_url(url)}")
        return None
    if any(c.isspace() for c in url):
        r.problem(node, path, f"a URL has no spaces ({redact_url(url)}): encode them as %20")
        return None
    return url


def _read_kinds(r: NodeReader, node: Node | None, path: str) -> tuple[str, ...] | None:
    known = ", ".join(KINDS)
    if node is None:
        return DEFAULT_KINDS
    if isinstance(node, ScalarNode) and node.tag == STR:
        r.problem(node, path, f"expected a list of event kinds: write on: [{node.value}]")
        return None
    if not isinstance(node, SequenceNode):
        r.problem(node, path, f"expected a list of event kinds, got {kind(node)}")
        return None
    if not node.value:
        r.problem(node, path, f"name at least one event kind (known: {known})")
        return None
    names: list[str] = []
    good = True
    for i, item in enumerate(node.value):
        name = r.string(item, f"{path}[{i}]", None)
        if name is None:
            good = False
        elif name in KINDS:
            names.append(name)
        else:
            good = False
            close = difflib.get_close_matches(name, list(KINDS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            r.problem(
                item, f"{path}[{i}]", f"unknown event kind {shown(name)} ({hint}known: {known})"
            )
    return tuple(dict.fromkeys(names)) if good else None
