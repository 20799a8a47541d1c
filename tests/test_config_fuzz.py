"""Hostile environment files: an Environment or FILE:LINE problems, never a crash or a hang.

Hypothesis mutates valid files (wrong types, tags, aliases, huge numbers, deep nesting,
duplicate and unknown keys, tabs, control characters, shell metacharacters) and checks that
the reader either accepts the file, with every value within its bounds, or refuses it with
printable one-line problems; never any other exception. The same nasty files go through the
real CLI entry point, which must exit 2 before any host is contacted.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from test_config import GOOD, HOSTILE

from canarytui.cli import main
from canarytui.config import EnvFileError, Environment, load_env, parse_env
from canarytui.config.limits import MAX_COMMAND, MAX_DURATION, MAX_PROBLEMS
from canarytui.config.reader import _to_int
from canarytui.config.source import _ANCHOR, _has_anchor, nesting_bound, node_bound

REPO = Path(__file__).resolve().parent.parent
SAMPLE = (REPO / "sample_envs" / "example-production.yaml").read_text()
FILE = "fuzz.yaml"
PROBLEM = re.compile(r"fuzz\.yaml:\d+: \S.*: .+")
# What an accepted string may never hold (tab and newline are fine).
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

# Repeatable: the same examples on every run and machine, no example database; each example
# has a deadline, and the whole file runs in well under a minute on two shared cores.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=3000,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

TAGS = [
    "!!int abc",
    "!!int",
    "!!float x",
    "!!float .inf",
    "!!binary '@@@'",
    "!!binary aGVsbG8=",
    "!!timestamp bad",
    "!!timestamp 2001-12-14",
    "!!bool maybe",
    "!foo 3",
    "!<tag:example.com,2000:x> 1",
    "!!python/object:os.system x",
    "!!python/name:os.system ''",
    "!!python/object/apply:os.system [id]",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!str 5",
    "!!null ''",
    "!!merge x",
]
NUMBERS = [
    ".inf",
    "-.inf",
    ".nan",
    "1.0e400",
    "-1.0e+400",
    "1e400",
    "0x7fffffffffffffffffffffff",
    "0b1111",
    "017",
    "1_000_000",
    "1:30:00",
    "190:20:30.15",
    "-0",
    "-1",
    "0",
    "65536",
    "4294967297",
    "9" * 5000,
    "-" + "9" * 4400,
    "1" * 65,
]
DURATIONS = [
    "0s",
    "0ms",
    "0.0001ms",
    "-1s",
    "1e3s",
    "7d",
    "168h",
    "169h",
    "10000h",
    "5 parsecs",
    "9" * 400 + "s",
    "0." + "0" * 300 + "1s",
]
STRUCTURE = [
    "~",
    "null",
    "''",
    '""',
    "' '",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "{a: 1, a: 2}",
    "{zone: eu-1, zone: eu-2}",
    "{[a]: b}",
    "*undefined",
    "&a x",
    "{<<: {a: 1}}",
    "[" * 64 + "]" * 64,
    "[" * 65 + "]" * 65,
    "[" * 60000 + "]" * 60000,
    "{a: " * 100 + "}" * 100,
    "- - - - x",
    "[&a [x, x, x], &b [*a, *a, *a], &c [*b, *b, *b], [*c, *c, *c]]",
    "on",
    "yes",
    "2020-01-01",
]
ESCAPED = [
    '"\\e[31mred\\e[0m"',
    '"nul\\0byte"',
    '"\\x1b]0;title\\x07"',
    '"\\u202eevil"',
    '"a\\rb"',
    '"\\x85"',
    '"\\u2028"',
    '"tab\\there"',
    '"new\\nline"',
    '"\\x7f"',
    '"\\ud800"',
    '"\\U0001F642 ok"',
]
TEXTS = [
    "é ünï 中文 🙂",
    "zero\u200bwidth",
    "\ufeffbom",
    "x" * 70000,
    "{version}{verison}",
    "${HOME} {host}",
    *(json.dumps(h.format(marker="/tmp/pwned")) for h in HOSTILE),
    *(h.format(marker="/tmp/pwned") for h in HOSTILE if "\n" not in h),
]
REGEXES = [
    "'(a+)+$'",
    "'['",
    "'(?P<x>'",
    "'a{99999999999}'",
    "'" + "(" * 400 + ")" * 400 + "'",
    "'" + "(" * 2000 + "'",
]
# Raw characters inserted anywhere: controls, escapes, quotes, YAML indicators, odd unicode.
RAW = ["\x00", "\x1b", "\x07", "\x7f", "\x85", "\r", "\t", "\ud800", "\u2028", "\u202e", "\ufeff"]
RAW += list("\"'#&*!|>%@`[]{},:?-")

VALUES = st.one_of(
    st.sampled_from(TAGS + NUMBERS + DURATIONS + STRUCTURE + ESCAPED + TEXTS + REGEXES),
    st.text(max_size=30),
    st.text(max_size=30).map(json.dumps),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(str),
    st.from_regex(r"[0-9]{1,12}(\.[0-9]{1,6})?(ms|s|m|h)", fullmatch=True),
)
KEYS = st.one_of(
    st.sampled_from(
        ["on", "yes", "<<", "~", "''", "name", "run", "max", "? [a]", "version_pattern"]
    ),
    st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
    st.text(min_size=1, max_size=8).map(json.dumps),
)
_KEYED = re.compile(r"^(\s*(?:- )?)([^\s#:][^:]*):(?:\s(.*))?$")


def _mutations(draw: st.DrawFn, lines: list[str]) -> list[str]:
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    indent = line[: len(line) - len(line.lstrip(" -"))]
    match = _KEYED.match(line)
    op = draw(
        st.sampled_from(
            ["value"] * 6
            + ["delete", "unknown", "duplicate", "tab", "raw", "alias", "nest", "block", "cut"]
        )
    )
    if op == "value" and match:
        lines[i] = f"{match.group(1)}{match.group(2)}: {draw(VALUES)}"
    elif op == "delete":
        del lines[i]
    elif op == "unknown":
        lines.insert(i, f"{indent}{draw(KEYS)}: {draw(VALUES)}")
    elif op == "duplicate":
        lines.insert(i + 1, line)
    elif op == "tab":
        lines[i] = "\t" + line.lstrip(" ")
    elif op == "raw":
        at = draw(st.integers(0, len(line)))
        char = draw(st.sampled_from(RAW) | st.characters())
        lines[i] = line[:at] + char + line[at:]
    elif op == "alias" and match and match.group(3):
        lines[i] = f"{match.group(1)}{match.group(2)}: &a {match.group(3)}"
        j = draw(st.integers(0, len(lines) - 1))
        other = _KEYED.match(lines[j])
        if other:
            lines[j] = f"{other.group(1)}{other.group(2)}: *a"
    elif op == "nest" and match:
        n = draw(st.sampled_from([1, 5, 63, 64, 65, 1000, 60000]))
        lines[i] = f"{match.group(1)}{match.group(2)}: {'[' * n}{match.group(3) or ''}{']' * n}"
    elif op == "block" and match:
        n = draw(st.sampled_from([3, 30, 70, 500]))
        deep = [" " * (len(indent) + 2 + k) + "- " for k in range(n)]
        lines[i : i + 1] = [f"{match.group(1)}{match.group(2)}:", *deep]
    elif op == "cut":
        lines[i] = line[: draw(st.integers(0, len(line)))]
        del lines[i + 1 :]
    return lines or [""]


@st.composite
def hostile_files(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from([GOOD, SAMPLE]))
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        lines = _mutations(draw, lines)
    ending = draw(st.sampled_from(["\n"] * 8 + ["\r\n", "\r"]))
    return ending.join(lines) + ending


def outcome(text: str, file: str = FILE) -> Environment | list[str]:
    """The reader's answer, checked: an Environment, or problems that are safe to print."""
    try:
        env = parse_env(text, file=file)
    except EnvFileError as exc:
        assert exc.problems
        assert len(exc.problems) <= MAX_PROBLEMS + 1
        for problem in exc.problems:
            assert PROBLEM.fullmatch(problem), problem
            assert problem.isprintable(), problem  # no raw control character, ever
            assert len(problem) <= 1000
        if currently_in_test_context():  # what was found, in --hypothesis-show-statistics
            event("refused: " + exc.problems[0].split(": ", 2)[-1][:24])
        return exc.problems
    if currently_in_test_context():
        event("accepted")
    assert isinstance(env, Environment)
    within_bounds(env)
    assert not _shared_collections(text), "an alias of a mapping or list got through"
    return env


