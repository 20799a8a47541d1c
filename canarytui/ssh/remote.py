"""How a command goes to a host and comes back: marked, bounded in memory, stoppable.

Every command is sent as ``printf MARK $$; printf MARK >&2; COMMAND`` in the user's login
shell. What the shell's start-up files print before it (banners, rc files) comes before the
marks and is dropped, so replies are parsed from what the command printed, never from
"line 1". ``$$`` is the login shell's pid, which is its process group (sshd starts every
session in a new one), so a command that times out or is abandoned can be killed on the
host with everything it started. Output is read as a stream in chunks: only the last
``limit`` bytes of each stream are kept, and a log line longer than ``line_limit`` is cut.

Several steps of one host go as one script (one round trip): each runs in a subshell
(canarytui's own scripts, ``OwnScript``, in the shell itself) with ``/dev/null`` as its
input, then prints an end mark with its exit status on both streams, and the script stops
at the first step that fails. The marks split the streams back into one output per step.
A step's time is the host's own: its end mark on stdout carries the host's clock
(``/proc/uptime``, read by the shell) at its start and end, so the time a step took does not
depend on when the controller got to read it (under load, several end marks come in one
read). A host without that file says ``-``, and the controller times the step as it reads it.
A kept shell (``keep``) runs its first script, then waits on the session's input for the
next ones (``more``): one session serves a host for a whole deployment.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Iterator, Sequence

PRELUDE_LIMIT = 64 * 1024  # bytes of shell start-up noise searched for the mark at most
BEFORE_KEPT = 1024  # bytes of that noise kept, to show when a command did not run
CUT_MARK = "… (line cut)"


class OwnScript(str):
    """A script of canarytui's own (a host's lock, its release), run by the host's shell
    itself rather than in a subshell: a process saved on every host of a release. It only
    sets ``canarytui_`` variables, never exits, and quotes every value it holds; what the
    user wrote (``deploy.current``) runs inside it in a subshell still."""

    __slots__ = ()


class Marker:
    """The per-fleet random mark that separates a shell's noise from a command's output."""

    def __init__(self, token: str | None = None) -> None:
        self.tag = f"canarytui-{token or secrets.token_hex(8)}"
        self.tag_bytes = self.tag.encode()
        self._pid = re.compile(re.escape(self.tag_bytes) + rb" (\d+)")

    def wrap(self, command: str) -> str:
        return f"{self._prelude()}\n{command}"

    def script(self, commands: Sequence[str], prelude: bool = True, stop: bool = True) -> str:
        """Several commands as one, each marked at its end, stopping at the first failure
        (unless not ``stop``: then each runs, whatever the one before did).

        The steps read nothing from the session (their input is ``/dev/null``), and a
        failure stops the script, not the shell: a kept shell (``keep``) goes on waiting.
        The end marks are printed by a function the first script defines (``_ender``): a
        kept shell reads each later script a byte at a time, and a step's line is ~25 bytes
        of ours, not ~190.
        """
        parts = [self._prelude(), self._ender()] if prelude else []
        parts.append("canarytui_clock; while :; do")
        for i, command in enumerate(commands):
            run = f"{{ {command}\n}}" if isinstance(command, OwnScript) else f"( {command}\n)"
            parts.append(f"{run}; canarytui_end {i}" + (" || break" if stop else ""))
        parts.append("break; done </dev/null")
        return "\n".join(parts)

    def keep(self, commands: Sequence[str]) -> str:
        """``script(commands)``, then the shell stays for more: each later script comes on
        its input (``more``), ended by the line ``TAG-run``; the end of its input (or a
        script that says ``exit``) ends the shell. Only shell builtins wait."""
        return self.script(commands) + (
            "\nwhile :; do canarytui_s=; canarytui_e=1; while IFS= read -r canarytui_l; do "
            f'if [ "$canarytui_l" = {self.tag}-run ]; then canarytui_e=0; break; fi; '
            'canarytui_s="$canarytui_s$canarytui_l\n"; done; '
            '[ "$canarytui_e" = 0 ] || exit 0; eval "$canarytui_s"; done'
        )

    def more(self, commands: Sequence[str], end: bool) -> bytes:
        """What a kept shell is sent to run ``commands`` (``end``: then it ends)."""
        text = self.script(commands, prelude=False) + ("\nexit 0" if end else "")
        return f"{text}\n{self.tag}-run\n".encode()

    def _prelude(self) -> str:
        return f"printf '%s %s\\n' {self.tag} \"$$\"; printf '%s\\n' {self.tag} >&2"

    def _ender(self) -> str:
        """``canarytui_end N``: step N's end mark on both streams, with the status the step
        left (kept in a variable of ours: a later step sees the user's own variables), which
        it returns; on stdout, the host's clock when the step started and now
        (``canarytui_clock``: seconds since boot, read by the shell, ``-`` if it cannot)."""
        end = f"{self.tag}-end"
        return (
            "canarytui_clock() { canarytui_u=-; "
            "{ IFS=' ' read -r canarytui_u canarytui_ui < /proc/uptime; } 2>/dev/null; }\n"
            "canarytui_end() { canarytui_rc=$?; canarytui_b=$canarytui_u; canarytui_clock; "
            f'printf \'\\n%s %s %s %s %s\\n\' {end} "$1" "$canarytui_rc" '
            '"${canarytui_b:--}" "${canarytui_u:--}"; '
            f'printf \'\\n%s %s\\n\' {end} "$1" >&2; return "$canarytui_rc"; }}'
        )

    def pid_in(self, line: bytes) -> int | None:
        match = self._pid.match(line)
        if match is None:
            return None
        pid = int(match.group(1))
        return pid if pid > 1 else None


STOP_GRACE = 20  # tenths of a second a process group is given to end on SIGTERM
STOP_SAID = "canarytui-stop"  # what the stop prints, then how the group ended


def kill_script(pgid: int, grace: int = STOP_GRACE) -> str:
    """Stop a process group on the host: TERM, a grace of ``grace`` tenths of a second
    while a member is alive, then KILL; prints ``STOP_SAID`` and ``ended`` or ``killed``.

    A zombie is not alive: it has ended, and waits for its parent to reap it. A group's
    members outlive their shell, so their parent is the host's PID 1, which reaps late on
    some hosts (a container without an init reaps never): counted as alive, they would
    hold every stop for the whole grace. On Linux, ``/proc`` tells them apart (read by
    the shell itself); elsewhere a group whose only members are zombies waits the grace.
    Only processes started after the group's leader can be in it: older ones are not
    read (dash reads a byte at a time: 2,000 processes took ~0.5 s a look). Where the
    host's pids wrapped around since, a member may be missed and waited for less: the
    KILL that ends the script reaches it anyway (a zombie ignores it)."""
    g = int(pgid)
    live = (
        f"canarytui_live() {{ kill -0 -{g} 2>/dev/null || return 1; "
        "[ -r /proc/self/stat ] || return 0; "
        "for canarytui_f in /proc/[0-9]*/stat; do "
        "canarytui_p=${canarytui_f#/proc/}; "
        f'[ "${{canarytui_p%/stat}}" -ge {g} ] || continue; '
        '{ IFS= read -r canarytui_l < "$canarytui_f"; } 2>/dev/null || continue; '
        # After the command's name, in parentheses: state, parent, process group.
        'canarytui_l=${canarytui_l##*") "}; '
        'case "$canarytui_l" in Z*|X*) continue;; esac; '
        "canarytui_l=${canarytui_l#* }; canarytui_l=${canarytui_l#* }; "
        f'[ "${{canarytui_l%% *}}" = {g} ] && return 0; '
        "done; return 1; }\n"
    )
    return live + (
        f"kill -TERM -{g} 2>/dev/null; canarytui_i=0; canarytui_k=ended; "
        f'while canarytui_live; do if [ "$canarytui_i" -ge {int(grace)} ]; then '
        "canarytui_k=killed; break; fi; "
        "sleep 0.1; canarytui_i=$((canarytui_i + 1)); done; "
        f'kill -KILL -{g} 2>/dev/null; echo "{STOP_SAID} $canarytui_k"'
    )


def how_stopped(said: bytes | str | None) -> str:
    """How a process group ended, from what its ``kill_script`` printed."""
    text = said.decode(errors="replace") if isinstance(said, bytes) else said or ""
    if f"{STOP_SAID} ended" in text:
        return "ended on SIGTERM"
    if f"{STOP_SAID} killed" in text:
        return "killed: it outlived SIGTERM"
    return "sent SIGTERM, then SIGKILL"


class _Prelude:
    """Drops what comes before the mark; remembers the process group it carries."""

    def __init__(self, marker: Marker) -> None:
        self.marker = marker
        self.seen = False
        self.found = False  # the mark itself came (``seen`` is also set by ``leftover``)
        self.before = b""  # the end of what came before the mark (a shell's complaint)
        self.pgid: int | None = None
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` that belongs to the command (empty until the mark)."""
        if self.seen:
            return data
        self._buffer += data
        tag = self.marker.tag_bytes
        start = self._buffer.find(tag)
        if start < 0:
            if len(self._buffer) > PRELUDE_LIMIT:
                del self._buffer[: len(self._buffer) - len(tag)]
            return b""
        end = self._buffer.find(b"\n", start)
        if end < 0:
            return b""
        self.pgid = self.marker.pid_in(bytes(self._buffer[start:end]))
        self.before = bytes(self._buffer[max(0, start - BEFORE_KEPT) : start])
        rest = bytes(self._buffer[end + 1 :])
        self._buffer = bytearray()
        self.seen = self.found = True
        return rest

    def leftover(self) -> bytes:
        """No mark ever came (a shell that could not run it): what came is the output."""
        if self.seen:
            return b""
        self.seen = True
        rest, self._buffer = bytes(self._buffer), bytearray()
        return rest


class OutputTail:
    """One stream of a command: after the mark, the last ``limit`` bytes are kept."""

    def __init__(self, marker: Marker, limit: int) -> None:
        self.prelude = _Prelude(marker)
        self.limit = limit
        self.cut = 0
        self._chunks: deque[bytes] = deque()
        self._size = 0

    @property
    def pgid(self) -> int | None:
        return self.prelude.pgid

    def feed(self, data: bytes) -> None:
        self._keep(self.prelude.feed(data))

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        self._size += len(data)
        while self._size > self.limit:
            excess = self._size - self.limit
            first = self._chunks[0]
            if len(first) <= excess:
                self._chunks.popleft()
                self._size -= len(first)
                self.cut += len(first)
            else:
                self._chunks[0] = first[excess:]
                self._size -= excess
                self.cut += excess

    def text(self) -> str:
        self._keep(self.prelude.leftover())
        return b"".join(self._chunks).decode("utf-8", "replace")


class LineSplitter:
    """A long-running command's stdout as lines: after the mark, each cut to a bound."""

    def __init__(self, marker: Marker, line_limit: int) -> None:
        self.prelude = _Prelude(marker)
        self.line_limit = line_limit
        self._partial = bytearray()
        self._cutting = False  # inside a line already cut: drop until its end

    @property
    def pgid(self) -> int | None:
        return self.prelude.pgid

    def feed(self, data: bytes) -> Iterator[str]:
        data = self.prelude.feed(data)
        while data:
            end = data.find(b"\n")
            piece, data = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
            if not self._cutting:
                room = self.line_limit - len(self._partial)
                self._partial += piece[: max(0, room)]
                if len(piece) > room:
                    self._cutting = True
            if end < 0:
                return
            yield self._line()

    def finish(self) -> Iterator[str]:
        leftover = self.prelude.leftover()
        if leftover:
            yield from self.feed(leftover)
        if self._partial or self._cutting:
            yield self._line()

    def _line(self) -> str:
        text = self._partial.decode("utf-8", "replace").rstrip("\r")
        if self._cutting:
            text += CUT_MARK
        self._partial = bytearray()
        self._cutting = False
        return text


class StepTails:
    """One stream of a multi-step script: the output of each step, split at its end mark."""

    def __init__(self, marker: Marker, limit: int) -> None:
        self.prelude = _Prelude(marker)
        self.marker = marker
        self.limit = limit
        self._mark = b"\n" + marker.tag_bytes + b"-end "
        self._pending = bytearray()
        self.current = OutputTail(marker, limit)
        self.current.prelude.seen = True  # the script's prelude is dropped here, once
        # (output, exit status if told, seconds the host's clock says it took if told)
        self.ended: list[tuple[OutputTail, int | None, float | None]] = []

    @property
    def pgid(self) -> int | None:
        return self.prelude.pgid

    def feed(self, data: bytes) -> None:
        self._split(self.prelude.feed(data))

    def _split(self, data: bytes) -> None:
        if not data:
            return
        self._pending += data
        while True:
            start = self._pending.find(self._mark)
            if start < 0:
                # Keep what could be the beginning of a mark; the rest is output.
                keep = len(self._mark) - 1
                if len(self._pending) > keep:
                    self.current.feed(bytes(self._pending[: len(self._pending) - keep]))
                    del self._pending[: len(self._pending) - keep]
                return
            end = self._pending.find(b"\n", start + 1)
            if end < 0:
                if len(self._pending) - start > len(self._mark) + 64:  # not a mark after all
                    self.current.feed(bytes(self._pending[: start + 1]))
                    del self._pending[: start + 1]
                    continue
                return
            self.current.feed(bytes(self._pending[:start]))
            fields = bytes(self._pending[start + len(self._mark) : end]).split()
            del self._pending[: end + 1]
            status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
            self.ended.append((self.current, status, _took(fields[2:4])))
            self.current = OutputTail(self.marker, self.limit)
            self.current.prelude.seen = True

    def finish(self) -> OutputTail:
        """The stream ended: what came after the last mark (a step that never ended)."""
        self._split(self.prelude.leftover())
        self.current.feed(bytes(self._pending))
        self._pending = bytearray()
        return self.current


def _took(stamps: list[bytes]) -> float | None:
    """Seconds between a step's start and end on the host's clock; None if not told."""
    try:
        begin, end = (float(stamp) for stamp in stamps)
    except ValueError:  # "-" (no clock there), or not two of them
        return None
    took = end - begin
    return took if 0.0 <= took < 1e9 else None
