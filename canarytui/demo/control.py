"""The control channel of a running demo fleet: faults and load-balancer weights on demand.

Every fleet listens on a unix socket in its root folder (its environment file's traffic
hooks name it); one started with ``control=True`` also records where in a small pointer
file (``demo.json``) at a well-known place: ``$CANARYTUI_STATE_DIR`` if set, else the
user's runtime dir, else the user's state dir. ``canarytui demo ctl HOST MODE`` and
``canarytui demo ctl lb [VERSION PERCENT]`` read the pointer (or take ``--socket``), send
one JSON line and read one back.

This module imports neither asyncssh nor, until a fleet serves, asyncio: ``demo ctl`` and
the demo file's traffic hook (``canarytui.demo.lb``) start quickly.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import asyncio

FAULT_MODES: dict[str, str] = {
    "down": "refuses new connections and drops open ones",
    "hang": "accepts connections but never answers; commands never finish",
    "flaky": "drops about 30% of connections and commands",
    "slow": "every command starts about 2 s late",
    "up": "back to normal",
}
POINTER_NAME = "demo.json"
STATE_DIR_ENV = "CANARYTUI_STATE_DIR"
_REQUEST_TIMEOUT = 10.0
# sun_path holds 108 bytes on Linux (104 on macOS); keep a margin.
_MAX_SOCKET_PATH = 100


class ControlError(Exception):
    """A request the fleet refused; ``status`` is the exit status ``demo ctl`` returns."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------ pointer file


def _pointer_dirs() -> list[Path]:
    """Where the pointer file may live, in the order it is looked for."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return [Path(override)]
    import warnings

    import platformdirs

    with warnings.catch_warnings():
        # Without XDG_RUNTIME_DIR platformdirs warns and guesses; the state dir follows.
        warnings.simplefilter("ignore")
        runtime = platformdirs.user_runtime_dir("canarytui")
    return [Path(runtime), Path(platformdirs.user_state_dir("canarytui"))]


def write_pointer(info: dict[str, Any]) -> Path:
    """Record a running fleet; the first place that can be written wins."""
    last_error: OSError | None = None
    for folder in _pointer_dirs():
        try:
            # Private, as the journal's state folder it may be (0700, the file 0600).
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = folder / POINTER_NAME
            tmp = path.with_name(f".{POINTER_NAME}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(json.dumps(info, indent=2) + "\n")
            os.replace(tmp, path)
            return path
        except OSError as exc:  # e.g. no /run/user/UID in a container: try the next place
            last_error = exc
    assert last_error is not None
    raise last_error


def read_pointer() -> tuple[Path, dict[str, Any]] | None:
    for folder in _pointer_dirs():
        path = folder / POINTER_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("socket"), str):
            return path, data
    return None


def remove_pointer(path: Path, socket_path: str) -> None:
    """Remove the pointer, unless a newer demo has replaced it with its own."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if data.get("socket") == socket_path:
        path.unlink(missing_ok=True)


# ------------------------------------------------------------------------ server

SetFault = Callable[[str, str], Awaitable[str]]
# ``set_split(version, percent)``: a new split (version None: only say the current one);
# returns what the load balancer does now, as ``lb_said`` prints it.
SetSplit = Callable[[str | None, float], dict[str, Any]]
_MAX_VERSION = 128


class ControlServer:
    """Serves fault and load-balancer requests for one fleet; ``set_fault(host, mode)``
    returns the old mode. ``pointer``: record the socket where ``demo ctl`` looks."""

    def __init__(
        self,
        root: Path,
        set_fault: SetFault,
        info: dict[str, Any],
        set_split: SetSplit | None = None,
        *,
        pointer: bool = True,
    ) -> None:
        self._set_fault = set_fault
        self._set_split = set_split
        self._wants_pointer = pointer
        self._info = info
        self._server: asyncio.AbstractServer | None = None
        self._short_dir: str | None = None
        self._pointer: Path | None = None
        path = root / "control.sock"
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            # A deep root would overflow sun_path: use a short private folder instead.
            import tempfile

            self._short_dir = tempfile.mkdtemp(prefix="ctui-")
            path = Path(self._short_dir) / "control.sock"
        self.socket_path = path

    async def start(self) -> None:
        import asyncio

        self.socket_path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        if self._wants_pointer:
            self._pointer = write_pointer(
                {**self._info, "socket": str(self.socket_path), "pid": os.getpid()}
            )

    def close(self) -> None:
        if self._pointer is not None:
            remove_pointer(self._pointer, str(self.socket_path))
            self._pointer = None
        if self._server is not None:
            self._server.close()
            self._server = None
        self.socket_path.unlink(missing_ok=True)
        if self._short_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._short_dir)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import asyncio

        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                line = await reader.readline()
            reply = await self._answer(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError):
            pass  # the client went away; nothing to tell anyone
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if isinstance(request, dict) and "lb" in request:
                return self._answer_lb(request["lb"])
            host, mode = str(request["host"]), str(request["mode"])
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "status": 2, "error": "bad request"}
        try:
            previous = await self._set_fault(host, mode)
        except ControlError as exc:
            return {"ok": False, "status": exc.status, "error": str(exc)}
        return {"ok": True, "host": host, "mode": mode, "previous": previous}

    def _answer_lb(self, body: object) -> dict[str, Any]:
        """``{"lb": null}`` asks what the load balancer does; ``{"lb": {"version": V,
        "percent": P}}`` sends P % of the users to the hosts running V."""
        if self._set_split is None:
            return {"ok": False, "status": 1, "error": "this fleet has no load balancer"}
        if body is None:
            return {"ok": True, "lb": self._set_split(None, 0.0)}
        try:
            assert isinstance(body, dict)
            version, percent = body["version"], body["percent"]
            assert isinstance(version, str) and isinstance(percent, int | float)
        except (AssertionError, KeyError):
            return {"ok": False, "status": 2, "error": "bad request"}
        if not version or len(version) > _MAX_VERSION or not version.isprintable():
            return {
                "ok": False,
                "status": 2,
                "error": f"a version is 1 to {_MAX_VERSION} printable characters",
            }
        try:
            return {"ok": True, "lb": self._set_split(version, float(percent))}
        except ValueError as exc:
            return {"ok": False, "status": 2, "error": str(exc)}