def _shared_collections(text: str) -> bool:
    """Does the composed document reach one mapping or list twice (an alias of it)?"""
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            continue
        if id(node) in seen:
            return True
        seen.add(id(node))
        stack += (
            [c for pair in node.value for c in pair]
            if isinstance(node, yaml.MappingNode)
            else node.value
        )
    return False


def within_bounds(env: Environment) -> None:
    """What an accepted file holds is sane: no control characters, finite bounded numbers."""
    texts = [env.name, env.app, env.version_pattern, env.ssh.known_hosts or "", env.logs or ""]
    texts += [env.ssh.user or "", *env.ssh.identity_files, *env.canary.hosts]
    for h in env.hosts:
        texts += [h.name, h.address, h.user or "", *h.roles, *h.labels, *h.labels.values()]
        assert h.port is None or 1 <= h.port <= 65535
    d = env.deploy
    for step in (*d.steps, *(d.rollback or ())):
        texts += [step.name, step.run]
    texts += [d.current, d.hooks.before_host or "", d.hooks.after_host or ""]
    texts += [env.health.check, env.health.metrics or ""]
    for rule in env.canary.analysis.rules:
        texts += [rule.name, rule.metric, rule.per or ""]
        for value in (rule.max, rule.max_vs_baseline, rule.quantile):
            assert value is None or math.isfinite(value)
        assert 0 <= rule.min_count <= 10**9
    for text in texts:
        assert isinstance(text, str) and len(text) <= MAX_COMMAND
        assert not RAW_CONTROL.search(text), text
    for seconds in (env.ssh.connect_timeout, env.ssh.command_timeout):
        assert 0 < seconds <= MAX_DURATION
    assert 0 < env.health.interval <= MAX_DURATION and 0 < env.health.timeout <= MAX_DURATION
    assert 0 <= env.canary.analysis.duration <= MAX_DURATION
    assert env.promote.pause is None or 0 <= env.promote.pause <= MAX_DURATION
    assert 1 <= env.ssh.max_parallel <= 10000
    assert 0 <= env.promote.max_failures <= 100_000
    assert 0 <= env.canary.analysis.baseline <= 100_000
    assert 0 <= env.canary.analysis.max_failed_checks <= 100_000
    assert env.canary.percent is None or 0 < env.canary.percent < 100
    for wave in env.promote.waves:
        assert 0 < wave.value <= (100 if wave.percent else 100_000)
    re.compile(env.version_pattern)


