"""OpenSSH's own configuration, proven on real sshd servers on loopback: ``~/.ssh/config``
aliases (HostName, User, Port, IdentityFile, ProxyJump over one and two hops), the
environment file's ``proxy_jump``, keys held only by an ssh-agent, hashed ``known_hosts``,
``@cert-authority`` host certificates, and bastions that refuse to forward.

The fleets here are private networks (``sshd_fleet(N, bastions=K)``, see sshd_fleet.py): the
app hosts let their users in only from ``127.0.0.1``, where a bastion's forwarded
connections come from, while this machine connects from ``fleet.client_source`` (the
``BindAddress`` of every test's ssh config, as a laptop is outside the network). HOME is a
temporary folder in every test: the real ``~/.ssh`` is never read or written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import engine_for, run_cli
from sshd_fleet import FleetFactory, SshdFleet

from canarytui import events as ev
from canarytui.config import EnvFileError, load_env, parse_env
from canarytui.config.model import JumpHop
from canarytui.ssh import AuthRefused, Fleet, HostKeyRefused, SshError, Unreachable
from canarytui.ssh.jump import ConfigProblem, resolve_chain

sshd = pytest.mark.sshd
START_TIMEOUT = 10.0


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME (an empty ~/.ssh) and no agent, for this test and its subprocesses."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return folder


@dataclass
class Agent:
    socket: Path

    def _ssh_add(self, *args: str) -> None:
        env = {**os.environ, "SSH_AUTH_SOCK": str(self.socket)}
        out = subprocess.run(
            ["ssh-add", *args], env=env, capture_output=True, text=True, timeout=10
        )
        assert out.returncode == 0, out.stderr

    def add(self, key: Path) -> None:
        self._ssh_add("-q", str(key))

    def clear(self) -> None:
        self._ssh_add("-D")


@pytest.fixture
def agent(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    """A real ssh-agent (empty) that SSH_AUTH_SOCK points at; stopped after the test."""
    folder = Path(tempfile.mkdtemp(prefix="ctagent"))  # a socket path has ~100 bytes at most
    socket = folder / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(socket)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not socket.exists():
            assert proc.poll() is None, "ssh-agent exited while starting"
            assert time.monotonic() < deadline, f"no agent socket after {START_TIMEOUT}s"
            time.sleep(0.01)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket))
        yield Agent(socket)
    finally:
        proc.kill()
        proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- helpers


def outside(fleet: SshdFleet) -> str:
    """The last block of every test's ssh config: this machine is outside the network."""
    return (
        "Host *\n"
        f"    BindAddress {fleet.client_source}\n"
        f"    UserKnownHostsFile {fleet.known_hosts}\n"
        "    StrictHostKeyChecking yes\n"
        "    BatchMode yes\n"
        "    LogLevel ERROR\n"
    )


def aliases(fleet: SshdFleet, app_options: str = "", bastion_options: str = "") -> str:
    """``app-NN`` aliases for the hosts and ``bK`` for the bastions (first match wins)."""
    blocks = [
        f"Host app-{h.name[1:]}\n    HostName {h.address}\n    User {h.user}\n" for h in fleet.hosts
    ]
    blocks += [
        f"Host {b.name}\n    HostName {b.address}\n    User {b.user}\n" for b in fleet.bastions
    ]
    blocks.append(f"Host b?\n    Port {fleet.port}\n{bastion_options}")
    blocks.append(f"Host app-*\n    Port {fleet.port}\n{app_options}")
    return "\n".join(blocks) + "\n" + outside(fleet)


def write_config(home: Path, text: str) -> Path:
    path = home / ".ssh" / "config"
    path.write_text(text)
    return path


def alias_env(fleet: SshdFleet, path: Path | None = None, **ssh: Any) -> Path:
    """An environment file naming hosts by alias only: no user, port or key in it."""

    def edit(doc: dict[str, Any]) -> None:
        options = {
            "known_hosts": str(fleet.known_hosts),
            "connect_timeout": "3s",
            "command_timeout": "10s",
            **ssh,
        }
        doc["ssh"] = {k: v for k, v in options.items() if v is not None}  # None: left out
        doc["hosts"] = [{"name": h.name, "address": f"app-{h.name[1:]}"} for h in fleet.hosts]

    return fleet.write_env(path, edit=edit)


def spec(fleet: SshdFleet, name: str) -> str:
    """A bastion as ``user@address:port`` (for files without ~/.ssh/config aliases)."""
    b = fleet.bastion(name)
    return f"{b.user}@{b.address}:{b.port}"


