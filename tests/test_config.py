"""Environment files: every key parsed, every user mistake one clear line, exit 2."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from canarytui.cli import main
from canarytui.config import (
    PLACEHOLDERS,
    EnvFileError,
    VersionError,
    WaveSpec,
    load_env,
    parse_duration,
    parse_env,
    render,
)

REPO = Path(__file__).resolve().parent.parent

GOOD = textwrap.dedent("""\
    name: production
    app: shop
    ssh:
      user: deploy
      port: 22
      known_hosts: known_hosts
      connect_timeout: 10s
      command_timeout: 2m
      max_parallel: 20
    hosts:
      - name: web-01
        address: 127.0.0.11
      - name: web-02
        address: 127.0.0.12
        user: other
        port: 2222
        roles: [web, api]
        labels: {zone: eu-1}
      - name: web-03
        address: 127.0.0.13
    deploy:
      current: cat ~/current/VERSION
      steps:
        - name: install
          run: fetch-release {version}
        - name: switch
          run: ln -sfn ~/releases/{version} ~/current
      rollback:
        - name: switch
          run: ln -sfn ~/releases/{previous} ~/current
      hooks:
        before_host: lb-drain {host}
        after_host: lb-enable {host}
    health:
      check: curl -fsS localhost:8080/health
      metrics: curl -fsS localhost:8080/metrics
      interval: 500ms
      timeout: 5s
    logs: tail -n 50 -F /var/log/shop.log
    canary:
      hosts: [web-01]
      analysis:
        duration: 5m
        max_failed_checks: 2
        baseline: 10
        rules:
          - name: error-ratio
            metric: app_requests_failed_total
            per: app_requests_total
            max: 0.05
            max_vs_baseline: 2.0
    promote:
      waves: [10%, 50%, 100%]
      max_failures: 1
      pause: manual
      on_failure: rollback
    """)


def problems(text: str) -> list[str]:
    with pytest.raises(EnvFileError) as exc:
        parse_env(text, file="prod.yaml")
    return exc.value.problems


def test_every_key_parsed() -> None:
    env = parse_env(GOOD, file="prod.yaml")
    assert env.name == "production" and env.app == "shop"
    assert env.ssh.user == "deploy" and env.ssh.command_timeout == 120.0
    assert env.ssh.max_parallel == 20 and env.ssh.connect_timeout == 10.0
    web2 = env.host("web-02")
    assert (web2.user, web2.port, web2.roles, dict(web2.labels)) == (
        "other",
        2222,
        ("web", "api"),
        {"zone": "eu-1"},
    )
    assert env.host("web-01").user == "deploy" and env.host("web-01").port == 22
    assert [s.name for s in env.deploy.steps] == ["install", "switch"]
    assert env.deploy.rollback is not None and env.deploy.rollback[0].run.endswith("~/current")
    assert env.deploy.hooks.before_host == "lb-drain {host}"
    assert env.health.interval == 0.5 and env.health.metrics
    assert env.logs and env.canary.hosts == ("web-01",)
    assert env.canary.analysis.duration == 300 and env.canary.analysis.baseline == 10
    rule = env.canary.analysis.rules[0]
    assert (rule.metric, rule.per, rule.max, rule.max_vs_baseline) == (
        "app_requests_failed_total",
        "app_requests_total",
        0.05,
        2.0,
    )
    assert env.promote.waves == (WaveSpec(10, True), WaveSpec(50, True), WaveSpec(100, True))
    assert env.promote.pause is None and env.promote.max_failures == 1
    assert env.promote.on_failure == "rollback"


@pytest.mark.parametrize("address", ["fd00::13", "::1", "fe80::1%eth0", "web-03.internal"])
def test_an_ip_v6_address_or_a_name_is_an_address(address: str) -> None:
    """The colons of an IPv6 address are not a port (only ``[v6]:port`` is)."""
    env = parse_env(GOOD.replace("address: 127.0.0.13", f"address: '{address}'"), file="prod.yaml")
    assert env.hosts[2].address == address


def test_sample_environment_loads() -> None:
    env = load_env(REPO / "sample_envs" / "example-production.yaml")
    assert len(env.hosts) == 4 and env.canary.analysis.rules[1].quantile == 0.99


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # broken YAML
        (
            lambda t: t.replace("  user: deploy\n", "  user: [deploy\n", 1),
            "prod.yaml:5: (yaml): ",
        ),
        # unknown key
        (
            lambda t: t.replace("  max_parallel: 20", "  max_paralel: 20"),
            "prod.yaml:9: ssh.max_paralel: unknown key",
        ),
        # missing required key
        (
            lambda t: t.replace("    address: 127.0.0.13\n", ""),
            "prod.yaml:19: hosts[2].address: required",
        ),
        # wrong type
        (
            lambda t: t.replace("port: 2222", "port: twenty"),
            "prod.yaml:16: hosts[1].port: expected a whole number",
        ),
        (
            lambda t: t.replace("roles: [web, api]", "roles: web"),
            "prod.yaml:17: hosts[1].roles: expected a list",
        ),
        # bad duration
        (
            lambda t: t.replace("interval: 500ms", "interval: 5 parsecs"),
            "prod.yaml:37: health.interval: bad duration '5 parsecs'",
        ),
        (
            lambda t: t.replace("duration: 5m", "duration: 5"),
            "prod.yaml:43: canary.analysis.duration: bad duration '5'",
        ),
        # duplicate host name
        (
            lambda t: t.replace("name: web-03", "name: web-01"),
            "prod.yaml:19: hosts[2].name: duplicate host name 'web-01' (first at hosts[0])",
        ),
        # one machine under two names: it would be deployed twice at once
        (
            lambda t: t.replace("address: 127.0.0.13", "address: 127.0.0.11"),
            "prod.yaml:20: hosts[2].address: 'web-03' is 127.0.0.11:22 as deploy, as "
            "'web-01' is: one machine listed twice would be deployed twice at once "
            "(list it once)",
        ),
        # an address with more than the host in it: a port, a user, a scheme, a space
        (
            lambda t: t.replace("address: 127.0.0.13", "address: '127.0.0.13:2222'"),
            "prod.yaml:20: hosts[2].address: '127.0.0.13:2222' holds a port: write address: "
            "'127.0.0.13' and port: 2222",
        ),
        (
            lambda t: t.replace("address: 127.0.0.13", "address: '[fd00::13]:22'"),
            "prod.yaml:20: hosts[2].address: '[fd00::13]:22' holds a port: write address: "
            "'fd00::13' and port: 22",
        ),
        (
            lambda t: t.replace("address: 127.0.0.13", "address: ops@web-03.internal"),
            "prod.yaml:20: hosts[2].address: 'ops@web-03.internal' holds a user: write "
            "address: 'web-03.internal' and user: 'ops'",
        ),
        (
            lambda t: t.replace("address: 127.0.0.13", "address: ssh://web-03"),
            "prod.yaml:20: hosts[2].address: 'ssh://web-03' is a URL: the host's DNS name or IP "
            "address alone",
        ),
        (
            lambda t: t.replace("address: 127.0.0.13", "address: web 03"),
            "prod.yaml:20: hosts[2].address: 'web 03' holds a space: the host's DNS name or IP "
            "address alone",
        ),
        # every host a canary: none to compare them with, no wave after them
        (
            lambda t: t.replace("hosts: [web-01]", "percent: 100"),
            "prod.yaml:41: canary.percent: must be less than 100, got 100: every host a canary "
            "leaves no host to compare them with and no wave after them (no canary section: "
            "every host in waves)",
        ),
        # canary host not in the fleet
        (
            lambda t: t.replace("hosts: [web-01]", "hosts: [web-09]"),
            "prod.yaml:41: canary.hosts[0]: 'web-09' is not in hosts",
        ),
        # waves not increasing
        (
            lambda t: t.replace("[10%, 50%, 100%]", "[50%, 10%, 100%]"),
            "prod.yaml:53: promote.waves[1]: waves are cumulative and must increase: 10% after 50%",
        ),
        (
            lambda t: t.replace("[10%, 50%, 100%]", "[10%, 150%]"),
            "prod.yaml:53: promote.waves[1]: a share must be more than 0% and at most 100%, "
            "got 150%",
        ),
        (
            lambda t: t.replace("[10%, 50%, 100%]", "[0%, 100%]"),
            "prod.yaml:53: promote.waves[0]: a share must be more than 0% and at most 100%, got 0%",
        ),
        (
            lambda t: t.replace("[10%, 50%, 100%]", "[0, 5]"),
            "prod.yaml:53: promote.waves[0]: a host count must be 1 to 100000, got 0",
        ),
        (
            lambda t: t.replace("[10%, 50%, 100%]", "[10%, soon]"),
            "prod.yaml:53: promote.waves[1]: expected a share like 10% (up to 100%)",
        ),
        # unknown placeholder
        (
            lambda t: t.replace("fetch-release {version}", "fetch-release {verison}"),
            "prod.yaml:25: deploy.steps[0].run: unknown placeholder {verison}",
        ),
        # bad enum
        (
            lambda t: t.replace("on_failure: rollback", "on_failure: panic"),
            "prod.yaml:56: promote.on_failure: expected rollback, halt or ask, got 'panic'",
        ),
        # duplicate key
        (
            lambda t: t.replace("app: shop\n", "app: shop\napp: shop2\n"),
            "prod.yaml:3: app: duplicate key",
        ),
        # a rule without a limit
        (
            lambda t: t.replace("        max: 0.05\n        max_vs_baseline: 2.0\n", ""),
            "prod.yaml:47: canary.analysis.rules[0].max: "
            "required (or max_vs_baseline, min, min_vs_baseline, compare)",
        ),
    ],
)
def test_bad_file_gives_file_line_key_problem(edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    found = problems(edit(GOOD))
    assert any(p.startswith(expected) for p in found), found


def test_one_address_on_another_port_user_or_bastion_is_another_machine() -> None:
    """web-02 on web-01's address, but as another user on another port; web-03 on it
    behind a bastion (another network's address): three machines, no problem."""
    text = GOOD.replace("address: 127.0.0.12", "address: 127.0.0.11").replace(
        "address: 127.0.0.13", "address: 127.0.0.11\n    proxy_jump: bastion"
    )
    env = parse_env(text, "prod.yaml")
    assert len({(h.address, h.port, h.user, h.proxy_jump) for h in env.hosts}) == 3


def test_every_problem_reported_at_once() -> None:
    text = GOOD.replace("port: 2222", "port: -1").replace("interval: 500ms", "interval: x")
    found = problems(text)
    assert len(found) == 2
    assert found[0].startswith("prod.yaml:16: hosts[1].port: must be between 1 and 65535")


def test_missing_sections_and_empty_file() -> None:
    assert problems("") == ["prod.yaml:1: (top level): the file is empty"]
    found = problems("name: x\napp: y\n")
    assert {p.split(": ")[1] for p in found} == {"deploy", "health", "hosts"}
    assert problems("- a\n- b\n")[0].startswith("prod.yaml:1: (top level): expected a mapping")


def test_cli_bad_file_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "prod.yaml"
    bad.write_text(GOOD.replace("    address: 127.0.0.13\n", ""))
    proc = subprocess.run(
        ["python", "-m", "canarytui", "deploy", str(bad), "1.2.0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{bad}:19: hosts[2].address: required"
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("command", ["check", "status", "history", "unlock", "promote", "rollback"])
def test_every_command_refuses_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bad = tmp_path / "prod.yaml"
    bad.write_text(GOOD.replace("ssh:\n", "shh:\n"))
    assert main([command, str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: shh: unknown key" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml:1: (file): no such file" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["deploy"]) == 2
    assert main(["deploy", "x.yaml", "1.0", "--canary", "a", "--canary-percent", "5"]) == 2
    assert main(["--state-dir"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version_pattern() -> None:
    env = parse_env(GOOD, file="prod.yaml")
    assert env.validate_version("1.2.3-rc.1+build5") == "1.2.3-rc.1+build5"
    for bad in ["", "-rf", "1.0;rm -rf /", "$(id)", "a b", "x" * 200, "../x", "1.0\n"]:
        with pytest.raises(VersionError, match="version_pattern"):
            env.validate_version(bad)
    custom = parse_env(
        GOOD.replace("app: shop\n", "app: shop\nversion_pattern: '^v\\d+$'\n"), file="prod.yaml"
    )
    assert custom.validate_version("v12") == "v12"
    with pytest.raises(VersionError):
        custom.validate_version("1.2.0")
    # Said as typed (a backslash once, not a repr's two), bounded, its length when cut; a
    # control character never reaches the terminal.
    with pytest.raises(VersionError) as typed:
        env.validate_version("1.0\\x1b")
    assert str(typed.value).startswith("version '1.0\\x1b' does not match"), typed.value
    with pytest.raises(VersionError) as long:
        env.validate_version("9" * 300)
    assert f"version '{'9' * 60}…' (300 characters) does not match" in str(long.value)
    with pytest.raises(VersionError) as control:
        env.validate_version("1.0\x1b[2J")
    assert "\x1b" not in str(control.value) and "'1.0\\x1b[2J'" in str(control.value)


def test_durations() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2s") == 2 and parse_duration("5m") == 300
    assert parse_duration("1h") == 3600
    # As people write them: parts from the largest unit down.
    assert parse_duration("1m30s") == 90 and parse_duration("1h 15m") == 4500
    assert parse_duration("2s500ms") == 2.5
    for bad in ["5", "1d", "-2s", "fast", "1m30", "m30s"]:
        with pytest.raises(ValueError, match=r"write e\.g\. 500ms, 2s, 5m"):
            parse_duration(bad)
    for bad in ["30s1m", "1m1m"]:
        with pytest.raises(ValueError, match=r"units from the largest down, e\.g\. 1m30s"):
            parse_duration(bad)


HOSTILE = [
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "' ; touch {marker} ; '",
    '" ; touch {marker} ; "',
    "a\ntouch {marker}",
    "| touch {marker}",
    "&& touch {marker}",
    "$HOME ${{IFS}} * ?",
    "\\'; touch {marker}; #",
]


@pytest.mark.parametrize("name", sorted(PLACEHOLDERS))
def test_placeholders_are_shell_quoted(tmp_path: Path, name: str) -> None:
    """Metacharacters in any placeholder's value reach the command as data, never code."""
    marker = tmp_path / "pwned"
    for template in HOSTILE:
        value = template.format(marker=marker)
        values = dict.fromkeys(PLACEHOLDERS, "x")
        values[name] = value
        command = render(f"printf '%s' {{{name}}}", values)
        out = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=10)
        assert out.stdout == value
        assert not marker.exists(), f"{name}={value!r} executed: {command}"


def test_shell_variables_are_left_alone() -> None:
    assert render("echo ${HOME} {version}", {"version": "1 2"}) == "echo ${HOME} '1 2'"


def test_a_bug_is_one_clear_line_and_a_crash_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Not a user's mistake but canarytui's: still no traceback on the terminal."""
    from canarytui.cli import history, main

    def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(history, "history", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    code = main(["history", str(REPO / "sample_envs" / "example-production.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert "canarytui: internal error: RuntimeError: boom" in err and "Traceback" not in err
    crash = next(tmp_path.glob("canarytui-crash-*.log"))
    assert "Traceback" in crash.read_text() and "boom" in crash.read_text()
    assert crash.stat().st_mode & 0o077 == 0


def test_zero_pause_and_zero_analysis_window_are_accepted() -> None:
    """``pause: 0s`` is "no pause between waves"; ``duration: 0s`` is "a health gate only"."""
    text = GOOD.replace("pause: manual", "pause: 0s").replace("duration: 5m", "duration: 0s")
    env = parse_env(text, file="prod.yaml")
    assert env.promote.pause == 0.0 and env.canary.analysis.duration == 0.0
    for key in ("interval: 500ms", "timeout: 5s", "connect_timeout: 10s", "command_timeout: 2m"):
        name = key.split(":")[0]
        found = problems(GOOD.replace(key, f"{name}: 0ms"))
        assert len(found) == 1 and found[0].endswith(f"{name}: must be longer than 0"), found


def test_scalar_aliases_are_fine() -> None:
    text = GOOD.replace("max: 0.05", "max: &limit 0.05").replace(
        "max_vs_baseline: 2.0", "max_vs_baseline: *limit"
    )
    rule = parse_env(text, file="prod.yaml").canary.analysis.rules[0]
    assert rule.max == rule.max_vs_baseline == 0.05


RULE = "prod.yaml:50: canary.analysis.rules[0].max: "
NINES = "9" * 80 + "..."
HOSTILE_VALUES = {
    # tags and values the YAML constructors reject, or would
    "int-tag": (
        "port: 2222",
        "port: !!int abc",
        "16: hosts[1].port: expected a whole number, got 'abc'",
    ),
    "unknown-tag": (
        "port: 2222",
        "port: !foo 3",
        "16: hosts[1].port: expected a whole number, got a value tagged '!foo' ('3')",
    ),
    "python-tag": (
        "user: other",
        "user: !!python/object:os.system x",
        "15: hosts[1].user: expected a string, got a value tagged "
        "'!!python/object:os.system' ('x')",
    ),
    "float-tag": ("max: 0.05", "max: !!float x", RULE + "expected a finite number, got 'x'"),
    "binary": (
        "max: 0.05",
        "max: !!binary aGk=",
        RULE + "expected a number, got a value tagged '!!binary' ('aGk=')",
    ),
    "timestamp": (
        "max: 0.05",
        "max: !!timestamp bad",
        RULE + "expected a number, got text ('bad')",
    ),
    "inf": ("max: 0.05", "max: .inf", RULE + "expected a finite number, got '.inf'"),
    "nan": ("max: 0.05", "max: .nan", RULE + "expected a finite number, got '.nan'"),
    "1e400": ("max: 0.05", "max: 1.0e+400", RULE + "expected a finite number, got '1.0e+400'"),
    # sizes: every number, duration and string has a ceiling, said in the message
    "5000-digits": (
        "port: 2222",
        "port: " + "9" * 5000,
        f"16: hosts[1].port: must be between 1 and 65535, got '{NINES}' (5000 characters)",
    ),
    "400-digit-duration": (
        "interval: 500ms",
        "interval: " + "9" * 400 + "s",
        f"37: health.interval: duration '{NINES}' (401 characters) is too long: "
        "at most 168h (7 days)",
    ),
    "8-days": (
        "interval: 500ms",
        "interval: 169h",
        "37: health.interval: duration '169h' is too long: at most 168h (7 days)",
    ),
    "max-failures": (
        "max_failures: 1",
        "max_failures: 100001",
        "54: promote.max_failures: must be at most 100000, got 100001",
    ),
    "baseline": (
        "baseline: 10",
        "baseline: 100001",
        "45: canary.analysis.baseline: must be at most 100000, got 100001",
    ),
    "failed-checks": (
        "max_failed_checks: 2",
        "max_failed_checks: 100001",
        "44: canary.analysis.max_failed_checks: must be at most 100000, got 100001",
    ),
    "wave-hosts": (
        "[10%, 50%, 100%]",
        "[100001]",
        "53: promote.waves[0]: a host count must be 1 to 100000, got 100001",
    ),
    "64-kib-command": (
        "fetch-release {version}",
        "x" * 70000,
        "25: deploy.steps[0].run: too long: 70000 characters (at most 65536)",
    ),
    "long-name": (
        "name: production",
        "name: " + "p" * 5000,
        "1: name: too long: 5000 characters (at most 4096)",
    ),
    # duplicate keys at any depth, labels included; keys that are not names; merge keys
    "label-twice": (
        "labels: {zone: eu-1}",
        "labels: {zone: eu-1, zone: eu-2}",
        "18: hosts[1].labels.zone: duplicate key",
    ),
    "list-as-key": (
        "labels: {zone: eu-1}",
        "labels: {[a]: b}",
        "18: hosts[1].labels: keys must be plain names",
    ),
    "merge-key": (
        "  - name: web-03\n",
        "  - <<: {user: x}\n    name: web-03\n",
        "19: hosts[2].<<: merge keys (<<) are not supported: write the keys out",
    ),
    # control characters, escaped in a value or raw in the file: shown escaped
    "escape-in-value": (
        "run: fetch-release {version}",
        'run: "fetch\\e[31m {version}"',
        "25: deploy.steps[0].run: contains the control character '\\x1b' at character 6: remove it",
    ),
    "nul-in-value": (
        "run: fetch-release {version}",
        'run: "a\\0b"',
        "25: deploy.steps[0].run: contains the control character '\\x00' at character 2: remove it",
    ),
    "raw-escape": (
        "fetch-release",
        "fetch\x1b-release",
        "25: (yaml): the character '\\x1b' is not allowed in YAML "
        "(control characters must be written as escapes in double quotes)",
    ),
    "tab": (
        "  user: deploy",
        "\tuser: deploy",
        "4: (yaml): found character that cannot start any token (a tab: indent with spaces)",
    ),
    "60000-brackets": (
        "port: 2222",
        "port: " + "[" * 60000 + "]" * 60000,
        "16: (yaml): mappings and lists nested more than 64 deep (an environment file needs 5)",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_VALUES))
def test_hostile_values_get_one_clear_line(case: str) -> None:
    old, new, expected = HOSTILE_VALUES[case]
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    assert problems(text) == [
        expected if expected.startswith("prod.yaml:") else f"prod.yaml:{expected}"
    ]


def test_alias_of_a_list_is_refused_where_it_is() -> None:
    text = GOOD.replace("roles: [web, api]", "roles: &r [web, api]")
    assert problems(text.replace("hosts: [web-01]", "hosts: *r")) == [
        "prod.yaml:41: canary.hosts: *r is an alias of a mapping or list: not supported "
        "(only of a single value): write it out"
    ]


def test_scalar_tags_resolved_once_are_the_same_as_yaml_resolves_them() -> None:
    import yaml

    from canarytui.config.source import compose

    text = (
        "a: [1, 0x1f, 1.5, .inf, yes, no, on, 'yes', ~, null, '', 2026-01-01, web, 127.0.0.1,"
        ' "1", -2, 1_000, +1, 0o17, 1e3, True, NULL, x: y]\n'
        "b: {1: one, yes: two, '1': three}\n"
        "c: [!!str 1, ! 2, !!int '3', \"x\"]\n"
        "c2: |\n  block\n"
        "c3: >\n  folded\n"
        f"d: [{'1' * 70}, {'y' * 70}, '{'2' * 70}']\n"
        "e: !!map {f: !!seq [g]}\n"
    )

    def tags(node: yaml.Node) -> list[tuple[str, object]]:
        if isinstance(node.value, list):
            out: list[tuple[str, object]] = [(node.tag, None)]
            for item in node.value:
                for part in item if isinstance(item, tuple) else (item,):
                    out += tags(part)
            return out
        return [(node.tag, node.value)]

    expected = tags(yaml.compose(text, Loader=yaml.SafeLoader))
    for _ in range(2):  # the second time from what the first resolved
        root = compose(text, "env.yaml")
        assert root is not None and tags(root) == expected


def test_no_collector_pass_while_a_big_file_is_read_and_it_resumes_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 2,000-host file builds tens of thousands of nodes, none of them garbage until the
    end: the collector would walk them all many times over (half the time of a 5,000-host
    file). It is paused while the file is read, on success and on a refusal, and left as the
    caller had it."""
    import gc

    from canarytui.config import loader

    hosts = "".join(
        f"  - {{name: web-{i:04d}, address: 127.0.0.1, port: {10000 + i}, roles: [web], "
        f"labels: {{zone: z{i % 3}}}}}\n"
        for i in range(2000)
    )
    big = GOOD.replace(
        "hosts:\n  - name: web-01\n    address: 127.0.0.11\n",
        f"hosts:\n  - name: web-01\n    address: 127.0.0.11\n{hosts}",
    )
    passes: list[int] = []
    reads: list[tuple[int, int]] = []  # passes so far as each read composes, and at its end
    compose, read_notify = loader.compose, loader.read_notify

    def composing(*args: Any) -> Any:
        reads.append((len(passes), -1))
        return compose(*args)

    def ending(*args: Any) -> Any:
        reads[-1] = (reads[-1][0], len(passes))
        return read_notify(*args)

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    monkeypatch.setattr(loader, "compose", composing)
    monkeypatch.setattr(loader, "read_notify", ending)
    gc.callbacks.append(count)
    try:
        assert len(parse_env(big, file="big.yaml").hosts) == 2003
        problems(big.replace("port: 22\n", "port: twenty-two\n"))
        assert len(reads) == 2 and all(a == b for a, b in reads) and gc.isenabled()
        gc.disable()
        try:
            parse_env(big, file="big.yaml")
            assert not gc.isenabled()
        finally:
            gc.enable()
        # Allocations outside the reader do start passes: the check can fail. (As many as
        # three young passes' worth, whatever threshold an earlier test left.)
        before = len(passes)
        kept = [[i] for i in range(3 * gc.get_threshold()[0] + 1000)]
        assert len(passes) > before and kept
    finally:
        gc.callbacks.remove(count)