def test_the_bases_are_valid() -> None:
    assert isinstance(outcome(GOOD), Environment) and isinstance(outcome(SAMPLE), Environment)


@settings(FUZZ, max_examples=3000)
@given(hostile_files())
def test_mutated_files_are_accepted_or_refused_cleanly(text: str) -> None:
    outcome(text)


YAMLISH = st.text(
    alphabet=st.sampled_from(list(" \n\n\n  \t-:[]{}'\"#&*!|>?,%@`~abk019.e") + RAW[:11]),
    max_size=200,
)


@settings(FUZZ, max_examples=1500)
@given(st.one_of(YAMLISH, st.text(max_size=200)))
def test_any_text_is_accepted_or_refused_cleanly(text: str) -> None:
    outcome(text)


# The cheap bounds that decide whether libyaml may compose the text unchecked must never be
# below the real depth and node count, however the file is written.
LEAVES = st.sampled_from(
    ["a", "b c", "'q ]} #x'", "'it''s ]'", '"d ]}\\" \'"', "!!str z", "~", "''", '"[["']
)
TREES = st.recursive(
    LEAVES,
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(st.sampled_from(["k0", "k1", "k2"]), kids, max_size=3)
    ),
    max_leaves=40,
)


def _flow(node: Any, choose: Callable[[list[str]], str]) -> str:
    sep = choose([", ", ",\n  ", ", # ]]} a comment\n  ", " ,"])
    if isinstance(node, list):
        return "[" + sep.join(_flow(c, choose) for c in node) + "]"
    if isinstance(node, dict):
        return "{" + sep.join(f"{k}: {_flow(v, choose)}" for k, v in node.items()) + "}"
    return str(node)


