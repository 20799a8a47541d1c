"""The lock script run by a real POSIX shell: the version a host printed comes back as
its first line that is not blank, read by the shell itself, the first time and after."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from canarytui.engine import lockscripts
from canarytui.engine.locks import Owner

OWNER = Owner("0123456789abcdef0123456789abcdef", 7, "2.0.0", "ana", "laptop")


def run(home: Path, script: str) -> lockscripts.Reply:
    done = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.stderr == ""
    return lockscripts.parse_reply(done.stdout)


@pytest.mark.parametrize(
    ("printed", "first"),
    [("1.3.0\n", "1.3.0"), ("\n   \n1.3.0\nmore\n", "1.3.0"), ("1.3.0", "1.3.0"), ("", None)],
)
def test_previous_is_the_first_line_not_blank(
    tmp_path: Path, printed: str, first: str | None
) -> None:
    current = f"printf %s {shlex.quote(printed)}"
    script = lockscripts.acquire_command("shop", "prod", OWNER, current)
    for _ in range(2):  # the first lock writes the file; taking it again reads it back
        reply = run(tmp_path, script)
        assert reply.has("LOCKED")
        assert reply.first_line("PREVIOUS") == first
    kept = tmp_path / ".canarytui" / "lock.prod.shop" / "previous"
    assert kept.read_text() == printed  # what the host printed is kept whole
