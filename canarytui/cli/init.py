"""`init [--inventory FILE] [--hosts a,b] [-o FILE]`: a commented environment file to start from.

The file names the inventory (``hosts_from``, relative to where the file is written; printed,
by its whole path) or lists the given hosts, makes the first host the canary, and explains
every key; what it writes is read back by the environment file's own loader first, so
``canarytui check`` accepts it.
Without ``-o`` it goes to stdout. An existing file is never overwritten without ``--force``.

Exit status: 0 written; 2 a bad inventory (``INVENTORY:LINE: ...``), a bad host name, or the
output file exists (nothing written); 1 the file could not be written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import yaml

from canarytui.cli.args import EXIT_ERROR, EXIT_INVALID, EXIT_OK, UsageError
from canarytui.config import Host, parse_env
from canarytui.config.inventory import read_inventory
from canarytui.config.limits import escape, shown
from canarytui.config.model import NAME_RE

_PLAIN = re.compile(r"[A-Za-z0-9_./~-]+")
_COLUMN = 30  # where a key's comment starts, as in sample_envs/example-production.yaml


def init(args: argparse.Namespace) -> int:
    """Write (or print) the environment file; refuse to overwrite one."""
    output = Path(args.output) if args.output and args.output != "-" else None
    where = (output or Path("canarytui.yaml")).absolute().parent
    given = _given_hosts(args.hosts)
    found: tuple[Host, ...] = ()
    inventory = None
    if args.inventory:
        found = read_inventory(args.inventory)  # EnvFileError: its lines, exit 2
        # Printed, the file's place is not known: the inventory's whole path (relative to
        # here, it broke once the file was saved elsewhere).
        full = Path(args.inventory).absolute()
        inventory = _relative(full, where) if output is not None else str(full)
    name = output.stem if output is not None and NAME_RE.match(output.stem) else "production"
    text = render(name, inventory, found, given)
    # Read back as `check` reads it: a file that does not load is never written.
    env = parse_env(text, file=str(output or "<stdout>"), path=where / "canarytui.yaml")
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    code = _write(output, text, args.force)
    if code == EXIT_OK:
        print(f"wrote {output} ({len(env.hosts)} hosts); next: canarytui check {output}")
    return code


def _given_hosts(text: str | None) -> list[str]:
    if text is None:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("init: --hosts needs host names, comma-separated (web-01,web-02)")
    for n in names:
        if not NAME_RE.match(n):
            raise UsageError(
                f"init: --hosts: {shown(n)} is not a host name: use letters, digits, '.', '_' "
                "and '-' (at most 63 characters)"
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"init: --hosts: {', '.join(twice)} given twice")
    return names


def _relative(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive
        return str(path)


def _write(path: Path, text: str, force: bool) -> int:
    if path.is_dir():
        raise UsageError(f"init: {path} is a folder: give a file name (-o prod.yaml)")
    try:
        if not force:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return EXIT_OK
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except FileExistsError:
        raise UsageError(f"init: {path} exists; nothing written (--force overwrites it)") from None
    except FileNotFoundError:
        print(f"canarytui: init: cannot write {path}: no such folder", file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"canarytui: init: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def scalar(text: str) -> str:
    """A YAML scalar that reads back as this very string."""
    plain = _PLAIN.fullmatch(text) and yaml.safe_load(text) == text
    return text if plain else json.dumps(text)


def _line(key: str, comment: str) -> str:
    return f"{key.ljust(_COLUMN - 1)} # {comment}" if comment else key


def render(name: str, inventory: str | None, found: tuple[Host, ...], given: list[str]) -> str:
    """The environment file's text."""
    fleet = [h.name for h in found] + [n for n in given if n not in {h.name for h in found}]
    first = fleet[0] if fleet else "web-01"
    roles = list(dict.fromkeys(r for h in found for r in h.roles))
    out = [
        "# An environment file for canarytui: one fleet, one application, how to release it.",
        "# Check it (validated, every host reached, nothing deployed):  canarytui check FILE",
        "# Unknown keys are errors, so a typo never goes unnoticed. Lines starting with # are",
        "# comments: options shown with their defaults or an example. Every key, commented:",
        "# sample_envs/example-production.yaml in canarytui's source.",
        "",
        _line(f"name: {scalar(name)}", "environment name: it names the lock and the journal"),
        _line("app: myapp", "application name: {app} in the commands below"),
        "",
        _line("ssh:", "defaults for every host; else ~/.ssh/config's (User, Port, ...)"),
        _line("  # user: deploy", "else the inventory's ansible_user, ~/.ssh/config's or yours"),
        _line("  # port: 22", ""),
        _line("  # known_hosts: ~/.ssh/known_hosts", "host keys are ALWAYS verified: against this"),
        _line("", "file, else the files ssh reads (/etc/ssh/ssh_known_hosts too)"),
        _line("  connect_timeout: 10s", "durations: 500ms, 2s, 5m, 1h"),
        _line("  command_timeout: 120s", "a remote command longer than this: the host hangs"),
        _line("  max_parallel: 50", "hosts worked on at once"),
        "",
    ]
    out += _fleet(inventory, found, given, roles)
    out += [
        "",
        "deploy:",
        "  # Prints the version a host runs now; remembered as {previous} for a rollback.",
        "  current: cat ~/current/VERSION",
        "  releases: ls ~/releases                # optional: the versions a host can switch to",
        "  # Run in order on each host; a non-zero exit fails it. Placeholders {version}",
        "  # {previous} {host} {address} {app} {env} are shell-quoted: write them bare.",
        "  steps:",
        "    # Replace: get the release onto the host, e.g. fetch and unpack it:",
        "    #   curl -fsSL https://example.com/{app}-{version}.tgz | tar -xz -C ~/releases",
        "    - name: check",
        "      run: test -d ~/releases/{version}",
        "    - name: switch",
        "      run: ln -sfn ~/releases/{version} ~/current",
        "    - name: restart",
        "      run: sudo systemctl restart {app}",
        "  # rollback:                            # optional: else the steps with {previous}",
        "  # hooks: {before_host: lb-drain {host}, after_host: lb-enable {host}}",
        "",
        "health:",
        _line("  check: curl -fsS localhost:8080/health", "exit 0 = healthy: your service's check"),
        _line("  # metrics: curl -fsS localhost:8080/metrics", "Prometheus text: for rules"),
        _line("  interval: 2s", "how often watched hosts are probed"),
        _line("  timeout: 5s", "per probe"),
        "",
        _line("# logs: tail -n 50 -F /var/log/{app}.log", "streamed while a host is watched"),
        "",
        _line("canary:", "leave it out: no canary phase, straight to the waves"),
        _line(f"  hosts: [{scalar(first)}]", "the default canaries (the UI can change them); or"),
        _line("  # percent: 10", "a share of the fleet, at least one host; or"),
        _line(f"  # role: {scalar(roles[0]) if roles else 'canary'}", "the hosts with this role"),
        "  analysis:",
        _line("    duration: 5m", "how long the canaries are watched before the verdict"),
        _line("    max_failed_checks: 2", "failed health checks tolerated per canary"),
        _line("    baseline: 10", "other hosts watched alongside, to compare with"),
        "    # rules:                  # over health.metrics (canaries vs the baseline), e.g.",
        "    #   - name: error-ratio",
        "    #     metric: 'http_requests_total{code=~\"5..\"}'",
        "    #     per: http_requests_total",
        "    #     max: 0.05",
        "    #     max_vs_baseline: 1.25",
        "",
        "promote:",
        _line("  waves: [10%, 50%, 100%]", "cumulative shares of the rest (numbers = hosts)"),
        _line("  max_failures: 1", "failed hosts tolerated, then on_failure"),
        _line("  pause: manual", "between waves: manual (the UI waits for p) or 30s"),
        _line("  on_failure: rollback", "rollback | halt | ask"),
    ]
    return "\n".join(out) + "\n"