async def run_everywhere(env_path: Path) -> tuple[dict[str, str | SshError], Fleet]:
    """``whoami`` on every host over one Fleet; its outputs or errors, and the closed Fleet."""
    env = load_env(env_path)
    fleet = Fleet(env)
    out: dict[str, str | SshError] = {}

    async def one(name: str) -> None:
        try:
            out[name] = (await fleet.run(name, "whoami")).stdout.strip()
        except SshError as exc:
            out[name] = exc

    try:
        await asyncio.wait_for(asyncio.gather(*(one(h) for h in env.host_names)), 60)
    finally:
        await fleet.close()
    return out, fleet


def users(fleet: SshdFleet) -> dict[str, str]:
    return {h.name: h.user for h in fleet.hosts}


def keygen(*args: str) -> None:
    out = subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def openssh(config: Path, alias: str) -> subprocess.CompletedProcess[str]:
    """OpenSSH's own client, with the same config, HOME and agent, as the reference."""
    return subprocess.run(
        ["ssh", "-F", str(config), alias, "whoami"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


# ----------------------------------------------------------- ~/.ssh/config, real sshd


@sshd
async def test_aliases_and_a_shared_bastion_from_ssh_config(
    sshd_fleet: FleetFactory, home: Path, state_dir: Path
) -> None:
    fleet = sshd_fleet(3, bastions=1)
    key = f"    IdentityFile {fleet.client_key}\n"
    # Without the bastion, the app hosts refuse this machine: the network is private.
    write_config(home, aliases(fleet, app_options=key, bastion_options=key))
    found, _ = await run_everywhere(alias_env(fleet))
    assert all(isinstance(v, AuthRefused) for v in found.values()), found
    assert "login refused for user ctfleet01" in str(found["h01"])
    # Through the bastion named by ~/.ssh/config, a whole release goes out.
    write_config(home, aliases(fleet, app_options=key + "    ProxyJump b1\n", bastion_options=key))
    engine = engine_for(alias_env(fleet), state_dir)
    try:
        outcome = await asyncio.wait_for(engine.deploy("2.0.0", auto_promote=True), 60)
    finally:
        await engine.fleet.close()
    assert outcome is ev.Outcome.COMPLETE, engine.details
    assert {fleet.version_on(h) for h in fleet.host_names} == {"2.0.0"}
    assert engine.fleet.connects == 3
    # One connection to the bastion, shared by the three hosts behind it.
    assert fleet.bastion_logins("b1") == 1


@sshd
async def test_a_proxycommand_from_ssh_config(sshd_fleet: FleetFactory, home: Path) -> None:
    """The older way to a private network, ``ProxyCommand ssh -W %h:%p bastion``, as
    OpenSSH runs it (one ``ssh`` process per host: ProxyJump shares one connection)."""
    fleet = sshd_fleet(2, bastions=1)
    key = f"    IdentityFile {fleet.client_key}\n"
    config = home / ".ssh" / "config"
    proxy = f"    ProxyCommand ssh -F {config} -W %h:%p b1\n"
    write_config(home, aliases(fleet, app_options=key + proxy, bastion_options=key))
    assert openssh(config, "app-01").stdout.strip() == "ctfleet01"  # the reference
    before = fleet.bastion_logins("b1")
    found, _ = await run_everywhere(alias_env(fleet))
    assert found == users(fleet)
    assert fleet.bastion_logins("b1") == before + 2


@sshd
async def test_two_hops_from_ssh_config(sshd_fleet: FleetFactory, home: Path) -> None:
    fleet = sshd_fleet(2, bastions=2)
    key = f"    IdentityFile {fleet.client_key}\n"
    # b2 is deeper in the network: only b1 reaches it.
    write_config(home, aliases(fleet, app_options=key, bastion_options=key))
    found, _ = await run_everywhere(alias_env(fleet, proxy_jump="b2"))
    assert all(isinstance(v, AuthRefused) for v in found.values()), found
    assert "bastion b2: login refused for user ctbast2" in str(found["h01"])
    # A comma list: b1, then b2.
    write_config(
        home, aliases(fleet, app_options=key + "    ProxyJump b1,b2\n", bastion_options=key)
    )
    found, _ = await run_everywhere(alias_env(fleet))
    assert found == users(fleet)
    assert (fleet.bastion_logins("b1"), fleet.bastion_logins("b2")) == (1, 1)
    # Or b2's own ProxyJump, followed as OpenSSH follows it.
    config = aliases(fleet, app_options=key + "    ProxyJump b2\n", bastion_options=key)
    config = f"Host b2\n    ProxyJump b1\n\n{config}"
    write_config(home, config)
    found, _ = await run_everywhere(alias_env(fleet))
    assert found == users(fleet)
    assert (fleet.bastion_logins("b1"), fleet.bastion_logins("b2")) == (2, 2)


@sshd
async def test_proxy_jump_in_the_environment_file(
    sshd_fleet: FleetFactory, home: Path, state_dir: Path
) -> None:
    """A team without a shared ~/.ssh/config: bastions, user, port and key in the file."""
    fleet = sshd_fleet(3, bastions=2)
    write_config(home, outside(fleet))  # nothing but where this machine connects from

    def edit(doc: dict[str, Any]) -> None:
        doc["ssh"]["proxy_jump"] = spec(fleet, "b1")
        doc["hosts"][1]["proxy_jump"] = f"{spec(fleet, 'b1')},{spec(fleet, 'b2')}"
        doc["hosts"][2]["proxy_jump"] = "none"  # this one is reached directly: refused

    env_path = fleet.write_env(edit=edit)
    result = await run_cli("check", str(env_path), state_dir=state_dir)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    lines = {line.split()[0]: line for line in result.out.splitlines() if line.startswith("h0")}
    assert "1.0.0" in lines["h01"] and "healthy" in lines["h01"]
    assert "1.0.0" in lines["h02"] and "healthy" in lines["h02"]
    assert "LOGIN REFUSED" in lines["h03"] and "login refused for user" in lines["h03"]
    # h01 and h02 share the connection to b1; h02 goes on through b2.
    assert (fleet.bastion_logins("b1"), fleet.bastion_logins("b2")) == (1, 1)


@sshd
async def test_keys_only_in_the_agent_and_hashed_known_hosts(
    sshd_fleet: FleetFactory, home: Path, agent: Agent
) -> None:
    fleet = sshd_fleet(2, bastions=1)
    agent.add(fleet.client_key)  # no key file is named anywhere, and ~/.ssh holds none
    hashed = home / "known_hosts"
    shutil.copyfile(fleet.known_hosts, hashed)
    keygen("-H", "-f", str(hashed))
    text = hashed.read_text()
    assert text.count("|1|") == 3 and fleet.hosts[0].address not in text
    write_config(home, aliases(fleet, app_options="    ProxyJump b1\n"))
    found, _ = await run_everywhere(alias_env(fleet, known_hosts=str(hashed)))
    assert found == users(fleet)
    assert fleet.bastion_logins("b1") == 1
    # An empty agent: nothing else to log in with.
    agent.clear()
    found, _ = await run_everywhere(alias_env(fleet, known_hosts=str(hashed)))
    assert all(isinstance(v, AuthRefused) for v in found.values()), found
    assert "bastion b1: login refused for user ctbast1" in str(found["h01"])


@sshd
async def test_a_missing_identity_file_is_skipped_as_openssh_skips_it(
    sshd_fleet: FleetFactory, home: Path, agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = sshd_fleet(2, bastions=1)
    agent.add(fleet.client_key)
    gone = home / ".ssh" / "id_gone_ed25519"
    identity = f"    IdentityFile {gone}\n"
    config = write_config(
        home, aliases(fleet, app_options=identity + "    ProxyJump b1\n", bastion_options=identity)
    )
    # OpenSSH's client, as the reference: it skips the file and uses the agent.
    reference = openssh(config, "app-01")
    assert reference.returncode == 0 and reference.stdout.strip() == "ctfleet01", reference
    caplog.set_level(logging.INFO, logger="canarytui.ssh.connect")
    found, _ = await run_everywhere(alias_env(fleet))
    assert found == users(fleet)
    assert f"identity file {gone} does not exist: skipped" in caplog.text
    assert caplog.text.count(str(gone)) == 1  # said once, not once per host
    # Nothing in the agent: both refuse, and the message names the missing file.
    agent.clear()
    assert openssh(config, "app-01").returncode != 0
    found, _ = await run_everywhere(alias_env(fleet))
    error = found["h01"]
    assert isinstance(error, AuthRefused), found
    assert "bastion b1: login refused for user ctbast1" in str(error)
    assert f"identity file(s) not found: {gone}" in str(error)
    # The same for the environment file's own identity_files (with ~ expanded).
    write_config(home, aliases(fleet, app_options="    ProxyJump b1\n"))
    env_path = alias_env(fleet, identity_files=["~/.ssh/id_gone_ed25519"])
    found, _ = await run_everywhere(env_path)
    assert f"identity file(s) not found: {gone}" in str(found["h02"])
    agent.add(fleet.client_key)
    found, _ = await run_everywhere(env_path)
    assert found == users(fleet)


@sshd
async def test_an_identity_file_locked_with_a_passphrase_is_left_to_the_agent(
    sshd_fleet: FleetFactory, home: Path, agent: Agent
) -> None:
    fleet = sshd_fleet(2, bastions=1)
    locked = home / ".ssh" / "id_locked_ed25519"
    shutil.copyfile(fleet.client_key, locked)
    locked.chmod(0o600)
    keygen("-p", "-P", "", "-N", "a passphrase", "-f", str(locked))
    agent.add(fleet.client_key)  # the same key, unlocked in the agent (as ssh-add leaves it)
    identity = f"    IdentityFile {locked}\n    IdentitiesOnly yes\n"
    config = write_config(
        home, aliases(fleet, app_options=identity + "    ProxyJump b1\n", bastion_options=identity)
    )
    # OpenSSH's client, as the reference: in batch mode it signs with the agent's key.
    reference = openssh(config, "app-01")
    assert reference.returncode == 0 and reference.stdout.strip() == "ctfleet01", reference
    found, _ = await run_everywhere(alias_env(fleet))
    assert found == users(fleet)
    # Named by the environment file: the same (it was refused, the agent never asked).
    write_config(home, aliases(fleet, app_options="    ProxyJump b1\n"))
    env_path = alias_env(fleet, identity_files=["~/.ssh/id_locked_ed25519"])
    found, _ = await run_everywhere(env_path)
    assert found == users(fleet)
    # The agent without it: both refuse, and the message names the file and what to do.
    agent.clear()
    assert openssh(config, "app-01").returncode != 0
    found, _ = await run_everywhere(env_path)
    error = found["h01"]
    assert isinstance(error, AuthRefused), found
    assert "bastion b1: login refused for user ctbast1" in str(error)
    assert "locked with a passphrase" in str(error)
    assert f"ssh-add {locked}" in str(error)
    # An unlocked key named beside it logs in.
    found, _ = await run_everywhere(
        alias_env(fleet, identity_files=[str(locked), str(fleet.client_key)])
    )
    assert found == users(fleet)


@sshd
async def test_host_keys_from_the_files_openssh_reads(
    sshd_fleet: FleetFactory, home: Path, tmp_path: Path
) -> None:
    """No ssh.known_hosts in the environment file: a host's key is checked against the
    files OpenSSH reads for it, ~/.ssh/config's UserKnownHostsFile and GlobalKnownHostsFile
    (a team's /etc/ssh/ssh_known_hosts); never accepted unverified."""
    fleet = sshd_fleet(2, bastions=1)
    key = f"    IdentityFile {fleet.client_key}\n"
    shared = tmp_path / "ssh_known_hosts"  # where /etc/ssh/ssh_known_hosts would be
    own = home / ".ssh" / "known_hosts"  # not there
    files = f"Host *\n    UserKnownHostsFile {own}\n    GlobalKnownHostsFile {shared}\n"
    config = write_config(
        home, files + aliases(fleet, app_options=key + "    ProxyJump b1\n", bastion_options=key)
    )
    env_path = alias_env(fleet, known_hosts=None)
    # The keys in the shared file only: trusted, by OpenSSH and by canarytui (bastion too).
    shared.write_text(fleet.known_hosts.read_text())
    assert openssh(config, "app-01").stdout.strip() == "ctfleet01"
    found, _ = await run_everywhere(env_path)
    assert found == users(fleet)
    # A file without them: both refuse, and the message names the file.
    shared.write_text("")
    assert openssh(config, "app-01").returncode != 0
    found, _ = await run_everywhere(env_path)
    error = found["h01"]
    assert isinstance(error, HostKeyRefused), found
    assert f"bastion b1: host key not verifiable against {shared}:" in str(error)
    # No file at all: where it looked.
    shared.unlink()
    found, _ = await run_everywhere(env_path)
    assert isinstance(found["h02"], HostKeyRefused), found
    assert f"no known_hosts file (looked for {own}, {shared};" in str(found["h02"])
    # The environment file's own known_hosts is the only one read when it names one.
    shared.write_text(fleet.known_hosts.read_text())
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    found, _ = await run_everywhere(alias_env(fleet, known_hosts=str(empty)))
    assert f"host key not verifiable against {empty}:" in str(found["h01"])


def test_the_known_hosts_files_default_as_openssh_s(home: Path) -> None:
    from canarytui.ssh.jump import ssh_config
    from canarytui.ssh.trust import KnownHosts

    trust = KnownHosts(None)
    assert trust.files(ssh_config("app-01"), "app-01") == [
        str(home / ".ssh" / "known_hosts"),
        str(home / ".ssh" / "known_hosts2"),
        "/etc/ssh/ssh_known_hosts",
        "/etc/ssh/ssh_known_hosts2",
    ]
    write_config(home, "Host app-*\n    UserKnownHostsFile none\n")
    assert trust.files(ssh_config("app-01"), "app-01") == [
        "/etc/ssh/ssh_known_hosts",
        "/etc/ssh/ssh_known_hosts2",
    ]
    assert KnownHosts(home / "k").files(ssh_config("app-01"), "app-01") == [str(home / "k")]


def test_known_hosts_file_names_take_openssh_s_tokens(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A known_hosts file named with OpenSSH's %-tokens and ${VARIABLE}s in ~/.ssh/config
    is the file OpenSSH reads for that host; a token or a variable it would refuse is a
    refusal that names the option, the name and what is wrong, never a file read as
    written."""
    import hashlib
    import socket

    from canarytui.ssh.jump import local_user, ssh_config
    from canarytui.ssh.trust import KnownHosts, Untrusted

    monkeypatch.setenv("KH_DIR", str(home / "kh"))
    write_config(
        home,
        "Host app-01\n    HostName 127.0.0.9\n    User deploy\n    Port 2222\n"
        "Host app-02\n    HostKeyAlias shared-app\n"
        "Host app-*\n"
        "    UserKnownHostsFile ~/.ssh/known_hosts.d/%k %d/by-name/%n_%h_%p_%r ${KH_DIR}/%u%%\n"
        "    GlobalKnownHostsFile /etc/ssh/known/%C\n"
        "Host bad-token\n    UserKnownHostsFile ~/.ssh/kh/%z\n"
        "Host bad-variable\n    UserKnownHostsFile ${KH_UNSET}/known_hosts\n",
    )
    trust = KnownHosts(None)
    local = socket.gethostname()
    digest = hashlib.sha1(f"{local}127.0.0.92222deploy".encode()).hexdigest()
    assert trust.files(ssh_config("app-01"), "app-01") == [
        str(home / ".ssh" / "known_hosts.d" / "app-01"),
        str(home / "by-name" / "app-01_127.0.0.9_2222_deploy"),
        str(home / "kh" / f"{local_user()}%"),
        f"/etc/ssh/known/{digest}",
    ]
    assert trust.files(ssh_config("app-02"), "app-02")[0] == str(
        home / ".ssh" / "known_hosts.d" / "shared-app"
    )
    with pytest.raises(Untrusted) as refused:
        trust.files(ssh_config("bad-token"), "bad-token")
    assert str(refused.value).startswith(
        "~/.ssh/config: UserKnownHostsFile ~/.ssh/kh/%z: unknown token %z (the tokens there: %%,"
    )
    with pytest.raises(Untrusted) as refused:
        trust.files(ssh_config("bad-variable"), "bad-variable")
    assert str(refused.value) == (
        "~/.ssh/config: UserKnownHostsFile ${KH_UNSET}/known_hosts: the environment variable "
        "KH_UNSET is not set"
    )


@sshd
async def test_one_known_hosts_file_per_host_named_by_a_token(
    sshd_fleet: FleetFactory, home: Path
) -> None:
    """``UserKnownHostsFile .../known_hosts.d/%k``: each host checked against its own
    file, as OpenSSH checks it; a host whose file is missing is refused, its file named."""
    fleet = sshd_fleet(2)
    folder = home / ".ssh" / "known_hosts.d"
    folder.mkdir()
    lines = fleet.known_hosts.read_text().splitlines(keepends=True)
    for h in fleet.hosts:
        (folder / f"app-{h.name[1:]}").write_text(
            "".join(line for line in lines if line.startswith(f"[{h.address}]:"))
        )
    options = (
        # Not "~": OpenSSH takes the home from the user database, not $HOME as here.
        f"    IdentityFile {fleet.client_key}\n    UserKnownHostsFile {folder}/%k\n"
        "    GlobalKnownHostsFile none\n"
    )
    config = write_config(home, aliases(fleet, app_options=options))
    env_path = alias_env(fleet, known_hosts=None)
    reference = openssh(config, "app-01")
    assert reference.stdout.strip() == "ctfleet01", reference.stderr
    found, _ = await run_everywhere(env_path)
    assert found == users(fleet)
    missing = folder / "app-02"
    missing.unlink()
    assert openssh(config, "app-02").returncode != 0
    found, _ = await run_everywhere(env_path)
    assert found["h01"] == "ctfleet01"
    assert isinstance(found["h02"], HostKeyRefused), found
    assert f"no known_hosts file (looked for {missing};" in str(found["h02"])


@sshd
async def test_the_named_key_goes_before_an_agent_s_many(
    sshd_fleet: FleetFactory, home: Path, agent: Agent, tmp_path: Path
) -> None:
    """An agent holding more keys than a host lets a client try (sshd's MaxAuthTries, 6):
    the key the environment file names is offered first and logs in; with none named,
    the refusal is a login refusal that says what to do, not "unreachable"."""
    fleet = sshd_fleet(1)
    for i in range(7):
        other = tmp_path / f"other{i}"
        keygen("-q", "-t", "ed25519", "-N", "", "-f", str(other))
        agent.add(other)

    def env_with(**ssh: Any) -> Path:
        def edit(doc: dict[str, Any]) -> None:
            doc["ssh"].pop("identity_files", None)
            doc["ssh"].update(ssh)

        return fleet.write_env(edit=edit)

    found, _ = await run_everywhere(env_with(identity_files=[str(fleet.client_key)]))
    assert found == users(fleet)
    found, _ = await run_everywhere(env_with())
    error = found["h01"]
    assert isinstance(error, AuthRefused), found
    assert "login refused for user ctfleet01: Too many authentication failures" in str(error)
    assert "sshd's MaxAuthTries: name the key for these hosts in ssh.identity_files" in str(error)


@sshd
async def test_a_revoked_host_key_is_refused_though_listed(
    sshd_fleet: FleetFactory, tmp_path: Path
) -> None:
    """A known_hosts ``@revoked`` line wins over the same key listed for the host."""
    fleet = sshd_fleet(2)
    listed = fleet.known_hosts.read_text()
    kind, key = listed.splitlines()[0].split()[1:3]
    known = tmp_path / "known_hosts"
    known.write_text(f"{listed}@revoked * {kind} {key}\n")

    def edit(doc: dict[str, Any]) -> None:
        doc["ssh"]["known_hosts"] = str(known)

    found, _ = await run_everywhere(fleet.write_env(edit=edit))
    assert set(found) == {"h01", "h02"}
    assert all(isinstance(v, HostKeyRefused) for v in found.values()), found
    assert f"host key not verifiable against {known}" in str(found["h01"])
    known.write_text(listed)
    found, _ = await run_everywhere(fleet.write_env(edit=edit))
    assert found == users(fleet)


@sshd
async def test_cert_authority_host_certificates(
    sshd_fleet: FleetFactory, home: Path, tmp_path: Path
) -> None:
    fleet = sshd_fleet(2, bastions=1)
    ca, other_ca = tmp_path / "host_ca", tmp_path / "other_ca"
    for path in (ca, other_ca):
        keygen("-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path))
    fleet.sign_host_keys(ca)
    # No host's own key is known: only the CA that signed them.
    known = tmp_path / "known_hosts"
    network = ".".join(fleet.hosts[0].address.split(".")[:2])
    ca_line = f"@cert-authority [{network}.*]:{fleet.port} {ca.with_suffix('.pub').read_text()}"
    known.write_text(ca_line)
    key = f"    IdentityFile {fleet.client_key}\n"
    write_config(home, aliases(fleet, app_options=key + "    ProxyJump b1\n", bastion_options=key))
    found, _ = await run_everywhere(alias_env(fleet, known_hosts=str(known)))
    assert found == users(fleet)
    # A CA that signed nothing here: the bastion's key is refused, never accepted.
    known.write_text(
        f"@cert-authority [{network}.*]:{fleet.port} {other_ca.with_suffix('.pub').read_text()}"
    )
    found, _ = await run_everywhere(alias_env(fleet, known_hosts=str(known)))
    error = found["h01"]
    assert isinstance(error, HostKeyRefused), found
    assert "bastion b1: host key not verifiable" in str(error)
    assert fleet.bastion_logins("b1") == 1


@sshd
async def test_a_bastion_that_refuses_to_forward(
    sshd_fleet: FleetFactory, home: Path, state_dir: Path
) -> None:
    fleet = sshd_fleet(2, bastions=2)
    fleet.refuse_forwarding("b1")
    key = f"    IdentityFile {fleet.client_key}\n"
    write_config(home, aliases(fleet, app_options=key + "    ProxyJump b1\n", bastion_options=key))
    env_path = alias_env(fleet)
    check = await run_cli("check", str(env_path), state_dir=state_dir)
    assert check.code == 1 and "Traceback" not in check.err, check.err
    first, *others = fleet.host_names
    line = next(x for x in check.out.splitlines() if x.startswith(first))
    assert "UNREACHABLE" in line and "unreachable through the bastion b1" in line, line
    assert "refuses to forward connections" in line
    for name in others:  # the same reason, said once
        line = next(x for x in check.out.splitlines() if x.startswith(name))
        assert "UNREACHABLE" in line and line.endswith(f": as {first}"), line
    deploy = await run_cli("deploy", str(env_path), "2.0.0", state_dir=state_dir)
    assert deploy.code == 1 and "Traceback" not in deploy.err, deploy.err
    assert "unreachable through the bastion b1" in deploy.out + deploy.err
    assert {fleet.version_on(h) for h in fleet.host_names} == {"1.0.0"}
    # Two hops: it is the second bastion that b1 does not forward to.
    found, _ = await run_everywhere(alias_env(fleet, proxy_jump="b1,b2"))
    assert all(isinstance(v, Unreachable) for v in found.values()), found
    assert "unreachable: bastion b2 (through b1): it refuses to forward connections" in str(
        found["h01"]
    )


# ------------------------------------------------------------- no sshd needed


async def test_an_unreachable_bastion_fails_its_hosts_quickly(home: Path, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    text = ENV.format(known=known, jump="jump@127.0.0.1:1")  # nothing listens on port 1
    env_path = tmp_path / "env.yaml"
    env_path.write_text(text)
    started = time.monotonic()
    found, _ = await run_everywhere(env_path)
    assert time.monotonic() - started < 10
    assert set(found) == {"web-01", "web-02", "web-03"}
    for error in found.values():
        assert isinstance(error, Unreachable)
        assert "unreachable: bastion jump@127.0.0.1:1: " in str(error)


def test_chains_follow_ssh_config_as_openssh_does(home: Path) -> None:
    write_config(
        home,
        "Host inner\n    ProxyJump outer\n"
        "Host outer\n    ProxyJump none\n"
        "Host loop-a\n    ProxyJump loop-b\n"
        "Host loop-b\n    ProxyJump loop-a\n"
        "Host broken\n    ProxyJump 'a b'\n"
        "Host app-*\n    ProxyJump inner\n",
    )
    hop = JumpHop
    assert resolve_chain("app-1", None, None, None) == (hop("outer"), hop("inner"))
    assert resolve_chain("elsewhere", None, None, None) == ()
    # The file's proxy_jump replaces the host's ProxyJump; the first bastion's own applies.
    assert resolve_chain("app-1", None, None, (hop("inner", "u", 2222),)) == (
        hop("outer"),
        hop("inner", "u", 2222),
    )
    assert resolve_chain("app-1", None, None, ()) == ()  # proxy_jump: none
    with pytest.raises(ConfigProblem, match="ProxyJump loop: loop-b -> loop-a -> loop-b"):
        resolve_chain("loop-a", None, None, None)
    with pytest.raises(ConfigProblem, match="ProxyJump for broken: 'a b' is not a hop"):
        resolve_chain("broken", None, None, None)


async def test_a_bad_ssh_config_is_a_clear_message(home: Path, tmp_path: Path) -> None:
    write_config(home, "Host *\n    Port notaport\n")
    known = tmp_path / "known_hosts"
    known.write_text("")
    env_path = tmp_path / "env.yaml"
    env_path.write_text(ENV.format(known=known, jump="none"))
    found, _ = await run_everywhere(env_path)
    message = str(found["web-01"])
    assert f"cannot use {home}/.ssh/config" in message and "line 2" in message


# ------------------------------------------------------------- the environment file

ENV = """\
name: prod
app: shop
ssh:
  known_hosts: {known}
  connect_timeout: 2s
  proxy_jump: {jump}
hosts:
  - name: web-01
    address: 127.0.0.1
    port: 1
  - name: web-02
    address: 127.0.0.1
    port: 1
    proxy_jump: jump@127.0.0.1:1
  - name: web-03
    address: 127.0.0.1
    port: 2
deploy:
  current: cat VERSION
  steps:
    - name: install
      run: fetch {{version}}
health:
  check: "true"
"""


def test_proxy_jump_is_read() -> None:
    env = parse_env(ENV.format(known="kh", jump="'deploy@b1.internal:2222, b2'"), "prod.yaml")
    assert env.ssh.proxy_jump == (JumpHop("b1.internal", "deploy", 2222), JumpHop("b2"))
    assert env.host("web-01").proxy_jump is None  # ssh.proxy_jump's, at connect time
    assert env.host("web-02").proxy_jump == (JumpHop("127.0.0.1", "jump", 1),)
    assert str(env.ssh.proxy_jump[0]) == "deploy@b1.internal:2222"
    assert parse_env(ENV.format(known="kh", jump="none"), "prod.yaml").ssh.proxy_jump == ()
    assert str(JumpHop("::1", "u", 22)) == "u@[::1]:22"
    without = ENV.replace("  proxy_jump: {jump}\n", "")
    assert parse_env(without.format(known="kh"), "prod.yaml").ssh.proxy_jump is None


@pytest.mark.parametrize(
    ("jump", "expected"),
    [
        (
            "'b1 b2'",
            "prod.yaml:6: ssh.proxy_jump: 'b1 b2' is not a hop: expected [user@]host[:port], "
            "comma-separated for more hops (or none)",
        ),
        (
            "'b1:70000'",
            "prod.yaml:6: ssh.proxy_jump: 'b1:70000': the port must be between 1 and 65535, "
            "got 70000",
        ),
        ("'b1,,b2'", "prod.yaml:6: ssh.proxy_jump: an empty hop in 'b1,,b2'"),
        ("'@b1'", "prod.yaml:6: ssh.proxy_jump: '@b1' is not a hop"),
        ("'ssh://b1'", "prod.yaml:6: ssh.proxy_jump: 'ssh://b1' is not a hop"),
        ("'a,b,c,d,e,f,g,h,i'", "prod.yaml:6: ssh.proxy_jump: at most 8 hops, got 9"),
        ("[b1, b2]", "prod.yaml:6: ssh.proxy_jump: expected a string, got a list"),
        ("''", "prod.yaml:6: ssh.proxy_jump: must not be empty"),
    ],
)
def test_a_bad_proxy_jump_is_one_clear_line(jump: str, expected: str) -> None:
    with pytest.raises(EnvFileError) as exc:
        parse_env(ENV.format(known="kh", jump=jump), "prod.yaml")
    assert any(p.startswith(expected) for p in exc.value.problems), exc.value.problems


def test_a_bad_host_proxy_jump_names_the_host() -> None:
    text = ENV.format(known="kh", jump="none").replace(
        "proxy_jump: jump@127.0.0.1:1", "proxy_jump: 'jump@127.0.0.1:x'"
    )
    with pytest.raises(EnvFileError) as exc:
        parse_env(text, "prod.yaml")
    assert exc.value.problems == [
        "prod.yaml:14: hosts[1].proxy_jump: 'jump@127.0.0.1:x' is not a hop: expected "
        "[user@]host[:port], comma-separated for more hops (or none)"
    ]


def test_the_public_half_of_a_locked_key_is_read_from_its_clear_header(tmp_path: Path) -> None:
    import asyncssh

    from canarytui.ssh.identities import openssh_public_half

    for kind in ("ed25519", "rsa"):
        key = tmp_path / f"id_{kind}"
        keygen("-q", "-t", kind, "-N", "a passphrase", "-f", str(key))
        public = asyncssh.read_public_key(f"{key}.pub").public_data
        assert openssh_public_half(str(key)) == public
        # Cut short, or not a key: nothing, and no error.
        text = key.read_text().splitlines()
        (tmp_path / "short").write_text("\n".join(text[:2] + text[-1:]))
        assert openssh_public_half(str(tmp_path / "short")) is None
    (tmp_path / "junk").write_bytes(b"\xff\x00 not a key")
    assert openssh_public_half(str(tmp_path / "junk")) is None
    assert openssh_public_half(str(tmp_path / "absent")) is None