def _block(node: Any, indent: int, choose: Callable[[list[str]], str]) -> str:
    pad = " " * indent
    if not isinstance(node, list | dict) or not node or choose(["block"] * 3 + ["flow"]) == "flow":
        return pad + _flow(node, choose)
    out = []
    if isinstance(node, list):
        for item in node:
            if (
                isinstance(item, list | dict)
                and item
                and choose(["compact", "nested"]) == "compact"
            ):
                out.append(pad + "- " + _block(item, indent + 2, choose).lstrip(" "))
            elif isinstance(item, list | dict) and item:
                out.append(pad + "-\n" + _block(item, indent + 2, choose))
            else:
                out.append(pad + "- " + _flow(item, choose))
    else:
        for key, value in node.items():
            if (
                isinstance(value, list)
                and value
                and choose(["indentless", "indented"]) == "indentless"
            ):
                out.append(f"{pad}{key}:\n" + _block(value, indent, choose))
            elif isinstance(value, list | dict) and value:
                out.append(f"{pad}{key}:\n" + _block(value, indent + 2, choose))
            else:
                out.append(f"{pad}{key}: {_flow(value, choose)}")
    return "\n".join(out)


def _depth(node: yaml.Node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(current, yaml.MappingNode):
            children = [c for pair in current.value for c in pair]
        elif isinstance(current, yaml.SequenceNode):
            children = current.value
        else:
            continue
        stack += [(c, depth + 1) for c in children if not isinstance(c, yaml.ScalarNode)]
    return deepest


@settings(FUZZ, max_examples=2000)
@given(st.text(alphabet="0123456789_+-:xob\u0663\u00b2 ", max_size=12))
def test_a_whole_number_reads_as_yamls_own_int_constructor_reads_it(text: str) -> None:
    """The reader's shortcut for plain decimals (ports, counts) gives what YAML's int
    constructor gives for any ``!!int`` scalar: octal ``017``, ``1_000``, signs, ``1:30``,
    digits of other scripts, and None where the constructor refuses (a superscript ``²`` is
    a digit to ``isdigit`` but not to ``int``)."""
    node = yaml.ScalarNode("tag:yaml.org,2002:int", text)
    try:
        expected = yaml.constructor.SafeConstructor().construct_yaml_int(node)
    except (ValueError, TypeError, IndexError):
        expected = None
    if isinstance(expected, bool):
        expected = None
    assert _to_int(node) == expected, repr(text)


@settings(FUZZ, max_examples=2000)
@given(st.text(alphabet="&&ab_-1 \t\n\r,[]{}:*!'\"\ufeff\u3000\x85", max_size=40))
def test_an_anchor_is_found_where_the_pattern_would_find_it(text: str) -> None:
    """The anchor check tries the pattern only at each ``&`` (a big file is not scanned
    character by character): it says yes exactly where a search of the whole text would."""
    assert _has_anchor(text) == bool(_ANCHOR.search(text)), repr(text)


@settings(FUZZ, max_examples=1000)
@given(TREES, st.randoms(use_true_random=False))
def test_cheap_bounds_are_never_below_the_real_ones(tree: Any, rnd: Any) -> None:
    text = _block(tree, 0, rnd.choice) + "\n"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
        nodes = sum(isinstance(e, yaml.NodeEvent) for e in yaml.parse(text, Loader=loader))
    except yaml.YAMLError:
        return
    if root is not None:
        assert nesting_bound(text) >= _depth(root), text
        assert node_bound(text) >= nodes, text
    outcome(text)


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=300) | hostile_files().map(lambda t: t.encode("utf-8", "replace")))
def test_any_bytes_through_load_env(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(data)
        try:
            load_env(path)
        except EnvFileError as exc:
            for problem in exc.problems:
                assert re.fullmatch(rf"{re.escape(str(path))}:\d+: \S.*: .+", problem), problem
                assert problem.isprintable()


# Known nasty inputs, each refused with one clear line ----------------------------------


NASTY_TEXTS = {
    "quoted-closers": ("a: " + '[ "]" , ' * 60000 + "]" * 60000, ":1: (yaml): mappings and lists"),
    "single-quoted": ("a: " + "[ ']' , " * 60000, ":1: (yaml): mappings and lists nested"),
    "comments": ("a: " + "[ # ]\n" * 60000, ":64: (yaml): mappings and lists nested"),
    "verbatim-tags": ("a: " + "[ !<x]> " * 60000, ":1: (yaml): mappings and lists nested"),
    "flow-maps": ("a: " + "{b: " * 60000, ":1: (yaml): mappings and lists nested"),
    "compact-lists": ("- " * 60000 + "x", ":1: (yaml): mappings and lists nested"),
    "explicit-keys": ("? " * 60000 + "x", ":1: (yaml): mappings and lists nested"),
    "indentless": ("k:\n" + "".join(" " * (2 * i) + "- k:\n" for i in range(100)), ":33: (yaml)"),
    "nel-breaks": ("a:\x85" + "".join(" " * i + "- \x85" for i in range(100)), ":65: (yaml)"),
    "ls-breaks": ("a:\u2028" + "".join(" " * i + "- \u2028" for i in range(100)), ":65: (yaml)"),
    "cr-breaks": ("a:\r" + "".join(" " * i + "- \r" for i in range(100)), ":65: (yaml)"),
    "recursive-alias": ("a: &a [*a]\n", ":1: a[0]: *a is an alias of a mapping or list"),
    "bom-then-anchor": ("\ufeff&r {a: *r}\n", ":1: a: *r is an alias of a mapping or list"),
    "5-mib": ("x" * (5 * 1024 * 1024), ":1: (file): too large"),
    "4-mib-of-values": ("a: [" + "a," * 2_000_000 + "a]", ":1: (yaml): more than 300000 values"),
    "4-mib-of-lines": ("a:\n" + "- a\n" * 1_000_000, ":299999: (yaml): more than 300000 values"),
    "surrogate": ("a: b\nc: d\ud800\n", ":2: (yaml): not valid Unicode text"),
}


@pytest.mark.parametrize("name", list(NASTY_TEXTS))
def test_nasty_texts(name: str) -> None:
    text, expected = NASTY_TEXTS[name]
    expected = FILE + expected
    started = time.monotonic()
    found = outcome(text)
    assert isinstance(found, list) and found[0].startswith(expected), found[:3]
    assert time.monotonic() - started < 10


def test_billion_laughs_is_refused_fast() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 30)]
    started = time.monotonic()
    found = outcome("\n".join(lines) + "\n")
    assert isinstance(found, list) and len(found) == MAX_PROBLEMS + 1
    assert found[0] == (
        "fuzz.yaml:2: a1[0]: *a0 is an alias of a mapping or list: not supported "
        "(only of a single value): write it out"
    )
    assert time.monotonic() - started < 5


