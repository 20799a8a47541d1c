"""What hosts reply is data: any version line, lock reply, owner file or metrics page gives a
value or a clear "unreadable", never an exception (property-based, Hypothesis)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canarytui.config import load_env
from canarytui.engine.locks import describe_owner, owner_from_text
from canarytui.engine.lockscripts import parse_reply
from canarytui.engine.reported import reported_version
from canarytui.metrics.page import parse_page, picks
from canarytui.ssh.remote import LineSplitter, Marker, OutputTail

SAMPLE = Path(__file__).resolve().parent.parent / "sample_envs" / "example-production.yaml"
ENV = load_env(SAMPLE)
FAST = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

hostile = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400
) | st.sampled_from(
    [
        "\x1b]0;pwned\x07",
        "[/]",
        "null",
        "[]",
        '{"since": "x", "user": [1], "deployment": {"a": 1}}',
        '{"since": 1e400}',
        "9" * 5000,
        "CANARYTUI-LOCKED\nCANARYTUI-PREVIOUS\n\x1b[31m1.0.0",
        "CANARYTUI-HELD\n" + "[" * 50_000,
        'x_bucket{le="foo"} 1\n',
        '# TYPE x histogram\nx_bucket{le="nan"} 1\nx_count 1\n',
    ]
)


@FAST
@given(hostile)
def test_any_version_line_is_a_valid_version_or_none(text: str) -> None:
    version = reported_version(ENV, text)
    assert version is None or ENV.validate_version(version) == version


@FAST
@given(hostile)
def test_any_lock_reply_parses_into_marks_or_nothing(text: str) -> None:
    reply = parse_reply(text)
    for mark in reply.sections:
        assert isinstance(reply.owner(mark), dict)
        describe_owner(reply.owner(mark))
        reply.first_line(mark)


@FAST
@given(
    hostile,
    st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=8,
    ),
)
def test_any_owner_file_is_described_without_error(text: str, owner: dict) -> None:  # type: ignore[type-arg]
    assert isinstance(owner_from_text(text), dict)
    assert "since" in describe_owner(owner)
    assert len(describe_owner(owner)) < 2000


@FAST
@given(hostile)
def test_any_metrics_page_parses_or_is_unreadable(text: str) -> None:
    wanted = picks(ENV.canary.analysis.rules)
    try:
        page = parse_page(text, wanted)
    except ValueError as exc:
        assert str(exc).startswith("not Prometheus text")
    else:
        for series in page.readings.values():
            assert all(isinstance(v, float) for v in series.values())


@FAST
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_byte_stream_is_cut_into_bounded_text(chunks: list[bytes]) -> None:
    marker = Marker("test")
    tail = OutputTail(marker, 100)
    lines = LineSplitter(marker, 50)
    out: list[str] = []
    for chunk in [b"noise " + marker.tag_bytes + b" 42\n", *chunks]:
        tail.feed(chunk)
        out.extend(lines.feed(chunk))
    out.extend(lines.finish())
    assert tail.pgid == 42 and lines.pgid == 42
    assert len(tail.text().encode("utf-8", "surrogateescape")) <= 100 * 3
    assert all(len(line) <= 50 + len("… (line cut)") for line in out)
