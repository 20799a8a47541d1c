"""Connections nothing uses are closed after a while (and reopened on the next use), so an
open environment's cost follows what is watched, not the size of the fleet; an open
deployment's hosts keep theirs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from canarytui.config import load_env
from canarytui.demo import DemoFleet
from canarytui.ssh import AuthRefused, CommandTimeout, Fleet, SessionRefused, Unreachable
from canarytui.ssh import fleet as fleet_module


@pytest.fixture
def pool(demo: DemoFleet, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    """The demo's fleet, its idle rule shortened to 0.3 s (swept every 0.05 s)."""
    monkeypatch.setattr(fleet_module, "IDLE_CLOSE", 0.3)
    monkeypatch.setattr(fleet_module, "_SWEEP_EVERY", 0.05)
    return Fleet(load_env(demo.env_path))


async def test_idle_connections_close_and_reopen(demo: DemoFleet, pool: Fleet) -> None:
    idle, busy, streaming, locked = demo.host_names[:4]
    pool.pinned = {locked}  # as an open deployment pins the hosts it holds
    try:
        assert (await pool.run(idle, "echo hi")).stdout == "hi\n"
        assert (await pool.run(locked, "true")).ok
        stream = pool.stream(streaming, "echo started; sleep 30")
        assert await asyncio.wait_for(anext(stream), 10) == "started"
        assert pool.open_connections == 3

        # Another host keeps working; the idle one's connection goes, the stream stays.
        async with asyncio.timeout(10):
            while idle in pool._connections:
                assert (await pool.run(busy, "true")).ok
                await asyncio.sleep(0.05)
        assert idle not in pool._connections
        assert streaming in pool._connections and locked in pool._connections
        connects = pool.connects
        assert (await pool.run(idle, "echo again")).stdout == "again\n"
        assert pool.connects == connects + 1  # reopened on use
        with contextlib.suppress(StopAsyncIteration):
            await stream.aclose()
    finally:
        await pool.close()


async def test_connections_kept_open_after_a_release_outlive_the_idle_rule(
    demo: DemoFleet, pool: Fleet
) -> None:
    kept, other, busy = demo.host_names[:3]
    try:
        for name in (kept, other):
            assert (await pool.run(name, "true")).ok
        pool.keep_open([kept], 4.0)  # ample: the other goes within ~0.35 s
        async with asyncio.timeout(10):  # the other one goes by the idle rule
            while other in pool._connections:
                assert (await pool.run(busy, "true")).ok
                await asyncio.sleep(0.05)
        assert kept in pool._connections
        async with asyncio.timeout(10):  # then the kept one, once its time is over
            while kept in pool._connections:
                assert (await pool.run(busy, "true")).ok
                await asyncio.sleep(0.05)
    finally:
        await pool.close()


async def test_a_finished_deployment_keeps_its_connections_for_a_rollback(
    demo: DemoFleet, tmp_path: Any
) -> None:
    from conftest import engine_for

    from canarytui import events as ev
    from canarytui.engine.holding import KEEP_AFTER_RELEASE

    engine = engine_for(demo.env_path, tmp_path / "state")
    try:
        outcome = await asyncio.wait_for(engine.deploy("1.1.0", auto_promote=True), 60)
        assert outcome is ev.Outcome.COMPLETE
        now = asyncio.get_running_loop().time()
        kept = engine.fleet._kept_until
        assert set(kept) == set(demo.host_names)
        assert all(now - 60 < t - KEEP_AFTER_RELEASE <= now for t in kept.values())
    finally:
        await engine.fleet.close()


async def test_the_identity_file_is_read_once_for_the_fleet_and_again_when_it_changes(
    demo: DemoFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given as a path, asyncssh would read and parse the key for every connection (a
    fleet's first contact opens one a host); it is read once, and again once rewritten."""
    import asyncssh
    from asyncssh import public_key

    key = str(demo.client_key_path)
    reads: list[str] = []
    read_file = public_key.read_file

    def counting(filename: str, mode: Any = "rb") -> Any:
        reads.append(str(filename))
        return read_file(filename, mode)

    monkeypatch.setattr(public_key, "read_file", counting)
    pool = Fleet(load_env(demo.env_path))
    try:
        for host in demo.host_names:
            assert (await pool.run(host, "true")).ok
        assert pool.connects == len(demo.host_names)
        assert reads.count(key) == 1
        # A key that no host accepts in its place, its .pub not rewritten with it yet: a
        # clear refusal, not a traceback; then with its .pub: read again, and refused.
        pub = demo.client_key_path.with_name("id_ed25519.pub")
        original = demo.client_key_path.read_bytes(), pub.read_bytes()
        other = asyncssh.generate_private_key("ssh-ed25519")
        other.write_private_key(key)
        await pool.close()
        with pytest.raises(AuthRefused, match=r"cannot use identity file .*: Public key mismatch"):
            await pool.run(demo.host_names[0], "true")
        other.write_public_key(str(pub))
        with pytest.raises(AuthRefused, match="login refused"):
            await pool.run(demo.host_names[0], "true")
        assert reads.count(key) == 3
        demo.client_key_path.write_bytes(original[0])
        pub.write_bytes(original[1])
        assert (await pool.run(demo.host_names[1], "true")).ok
        assert reads.count(key) == 4
    finally:
        await pool.close()


async def test_a_host_slow_to_connect_is_unreachable_after_the_connect_timeout(
    demo: DemoFleet, tmp_path: Any
) -> None:
    """A command's own timeout (a health check's 0.3 s) starts once its host is connected:
    a host that does not finish its handshake is unreachable after ``connect_timeout``,
    as the file says, not a command that timed out."""
    text = demo.env_path.read_text().replace("connect_timeout: 5s", "connect_timeout: 1s")
    env_path = tmp_path / "env.yaml"
    env_path.write_text(text)
    pool = Fleet(load_env(env_path))
    name = demo.host_names[2]
    try:
        await demo.set_fault(name, "hang")
        with pytest.raises(Unreachable) as caught:
            await asyncio.wait_for(pool.run(name, "true", timeout=0.3), 10)
        assert not isinstance(caught.value, CommandTimeout)
        assert "timed out after 1s" in str(caught.value)
    finally:
        await demo.set_fault(name, "up")
        await pool.close()


async def test_a_refused_session_s_reason_is_data(
    demo: DemoFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a host says when it refuses a session is its text: no escape sequence of it
    reaches a message."""
    import asyncssh
    from asyncssh.connection import SSHServerConnection

    def refuse(_conn: Any, _packet: Any) -> Any:
        raise asyncssh.ChannelOpenError(
            asyncssh.OPEN_CONNECT_FAILED, "\x1b]0;owned\x07\x1b[2Jgo away"
        )

    # Every host of the demo (asyncssh servers in this process) refuses sessions so.
    monkeypatch.setattr(SSHServerConnection, "_process_session_open", refuse)
    pool = Fleet(load_env(demo.env_path))
    try:
        with pytest.raises(SessionRefused) as caught:
            await asyncio.wait_for(pool.run(demo.host_names[5], "true"), 20)
        said = str(caught.value)
        assert "refuses every session" in said and "go away" in said
        assert not any(c in said for c in "\x1b\x07"), repr(said)
        assert pool.connects == 2
    finally:
        await pool.close()
