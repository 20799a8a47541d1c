"""A fleet of real OpenSSH servers on loopback, for integration tests and benchmarks.

``sshd_fleet`` (a function-scoped pytest fixture) is a factory: ``fleet = sshd_fleet(4)``
starts four "hosts" and returns a :class:`SshdFleet`; every fleet the test started is
stopped when the test ends. Outside pytest (benchmarks), ``with SshdFleet.start(200) as
fleet: ...`` does the same.

What a fleet is, on this machine:

- Host ``hNN`` (1-based) listens on its own loopback address ``127.(100+slot).0.(10+N)``
  (any 127.x.y.z binds on ``lo``), every host on the same free port. A *slot* is an
  exclusive ``flock`` taken per fleet, so pytest sessions and xdist workers running at the
  same time never share addresses, users or folders.
- Each host has its own Unix user (``ctfleetNN``, ``ctfleetNNsK`` in slot K; created once
  with ``useradd`` and reused, shell ``/bin/sh``, password field ``*`` so that key logins
  work with ``UsePAM no``) whose home is the host's sandbox, emptied and filled afresh for
  every fleet. An sshd ``Match LocalAddress`` block lets only that user in on that address,
  so a host reached with the wrong user refuses the login like a real server would.
- One ``sshd -D`` per 16 addresses (sshd's ``ListenAddress`` limit), each with its own
  ed25519 host key generated per fleet; ``known_hosts`` holds a line per host. One client
  key (``client_key``, mode 600) is authorised for every user.
- Each home holds a simulated app in plain POSIX sh whose health and metrics depend on the
  release it runs (``current/VERSION``): ``bin/app-health`` fails for a version containing
  ``dead``; ``bin/app-metrics`` prints Prometheus counters ``app_requests_total`` (100 a
  second since ``run/started``, written by the restart step) and
  ``app_requests_failed_total`` (1 % of them, 20 % for a version containing ``bad``), plus
  a latency summary tripled for ``slow``. Every host starts on ``1.0.0`` (``releases/1.0.0``
  and the ``current`` symlink). Health checks append lines to ``log/app.log``.

- With ``bastions=N`` (``sshd_fleet(3, bastions=2)``), the fleet is a private network:
  bastion ``bK`` is its own sshd on ``127.(100+slot).250.(10+K)`` with its own user
  (``ctbastK``, ``ctbastKsS`` in slot S), logging every login (``bastion_logins``). The
  app hosts, and every bastion but ``b1``, let their user in only from ``127.0.0.1``: the
  source of the connections a bastion's sshd forwards. A client whose connections come
  from another loopback address (``client_source``, e.g. ``BindAddress`` in its ssh
  config) is refused by them directly and reaches them only through ``b1`` (and ``b2``...
  behind it).

Needs root and ``/usr/sbin/sshd``: the fixture skips without them, except when the
environment variable ``CI`` is set, where it fails instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import pytest
import yaml

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
BASE_DIR = Path("/tmp/canarytui-sshd-fleet")  # must be traversable by the fleet's users
PRIVSEP_DIR = Path("/run/sshd")
ADDRESSES_PER_SSHD = 16  # sshd accepts at most 16 ListenAddress lines
MAX_HOSTS = 1000
MAX_BASTIONS = 9
BASTION_SOURCE = "127.0.0.1"  # where a bastion's forwarded connections come from
MAX_SLOTS = 64
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
INITIAL_VERSION = "1.0.0"
SHELL = "/bin/sh"
USER_COMMENT = "canarytui test fleet"

APP_HEALTH = r"""#!/bin/sh
# Health of the simulated app: 0 while a release is current and it is not a "dead" one.
case $0 in */*) cd "${0%/*}/.." ;; *) cd .. ;; esac || exit 1
if ! version=$(cat current/VERSION 2>/dev/null); then
    echo "unhealthy: no current release"
    exit 1
fi
case $version in
    *dead*)
        echo "$(date -u +%FT%TZ) ERROR GET /health 503 version=$version" >> log/app.log
        echo "unhealthy: $version"
        exit 1 ;;
esac
echo "$(date -u +%FT%TZ) INFO GET /health 200 version=$version" >> log/app.log
echo "ok $version"
"""

APP_METRICS = r"""#!/bin/sh
# Prometheus text metrics of the simulated app, growing with the time since the restart
# step wrote run/started: 100 requests a second, 1 % failed (20 % for a "bad" release).
case $0 in */*) cd "${0%/*}/.." ;; *) cd .. ;; esac || exit 1
if ! version=$(cat current/VERSION 2>/dev/null); then
    echo "no current release" >&2
    exit 1
