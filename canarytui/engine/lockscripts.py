"""The hosts' locks: the shell scripts that take, inspect, release and break them, and
the strict parsing of their replies.

On a host, the lock is ``~/.canarytui/lock.ENV.APP/owner``, created atomically by the
shell itself (``set -C``: an exclusive create, no process started), one JSON line:
deployment, token, version, who, since, and this host's previous version when known. Beside
it, ``previous`` is what ``deploy.current`` printed when the deployment first locked the
host, written in one go once the command has finished. Releasing removes both files; the
folder stays for the next lock (only a host's very first lock starts a process: its
``mkdir``). A colleague's machine reads these to show the open deployment and to roll it
back (``rollback --take-over``), after which
``~/.canarytui/taken.ENV.APP`` says who did, so the first machine learns it on return.
A maintenance lock (``canarytui lock``) is the same file with an owner that names a
reason instead of a deployment. A lock that cannot be made though nobody holds it (the
folder cannot be created or written: a read-only home, a full or read-only file system)
is said as such, with why, never as a lock somebody holds. Replies are read from marked
lines (``CANARYTUI-...``) only; anything else is garbled.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from canarytui.config import Host
from canarytui.engine.locks import Owner, owner_from_text
from canarytui.ssh import OwnScript, SshError
from canarytui.textsafe import harmless

REMOTE_DIR = "~/.canarytui"
REPLY_LIMIT = 4096  # bytes of an owner or previous file read back
OWNER_SPINS = 5000  # a refused lock's checks for its owner's line (a few ms of the shell)
MARKS = ("LOCKED", "HELD", "LOCKABLE", "UNLOCKABLE", "TAKEN", "PREVIOUS", "CURRENT")
_PREFIX = "CANARYTUI-"
# The scripts' shell variables are prefixed: the kept shell that runs a lock script runs
# the host's steps next, and its variables must not stand in for the user's.
_OWNER = '"$canarytui_d/owner"'
_PREVIOUS = '"$canarytui_d/previous"'
_TAKEN = '"$canarytui_t"'
# Freeing a lock: ``previous`` first; cut off between the two, the host stays locked (never
# free with a leftover ``previous`` beside the lock).
_REMOVE = f"rm -f {_PREVIOUS} {_OWNER}"


class Unlockable(SshError):
    """A host on which the lock cannot be made, though nobody holds it (the message says
    why): nothing of a deployment may change it."""

    what = "cannot lock"

    def __init__(self, host: Host, reply: Reply) -> None:
        super().__init__(host, why_unlockable(reply))


def why_unlockable(reply: Reply, prefix: str = "cannot take its lock: ") -> str:
    """What an UNLOCKABLE reply said (host text: made harmless and bounded)."""
    why = harmless(reply.sections.get("UNLOCKABLE", "").strip(), 300) or "no reason given"
    return prefix + why


def _paths(app: str, env: str) -> str:
    # `~` must stay unquoted to expand; the names are quoted.
    lock = shlex.quote(f"lock.{env}.{app}")
    taken = shlex.quote(f"taken.{env}.{app}")
    return f"canarytui_d={REMOTE_DIR}/{lock}; canarytui_t={REMOTE_DIR}/{taken}; "


def _make_lock(owner_json: str) -> str:
    """Create the lock, its owner in it, atomically: true only for the one that made it.
    The owner's line is left in ``$canarytui_j`` for a take-over to write again.

    ``set -C`` makes ``>`` an exclusive create (O_EXCL in dash, bash and zsh), a shell
    builtin: no process on a host locked before, held or not; one on its very first (the
    folder). The shell's own ``-C`` setting is put back as it was."""
    folder = '{ [ -d "$canarytui_d" ] || mkdir -p "$canarytui_d"; } 2>/dev/null'
    create = f"{{ printf '%s\\n' \"$canarytui_j\" > {_OWNER}; }} 2>/dev/null"
    return (
        f"canarytui_j={owner_json}; {folder}; canarytui_c=$-; set -C; {create}; canarytui_r=$?; "
        'case "$canarytui_c" in *C*) ;; *) set +C;; esac; [ "$canarytui_r" -eq 0 ]'
    )


