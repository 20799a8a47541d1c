"""The embedded demo fleet: N real SSH servers on 127.0.0.1, one sandbox folder per host.

Each host is an asyncssh server on its own port with its own host key; it accepts one
generated client key and runs every command with ``/bin/sh -c`` in the host's sandbox, so
the engine deploys to it exactly as it would to a real server. A simulated app per host
(``app.py``) turns the release the host runs into metrics, health and logs. This module
starts and stops the fleet, puts hosts in faults and answers queries; a host's listener is
in ``hosts``, what its sessions run in ``commands``.

    async with DemoFleet(hosts=12) as fleet:
        env = load_env(fleet.env_path)
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncssh

from canarytui.demo.app import STABLE_VERSION, SimulatedApp, init_sandbox, read_version
from canarytui.demo.commands import run_command
from canarytui.demo.control import FAULT_MODES, ControlError, ControlServer
from canarytui.demo.envfile import EnvHost, render_env
from canarytui.demo.hosts import DemoHost
from canarytui.demo.limits import (
    DemoFleetRefused,
    fleet_parent,
    fleet_parents,
    open_files_shortage,
)
from canarytui.demo.spawn import kill_group
from canarytui.demo.traffic import Balancer

log = logging.getLogger(__name__)

MAX_HOSTS = 2000
ZONES = ("eu-1", "eu-2", "us-1")
_ROOT_PREFIX = "canarytui-demo-"
_OWNER_FILE = "owner.pid"


def host_name(index: int, count: int) -> str:
    """``web-01`` ... ``web-12``; three digits from 100 hosts on, so names sort as numbers."""
    return f"web-{index:0{max(2, len(str(count)))}d}"


class DemoFleet:
    """N demo hosts in this process, usable from any running asyncio loop.

    ``root``: where the fleet's files go (if None, a fresh folder removed on exit: in
    memory when there is room, ``limits.fleet_parent``, else in the temp folder).
    ``analysis_duration`` and ``interval`` go into the environment file (a short analysis
    gets no warmup and an optional statistical rule: see ``envfile``); ``tick`` is how
    often each app updates its files; ``traffic`` multiplies the request rate (tests use
    it to gather statistics quickly); ``control`` records the control channel where
    ``canarytui demo ctl`` finds it (the environment file's traffic hooks name its socket,
    so they reach this fleet's load balancer, ``balancer``, either way); ``client``: a
    client connects to every host from this same process (the UI's demo), so the fleet
    makes room for its connections too, or refuses to start.
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
        client: bool = False,
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
        self._client = client
        self._control: ControlServer | None = None
        self._hosts: dict[str, DemoHost] = {}
        self.balancer = Balancer(lambda: (h.app.version for h in self._hosts.values()))
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
        # Before anything is made: past its open files, a fleet fails host by host under load.
        refusal = open_files_shortage(self._count, self._client)
        if refusal is not None:
            raise DemoFleetRefused(refusal)
        if self._given_root is None:
            self.root = _new_root(fleet_parent(self._count))
            (self.root / _OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
        else:
            self.root = self._given_root
            self.root.mkdir(parents=True, exist_ok=True)
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
                loop.run_in_executor(pool, _sweep_stale_roots, *fleet_parents())
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
            host = DemoHost(
                name=name,
                roles=("api",) if i % 4 == 0 else ("web",),
                zone=ZONES[(i - 1) % len(ZONES)],
                sandbox=sandbox,
                key=asyncssh.generate_private_key("ssh-ed25519"),
                app=app,
                rng=random.Random(seed + 1),
            )
            host.answering.set()
            app.balancer = self.balancer
            self._hosts[name] = host

        # All listeners at once: 500 hosts come up in well under a second this way.
        await asyncio.gather(
            *(host.listen(self._authorized, run_command) for host in self._hosts.values())
        )

        for index, host in enumerate(self._hosts.values()):
            host.app_task = asyncio.create_task(
                host.run_app(self._tick, first_delay=self._tick * index / self._count),
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
        self._control = ControlServer(
            self.root,
            self._control_fault,
            {"env": str(self.root / "demo.yaml"), "root": str(self.root), "hosts": self.host_names},
            self._control_split,
            pointer=self._control_wanted,
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
                python=sys.executable,
                control_socket=self._control.socket_path,
            ),
            encoding="utf-8",
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
            host.close_listeners()
            host.drop_connections()
            host.answering.set()  # let commands waiting on a hang see their channel close
        for proc in procs:
            kill_group(proc)
        self._hosts.clear()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
            if procs:
                # Reaped here, so no zombie outlives the fleet.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await asyncio.gather(*(p.wait() for p in procs), return_exceptions=True)
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

    @property
    def commands_received(self) -> int:
        """SSH sessions (commands) every host has received so far (for tests)."""
        return sum(h.commands for h in self._hosts.values())

    @property
    def connections_received(self) -> int:
        """SSH connections every host has accepted so far."""
        return sum(h.connects for h in self._hosts.values())

    def _host(self, name: str) -> DemoHost:
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
            host.close_listeners()
            host.drop_connections()
        elif mode == "hang":
            host.answering.clear()
            if host.hang_server is None:
                await host.go_silent()
        else:
            host.answering.set()
            if host.listener is None:
                host.close_listeners()
                await host.listen(self._authorized, run_command)
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

    def _control_split(self, version: str | None, percent: float) -> dict[str, Any]:
        if version is not None:
            previous = self.balancer.set(version, percent)
            log.info("demo load balancer: %s (was %s)", self.balancer.split, previous)
        split = self.balancer.split
        on, total = self.balancer.counts()
        return {"version": split.version, "percent": split.percent, "on": on, "hosts": total}

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
            "  load balancer: canarytui demo ctl lb [VERSION PERCENT] (the traffic hooks move it)",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------------- helpers


def _new_root(parent: str | None) -> Path:
    """A fresh folder for a fleet in ``parent`` (None: the temp folder); in the temp folder
    after all if ``parent`` will not take one (read-only, gone since it was chosen)."""
    if parent is not None:
        try:
            return Path(tempfile.mkdtemp(prefix=_ROOT_PREFIX, dir=parent))
        except OSError as exc:
            log.warning(
                "demo fleet: cannot make its folder in %s (%s): in the temp folder", parent, exc
            )
    return Path(tempfile.mkdtemp(prefix=_ROOT_PREFIX))


def _sweep_stale_roots(*folders: str | Path) -> None:
    """Remove the roots of demo fleets whose process died without cleaning up (kill -9)
    from ``folders``: in memory, one would hold its memory until the machine restarts.

    Only folders that name their owner in ``owner.pid`` and whose owner is gone.
    """
    for root in (r for folder in folders for r in Path(folder).glob(_ROOT_PREFIX + "*")):
        try:
            pid = int((root / _OWNER_FILE).read_text(encoding="utf-8"))
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(root, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not ours to judge: no owner file, or the owner is alive


def _name_range(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
