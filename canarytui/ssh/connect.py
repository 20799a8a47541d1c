"""Opening a connection to a host: options, bastions, keys, host-key verification, refusals.

Host keys are always verified against ``known_hosts`` (bastions' too); there is no switch to
turn that off. What the environment file leaves out (port, user, keys, bastions) comes from
``~/.ssh/config``, read as OpenSSH reads it: aliases, HostName, User, Port, IdentityFile,
ProxyJump (one shared connection per bastion, see ``jump``), the ssh-agent. As OpenSSH does,
an identity file that does not exist is skipped (logged), one locked with a passphrase is
left to the agent (canarytui never asks for a passphrase), and the agent's keys are used.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from canarytui import cancels
from canarytui.config import Environment, Host
from canarytui.ssh.errors import AuthRefused, HostKeyRefused, SshError, Unreachable
from canarytui.ssh.identities import Unused, agent_path_of, pub_identities, split_identities
from canarytui.ssh.jump import (
    Chain,
    ConfigProblem,
    JumpFailed,
    JumpPool,
    file_stamp,
    local_user,
    resolve_chain,
    ssh_config,
)
from canarytui.ssh.reasons import channel_refusal, os_reason, out_of_files
from canarytui.ssh.trust import KnownHosts, Untrusted
from canarytui.textsafe import harmless

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger(__name__)

KEEPALIVE_INTERVAL = 15.0
# asyncssh's own ciphers, AES-GCM first: it runs in hardware, where asyncssh's
# chacha20-poly1305 costs controller CPU on every packet (a fleet fan-out feels it).
CIPHERS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]


# Said when a host hung up after too many keys were tried.
_TRIES = (
    " (the host allows only so many keys to be tried, sshd's MaxAuthTries: name the key for "
    "these hosts in ssh.identity_files, or as IdentityFile in ~/.ssh/config; it is tried first)"
)


class Connector:
    """Opens verified connections to an environment's hosts, through their bastions."""

    def __init__(self, env: Environment) -> None:
        self.ssh = env.ssh
        named = env.ssh.known_hosts
        self.trust = KnownHosts(env.resolve_path(named) if named is not None else None)
        self.identity_files = [str(env.resolve_path(p)) for p in env.ssh.identity_files]
        self.jumps = JumpPool(self._open_jump)
        self.said: set[tuple[str, str]] = set()  # identity files skipped, each said once
        # Identity files read once for the fleet (and again when one changes): given as
        # paths, asyncssh would read and parse them for every connection.
        self._keypairs: dict[tuple[Any, ...], tuple[tuple[Any, ...], FileKeys]] = {}

    async def connect(self, host: Host, client: asyncssh.SSHClient) -> asyncssh.SSHClientConnection:
        try:
            chain = resolve_chain(host.address, host.user, host.port, self._explicit_jump(host))
        except ConfigProblem as exc:
            raise SshError(host, str(exc)) from None
        tunnel: asyncssh.SSHClientConnection | None = None
        if chain:
            try:
                tunnel = await self.jumps.through(chain)
            except JumpFailed as exc:
                raise exc.kind(host, exc.message) from None
        try:
            return await self._connect(host.address, host.user, host.port, tunnel, client)
        except Failure as exc:
            message = exc.message
            if chain and exc.kind is Unreachable:
                message = f"unreachable through the bastion {chain[-1]}: {exc.detail}"
            raise exc.kind(host, message) from None
        except ConfigProblem as exc:
            raise SshError(host, str(exc)) from None

    async def close(self) -> None:
        """Close the bastions' connections (after the hosts' own)."""
        await self.jumps.close()

    def _explicit_jump(self, host: Host) -> Chain | None:
        """The environment file's bastions for a host (None: ask ~/.ssh/config)."""
        return host.proxy_jump if host.proxy_jump is not None else self.ssh.proxy_jump

    async def _open_jump(
        self,
        chain: Chain,
        via: asyncssh.SSHClientConnection | None,
        client: asyncssh.SSHClient,
    ) -> asyncssh.SSHClientConnection:
        """The connection to ``chain``'s last bastion, through ``via`` (the one before)."""
        hop = chain[-1]
        try:
            return await self._connect(hop.host, hop.user, hop.port, via, client)
        except Failure as exc:
            if exc.kind is not Unreachable:
                raise JumpFailed(exc.kind, f"bastion {hop}: {exc.message}") from None
            where = f"bastion {hop} (through {chain[-2]})" if len(chain) > 1 else f"bastion {hop}"
            raise JumpFailed(exc.kind, f"unreachable: {where}: {exc.detail}") from None
        except ConfigProblem as exc:
            raise JumpFailed(SshError, f"bastion {hop}: {exc}") from None

    async def _connect(
        self,
        address: str,
        user: str | None,
        port: int | None,
        tunnel: asyncssh.SSHClientConnection | None,
        client: asyncssh.SSHClient,
    ) -> asyncssh.SSHClientConnection:
        """One connection (direct, or through ``tunnel``); raises ``Failure``."""
        import asyncssh

        config = ssh_config(address, user, port)
        try:
            known_hosts, trusted_from = self.trust.trusted(config, address)
        except Untrusted as exc:
            raise Failure(HostKeyRefused, str(exc)) from None
        options: dict[str, Any] = {
            "known_hosts": known_hosts,
            "encryption_algs": CIPHERS,
            "connect_timeout": self.ssh.connect_timeout,
            "login_timeout": self.ssh.connect_timeout,
            "keepalive_interval": KEEPALIVE_INTERVAL,
            "keepalive_count_max": 3,
            "client_factory": lambda: client,
            # The chain is resolved here: asyncssh must not open bastions of its own.
            "tunnel": tunnel,
        }
        # What the file leaves out, ~/.ssh/config (then the defaults) decides.
        if port:
            options["port"] = port
        if user:
            options["username"] = user
        timeout = self.ssh.connect_timeout
        unused = Unused([], [])
        shown_user = user or str(config.get("User") or local_user())

        def refused(reason: str) -> str:
            return f"login refused for user {shown_user}: {harmless(reason)}"

        agent: asyncssh.SSHAgentClient | None = None
        try:
            unused, agent = await self._keys(config, options, timeout)
            return await _tries(address, options, client, timeout)
        except ClosedEarly as exc:
            raise Failure.unreachable(str(exc)) from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise Failure(
                HostKeyRefused,
                f"host key not verifiable against {trusted_from}: the host is unknown "
                f"or its key changed ({harmless(exc.reason)}). Check the key out of band and "
                "update "
                "known_hosts; canarytui never accepts an unverified key.",
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise Failure(AuthRefused, refused(exc.reason) + unused.note()) from None
        except TimeoutError:  # (a connection lost before the login: ``_tries``)
            raise Failure.unreachable(f"timed out after {timeout:g}s") from None
        except asyncssh.ChannelOpenError as exc:  # a bastion would not forward
            raise Failure.unreachable(channel_refusal(exc)) from None
        except asyncssh.DisconnectError as exc:
            if "authentication" in exc.reason.lower():  # "Too many authentication failures"
                raise Failure(AuthRefused, refused(exc.reason) + _TRIES + unused.note()) from None
            raise Failure.unreachable(harmless(exc.reason)) from None
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise Failure(Unreachable, out_of_files(exc)) from None
            raise Failure.unreachable(os_reason(exc)) from None
        except ValueError as exc:  # an option asyncssh cannot use (its own message)
            raise Failure(SshError, f"cannot connect: {harmless(str(exc))}") from None
        finally:
            if agent is not None:
                agent.close()

    async def _keys(
        self, config: Any, options: dict[str, Any], timeout: float
    ) -> tuple[Unused, asyncssh.SSHAgentClient | None]:
        """Key options; returns the identity files that could not be used as files
        (``Unused``) and the agent connection to close once logged in, if one was opened.

        No file named (neither the environment file nor ~/.ssh/config): asyncssh's own
        defaults (the agent, then ~/.ssh/id_*). Files named: their keys first (a host
        allows only so many tries, sshd's MaxAuthTries: the key meant for it goes early),
        then the agent's copies of those that could not be read (missing, or locked with
        a passphrase, which canarytui never asks for), then, unless IdentitiesOnly, the
        agent's other keys.
        """
        named = self.identity_files or [str(p) for p in config.get("IdentityFile", ()) or ()]
        if not named:
            return Unused([], []), None
        present, missing = split_identities(named)
        self._say_once(missing, "does not exist: skipped, as OpenSSH does")
        keys = self._load_keys(present, config) if present else FileKeys()
        self._say_once(keys.locked, "is locked with a passphrase: left to the ssh-agent")
        options["agent_path"] = None  # the agent's keys are passed below, in their place
        options["agent_identities"] = None
        agent, held = await self._agent_keys(config, timeout)
        copies = keys.locked_halves | set(pub_identities(missing) or ())
        first = [k for k in held if k.public_data in copies]
        others = [] if config.get("IdentitiesOnly") else held
        others = [k for k in others if k.public_data not in copies | keys.loaded]
        options["client_keys"] = [*keys.pairs, *first, *others] or None
        return Unused(missing, list(keys.locked)), agent

    async def _agent_keys(
        self, config: Any, timeout: float
    ) -> tuple[asyncssh.SSHAgentClient | None, list[asyncssh.SSHKeyPair]]:
        """The ssh-agent's connection and keys (none if there is no agent to ask)."""
        import asyncssh

        path = agent_path_of(config)
        if not path:
            return None, []
        try:
            async with asyncio.timeout(timeout):
                agent = await asyncssh.connect_agent(path)
        except (OSError, TimeoutError, asyncssh.Error):
            return None, []
        try:
            async with asyncio.timeout(timeout):
                return agent, list(await agent.get_keys())
        except (OSError, TimeoutError, ValueError, asyncssh.Error):
            return agent, []

    def _say_once(self, paths: Sequence[str], what: str) -> None:
        for path in paths:
            if (path, what) not in self.said:
                self.said.add((path, what))
                log.info("identity file %s %s", path, what)

    def _load_keys(self, paths: list[str], config: Any) -> FileKeys:
        """The files' keys (with their ``.pub``, ``-cert.pub`` and CertificateFile
        certificates), as asyncssh loads them, and the files locked with a passphrase,
        whose keys only the agent can offer (as OpenSSH's ``-i`` does in batch mode): read
        on the first connection and again only when one of the files changed."""
        import asyncssh

        certs = [str(p) for p in config.get("CertificateFile", ()) or ()]
        only = bool(config.get("IdentitiesOnly"))
        cached = (tuple(paths), tuple(certs), only)
        beside = [p + end for p in paths for end in ("-cert.pub", ".pub")]
        stamp = tuple(file_stamp(p) for p in [*paths, *beside, *certs])
        known = self._keypairs.get(cached)
        if known is None or known[0] != stamp:
            pairs: list[Any] = []
            locked: list[str] = []
            for path in paths:
                try:
                    loaded = asyncssh.load_keypairs(
                        [path], None, certs, skip_public=only, ignore_encrypted=True
                    )
                except ValueError as exc:  # not a key, or a .pub beside it not its half
                    raise Failure(
                        AuthRefused, f"cannot use identity file {path}: {harmless(str(exc))}"
                    ) from None
                pairs.extend(loaded)
                if not loaded:
                    locked.append(path)
            keys = FileKeys(
                tuple(pairs),
                tuple(locked),
                frozenset(pub_identities(locked) or ()),
                frozenset(pair.public_data for pair in pairs),
            )
            known = self._keypairs[cached] = (stamp, keys)
        return known[1]


@dataclass(frozen=True)
class FileKeys:
    """What the named identity files give, read once (and again when one changes)."""

    pairs: tuple[Any, ...] = ()  # their keys (and certificates)
    locked: tuple[str, ...] = ()  # the files locked with a passphrase
    locked_halves: frozenset[bytes] = frozenset()  # their public halves: the agent's copies
    loaded: frozenset[bytes] = frozenset()  # the public halves of ``pairs``


# A connection the host closes before the login is tried this many times in all, after
# a random pause of about LOST_PAUSE s, doubled each time up to MAX_PAUSE (see ``_tries``).
CONNECT_TRIES = 5
LOST_PAUSE = 0.25
MAX_PAUSE = 2.0


class ClosedEarly(Exception):
    """The host closed every try of a connection before the login."""


async def _tries(
    address: str, options: dict[str, Any], client: asyncssh.SSHClient, timeout: float
) -> asyncssh.SSHClientConnection:
    """``asyncssh.connect``, tried again while the host closes the connection before the
    login: an sshd past its ``MaxStartups`` (10 connections being set up, by default) drops
    new ones at random, and a fleet reached through a ``ProxyCommand`` bastion opens one
    to the bastion per host. Nothing was sent to the host then, so another try is safe.
    Each try has a client of its own, after a random pause (about 4 s in all)."""
    import asyncssh

    before = cancels.asked()  # (a stop asked as the login completes: see ``cancels``)
    for tries in range(1, CONNECT_TRIES + 1):
        if tries > 1:
            pause = min(MAX_PAUSE, LOST_PAUSE * 2 ** (tries - 2))
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            options["client_factory"] = type(client)  # a new one for this try
        try:
            # asyncssh bounds the handshake itself; the outer wait is a backstop.
            async with asyncio.timeout(timeout + 1.0):
                conn = await asyncssh.connect(address, **options)
        except (asyncssh.misc.ConnectionLost, ConnectionResetError, BrokenPipeError):
            cancels.resume(before)
            continue  # (a ProxyCommand that ended: its input is a broken pipe)
        except Exception:
            cancels.resume(before)
            raise
        if cancels.lost(before):
            conn.abort()
            raise asyncio.CancelledError
        return conn
    raise ClosedEarly(
        f"the host closed the connection before the login ({CONNECT_TRIES} tries; an sshd "
        "busy with more new connections than its MaxStartups drops some)"
    )


class Failure(Exception):
    """One connection attempt failed: the SshError class to raise, and its message."""

    def __init__(self, kind: type[SshError], message: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail or message  # the reason alone (for "unreachable through ...")

    @classmethod
    def unreachable(cls, reason: str) -> Failure:
        return cls(Unreachable, f"unreachable: {reason}", reason)
