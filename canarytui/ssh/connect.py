"""Opening a connection to a host: options, host-key verification, and clear refusals.

Host keys are always verified against ``known_hosts``; there is no switch to turn that
off. What the environment file leaves out (port, user, keys) comes from ``~/.ssh/config``.
"""

from __future__ import annotations

import asyncio

import asyncssh

from canarytui.config import Environment, Host
from canarytui.ssh.errors import AuthRefused, HostKeyRefused, Unreachable

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


class Connector:
    """Opens verified connections to an environment's hosts."""

    def __init__(self, env: Environment) -> None:
        self.ssh = env.ssh
        self.known_hosts = env.resolve_path(env.ssh.known_hosts)
        # Parsed once for the fleet: asyncssh would re-read the file on every connect,
        # which grows with fleet size squared.
        self._known_hosts: asyncssh.SSHKnownHosts | None = None
        self.identity_files = [str(env.resolve_path(p)) for p in env.ssh.identity_files]

    async def connect(self, host: Host, client: asyncssh.SSHClient) -> asyncssh.SSHClientConnection:
        options: dict[str, object] = {
            "known_hosts": self.trusted_keys(host),
            "encryption_algs": CIPHERS,
            "connect_timeout": self.ssh.connect_timeout,
            "login_timeout": self.ssh.connect_timeout,
            "keepalive_interval": KEEPALIVE_INTERVAL,
            "keepalive_count_max": 3,
            "client_factory": lambda: client,
        }
        # What the file leaves out, ~/.ssh/config (then the defaults) decides.
        if host.port:
            options["port"] = host.port
        if host.user:
            options["username"] = host.user
        if self.identity_files:
            options["client_keys"] = self.identity_files
        timeout = self.ssh.connect_timeout
        try:
            # asyncssh bounds the handshake itself; the outer wait is a backstop.
            conn = await asyncio.wait_for(
                asyncssh.connect(host.address, **options),
                timeout + 1.0,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyRefused(
                host,
                f"host key not verifiable against {self.known_hosts}: the host is unknown "
                f"or its key changed ({exc.reason}). Check the key out of band and update "
                "known_hosts; canarytui never accepts an unverified key.",
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise AuthRefused(
                host, f"login refused for user {host.user or '(default)'}: {exc.reason}"
            ) from None
        except (TimeoutError, asyncssh.misc.ConnectionLost) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else "connection lost"
            raise Unreachable(host, f"unreachable: {reason} after {timeout:g}s") from None
        except asyncssh.DisconnectError as exc:
            raise Unreachable(host, f"unreachable: {exc.reason}") from None
        except OSError as exc:
            raise Unreachable(host, f"unreachable: {exc.strerror or exc}") from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise AuthRefused(host, f"cannot use identity file: {exc}") from None
        return conn

    def trusted_keys(self, host: Host) -> asyncssh.SSHKnownHosts:
        if self._known_hosts is None:
            if not self.known_hosts.is_file():
                raise HostKeyRefused(
                    host,
                    f"host key cannot be verified: known_hosts file {self.known_hosts} not "
                    "found (host keys are always checked)",
                )
            try:
                self._known_hosts = asyncssh.read_known_hosts(str(self.known_hosts))
            except (OSError, ValueError) as exc:
                raise HostKeyRefused(
                    host, f"host key cannot be verified: {self.known_hosts} unreadable: {exc}"
                ) from None
        return self._known_hosts
