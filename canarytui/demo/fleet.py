"""The embedded demo fleet: N real SSH servers on 127.0.0.1, one sandbox folder per host.

Each host is an asyncssh server on its own port with its own host key; it accepts one
generated client key and runs every command with ``/bin/sh -c`` in the host's sandbox, so
the engine deploys to it exactly as it would to a real server. A simulated app per host
(``app.py``) turns the release the host runs into metrics, health and logs.

    async with DemoFleet(hosts=12) as fleet:
        env = load_env(fleet.env_path)
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from canarytui.demo.app import STABLE_VERSION, SimulatedApp, init_sandbox, read_version
from canarytui.demo.control import FAULT_MODES, ControlError, ControlServer
from canarytui.demo.envfile import EnvHost, render_env

log = logging.getLogger(__name__)

MAX_HOSTS = 2000
ZONES = ("eu-1", "eu-2", "us-1")
SANE_PATH = "/usr/local/bin:/usr/bin:/bin"
FLAKY_DROP = 0.3  # share of connections and commands a flaky host drops
SLOW_DELAY = 2.0  # seconds every command waits on a slow host
_CHUNK = 65536
_ROOT_PREFIX = "canarytui-demo-"
_OWNER_FILE = "owner.pid"
# Cheapest algorithms asyncssh offers, since every handshake and packet costs the one
# process that runs the whole fleet: AES-GCM is one AEAD call per packet where
# chacha20-poly1305 is four (measured: ~15% of the fleet's CPU in a fan-out), and plain
# curve25519 skips the post-quantum ML-KEM share. The server's list decides, since the
# client's preference only orders what both support. OpenSSH clients accept all of these.
_KEX_ALGS = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256"]
_ENCRYPTION_ALGS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"]


def host_name(index: int, count: int) -> str:
    """``web-01`` ... ``web-12``; three digits from 100 hosts on, so names sort as numbers."""
    return f"web-{index:0{max(2, len(str(count)))}d}"


@dataclass(eq=False)
class _Host:
    """One demo host: its server, sandbox, app, fault state and what runs on it."""

    name: str
    roles: tuple[str, ...]
    zone: str
    sandbox: Path
    key: asyncssh.SSHKey
    app: SimulatedApp
    rng: random.Random
    port: int = 0
    fault: str = "up"
    listener: asyncssh.SSHAcceptor | None = None
    # While hung, a plain TCP listener holds the port: it accepts and never says a word.
    hang_server: asyncio.AbstractServer | None = None
    hang_transports: set[asyncio.BaseTransport] = field(default_factory=set)
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    processes: set[asyncio.subprocess.Process] = field(default_factory=set)
    # Set unless the host is hung; commands wait on it before they start.
    answering: asyncio.Event = field(default_factory=asyncio.Event)
    app_task: asyncio.Task[None] | None = None


class _HostServer(asyncssh.SSHServer):
    """Per-connection callbacks: keeps track of connections so faults can drop them."""

    def __init__(self, host: _Host) -> None:
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._host.connections.add(conn)
        if self._host.fault == "flaky" and self._host.rng.random() < FLAKY_DROP:
            # Dropped mid-handshake, as a lossy network would; aborting from inside this
            # callback would tear the connection down before asyncssh has set it up.
            asyncio.get_running_loop().call_soon(conn.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._host.connections.discard(self._conn)


class _Silent(asyncio.Protocol):
    """A hung host's listener: takes the connection, never answers, never reads."""

    def __init__(self, host: _Host) -> None:
        self._host = host
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._host.hang_transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._host.hang_transports.discard(self._transport)


