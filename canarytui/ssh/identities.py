"""Identity files as OpenSSH reads them: those missing, those locked with a passphrase
(whose keys only the ssh-agent can offer), and the public halves to pick the agent's keys by."""

from __future__ import annotations

import base64
import os
import shlex
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Unused:
    """The identity files named that could not be used as files, said when a login fails."""

    missing: list[str]
    locked: list[str]  # locked with a passphrase, and canarytui asks for none

    def note(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"identity file(s) not found: {', '.join(self.missing)}")
        if self.locked:
            files = " ".join(shlex.quote(p) for p in self.locked)
            parts.append(
                "identity file(s) locked with a passphrase, which canarytui never asks for, "
                f"and not in the ssh-agent: add them with ssh-add {files}"
            )
        return f" ({'; '.join(parts)})" if parts else ""


def pub_identities(paths: list[str]) -> list[bytes] | None:
    """The public keys of identity files not read (missing or locked), to pick the agent's
    keys by: ``FILE.pub``, else the clear header of a locked OpenSSH key, as OpenSSH reads."""
    import asyncssh

    out = []
    for path in paths:
        try:
            out.append(asyncssh.read_public_key(path + ".pub").public_data)
        except (OSError, asyncssh.KeyImportError):
            blob = openssh_public_half(path)
            if blob is not None:
                out.append(blob)
    return out or None


_OPENSSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----"


def openssh_public_half(path: str) -> bytes | None:
    """The public key an OpenSSH-format private key file carries unencrypted before its
    private part (PROTOCOL.key: magic, cipher, kdf, kdf options, key count, public keys)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read(64 * 1024)
        body = text.split(_OPENSSH_KEY, 1)[1].split("-----END", 1)[0]
        data = base64.b64decode("".join(body.split()))
    except (OSError, IndexError, ValueError):
        return None
    magic = b"openssh-key-v1\0"
    if not data.startswith(magic):
        return None
    at = len(magic)
    for _ in range(3):  # cipher name, kdf name, kdf options
        if at + 4 > len(data):
            return None
        at += 4 + int.from_bytes(data[at : at + 4], "big")
    if at + 8 > len(data) or int.from_bytes(data[at : at + 4], "big") != 1:
        return None
    size = int.from_bytes(data[at + 4 : at + 8], "big")
    blob = data[at + 8 : at + 8 + size]
    return blob if len(blob) == size and size else None


def split_identities(named: list[str]) -> tuple[list[str], list[str]]:
    """Identity files that exist, and those that do not (``~`` expanded)."""
    files = [os.path.expanduser(p) for p in named]
    present = [p for p in files if os.path.exists(p)]
    return present, [p for p in files if p not in present]


def agent_path_of(config: Any) -> str:
    """The agent's socket, as asyncssh finds it: IdentityAgent, else SSH_AUTH_SOCK."""
    path = config.get("IdentityAgent", ())
    if path == ():
        path = os.environ.get("SSH_AUTH_SOCK", "")
    return os.path.expanduser(str(path)) if path else ""