# The real CLI, in-process: exit 2, FILE:LINE lines, no traceback, no host contacted ------


@pytest.fixture
def trap() -> Iterator[socket.socket]:
    """A listening port on 127.0.0.1 where the nasty files' hosts point: nothing may connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def _trap_file(port: int) -> str:
    text = GOOD.replace("  port: 22\n", f"  port: {port}\n", 1).replace(
        "port: 2222", f"port: {port}"
    )
    text = text.replace("connect_timeout: 10s", "connect_timeout: 1s")
    # Every host on the trap; web-03 as another user (one machine listed twice is refused).
    text = text.replace("    address: 127.0.0.13\n", "    address: 127.0.0.13\n    user: ops\n")
    return re.sub(r"127\.0\.0\.1\d", "127.0.0.1", text)


NASTY: dict[str, Callable[[str], str] | None] = {
    "brackets": lambda t: t.replace("  user: deploy\n", "  user: " + "[" * 60000 + "\n", 1),
    "int-tag": lambda t: t.replace("max_parallel: 20", "max_parallel: !!int abc"),
    "digits": lambda t: t.replace("max_parallel: 20", "max_parallel: " + "9" * 5000),
    "duration": lambda t: t.replace("interval: 500ms", "interval: " + "9" * 400 + "s"),
    "fifo": None,
    "urandom": None,
    "directory": None,
    "socket": None,
}
EXPECTED = {
    "brackets": ":4: (yaml): mappings and lists nested more than 64 deep",
    "int-tag": ":9: ssh.max_parallel: expected a whole number, got 'abc'",
    "digits": ":9: ssh.max_parallel: must be between 1 and 10000, got '99999",
    "duration": ":38: health.interval: duration '99999",  # web-03 has a user line
    "fifo": ":1: (file): not a regular file (a FIFO)",
    "urandom": ":1: (file): not a regular file (a character device)",
    "directory": ":1: (file): not a regular file (a directory)",
    "socket": ":1: (file): not a regular file (a socket)",
}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a unix socket's path must fit in 108 bytes."""
    with tempfile.TemporaryDirectory(prefix="ctui") as tmp:
        yield Path(tmp)