class DemoFleet:
    """N demo hosts in this process, usable from any running asyncio loop.

    ``root``: where the fleet's files go (a fresh temp folder, removed on exit, if None).
    ``analysis_duration`` and ``interval`` go into the environment file; ``tick`` is how
    often each app updates its files; ``traffic`` multiplies the request rate (tests use
    it to gather statistics quickly); ``control`` starts the control channel that
    ``canarytui demo ctl`` talks to.
    """

    def __init__(
        self,
        hosts: int = 12,
        root: str | os.PathLike[str] | None = None,
        analysis_duration: float = 15.0,
        interval: float = 1.0,
        tick: float = 1.0,
        *,
        traffic: float = 1.0,
        seed: int = 7,
        control: bool = False,
    ) -> None:
        if not 1 <= hosts <= MAX_HOSTS:
            raise ValueError(f"hosts must be between 1 and {MAX_HOSTS}, got {hosts}")
        if tick <= 0 or interval <= 0 or analysis_duration <= 0 or traffic < 0:
            raise ValueError("tick, interval and analysis_duration must be positive")
        self._count = hosts
        self._given_root = Path(root).resolve() if root is not None else None
        self._analysis_duration = analysis_duration
        self._interval = interval
        self._tick = tick
        self._traffic = traffic
        self._seed = seed
        self._control_wanted = control
        self._control: ControlServer | None = None
        self._hosts: dict[str, _Host] = {}
        self._authorized: asyncssh.SSHAuthorizedKeys | None = None
        self._started = False
        self.root: Path = self._given_root or Path()
        self.env_path: Path = Path()
        self.known_hosts_path: Path = Path()
        self.client_key_path: Path = Path()
        self.startup_seconds = 0.0

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> DemoFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("this DemoFleet is already started")
        self._started = True
        began = time.perf_counter()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began

    async def _start(self) -> None:
        if self._given_root is None:
            self.root = Path(tempfile.mkdtemp(prefix=_ROOT_PREFIX))
            (self.root / _OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
        else:
            self.root = self._given_root
            self.root.mkdir(parents=True, exist_ok=True)
        _raise_fd_limit(self._count * 6 + 256)
        keys = self.root / "keys"
        keys.mkdir(exist_ok=True)
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="canarytui-demo")
        self.client_key_path = keys / "id_ed25519"
        client_key.write_private_key(self.client_key_path)
        os.chmod(self.client_key_path, 0o600)
        client_key.write_public_key(keys / "id_ed25519.pub")
        # The only key any host accepts, whatever the user name.
        self._authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

        def build(i: int) -> SimulatedApp:
            name = host_name(i, self._count)
            sandbox = self.root / "hosts" / name
            init_sandbox(sandbox)
            app = SimulatedApp(name, sandbox, seed=self._seed * 100_003 + i, traffic=self._traffic)
            app.start()
            return app

        # Creating ~10 files and folders per host took 0.3-3 s for 500 hosts on a journaled
        # disk; threads overlap that and keep this loop (perhaps the UI's) responsive.
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="demo-init") as pool:
            sweep = (
                loop.run_in_executor(pool, _sweep_stale_roots, self.root.parent)
                if self._given_root is None
                else None
            )
            apps = await asyncio.gather(
                *(loop.run_in_executor(pool, build, i) for i in range(1, self._count + 1))
            )
            if sweep is not None:
                await sweep
        for i, app in enumerate(apps, start=1):
            name, sandbox, seed = app.host, app.sandbox, self._seed * 100_003 + i
            host = _Host(
                name=name,
                roles=("api",) if i % 4 == 0 else ("web",),
                zone=ZONES[(i - 1) % len(ZONES)],
                sandbox=sandbox,
                key=asyncssh.generate_private_key("ssh-ed25519"),
                app=app,
                rng=random.Random(seed + 1),
            )
            host.answering.set()
            self._hosts[name] = host

        # All listeners at once: 500 hosts come up in well under a second this way.
        await asyncio.gather(*(self._listen(host) for host in self._hosts.values()))

        for index, host in enumerate(self._hosts.values()):
            host.app_task = asyncio.create_task(
                self._run_app(host, first_delay=self._tick * index / self._count),
                name=f"demo-app-{host.name}",
            )

        self.known_hosts_path = self.root / "known_hosts"
        self.known_hosts_path.write_text(
            "".join(
                f"[127.0.0.1]:{h.port} {h.key.export_public_key().decode().strip()}\n"
                for h in self._hosts.values()
            ),
            encoding="utf-8",
        )
        self.env_path = self.root / "demo.yaml"
        self.env_path.write_text(
            render_env(
                [EnvHost(h.name, h.port, h.roles, {"zone": h.zone}) for h in self._hosts.values()],
                identity_file=self.client_key_path,
                known_hosts=self.known_hosts_path,
                analysis_duration=self._analysis_duration,
                interval=self._interval,
                canary=next(iter(self._hosts)),
            ),
            encoding="utf-8",
        )
        if self._control_wanted:
            self._control = ControlServer(
                self.root,
                self._control_fault,
                {
                    "env": str(self.env_path),
                    "root": str(self.root),
                    "hosts": self.host_names,
                },
            )
            await self._control.start()

    async def stop(self) -> None:
        """Stop every server, connection, command and app; remove the root if it is ours."""
        # All that matters is done before the first await, so a stop that is itself
        # cancelled (an app shutting down) still leaves no listener or process behind.
        if self._control is not None:
            self._control.close()
            self._control = None
        tasks = [h.app_task for h in self._hosts.values() if h.app_task is not None]
        procs = [p for h in self._hosts.values() for p in h.processes]
        for host in self._hosts.values():
            if host.app_task is not None:
                host.app_task.cancel()
                host.app_task = None
            self._close_listeners(host)
            self._drop_connections(host)
            host.answering.set()  # let commands waiting on a hang see their channel close
        for proc in procs:
            _kill_group(proc)
        self._hosts.clear()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
            if procs:
                # Reaped here, so no zombie outlives the fleet.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.gather(*(p.wait() for p in procs), return_exceptions=True), 5.0
                    )
        finally:
            if self._given_root is None and self.root != Path() and self.root.exists():
                try:
                    # In a thread: removing 500 sandboxes takes about a second.
                    await asyncio.to_thread(shutil.rmtree, self.root, ignore_errors=True)
                except asyncio.CancelledError:
                    shutil.rmtree(self.root, ignore_errors=True)
                    raise

    # ------------------------------------------------------------------ queries

    @property
    def host_names(self) -> list[str]:
        return list(self._hosts)

    def port_of(self, name: str) -> int:
        return self._host(name).port

    def roles_of(self, name: str) -> tuple[str, ...]:
        return self._host(name).roles

    def fault_of(self, name: str) -> str:
        return self._host(name).fault

    def version_on(self, name: str) -> str | None:
        """The release the host's ``current`` points at, read from disk (None if none)."""
        return read_version(self._host(name).sandbox)

    def sandbox_of(self, name: str) -> Path:
        return self._host(name).sandbox

    @property
    def live_processes(self) -> int:
        """Commands running right now on all hosts (for tests: nothing may leak)."""
        return sum(len(h.processes) for h in self._hosts.values())

    def _host(self, name: str) -> _Host:
        try:
            return self._hosts[name]
        except KeyError:
            raise KeyError(f"no demo host {name!r}") from None

    # ------------------------------------------------------------------ faults

    async def set_fault(self, name: str, mode: str) -> str:
        """Put a host in ``down|hang|flaky|slow|up``; returns the mode it was in."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}: use one of {', '.join(FAULT_MODES)}")
        host = self._host(name)
        previous, host.fault = host.fault, mode
        if mode == "down":
            self._close_listeners(host)
            self._drop_connections(host)
        elif mode == "hang":
            host.answering.clear()
            if host.hang_server is None:
                self._close_listeners(host)
                # Same port, different listener: the TCP handshake completes, SSH never does.
                host.hang_server = await _bind_retrying(
                    lambda: asyncio.get_running_loop().create_server(
                        lambda: _Silent(host), "127.0.0.1", host.port
                    )
                )
        else:
            host.answering.set()
            if host.listener is None:
                self._close_listeners(host)
                await self._listen(host)
        log.info("demo host %s: %s (was %s)", name, mode, previous)
        return previous

    async def _control_fault(self, name: str, mode: str) -> str:
        if name not in self._hosts:
            raise ControlError(
                f"unknown host {name!r}: the demo fleet has {_name_range(self.host_names)}"
            )
        if mode not in FAULT_MODES:
            raise ControlError(f"unknown mode {mode!r}: use one of {', '.join(FAULT_MODES)}")
        return await self.set_fault(name, mode)

    # ------------------------------------------------------------------ servers

    async def _listen(self, host: _Host) -> None:
        """Start the host's SSH server: on a port of the OS's choice first, then the same one."""
        listener = await _bind_retrying(
            lambda: asyncssh.create_server(
                functools.partial(_HostServer, host),
                "127.0.0.1",
                host.port,
                server_host_keys=[host.key],
                authorized_client_keys=self._authorized,
                process_factory=functools.partial(self._run_command, host),
                encoding=None,
                line_editor=False,
                allow_scp=False,
                agent_forwarding=False,
                x11_forwarding=False,
                kex_algs=_KEX_ALGS,
                encryption_algs=_ENCRYPTION_ALGS,
            )
        )
        host.listener = listener
        host.port = listener.get_port()

    def _close_listeners(self, host: _Host) -> None:
        # Closing a listener frees the port at once; accepted connections are separate.
        if host.listener is not None:
            host.listener.close()
            host.listener = None
        if host.hang_server is not None:
            host.hang_server.close()
            host.hang_server = None
        for transport in list(host.hang_transports):
            transport.abort()  # type: ignore[attr-defined]
        host.hang_transports.clear()

    def _drop_connections(self, host: _Host) -> None:
        for conn in list(host.connections):
            conn.abort()
        host.connections.clear()

    # ------------------------------------------------------------------ commands

    async def _run_command(self, host: _Host, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """One SSH session: ``/bin/sh -c COMMAND`` in the sandbox, bridged to the channel."""
        closed = asyncio.ensure_future(process.wait_closed())
        try:
            if host.fault == "flaky" and host.rng.random() < FLAKY_DROP:
                conn = process.get_extra_info("connection")
                if conn is not None:
                    conn.abort()
                return
            # A hung host's commands wait here until the fault clears or the client gives up.
            if not host.answering.is_set():
                answering = asyncio.ensure_future(host.answering.wait())
                await asyncio.wait({closed, answering}, return_when=asyncio.FIRST_COMPLETED)
                answering.cancel()
            if host.fault == "slow" and not closed.done():
                await asyncio.wait({closed}, timeout=SLOW_DELAY)
            if closed.done():
                return
            # The command must see the app's files as of now, not as of the last flush.
            host.app.sync()
            await self._bridge(host, process, closed)
        finally:
            closed.cancel()

    async def _bridge(
        self, host: _Host, process: asyncssh.SSHServerProcess[bytes], closed: asyncio.Future[None]
    ) -> None:
        command = process.command
        argv = ["/bin/sh"] if command is None else ["/bin/sh", "-c", command]
        user = process.get_extra_info("username") or "demo"
        env = {
            "HOME": str(host.sandbox),
            "PATH": SANE_PATH,
            "DEMO_HOST": host.name,
            "USER": user,
            "LOGNAME": user,
            "SHELL": "/bin/sh",
            "LANG": "C.UTF-8",
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=host.sandbox,
                env=env,
                # Its own process group, so everything the command starts can be killed at
                # once, and Ctrl-C in the fleet's terminal does not reach it.
                start_new_session=True,
            )
        except OSError as exc:
            process.stderr.write(f"demo host {host.name}: cannot start shell: {exc}\n".encode())
            process.exit(127)
            return
        host.processes.add(proc)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        feeder = asyncio.create_task(_feed(process.stdin, proc.stdin))
        # Exit is reported only after all output went out, as sshd does.
        finished: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(
                _pump(proc.stdout, process.stdout),
                _pump(proc.stderr, process.stderr),
                proc.wait(),
            )
        )
        waiters: set[asyncio.Future[Any]] = {finished, closed}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Whichever way it ended (done, client closed the channel, connection dropped,
            # fleet stopping), nothing the command started may outlive it. Its group id is
            # not reused meanwhile: Linux hands out PIDs in sequence, not lowest-free.
            _kill_group(proc)
            feeder.cancel()
            if not finished.done():
                finished.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(proc.wait(), 5.0)
            host.processes.discard(proc)
        # Whatever the command changed (a new release, a restart request) takes effect
        # before its exit status goes out.
        with contextlib.suppress(OSError):
            host.app.poke()
        completed = finished.done() and not finished.cancelled() and finished.exception() is None
        if completed and not closed.done():
            code = proc.returncode if proc.returncode is not None else 255
            with contextlib.suppress(OSError, asyncssh.Error):
                if code < 0:
                    process.exit_with_signal(signal.Signals(-code).name.removeprefix("SIG"))
                else:
                    process.exit(code)

    # ------------------------------------------------------------------ apps

    async def _run_app(self, host: _Host, first_delay: float) -> None:
        # Staggered starts spread 500 apps' file writes over the tick instead of a burst.
        await asyncio.sleep(first_delay)
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self._tick)
            now = loop.time()
            try:
                host.app.tick(now - last)
            except OSError as exc:  # the sandbox is the user's to break; keep going
                log.warning("demo app on %s: %s", host.name, exc)
            last = now

    def describe(self) -> str:
        """A short human summary (what ``demo --serve`` prints after the env path)."""
        ports = [h.port for h in self._hosts.values()]
        names = _name_range(self.host_names)
        lines = [
            f"canarytui demo fleet: {len(ports)} hosts ({names}) on 127.0.0.1, "
            f"ports {min(ports)}-{max(ports)}, up in {self.startup_seconds:.2f} s",
            f"  every host runs {STABLE_VERSION}; releases to try: 1.1.0, 1.2.0 (good), "
            "1.3.0-bad (errors), 1.4.0-dead (health fails), 1.5.0-slow (p99 x3)",
            f"  deploy:  canarytui deploy {self.env_path} 1.1.0 --auto-promote",
            f"  faults:  canarytui demo ctl {self.host_names[-1]} down|hang|flaky|slow|up",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------------- helpers


async def _feed(source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter) -> None:
    """Client's stdin -> the command's stdin, closing it at the client's EOF."""
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    except (OSError, asyncssh.Error):
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()


async def _pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    """The command's stdout or stderr -> the channel, with back-pressure."""
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    except (OSError, asyncssh.Error):
        # The channel is gone: keep reading so the command never blocks on a full pipe
        # before it is killed.
        while await source.read(_CHUNK):
            pass


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _bind_retrying(bind: Any, attempts: int = 20) -> Any:
    """Bind, retrying briefly: right after a close the port may still be settling."""
    for attempt in range(attempts):
        try:
            return await bind()
        except OSError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


def _sweep_stale_roots(folder: Path) -> None:
    """Remove temp roots of demo fleets whose process died without cleaning up (kill -9).

    Only folders that name their owner in ``owner.pid`` and whose owner is gone.
    """
    for root in folder.glob(_ROOT_PREFIX + "*"):
        try:
            pid = int((root / _OWNER_FILE).read_text(encoding="utf-8"))
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(root, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not ours to judge: no owner file, or the owner is alive


def _raise_fd_limit(wanted: int) -> None:
    """Each host needs a listener, its connections, pipes and log writes: lift the soft limit."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _name_range(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
