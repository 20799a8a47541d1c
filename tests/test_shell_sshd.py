"""A host's kept shell over real OpenSSH (``Fleet.shell``): scripts sent one after the
other down one session, each step still reported on its own; steps never read the
session's input; a failure ends the script, not the shell; a timeout stops the shell and
the next script opens a new one; ``keep=False`` or ``close`` leave nothing on the host."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from conftest import wait_for
from sshd_fleet import FleetFactory, SshdFleet

from canarytui.config import load_env
from canarytui.ssh import CommandResult, CommandTimeout, Fleet, Script
from canarytui.ssh.jobs import END_GRACE

pytestmark = pytest.mark.sshd


async def send(
    ssh: Fleet, shell: Script, steps: list[tuple[str, float | None]], keep: bool = True
) -> list[CommandResult]:
    seen: list[CommandResult] = []
    await asyncio.wait_for(
        ssh.run_steps("h01", steps, lambda _i, r: seen.append(r), shell=shell, keep=keep), 30
    )
    return seen


@contextlib.asynccontextmanager
async def one_host(sshd_fleet: FleetFactory) -> AsyncIterator[tuple[SshdFleet, Fleet, Script]]:
    """One OpenSSH host, the fleet's SSH side, and a kept shell for it (closed after)."""
    fleet = sshd_fleet(1)
    ssh = Fleet(load_env(fleet.write_env()))
    shell = ssh.shell()
    try:
        yield fleet, ssh, shell
    finally:
        shell.close()
        await ssh.close()


def shells_on(fleet: SshdFleet) -> list[str]:
    """The host's processes but the test's own probes."""
    return [c for c in fleet.commands_running("h01") if "canarytui-" in c]


async def test_scripts_go_down_one_session(sshd_fleet: FleetFactory) -> None:
    async with one_host(sshd_fleet) as (fleet, ssh, shell):
        first = await send(ssh, shell, [("echo $$", None), ("echo one; echo err >&2", None)])
        assert shell.waiting and len(shells_on(fleet)) == 1
        pid = first[0].stdout
        # Quotes, backslashes, a here-document, blank lines: the script arrives as sent.
        later = await send(
            ssh,
            shell,
            [
                ("echo $$; printf '%s\\n' 'a\\b' \"c d\"", None),
                ("cat <<EOF\n  indented\n\nEOF", None),
            ],
        )
        assert later[0].stdout == f"{pid}a\\b\nc d\n"  # the same shell
        assert later[1].stdout == "  indented\n\n"
        assert [r.stdout for r in first[1:]] == ["one\n"] and first[1].stderr == "err\n"
        assert ssh.connects == 1
    await wait_for(lambda: not shells_on(fleet), timeout=10)


async def test_steps_never_read_the_session_input(sshd_fleet: FleetFactory) -> None:
    async with one_host(sshd_fleet) as (fleet, ssh, shell):
        # `cat` and `read` see the end of their input at once; a background reader too.
        seen = await send(
            ssh, shell, [("cat; echo cat-done", 5.0), ("(cat > bg.out &); read x || echo eof", 5.0)]
        )
        assert [r.stdout for r in seen] == ["cat-done\n", "eof\n"]
        after = await send(ssh, shell, [("echo still-here", 5.0)])
        assert after[0].stdout == "still-here\n"
        # The background `cat` opens its output when it gets to run (later, on a busy host).
        made = fleet.host("h01").home / "bg.out"
        await wait_for(made.exists, timeout=10)
        assert made.read_text() == ""


async def test_a_failure_ends_the_script_not_the_shell(sshd_fleet: FleetFactory) -> None:
    async with one_host(sshd_fleet) as (fleet, ssh, shell):
        never = fleet.host("h01").home / "never-made"
        pid = (await send(ssh, shell, [("echo $$", None)]))[0].stdout
        seen = await send(ssh, shell, [("echo broke >&2; exit 7", None), (f"touch {never}", None)])
        assert [(r.exit_status, r.stderr) for r in seen] == [(7, "broke\n")]
        assert not never.exists() and shell.waiting
        assert (await send(ssh, shell, [("echo $$", None)]))[0].stdout == pid


async def test_a_timeout_stops_the_shell_and_the_next_script_opens_one(
    sshd_fleet: FleetFactory,
) -> None:
    async with one_host(sshd_fleet) as (fleet, ssh, shell):
        pid = (await send(ssh, shell, [("echo $$", None)]))[0].stdout
        with pytest.raises(
            CommandTimeout,
            match=r"after 1s; stopped on the host \(process group \d+ ended on SIGTERM\)",
        ):
            await send(ssh, shell, [("echo quick", 5.0), ("sleep 44 & sleep 45", 1.0)])
        assert not shell.alive
        assert not [c for c in fleet.commands_running("h01") if "sleep 4" in c]
        again = (await send(ssh, shell, [("echo $$", None)]))[0].stdout
        assert again != pid and shell.waiting


async def test_a_last_script_or_a_close_ends_the_shell(sshd_fleet: FleetFactory) -> None:
    async with one_host(sshd_fleet) as (fleet, ssh, shell):
        await send(ssh, shell, [("true", None)])
        seen = await send(ssh, shell, [("echo bye", None)], keep=False)
        assert seen[0].stdout == "bye\n" and not shell.alive
        assert not shells_on(fleet)  # ended before the script was reported done
        shell = ssh.shell()
        await send(ssh, shell, [("true", None)])
        assert shells_on(fleet)
        shell.close()
        await wait_for(lambda: not shells_on(fleet), timeout=10)
        # A shell whose connection was lost is opened again by the next script (at once:
        # before its streams have even ended).
        await send(ssh, shell, [("true", None)])
        ssh.drop("h01")
        assert (await send(ssh, shell, [("echo back", None)]))[0].stdout == "back\n"
        assert ssh.connects == 2
    await wait_for(lambda: not shells_on(fleet), timeout=10)


async def test_a_process_left_in_the_background_holds_no_script(
    sshd_fleet: FleetFactory,
) -> None:
    # It keeps the session's output open: a script whose marks all came is done within
    # END_GRACE all the same, and what runs in the background is left running.
    async with one_host(sshd_fleet) as (fleet, ssh, shell):
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen = await send(ssh, shell, [("sleep 46 & echo started", None)], keep=False)
        assert seen[0].stdout == "started\n"
        seen = await send(ssh, shell, [("sleep 47 & echo kept", None)])
        seen += await send(ssh, shell, [("echo released", None)], keep=False)
        assert [r.stdout for r in seen] == ["kept\n", "released\n"]
        assert loop.time() - started < 2 * END_GRACE + 10
        running = fleet.commands_running("h01")
        assert any("sleep 46" in c for c in running) and any("sleep 47" in c for c in running)
        seen = await send(ssh, shell, [("echo next", None)])  # a new shell
        assert seen[0].stdout == "next\n"
