"""A reader that stops reading never stops a deployment: the command line's output is
written by a thread (``cli.relay``), in order, bounded in memory, and what a reader that
went away would have got is dropped while the deployment goes on."""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conftest import REPO, wait_for

from canarytui.cli.relay import relayed
from canarytui.cli.safeio import SafeWriter
from canarytui.demo import DemoFleet
from canarytui.journal import Journal
from canarytui.relay import Relay

F_SETPIPE_SZ = 1031  # fcntl's, on Linux
PIPE_BYTES = 4096  # the smallest pipe: a few lines fill it


def small_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    fcntl.fcntl(r, F_SETPIPE_SZ, PIPE_BYTES)
    return r, w


def read_all(fd: int, limit: float = 30.0) -> bytes:
    """Everything until the end of the pipe, within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"the pipe did not end within {limit}s"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return bytes(data)
            data += chunk


def finished(fn: Callable[[], object], limit: float = 10.0) -> bool:
    """``fn()`` run in a thread returned within ``limit`` seconds."""
    worker = threading.Thread(target=fn, daemon=True)
    worker.start()
    worker.join(limit)
    return not worker.is_alive()


def lines(n: int) -> list[str]:
    return [f"line {i} é\n" for i in range(n)]


def delivered(relay: Relay, r: int, w: int, write: Callable[[], object] = lambda: None) -> bytes:
    """What the pipe's reader gets while a thread runs ``write()`` and closes the relay
    and the pipe's write end (both within a bound)."""

    def run() -> None:
        write()
        relay.close()
        os.close(w)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    data = read_all(r)
    worker.join(10)
    assert not worker.is_alive()
    os.close(r)
    return data


def test_writes_return_while_nobody_reads_and_all_arrive_in_order() -> None:
    r, w = small_pipe()
    relay = Relay(io.StringIO(), w)
    text = lines(50_000)  # ~600 KB: 150 times what the pipe holds

    def write() -> None:
        for line in text:
            relay.write(line)
        relay.flush()

    assert finished(write), "a write waited for the reader"
    assert delivered(relay, r, w) == "".join(text).encode()
    assert not relay.broken


def test_a_descriptor_left_non_blocking_still_gets_everything() -> None:
    r, w = small_pipe()
    os.set_blocking(w, False)  # as some parents leave a shared stdout
    relay = Relay(io.StringIO(), w)
    text = lines(20_000)

    def write() -> None:
        for line in text:
            relay.write(line)

    assert delivered(relay, r, w, write) == "".join(text).encode()
    assert not relay.broken


def test_a_reader_gone_drops_the_rest_without_an_error() -> None:
    r, w = small_pipe()
    relay = Relay(io.StringIO(), w, limit=1000)
    os.close(r)

    def write() -> None:
        for line in lines(10_000):  # far past the limit: nothing waits for a reader gone
            relay.write(line)
            relay.flush()
        relay.close()

    assert finished(write)
    assert relay.broken
    os.close(w)


def test_held_output_is_bounded_then_writes_wait_for_the_reader() -> None:
    r, w = small_pipe()
    limit, chunk = 10_000, "x" * 999 + "\n"
    most = 0

    class Watched(Relay):
        def write(self, text: str) -> int:
            nonlocal most
            written = super().write(text)
            most = max(most, self._size)
            return written

    relay = Watched(io.StringIO(), w, limit=limit)
    writes = 200  # 200 KB against a 4 KB pipe and 10 KB held

    def write() -> None:
        for _ in range(writes):
            relay.write(chunk)
            relay.flush()
        relay.close()
        os.close(w)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    # Nothing is read until the relay holds its limit: the writer must then be waiting.
    deadline = time.monotonic() + 10
    while relay._size < limit - len(chunk) and writer.is_alive():
        assert time.monotonic() < deadline, "the relay never filled"
        time.sleep(0.005)
    assert writer.is_alive(), "every write returned with 200 KB unread"
    assert read_all(r) == (chunk * writes).encode()
    writer.join(10)
    assert not writer.is_alive()
    assert most <= limit + len(chunk)
    os.close(r)


def test_stdout_relayed_for_a_block_then_written_as_before() -> None:
    r, w = os.pipe()
    stream = io.TextIOWrapper(io.FileIO(w, "w"), encoding="utf-8")
    out = SafeWriter(stream)
    out.write("before\n")
    hostile = "during \x1b[31m\n"
    with relayed(out) as relay:
        assert isinstance(relay, Relay) and out.stream is relay
        out.write(hostile)  # still made harmless first
    assert out.stream is stream
    out.write("after\n")
    stream.close()
    assert read_all(r).decode() == f"before\n{out.clean(hostile)}after\n"
    assert "\x1b" not in out.clean(hostile)
    os.close(r)


def test_a_stream_without_a_descriptor_is_written_directly() -> None:
    plain = io.StringIO()
    out = SafeWriter(plain)
    with relayed(out) as relay:
        assert relay is None and out.stream is plain
        out.write("x\n")
    assert plain.getvalue() == "x\n"
    with relayed(plain) as relay:  # not the command line's stdout writer
        assert relay is None


async def test_a_deployment_goes_on_while_its_output_is_not_read(
    demo: DemoFleet, state_dir: Path
) -> None:
    """`deploy --json` into a pipe nobody reads (a pager, a terminal paused with Ctrl-S):
    the deployment completes on its own clock (it used to stop at the first full pipe,
    and steps running then timed out when reading resumed); its output is all there."""
    r, w = small_pipe()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarytui",
        "deploy",
        str(demo.env_path),
        "1.1.0",
        "--auto-promote",
        "--json",
        cwd=REPO,
        env=dict(os.environ, CANARYTUI_STATE_DIR=str(state_dir)),
        stdout=w,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(w)
    journal = Journal(state_dir)
    try:

        def complete() -> bool:
            history = journal.history("demo", "shop", limit=1)
            return bool(history) and history[0].outcome == "complete"

        await wait_for(complete, timeout=60)
        out = await asyncio.get_running_loop().run_in_executor(None, read_all, r)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(r)
        journal.close()
    assert proc.returncode == 0, err.decode()
    events = [json.loads(line) for line in out.decode().splitlines()]
    result = events[-1]
    assert (result["event"], result["outcome"], result["exit"], result["deployment"]) == (
        "result",
        "complete",
        0,
        1,
    )
    assert result["hosts"] == {"deployed": demo.host_names} and result["version"] == "1.1.0"
    deployed = {e["host"] for e in events if e["event"] == "host" and e["state"] == "deployed"}
    assert deployed == set(demo.host_names)
    assert not [e for e in events if e["event"] == "host" and e["state"] == "failed"]
    assert {demo.version_on(h) for h in demo.host_names} == {"1.1.0"}