# ------------------------------------------------------------------------ client


def request_fault(host: str, mode: str, socket_path: str | None = None) -> dict[str, Any]:
    """Ask the running demo fleet (``socket_path``: that one, not the pointer's) to put
    ``host`` in ``mode``; raise ControlError if refused."""
    return _request({"host": host, "mode": mode}, socket_path)


def request_split(
    version: str | None, percent: float = 0.0, socket_path: str | None = None
) -> dict[str, Any]:
    """Tell the demo's load balancer to send ``percent`` % of the users to the hosts running
    ``version`` (None: only ask what it does); ``socket_path``: that fleet, not the pointer's."""
    body = None if version is None else {"version": version, "percent": percent}
    return _request({"lb": body}, socket_path)


def _request(request: dict[str, Any], socket_path: str | None = None) -> dict[str, Any]:
    """One request to a fleet's control socket (the pointer's unless given); its reply."""
    pointer: Path | None = None
    if socket_path is None:
        found = read_pointer()
        if found is None:
            raise _not_running()
        pointer, info = found
        socket_path = str(info["socket"])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_REQUEST_TIMEOUT)
        try:
            sock.connect(socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            if pointer is None:
                raise ControlError(
                    f"no demo fleet listens on {socket_path}: has it stopped?", status=1
                ) from None
            # The pointer outlived its fleet (killed with SIGKILL, say): clear it up.
            remove_pointer(pointer, socket_path)
            raise _not_running() from None
        except OSError as exc:
            raise ControlError(f"cannot reach the demo fleet: {exc}", status=1) from None
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlError(f"the demo fleet did not answer: {exc}", status=1) from None
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError:
        raise ControlError("the demo fleet sent no answer", status=1) from None
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "refused")), int(reply.get("status", 1)))
    return reply


def _not_running() -> ControlError:
    """No fleet recorded where this process looks (a fleet started with another
    $CANARYTUI_STATE_DIR records itself elsewhere: the folders say where)."""
    looked = ", ".join(str(folder) for folder in _pointer_dirs())
    return ControlError(
        f"no demo fleet is running (none recorded in {looked}): start one with "
        "`canarytui demo` or `canarytui demo --serve`, with the same $CANARYTUI_STATE_DIR",
        status=1,
    )


def ctl_main(
    host: str,
    mode: str,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    socket_path: str | None = None,
) -> int:
    """``canarytui demo ctl HOST MODE``: 0 done, 2 unknown host or mode, 1 no demo running."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if mode not in FAULT_MODES:
        print(f"unknown mode {mode!r}: use one of {', '.join(FAULT_MODES)}", file=err)
        return 2
    try:
        reply = request_fault(host, mode, socket_path)
    except ControlError as exc:
        print(str(exc), file=err)
        return exc.status
    previous = reply.get("previous")
    was = f" (was {previous})" if previous and previous != mode else ""
    print(f"{host}: {mode}{was}: {FAULT_MODES[mode]}", file=out)
    return 0


def lb_said(state: dict[str, Any]) -> str:
    """What the load balancer does, in a line (the hooks' output, in the journal)."""
    version, percent = state.get("version"), state.get("percent", 0)
    on, total = state.get("on", 0), state.get("hosts", 0)
    if version is None:
        return f"load balancer: every host an equal share of the users ({total} hosts)"
    return (
        f"load balancer: {percent:g} % of the users to {version} ({on} of {total} hosts run it),"
        f" {100 - percent:g} % to the others"
    )


def lb_main(
    words: list[str],
    socket_path: str | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``canarytui demo ctl lb [VERSION PERCENT]``: 0 done, 2 bad request, 1 no demo running."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    version: str | None = None
    percent = 0.0
    if len(words) == 2:
        version = words[0]
        try:
            percent = float(words[1].removesuffix("%"))
        except ValueError:
            print(f"percent must be a number from 0 to 100, got {words[1]!r}", file=err)
            return 2
    elif words:
        print("usage: canarytui demo ctl lb [VERSION PERCENT] [--socket PATH]", file=err)
        return 2
    try:
        reply = request_split(version, percent, socket_path)
    except ControlError as exc:
        print(str(exc), file=err)
        return exc.status
    print(lb_said(reply.get("lb") or {}), file=out)
    return 0