def _held_or_why() -> str:
    """After the lock could not be made: whose it is, or (no owner file) why it could not
    be made, from shell builtins only."""
    said = "printf '%s\\n' "
    # The winner of a lock taken at the same instant writes its owner just after making
    # the file: a loser waits (boundedly, builtins only) for it rather than say "?@?".
    wait = (
        f'canarytui_i=0; while [ ! -s {_OWNER} ] && [ "$canarytui_i" -lt {OWNER_SPINS} ]; '
        "do canarytui_i=$((canarytui_i + 1)); done; "
    )
    return (
        f"if [ -e {_OWNER} ]; then {wait}echo {_PREFIX}HELD; {_show(_OWNER)}; "
        f"else echo {_PREFIX}UNLOCKABLE; "
        f'if [ ! -d "$canarytui_d" ]; then {said}"cannot create the folder $canarytui_d"; '
        f'elif [ ! -w "$canarytui_d" ]; then {said}"the folder $canarytui_d is not writable"; '
        f'else {said}"cannot create $canarytui_d/owner: is its file system full or read-only?"; '
        "fi; fi"
    )


def _is_ours(token: str) -> str:
    """True when the lock's owner file names this deployment's token."""
    return (
        f"{{ IFS= read -r canarytui_o < {_OWNER} && "
        f'case "$canarytui_o" in *{shlex.quote(token)}*) true;; *) false;; esac; }} 2>/dev/null'
    )


def _show(path: str) -> str:
    """At most REPLY_LIMIT bytes of a file (``path``: a quoted shell word), then a line end."""
    return f"head -c {REPLY_LIMIT} {path} 2>/dev/null; echo"


def _first_line(path: str) -> str:
    """The file's first line that is not blank, read by the shell itself (no process
    started: this runs on every host when a deployment starts)."""
    return (
        'while IFS= read -r canarytui_p || [ -n "$canarytui_p" ]; do '
        'case "$canarytui_p" in *[![:space:]]*) printf \'%s\\n\' "$canarytui_p"; break;; esac; '
        f"canarytui_p=; done 2>/dev/null < {path}; true"
    )


def acquire_command(
    app: str,
    env: str,
    owner: Owner,
    current: str | None = None,
    previous: str | None = None,
    rewrite: bool = True,
    taking: bool = False,
) -> OwnScript:
    """Take the host's lock atomically (or take it over: same token); say what happened.
    Its status is 0 only when the lock is the deployment's: as the first part of a host's
    steps, it keeps them from running on a host that is not (``LockKeeper.check``). Not
    ``rewrite``: a lock that is the deployment's already is left as it is (who holds it,
    since when), only checked. A take-over's note for the token refuses it (TAKEN), unless
    ``taking``: the machine that took it over, whose note it is.

    With ``current`` (the discovery command), the host's version before this deployment
    is kept in the lock (first time only) and printed, so the first contact with a host
    is one round trip.
    """
    extra = {"previous": previous} if previous else {}
    owner_json = shlex.quote(json.dumps(owner.as_dict(**extra)))
    token = shlex.quote(owner.token)
    taken = (
        ""
        if taking
        else f"if [ -f {_TAKEN} ] && grep -qF {token} {_TAKEN} 2>/dev/null; then "
        f"echo {_PREFIX}TAKEN; {_show(_TAKEN)}; false; el"
    )
    script = (
        _paths(app, env)
        + taken
        + f"if {_make_lock(owner_json)} || {{ {_is_ours(owner.token)} && "
        + (f"printf '%s\\n' \"$canarytui_j\" >| {_OWNER}; " if rewrite else "true; ")
        + f"}}; then echo {_PREFIX}LOCKED"
    )
    if current:
        # Written once the command has finished, by one builtin write: a command cut off
        # (timeout, lost connection) leaves no file, and the next lock asks again.
        script += (
            f'; if [ "$canarytui_r" -eq 0 ] || [ ! -e {_PREVIOUS} ]; then '
            f"canarytui_p=$( {{ {current}\n}} 2>/dev/null ); "
            f"printf '%s\\n' \"$canarytui_p\" >| {_PREVIOUS}; fi; "
            f"echo {_PREFIX}PREVIOUS; " + _first_line(_PREVIOUS)
        )
    script += f"; else {_held_or_why()}; false; fi"
    return OwnScript(script)


# A kept shell's lock check, defined by the script that took the lock (parsed whole by
# ``sh -c``): each later script that changes the host calls it by name, where the check's
# own text (1.5 KB) would be read a byte at a time, ~1 ms of the host's CPU each time.
CHECK_CALL = OwnScript("canarytui_mine")


def check_function(app: str, env: str, owner: Owner, taking: bool = False) -> str:
    """``canarytui_mine``: the deployment's lock checked still its own (``acquire_command``
    without rewriting it); to come first in the script that takes the lock."""
    check = acquire_command(app, env, owner, rewrite=False, taking=taking)
    return f"canarytui_mine() {{\n{check}\n}}\n"