def _fleet(
    inventory: str | None, found: tuple[Host, ...], given: list[str], roles: list[str]
) -> list[str]:
    out: list[str] = []
    if inventory is not None:
        groups = escape(", ".join(roles[:8]) + (", ..." if len(roles) > 8 else "")) or "none"
        out += [
            "# The fleet from an Ansible inventory: groups (and their parents) become roles,",
            "# ansible_host / ansible_user / ansible_port the address, user and port, other",
            "# variables labels (never those named like a secret). Path: relative to this file.",
            _line(f"hosts_from: {scalar(inventory)}", f"{len(found)} hosts; groups: {groups}"),
        ]
        if not given:
            out += [
                "# hosts:                      # a host listed here wins over the inventory's",
                "#   - name: " + found[0].name,
                "#     address: " + scalar(found[0].address),
            ]
            return out
    names = given or ["web-01", "web-02"]
    out += [
        _line("hosts:", "a name also in the inventory: this entry wins" if inventory else ""),
    ]
    for i, n in enumerate(names):
        address = scalar(n) if given else f"192.0.2.{11 + i}"
        out += [f"  - name: {scalar(n)}", _line(f"    address: {address}", "" if i else _ADDRESS)]
    out += [
        _line("    # user: deploy", "optional, per host: user, port, roles, labels"),
        "    # port: 22",
        "    # roles: [web]",
        "    # labels: {zone: eu-1}",
    ]
    return out


_ADDRESS = "a DNS name, an IP address or a ~/.ssh/config alias"