fi
now_ms=$(date +%s%3N)
started=$(cat run/started 2>/dev/null) || started=${now_ms%???}
elapsed_ms=$((now_ms - started * 1000))
[ "$elapsed_ms" -ge 0 ] || elapsed_ms=0
requests=$((elapsed_ms / 10))
case $version in
    *bad*) failed=$((requests / 5)) ;;
    *) failed=$((requests / 100)) ;;
esac
case $version in
    *slow*) p50=0.060 p99=0.360 mean_ms=90 ;;
    *) p50=0.020 p99=0.120 mean_ms=30 ;;
esac
sum_ms=$((requests * mean_ms))
sum_frac=$((sum_ms % 1000 + 1000))
cat <<EOF
# HELP app_requests_total Requests served since the last restart.
# TYPE app_requests_total counter
app_requests_total $requests
# HELP app_requests_failed_total Requests that failed since the last restart.
# TYPE app_requests_failed_total counter
app_requests_failed_total $failed
# HELP app_request_duration_seconds Request latency.
# TYPE app_request_duration_seconds summary
app_request_duration_seconds{quantile="0.5"} $p50
app_request_duration_seconds{quantile="0.99"} $p99
app_request_duration_seconds_sum $((sum_ms / 1000)).${sum_frac#1}
app_request_duration_seconds_count $requests
# HELP app_info The release this host runs.
# TYPE app_info gauge
app_info{version="$version"} 1
EOF
"""


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class FleetHost:
    """One simulated server: its own address, Unix user and home folder (its sandbox)."""

    name: str
    address: str
    port: int
    user: str
    uid: int
    gid: int
    home: Path
    group: int  # index of the sshd serving this address


@dataclass
class _Sshd:
    """One sshd process serving up to 16 of the fleet's addresses."""

    index: int
    hosts: list[FleetHost]
    config: Path
    host_key: Path
    pid_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    down: set[str] = field(default_factory=set)  # names of hosts stopped with stop_host
    bastion: bool = False  # a jump host: logs its logins, forwards TCP (if ``forwarding``)
    allow_from: str | None = None  # its users may log in only from this address
    forwarding: bool = True
    host_cert: Path | None = None  # HostCertificate (see sign_host_keys)
    max_sessions: dict[str, int] = field(default_factory=dict)  # see limit_sessions
    max_startups: str = "500:30:1000"  # see limit_startups

    @property
    def listening(self) -> list[FleetHost]:
        return [h for h in self.hosts if h.name not in self.down]

    def log(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text or "(empty)"


class FleetUnavailable(Exception):
    """This machine cannot run a real sshd fleet (not root, sshd missing, ...)."""


class FleetFactory(Protocol):
    def __call__(self, hosts: int = 3, bastions: int = 0) -> SshdFleet: ...


# ----------------------------------------------------------------------------- fleet


class SshdFleet:
    """A running fleet; build one with :meth:`start`, stop it with :meth:`close`."""

    def __init__(
        self,
        slot: int,
        lock: TextIO,
        run_dir: Path,
        hosts: list[FleetHost],
        port: int,
        bastions: list[FleetHost] | None = None,
    ) -> None:
        self.slot = slot
        self.run_dir = run_dir
        self.hosts = hosts
        self.port = port
        self.bastions = bastions or []
        # Where a client outside the fleet's private network connects from (BindAddress).
        self.client_source = f"127.{100 + slot}.251.1"
        self.known_hosts = run_dir / "client" / "known_hosts"
        self.client_key = run_dir / "client" / "id_ed25519"
        self.authorized_keys = run_dir / "client" / "authorized_keys"
        self._lock = lock
        self._sshds: list[_Sshd] = []
        self._closed = False

    # -- life cycle ------------------------------------------------------------------

    @classmethod
    def start(cls, hosts: int = 3, bastions: int = 0) -> SshdFleet:
        """Start ``hosts`` servers (behind ``bastions`` jump hosts, if any); raises
        FleetUnavailable or RuntimeError on failure."""
        if not 1 <= hosts <= MAX_HOSTS:
            raise ValueError(f"a fleet has 1 to {MAX_HOSTS} hosts, not {hosts}")
        if not 0 <= bastions <= MAX_BASTIONS:
            raise ValueError(f"a fleet has 0 to {MAX_BASTIONS} bastions, not {bastions}")
        check_machine()
        slot, lock = _take_slot()
        try:
            slot_dir = BASE_DIR / f"slot{slot}"
            run_dir = slot_dir / "run"
            users = [_user_name(slot, i) for i in range(1, hosts + 1)]
            homes = [run_dir / "homes" / user for user in users]
            jump_users = [_bastion_user(slot, k) for k in range(1, bastions + 1)]
            jump_homes = [run_dir / "homes" / user for user in jump_users]
            with _file_lock(BASE_DIR / "users.lock"):
                accounts = [_ensure_user(u, h) for u, h in zip(users, homes, strict=True)]
                jump_accounts = [
                    _ensure_user(u, h) for u, h in zip(jump_users, jump_homes, strict=True)
                ]
            _kill_leftovers(run_dir, {a.pw_uid for a in accounts + jump_accounts})
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True, mode=0o755)
            addresses = [_address(slot, i) for i in range(1, hosts + 1)]
            jump_addresses = [_bastion_address(slot, k) for k in range(1, bastions + 1)]
            port = _free_port(addresses + jump_addresses)
            fleet_hosts = [
                FleetHost(
                    name=f"h{i:02d}",
                    address=addresses[i - 1],
                    port=port,
                    user=a.pw_name,
                    uid=a.pw_uid,
                    gid=a.pw_gid,
                    home=homes[i - 1],
                    group=(i - 1) // ADDRESSES_PER_SSHD,
                )
                for i, a in zip(range(1, hosts + 1), accounts, strict=True)
            ]
            groups = (hosts + ADDRESSES_PER_SSHD - 1) // ADDRESSES_PER_SSHD
            jump_hosts = [
                FleetHost(
                    name=f"b{k}",
                    address=jump_addresses[k - 1],
                    port=port,
                    user=a.pw_name,
                    uid=a.pw_uid,
                    gid=a.pw_gid,
                    home=jump_homes[k - 1],
                    group=groups + k - 1,  # each bastion is its own sshd, after the hosts'
                )
                for k, a in zip(range(1, bastions + 1), jump_accounts, strict=True)
            ]
            fleet = cls(slot, lock, run_dir, fleet_hosts, port, jump_hosts)
        except BaseException:
            lock.close()
            raise
        try:
            fleet._start()
        except BaseException:
            fleet.close()
            raise
        return fleet

    def _start(self) -> None:
        client_dir = self.run_dir / "client"
        sshd_dir = self.run_dir / "sshd"
        client_dir.mkdir(mode=0o755)
        sshd_dir.mkdir(mode=0o700)
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        for index in range(0, len(self.hosts), ADDRESSES_PER_SSHD):
            group = index // ADDRESSES_PER_SSHD
            self._sshds.append(
                _Sshd(
                    index=group,
                    hosts=self.hosts[index : index + ADDRESSES_PER_SSHD],
                    config=sshd_dir / f"sshd{group}.conf",
                    host_key=sshd_dir / f"sshd{group}_ed25519_key",
                    pid_file=sshd_dir / f"sshd{group}.pid",
                    log_file=sshd_dir / f"sshd{group}.log",
                    # Behind bastions: only what a bastion forwards (from 127.0.0.1) gets in.
                    allow_from=BASTION_SOURCE if self.bastions else None,
                )
            )
        for bastion in self.bastions:
            self._sshds.append(
                _Sshd(
                    index=bastion.group,
                    hosts=[bastion],
                    config=sshd_dir / f"sshd{bastion.group}.conf",
                    host_key=sshd_dir / f"sshd{bastion.group}_ed25519_key",
                    pid_file=sshd_dir / f"sshd{bastion.group}.pid",
                    log_file=sshd_dir / f"sshd{bastion.group}.log",
                    bastion=True,
                    allow_from=None if bastion.name == "b1" else BASTION_SOURCE,
                )
            )
            bastion.home.mkdir(parents=True, mode=0o755)
            os.chown(bastion.home, bastion.uid, bastion.gid)
        _generate_keys([self.client_key, *(s.host_key for s in self._sshds)])
        self.client_key.chmod(0o600)
        shutil.copyfile(self.client_key.with_suffix(".pub"), self.authorized_keys)
        self.authorized_keys.chmod(0o644)
        lines = []
        for sshd in self._sshds:
            key_type, key = sshd.host_key.with_suffix(".pub").read_text().split()[:2]
            lines += [f"[{h.address}]:{h.port} {key_type} {key}\n" for h in sshd.hosts]
        self.known_hosts.write_text("".join(lines))
        self.known_hosts.chmod(0o644)
        for host in self.hosts:
            _install_app(host)
        for sshd in self._sshds:
            self._launch(sshd)
        self._wait_listening(self._sshds)

    def close(self) -> None:
        """Kill every sshd and every process of the fleet's users; remove the run folder."""
        if self._closed:
            return
        self._closed = True
        try:
            processes = [s.process for s in self._sshds if s.process is not None]
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGSTOP)  # no new connections from here on
            _kill_tree({p.pid for p in processes}, {h.uid for h in self.hosts + self.bastions})
            for process in processes:
                process.wait(STOP_TIMEOUT)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        finally:
            self._lock.close()

    def __enter__(self) -> SshdFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- hosts ------------------------------------------------------------------------

    def host(self, name: str) -> FleetHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in this fleet ({', '.join(self.host_names)})")

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self.hosts]

    def version_on(self, name: str) -> str | None:
        """The version ``name`` runs, read from its home on disk (None: no current release)."""
        try:
            return (self.host(name).home / "current" / "VERSION").read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def set_version(self, name: str, version: str) -> None:
        """Put ``name`` on ``version`` directly on disk, as install + switch + restart would."""
        _install_release(self.host(name), version)

    def stop_host(self, name: str) -> None:
        """Take ``name`` down: its address refuses connections, its sessions are killed.

        The sshd serving it is restarted without its address, so the other hosts of that
        sshd (up to 15) refuse new connections for a few milliseconds; their open
        connections are not affected.
        """
        host = self.host(name)
        sshd = self._sshds[host.group]
        if name in sshd.down:
            return
        sshd.down.add(name)
        self._relaunch(sshd)
        _kill_tree(set(), {host.uid})

    def start_host(self, name: str) -> None:
        """Bring a host taken down by :meth:`stop_host` back (same address and host key)."""
        sshd = self._sshds[self.host(name).group]
        if name not in sshd.down:
            return
        sshd.down.discard(name)
        self._relaunch(sshd)

    def limit_sessions(self, name: str, sessions: int) -> None:
        """Let ``name`` allow only ``sessions`` sessions on one connection (sshd's
        ``MaxSessions``, as hardened hosts set it; 0: none). Its sshd is restarted, as by
        :meth:`stop_host`; open connections keep the limit they had."""
        sshd = self._sshds[self.host(name).group]
        sshd.max_sessions[name] = sessions
        self._relaunch(sshd)

    def limit_startups(self, name: str, spec: str = "10:30:100") -> None:
        """Give the sshd of host or bastion ``name`` sshd's ``MaxStartups`` ``spec`` (by
        default sshd's own: past 10 connections not yet logged in, it drops 30 % of new
        ones, and all past 100); it is restarted."""
        host = next((h for h in [*self.hosts, *self.bastions] if h.name == name), None)
        if host is None:
            raise KeyError(f"no host or bastion {name!r} in this fleet")
        sshd = self._sshds[host.group]
        sshd.max_startups = spec
        self._relaunch(sshd)

    # -- bastions and host certificates ----------------------------------------------

    def bastion(self, name: str) -> FleetHost:
        for host in self.bastions:
            if host.name == name:
                return host
        raise KeyError(f"no bastion {name!r} in this fleet")

    def bastion_logins(self, name: str) -> int:
        """How many SSH connections have logged in to bastion ``name`` (from its log)."""
        bastion = self.bastion(name)
        log = self._sshds[bastion.group].log()
        return log.count(f"Accepted publickey for {bastion.user} from ")

    def refuse_forwarding(self, name: str) -> None:
        """Make bastion ``name`` refuse to forward connections (``AllowTcpForwarding no``)."""
        sshd = self._sshds[self.bastion(name).group]
        sshd.forwarding = False
        self._relaunch(sshd)

    def sign_host_keys(self, ca_key: Path) -> None:
        """Sign every sshd's host key with the CA ``ca_key`` (principals: the addresses it
        serves) and restart the sshds presenting the certificates (``HostCertificate``)."""
        for sshd in self._sshds:
            principals = ",".join(h.address for h in sshd.hosts)
            out = subprocess.run(
                [
                    SSH_KEYGEN,
                    "-q",
                    "-s",
                    str(ca_key),
                    "-I",
                    f"canarytui-fleet-sshd{sshd.index}",
                    "-h",
                    "-n",
                    principals,
                    "-V",
                    "-5m:+1h",
                    str(sshd.host_key.with_suffix(".pub")),
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
            )
            if out.returncode != 0:
                raise RuntimeError(f"ssh-keygen -s for sshd{sshd.index}: {out.stderr}")
            sshd.host_cert = sshd.host_key.parent / f"{sshd.host_key.name}-cert.pub"
        for sshd in self._sshds:
            self._relaunch(sshd)

    # -- environment file ------------------------------------------------------------

    def env_dict(self) -> dict[str, Any]:
        """The environment file for this fleet, as a fresh dict (see DESIGN.md)."""
        return {
            "name": "sshd-test",
            "app": "shop",
            "ssh": {
                "identity_files": [str(self.client_key)],
                "known_hosts": str(self.known_hosts),
                "port": self.port,
                "connect_timeout": "3s",
                "command_timeout": "10s",
            },
            "hosts": [{"name": h.name, "address": h.address, "user": h.user} for h in self.hosts],
            "deploy": {
                "current": "cat current/VERSION 2>/dev/null || true",
                "steps": [
                    {
                        "name": "install",
                        "run": "mkdir -p releases/{version} && "
                        "printf '%s\\n' {version} > releases/{version}/VERSION",
                    },
                    {
                        "name": "switch",
                        "run": "ln -sfn releases/{version} current.new"
                        " && mv -Tf current.new current",
                    },
                    {"name": "restart", "run": "date +%s > run/started"},
                ],
            },
            "health": {
                "check": "sh bin/app-health",
                "metrics": "sh bin/app-metrics",
                "interval": "200ms",
                "timeout": "3s",
            },
            "logs": "tail -n 5 -F log/app.log",
            "canary": {
                "hosts": [self.hosts[0].name],
                "analysis": {
                    "duration": "2s",
                    "max_failed_checks": 1,
                    "baseline": 2,
                    "rules": [
                        {
                            "name": "error-ratio",
                            "metric": "app_requests_failed_total",
                            "per": "app_requests_total",
                            "max": 0.05,
                        }
                    ],
                },
            },
            "promote": {
                "waves": [1, "100%"],
                "max_failures": 0,
                "pause": "manual",
                "on_failure": "rollback",
            },
        }

    def write_env(
        self,
        path: str | os.PathLike[str] | None = None,
        edit: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        **overrides: Any,
    ) -> Path:
        """Write the environment file (default ``RUN_DIR/env.yaml``) and return its path.

        ``overrides`` replace top-level sections (``promote={...}``); a value of None
        removes the section. ``edit`` then gets the whole dict to change in place (or to
        return a replacement), e.g. ``edit=lambda d: d["canary"].update(hosts=["h02"])``.
        """
        doc = self.env_dict()
        for key, value in overrides.items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
        if edit is not None:
            doc = edit(doc) or doc
        target = Path(path) if path is not None else self.run_dir / "env.yaml"
        target.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
        return target

    def set_banner(self, name: str, banner: bytes | None) -> None:
        """Make the host's session start-up print ``banner`` on stdout before every command
        (as a login banner, an rc file or a conda init do), or stop it (None).

        sshd runs ``~/.ssh/rc`` before each session's command; its output goes to the client.
        """
        host = self.host(name)
        ssh_dir = host.home / ".ssh"
        ssh_dir.mkdir(mode=0o755, exist_ok=True)
        rc = ssh_dir / "rc"
        if banner is None:
            rc.unlink(missing_ok=True)
            return
        (host.home / ".banner").write_bytes(banner)
        rc.write_text("cat ~/.banner\n")
        for path in (ssh_dir, rc, host.home / ".banner"):
            os.chown(path, host.uid, host.gid)

    def commands_running(self, name: str) -> list[str]:
        """The command lines of the host user's processes now (sshd's own excluded)."""
        uid = self.host(name).uid
        out = []
        for proc in _processes().values():
            if proc.uid != uid or proc.zombie:
                continue
            try:
                raw = Path("/proc", str(proc.pid), "cmdline").read_bytes()
            except OSError:
                continue
            line = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            if line and not line.startswith("sshd"):
                out.append(line)
        return out

    async def until_running(self, name: str, command: str, timeout: float = 5.0) -> None:
        """Await a process whose whole command line is ``command`` among the host user's
        (the shell running a script that holds it does not count: it only will run it)."""
        deadline = time.monotonic() + timeout
        while command not in self.commands_running(name):
            if time.monotonic() > deadline:
                raise AssertionError(f"{command!r} not running on {name} within {timeout}s")
            await asyncio.sleep(0.05)

    # -- diagnostics -------------------------------------------------------------------

    def sshd_logs(self) -> str:
        return "\n".join(f"--- sshd{s.index} ({s.log_file}):\n{s.log()}" for s in self._sshds)

    def pids(self) -> list[int]:
        """The pids of the running sshd listeners."""
        return [s.process.pid for s in self._sshds if s.process and s.process.poll() is None]

    def connections_left(self) -> int:
        """The listeners' children still there: connections whose sshd has not yet
        exited (a run's teardown goes on after its client has closed)."""
        listeners = set(self.pids())
        return sum(1 for p in _processes().values() if p.ppid in listeners and not p.zombie)

    # -- internals ---------------------------------------------------------------------

    def _launch(self, sshd: _Sshd) -> None:
        hosts = sshd.listening
        if not hosts:
            return
        sshd.config.write_text(_sshd_config(sshd, hosts, self.authorized_keys))
        sshd.process = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(sshd.config), "-E", str(sshd.log_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _relaunch(self, sshd: _Sshd) -> None:
        if sshd.process is not None:
            sshd.process.kill()  # the listener only: open connections live on
            sshd.process.wait(STOP_TIMEOUT)
            sshd.process = None
        self._launch(sshd)
        self._wait_listening([sshd])

    def _wait_listening(self, sshds: list[_Sshd]) -> None:
        pending = {(h.address, h.port): s for s in sshds for h in s.listening}
        deadline = time.monotonic() + START_TIMEOUT
        while pending:
            listening = _listening_sockets()
            for endpoint in [e for e in pending if _accepts(e, listening)]:
                del pending[endpoint]
            for sshd in {id(s): s for s in pending.values()}.values():
                code = sshd.process.poll() if sshd.process else None
                if code is not None:
                    raise RuntimeError(
                        f"sshd{sshd.index} exited with status {code} while starting;"
                        f" its log:\n{sshd.log()}"
                    )
            if not pending:
                break
            if time.monotonic() > deadline:
                missing = ", ".join(f"{a}:{p}" for a, p in pending)
                raise RuntimeError(
                    f"sshd not listening on {missing} after {START_TIMEOUT:g}s;"
                    f" logs:\n{self.sshd_logs()}"
                )
            time.sleep(0.005)


# ------------------------------------------------------------------------ the fixture


def check_machine(sshd: Path = SSHD, euid: int | None = None) -> None:
    """Raise FleetUnavailable when this machine cannot run the fleet."""
    if not sys.platform.startswith("linux"):
        raise FleetUnavailable("the sshd fleet needs Linux (loopback 127.x.y.z addresses)")
    if not (sshd.is_file() and os.access(sshd, os.X_OK)):
        raise FleetUnavailable(f"{sshd} is missing: apt-get install -y openssh-server")
    if (os.geteuid() if euid is None else euid) != 0:
        raise FleetUnavailable("the sshd fleet needs root (it runs sshd and creates users)")
    for tool in (SSH_KEYGEN, "useradd", "usermod"):
        if shutil.which(tool) is None:
            raise FleetUnavailable(f"{tool} is missing (openssh-client, passwd)")


def require_fleet(sshd: Path = SSHD, euid: int | None = None) -> None:
    """Skip the test when the fleet cannot run here; fail instead when CI is set."""
    try:
        check_machine(sshd, euid)
    except FleetUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so sshd tests must run: {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
def sshd_fleet() -> Iterator[FleetFactory]:
    """Factory of real OpenSSH fleets: ``fleet = sshd_fleet(4)``; all stopped after the test.

    Mark tests using it ``@pytest.mark.sshd``.
    """
    require_fleet()
    fleets: list[SshdFleet] = []

    def start(hosts: int = 3, bastions: int = 0) -> SshdFleet:
        fleet = SshdFleet.start(hosts, bastions)
        fleets.append(fleet)
        return fleet

    yield start
    errors: list[BaseException] = []
    for fleet in reversed(fleets):
        try:
            fleet.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


# -------------------------------------------------------------------------- helpers


def _user_name(slot: int, index: int) -> str:
    return f"ctfleet{index:02d}" if slot == 0 else f"ctfleet{index:02d}s{slot}"


def _address(slot: int, index: int) -> str:
    return f"127.{100 + slot}.{index // 200}.{10 + index % 200}"


def _bastion_user(slot: int, index: int) -> str:
    return f"ctbast{index}" if slot == 0 else f"ctbast{index}s{slot}"


def _bastion_address(slot: int, index: int) -> str:
    return f"127.{100 + slot}.250.{10 + index}"


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = 30.0) -> Iterator[None]:
    _make_base_dir()
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} stayed locked for {timeout:g}s") from None
                time.sleep(0.01)
        yield


def _make_base_dir() -> None:
    BASE_DIR.mkdir(mode=0o755, exist_ok=True)
    info = BASE_DIR.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise RuntimeError(f"{BASE_DIR} exists but is not a folder owned by root")
    BASE_DIR.chmod(0o755)


def _take_slot() -> tuple[int, TextIO]:
    """An exclusive slot for this fleet: its own addresses, users and folder."""
    _make_base_dir()
    for slot in range(MAX_SLOTS):
        handle = (BASE_DIR / f"slot{slot}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return slot, handle
    raise RuntimeError(f"all {MAX_SLOTS} sshd fleet slots are in use")


def _ensure_user(name: str, home: Path) -> pwd.struct_passwd:
    """The fleet user ``name`` with ``home`` and /bin/sh, unlocked for key logins only."""
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--no-create-home",
                "--no-user-group",
                "--no-log-init",
                "--home-dir",
                str(home),
                "--shell",
                SHELL,
                "--password",
                "*",
                "--comment",
                USER_COMMENT,
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return pwd.getpwnam(name)
    if account.pw_gecos != USER_COMMENT:
        raise RuntimeError(f"user {name} exists and is not a canarytui test fleet user")
    if account.pw_dir != str(home) or account.pw_shell != SHELL or _locked(name):
        subprocess.run(
            ["usermod", "--home", str(home), "--shell", SHELL, "--password", "*", name],
            check=True,
            capture_output=True,
            text=True,
        )
        account = pwd.getpwnam(name)
    return account


def _locked(name: str) -> bool:
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split(":")
        if fields[0] == name:
            return len(fields) < 2 or fields[1].startswith("!")
    return False


def _free_port(addresses: list[str]) -> int:
    """A port (below the ephemeral range) that every address can bind right now."""
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20000, 30000)
        if all(_can_bind(address, port) for address in addresses):
            return port
    raise RuntimeError("no port free on every fleet address")


def _can_bind(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _generate_keys(paths: list[Path]) -> None:
    procs = [
        subprocess.Popen(
            [
                SSH_KEYGEN,
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"canarytui-fleet-{p.stem}",
                "-f",
                str(p),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for p in paths
    ]
    for path, proc in zip(paths, procs, strict=True):
        out, _ = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"ssh-keygen for {path} failed: {out.decode(errors='replace')}")


def _sshd_config(sshd: _Sshd, hosts: list[FleetHost], authorized_keys: Path) -> str:
    lines = [
        f"# canarytui test fleet, sshd{sshd.index}",
        f"Port {hosts[0].port}",
        *(f"ListenAddress {h.address}" for h in hosts),
        f"HostKey {sshd.host_key}",
        f"PidFile {sshd.pid_file}",
        f"AuthorizedKeysFile {authorized_keys}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin no",
        f"MaxStartups {sshd.max_startups}",
        "MaxSessions 100",
        "LogLevel INFO" if sshd.bastion else "LogLevel ERROR",  # a bastion logs its logins
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "Subsystem sftp internal-sftp",
    ]
    if sshd.host_cert is not None:
        lines.append(f"HostCertificate {sshd.host_cert}")
    if sshd.bastion:
        lines.append(f"AllowTcpForwarding {'yes' if sshd.forwarding else 'no'}")
    # Each address is its own server: only that host's user may log in there.
    source = f"@{sshd.allow_from}" if sshd.allow_from else ""
    for h in hosts:
        lines += [f"Match LocalAddress {h.address}", f"    AllowUsers {h.user}{source}"]
        if h.name in sshd.max_sessions:
            lines.append(f"    MaxSessions {sshd.max_sessions[h.name]}")
    return "\n".join(lines) + "\n"


def _install_app(host: FleetHost) -> None:
    home = host.home
    for sub in ("bin", "releases", "run", "log"):
        (home / sub).mkdir(parents=True, mode=0o755)
    (home / "bin" / "app-health").write_text(APP_HEALTH)
    (home / "bin" / "app-metrics").write_text(APP_METRICS)
    for script in ("app-health", "app-metrics"):
        (home / "bin" / script).chmod(0o755)
    (home / "log" / "app.log").write_text(
        "".join(
            f"{_timestamp()} INFO boot step {i}/3 version={INITIAL_VERSION}\n" for i in range(1, 4)
        )
    )
    _install_release(host, INITIAL_VERSION, started=int(time.time()) - 60)
    _chown_tree(home, host.uid, host.gid)


def _install_release(host: FleetHost, version: str, started: int | None = None) -> None:
    home = host.home
    release = home / "releases" / version
    release.mkdir(parents=True, exist_ok=True)
    (release / "VERSION").write_text(version + "\n")
    tmp = home / "current.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("releases") / version)
    tmp.replace(home / "current")
    (home / "run" / "started").write_text(f"{started or int(time.time())}\n")
    with (home / "log" / "app.log").open("a") as log:
        log.write(f"{_timestamp()} INFO started version={version}\n")
    for path in (release, release / "VERSION", home / "current", home / "run" / "started"):
        os.chown(path, host.uid, host.gid, follow_symlinks=False)


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


# --------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Proc:
    pid: int
    ppid: int
    uid: int
    zombie: bool


def _processes() -> dict[int, _Proc]:
    table: dict[int, _Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path("/proc", entry, "status").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        try:
            table[int(entry)] = _Proc(
                pid=int(entry),
                ppid=int(fields["PPid"]),
                uid=int(fields["Uid"].split()[0]),
                zombie=fields["State"].strip().startswith("Z"),
            )
        except (KeyError, ValueError, IndexError):
            continue
    return table


def _kill_tree(roots: set[int], uids: set[int]) -> None:
    """SIGKILL ``roots``, their descendants and every process of ``uids``, by pid, until
    none is left (bounded)."""
    known = set(roots)
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        table = _processes()
        children: dict[int, list[int]] = {}
        for proc in table.values():
            children.setdefault(proc.ppid, []).append(proc.pid)
        todo = [pid for pid in known if pid in table]
        todo += [p.pid for p in table.values() if p.uid in uids]
        found: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo += children.get(pid, [])
        known |= found
        alive = [pid for pid in found if not table[pid].zombie]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"fleet processes still alive after {STOP_TIMEOUT:g}s: {alive}")
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _kill_leftovers(run_dir: Path, uids: set[int]) -> None:
    """Stop what a crashed earlier fleet of this slot left running (sshd and sessions)."""
    roots = set()
    for pid_file in (run_dir / "sshd").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path("/proc", str(pid), "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if str(run_dir).encode() in cmdline:
            roots.add(pid)
    _kill_tree(roots, uids)


def _listening_sockets() -> set[tuple[str, int]] | None:
    """The IPv4 TCP sockets in LISTEN state, from /proc (None where it is unreadable)."""
    try:
        text = Path("/proc/net/tcp").read_text()
    except OSError:
        return None
    out = set()
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 3 and parts[3] == "0A":
            address, port = parts[1].split(":")
            raw = int(address, 16).to_bytes(4, sys.byteorder)
            out.add((socket.inet_ntoa(raw), int(port, 16)))
    return out


def _accepts(endpoint: tuple[str, int], listening: set[tuple[str, int]] | None) -> bool:
    if listening is not None:
        return endpoint in listening
    try:
        with socket.create_connection(endpoint, timeout=0.5):
            return True
    except OSError:
        return False