def taking_note_command(app: str, env: str, note: dict[str, Any]) -> OwnScript:
    """A take-over's note, left on a host as the take-over starts: the first machine, if
    it still runs, stops at its next script there (its lock check finds the note)."""
    said = shlex.quote(json.dumps(note))
    return OwnScript(_paths(app, env) + f"printf '%s\\n' {said} >| {_TAKEN}; true")


def hold_command(app: str, env: str, owner: dict[str, Any]) -> str:
    """Take the host's lock for maintenance, never over anyone's; say what happened."""
    owner_json = shlex.quote(json.dumps(owner))
    return _paths(app, env) + (
        f"if {_make_lock(owner_json)}; then echo {_PREFIX}LOCKED; else {_held_or_why()}; fi"
    )


def release_command(
    app: str, env: str, token: str, taken: dict[str, Any] | None = None
) -> OwnScript:
    """Free the lock if it is ours; after a take-over, leave word of who rolled it back."""
    script = _paths(app, env) + f"if {_is_ours(token)}; then {_REMOVE}; fi"
    if taken is not None:
        note = shlex.quote(json.dumps({**taken, "token": token}))
        script += f"; printf '%s\\n' {note} >| {_TAKEN}"
    return OwnScript(script + "; true")


def inspect_command(app: str, env: str, current: str) -> str:
    """Read a host's lock and take-over note (changing nothing), and its version now."""
    return (
        _paths(app, env) + f"if [ -f {_OWNER} ]; then echo {_PREFIX}HELD; {_show(_OWNER)}; "
        f"echo {_PREFIX}PREVIOUS; {_show(_PREVIOUS)}; fi; "
        f"if [ -f {_TAKEN} ]; then echo {_PREFIX}TAKEN; {_show(_TAKEN)}; fi; "
        f"echo {_PREFIX}CURRENT; {{ {current}\n}}"
    )


def lockable_command(app: str, env: str, current: str | None = None) -> str:
    """Whether the lock could be made on the host (``canarytui check``), changing nothing:
    the nearest of its folder, ``~/.canarytui`` and the home that exists is writable; and
    whose lock it holds, if any. With ``current`` (the discovery command), its version
    too, in the same round trip."""
    said = "printf '%s\\n' "
    version = f"; echo {_PREFIX}CURRENT; {{ {current}\n}}" if current else ""
    held = f"; if [ -f {_OWNER} ]; then echo {_PREFIX}HELD; {_show(_OWNER)}; fi"
    return (
        _paths(app, env)
        + (
            'canarytui_w=$canarytui_d; [ -d "$canarytui_w" ] || canarytui_w=${canarytui_w%/*}; '
            '[ -d "$canarytui_w" ] || canarytui_w=${canarytui_w%/*}; '
            f'if [ -d "$canarytui_w" ] && [ -w "$canarytui_w" ]; then echo {_PREFIX}LOCKABLE; '
            f"else echo {_PREFIX}UNLOCKABLE; "
            f'if [ "$canarytui_w" = "$canarytui_d" ]; then {said}"the folder $canarytui_d is not '
            'writable"; '
            f'elif [ -d "$canarytui_w" ]; then {said}"cannot create the folder $canarytui_d: '
            '$canarytui_w is not writable"; '
            f'else {said}"cannot create the folder $canarytui_d: $canarytui_w does not '
            'exist"; fi; fi'
        )
        + held
        + version
    )


def break_command(app: str, env: str) -> str:
    """Remove the host's lock whoever holds it, printing whose it was."""
    return _paths(app, env) + (
        f"if [ -f {_OWNER} ]; then echo {_PREFIX}HELD; {_show(_OWNER)}; {_REMOVE}; fi; true"
    )


# ------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """A lock script's reply: which marks it printed and what followed each."""

    sections: dict[str, str] = field(default_factory=dict)

    def has(self, mark: str) -> bool:
        return mark in self.sections

    def owner(self, mark: str = "HELD") -> dict[str, Any]:
        return owner_from_text(self.sections.get(mark, ""))

    def first_line(self, mark: str) -> str | None:
        for line in self.sections.get(mark, "").splitlines():
            if line.strip():
                return line.strip()
        return None

    @property
    def garbled(self) -> bool:
        return not self.sections


def parse_reply(stdout: str) -> Reply:
    """Split a reply at its marked lines; text outside them (noise) is ignored."""
    reply = Reply()
    current: str | None = None
    lines: list[str] = []
    for line in stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith(_PREFIX) and stripped[len(_PREFIX) :] in MARKS:
            if current is not None:
                reply.sections[current] = "\n".join(lines)
            current, lines = stripped[len(_PREFIX) :], []
        elif current is not None:
            lines.append(line)
    if current is not None:
        reply.sections[current] = "\n".join(lines)
    return reply