def _nasty_path(name: str, tmp_path: Path, port: int) -> Path:
    path = tmp_path / "env.yaml"
    edit = NASTY[name]
    if edit is not None:
        path.write_text(edit(_trap_file(port)))
    elif name == "fifo":
        os.mkfifo(path)
    elif name == "urandom":
        path = Path("/dev/urandom")
    elif name == "directory":
        path = tmp_path
    elif name == "socket":
        with socket.socket(socket.AF_UNIX) as unix:
            unix.bind(str(path))  # the socket file stays when the socket is closed
    return path


@pytest.mark.parametrize("name", list(NASTY))
def test_cli_check_refuses_nasty_files_before_any_host(
    name: str, short_dir: Path, trap: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    if name == "urandom" and not Path("/dev/urandom").exists():
        pytest.skip("no /dev/urandom here")
    path = _nasty_path(name, short_dir, trap.getsockname()[1])
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(main(["check", str(path)])))
    worker.daemon = True
    started = time.monotonic()
    worker.start()
    worker.join(20)
    if worker.is_alive() and name == "fifo":  # unblock a reader stuck on the FIFO, then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    assert not worker.is_alive(), f"check on {name} hung"
    assert result == [2] and time.monotonic() - started < 20
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert lines and all(re.fullmatch(rf"{re.escape(str(path))}:\d+: \S.*: .+", x) for x in lines)
    assert lines[0].startswith(f"{path}{EXPECTED[name]}"), lines
    with pytest.raises(BlockingIOError):
        trap.accept()  # nobody knocked


def test_the_trap_would_see_a_connection(tmp_path: Path, trap: socket.socket) -> None:
    """The control: the same file, valid, does reach the trap (so silence above means something)."""
    path = tmp_path / "env.yaml"
    path.write_text(_trap_file(trap.getsockname()[1]))
    (tmp_path / "known_hosts").write_text("")  # else check refuses before connecting
    assert load_env(path).hosts[0].port == trap.getsockname()[1]
    worker = threading.Thread(target=main, args=(["check", str(path)],), daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            conn, _ = trap.accept()
        except BlockingIOError:
            time.sleep(0.05)
            continue
        conn.close()
        break
    else:
        pytest.fail("a valid file's check never reached its host")
    worker.join(30)


def test_symlinks_to_regular_files_are_read(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text(GOOD)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert load_env(link).name == "production"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo.yaml").symlink_to(fifo)
    with pytest.raises(EnvFileError, match=r"to-fifo\.yaml:1: \(file\): not a regular file"):
        load_env(tmp_path / "to-fifo.yaml")


def test_too_large_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.truncate(5 * 1024 * 1024)  # sparse: refused on its size alone
    assert stat.S_ISREG(path.stat().st_mode)
    with pytest.raises(EnvFileError) as exc:
        load_env(path)
    assert exc.value.problems == [f"{path}:1: (file): too large: 5242880 bytes (at most 4 MiB)"]


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.encode().replace(b"app: shop", b"app: sh\xf6p"))
    with pytest.raises(EnvFileError) as exc:
        load_env(path)
    assert exc.value.problems == [
        f"{path}:2: (file): not valid UTF-8 (byte 0xf6 at column 8): save the file as UTF-8"
    ]
