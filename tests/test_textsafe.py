"""textsafe, the one sanitiser: every kind of hostile text in, printable text out."""

from __future__ import annotations

import time

import pytest

from canarytui.textsafe import (
    ESCAPE_MARK,
    MAX_LINE,
    harmless,
    harmless_block,
    listed,
)

# (what a host or an operator may send, what is shown)
KINDS = [
    ("\x1b[31mERROR\x1b[0m boom", "␛ERROR␛ boom"),  # SGR colour
    ("a\x1b[2J\x1b[H\x1b[10;20Hb", "a␛␛␛b"),  # clear screen, cursor moves
    ("\x1b[?1049h\x1b[?25l", "␛␛"),  # private modes: alternate screen, hidden cursor
    ("a\x1b]0;pwned\x07b", "a␛b"),  # OSC 0: window title, BEL-terminated
    ("a\x1b]0;pwned\x1b\\b", "a␛b"),  # OSC 0, ST-terminated
    ("\x1b]52;c;ZXZpbA==\x07x", "␛x"),  # OSC 52: writes the clipboard
    ("a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "a␛link␛"),  # OSC 8 hyperlink
    ("\x1b]0;unterminated title", "␛"),  # swallowed to the end, as a terminal would
    ("\x1bP1$r\x1b\\x", "␛x"),  # DCS
    ("\x1b_apc payload\x1b\\x", "␛x"),  # APC
    ("\x1b^pm\x1b\\x", "␛x"),  # PM
    ("\x1bXsos\x1b\\x", "␛x"),  # SOS
    ("a\x1b(Bb", "a␛b"),  # nF: designate a character set
    ("a\x1b7b\x1b8c", "a␛b␛c"),  # save / restore cursor
    ("lone \x1b", "lone ␛"),
    ("\x1b[", "␛"),  # cut in the middle
    ("\x9b31mred", "␛red"),  # 8-bit CSI
    ("\x9d0;pwned\x9cx", "␛x"),  # 8-bit OSC ... 8-bit ST
    ("next\x85line", "next␛line"),  # a lone C1 control (NEL)
    ("bell\x07", "bell␇"),
    ("nul\x00", "nul␀"),
    ("del\x7f", "del␡"),
    ("back\x08space", "back␈space"),
    ("progress 10%\rprogress 99%", "progress 10%␍progress 99%"),
    ("one\ntwo", "one␊two"),  # a line stays one line
    ("tab\there", "tab here"),
    ("[/]", "[/]"),  # markup is the sink's business: kept as typed
    ("[@click=app.quit]x[/]", "[@click=app.quit]x[/]"),
    ("[bold red]x", "[bold red]x"),
    ("emoji 🚀 wide 宽字 accents éà", "emoji 🚀 wide 宽字 accents éà"),
    ("zero\u200dwidth joiner, nbsp\u00a0", "zero\u200dwidth joiner, nbsp\u00a0"),
]


@pytest.mark.parametrize(("raw", "shown"), KINDS, ids=[repr(k[0])[:30] for k in KINDS])
def test_each_kind_becomes_printable_text_with_a_visible_placeholder(raw: str, shown: str) -> None:
    out = harmless(raw)
    assert out == shown
    assert not any(_is_control(c) for c in out)
    assert harmless(out) == out  # idempotent


def test_plain_ascii_is_returned_unchanged_and_as_is() -> None:
    line = "2026-01-01T00:00:01.000Z INFO  shop[web-01] GET /api/cart 200 31ms"
    assert harmless(line) is line
    assert harmless("") == ""


def test_bytes_are_decoded_and_invalid_utf8_is_shown_as_replacement() -> None:
    assert harmless(b"ok \xff\xfe end") == "ok �� end"
    assert harmless(b"\x1b]0;pwned\x07v1.0") == "␛v1.0"
    assert harmless(b"\x9b31m") == "�31m"  # a raw C1 byte is not UTF-8: never reaches a terminal
    assert harmless("caf\u00e9".encode()) == "café"
    assert harmless_block(b"a\r\nb\x00\n") == "a\nb␀\n"


def test_a_long_line_is_cut_with_a_visible_mark_and_fits_its_bound() -> None:
    out = harmless("x" * 100, 40)
    assert len(out) <= 40
    assert out.endswith("… (+" + str(100 - out.index("…")) + " chars)")
    assert harmless(out, 40) == out


def test_a_one_megabyte_line_is_cut_fast() -> None:
    for line in ("y" * 1_000_000, "\x1b[31m" * 200_000, "\x1b]0;" + "z" * 1_000_000):
        start = time.perf_counter()
        out = harmless(line)
        took = time.perf_counter() - start
        assert len(out) <= MAX_LINE
        assert "… (+" in out and out.endswith(" chars)")
        assert harmless(out) == out
        assert took < 0.25, took


def test_plain_log_lines_cost_little() -> None:
    """The hot path: 5,000 log lines a second must leave the UI time to draw."""
    lines = [f"2026-01-01T00:00:01Z INFO shop[web-01] GET /api/{i} 200 31ms" for i in range(20_000)]
    start = time.perf_counter()
    for line in lines:
        harmless(line)
    took = time.perf_counter() - start
    assert took < 0.1, f"{took * 1e6 / len(lines):.2f} us a line"


def test_a_block_keeps_newlines_and_bounds_its_lines() -> None:
    assert harmless_block("one\n\x1b[1mtwo\x07\nthree\n") == "one\n␛two␇\nthree\n"
    assert harmless_block("crlf\r\nlone\rcr") == "crlf\nlone␍cr"
    many = "\n".join(f"line {i}" for i in range(1, 501))
    out = harmless_block(many, max_lines=10)
    lines = out.split("\n")
    assert len(lines) == 10
    assert lines[0] == "… (+491 lines)"
    assert lines[-1] == "line 500"  # the last lines are kept: a failure says why at the end
    assert harmless_block(out, max_lines=10) == out
    assert harmless_block("a\tb", limit=None, max_lines=None) == "a   b"


def test_everything_at_once_is_idempotent_and_printable() -> None:
    everything = "".join(raw for raw, _ in KINDS) * 3
    for out in (harmless(everything), harmless_block(everything)):
        assert not any(_is_control(c) for c in out if c != "\n")
        assert ESCAPE_MARK in out
    assert harmless(harmless(everything)) == harmless(everything)
    assert harmless_block(harmless_block(everything)) == harmless_block(everything)


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def test_listed_names_a_few_then_counts_the_rest() -> None:
    assert listed([]) == ""
    assert listed(["a", "b"], 2) == "a, b"
    assert listed(["a", "b", "c", "d"], 2) == "a, b and 2 more"
