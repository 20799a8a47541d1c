"""`--help` of every subcommand (its options, examples, exit 0), and shell completion: the
bash script run by bash itself (subcommands, environment files, hosts, versions, IDs), the
zsh script checked by zsh; ``--version``; and the process's entry point (``run``: how often
it collects garbage, and its exit)."""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from canarytui import events as ev
from canarytui.cli import main
from canarytui.cli.args import COMMANDS, parse, parser
from canarytui.cli.args import subcommands as command_parsers
from canarytui.cli.completion import candidates
from canarytui.heap import YOUNG, collect_less
from canarytui.journal import Journal

# The module itself: the package's ``main`` is its function of that name.
cli_main = importlib.import_module("canarytui.cli.main")

ENV = textwrap.dedent("""\
    name: production
    app: shop
    hosts:
      - {name: web-01, address: 127.0.0.11}
      - {name: web-02, address: 127.0.0.12}
      - {name: api-01, address: 127.0.0.13}
    deploy:
      current: cat VERSION
      steps: [{name: switch, run: "echo {version}"}]
    health:
      check: "true"
    """)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return command_parsers(parser())


def test_every_command_is_a_subcommand() -> None:
    assert set(subcommands()) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_lists_options_and_examples(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: canarytui {name} ")
    lines = out.splitlines()
    examples = lines[lines.index("examples:") + 1 :]
    assert examples and examples[0].startswith(f"  canarytui {name}")
    for action in subcommands()[name]._actions:
        if action.help == argparse.SUPPRESS:
            continue
        for flag in action.option_strings:
            assert flag in out, f"{name} --help does not list {flag}"
        if action.help is None:
            pytest.fail(f"{name}: {action.dest} has no help text")
    assert "--state-dir DIR" in out and "--theme NAME" in out  # the common options too


def test_top_level_help_names_the_new_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "canarytui report ENV.yaml [ID] [--format md|json]" in out
    assert "canarytui completion bash|zsh" in out
    # The ways out an on-call engineer looks for first (they were only in the commands' help).
    assert "canarytui rollback ENV.yaml --to VERSION   a known release back on every host" in out
    assert "canarytui promote ENV.yaml [--wave] [--retry | --skip HOST,...] [--json]" in out


def test_a_mistyped_command_or_option_is_named_with_what_was_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv, said in [
        (["deplyo", "prod.yaml", "1.2.0"], "unknown command 'deplyo': did you mean deploy?"),
        (["promte"], "unknown command 'promte': did you mean promote?"),
        (["-x", "prod.yaml"], "unknown option '-x'"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"canarytui: {said}") and err.count("\n") == 1, err
    # A word that may be a file is read as one (the UI's environment file).
    assert main(["nosuch"]) == 2
    assert "nosuch:1: (file): no such file" in capsys.readouterr().err
    (tmp_path / "prod.yaml").write_text("name: prod\n")
    assert main(["prod.yaml", "1.2.0"]) == 2
    err = capsys.readouterr().err
    assert "the UI takes one environment file and nothing after it (got: 1.2.0)" in err
    # An option the command does not know: that command's usage and error, not canarytui's.
    assert main(["deploy", "prod.yaml", "1.2.0", "--canry", "web-01"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: canarytui deploy ") and "canarytui demo" not in err
    assert err.endswith(
        "canarytui deploy: error: unrecognized arguments: --canry web-01 (did you mean --canary?)\n"
    )


def test_options_may_come_before_an_optional_positional(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`report ENV --format json 12` as `report ENV 12 --format json`; a missing value is
    said as such (it never takes the env as its value)."""
    for argv in (["report", "e.yaml", "--format", "json", "12"], ["report", "e.yaml", "12"]):
        args = parse(argv)
        assert (args.env, args.id) == ("e.yaml", "12"), argv
    assert parse(["report", "e.yaml", "--format=json", "3"]).format == "json"
    assert parse(["report", "e.yaml", "-5"]).id == "-5"  # an ID, said wrong as such
    assert parse(["logs", "e.yaml", "--for", "5s", "web-01", "-f"]).hosts == ["web-01"]
    for argv, said in [
        (["report", "e.yaml", "--format"], "argument --format: expected one argument"),
        (["logs", "e.yaml", "web-01", "--for"], "argument --for: expected one argument"),
    ]:
        with pytest.raises(SystemExit):
            parse(argv)
        assert said in capsys.readouterr().err, argv


def test_a_command_line_argparse_refuses_ends_with_a_result_line_under_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --json, a command whose output ends with a result line ends with one when its
    own options are refused too (conflicting, missing, of the wrong type), as the README
    promises of every invalid run: a script reading stdout alone learns how it ended."""
    for argv, said in [
        (["deploy", "x.yaml", "1.0", "--canary", "a", "--no-canary"], "not allowed with"),
        (["analyze"], "the following arguments are required: env"),
        (["deploy", "x.yaml", "1.0", "--canary-percent", "abc"], "invalid float value: 'abc'"),
    ]:
        assert main([*argv, "--json"]) == 2, argv
        captured = capsys.readouterr()
        result = json.loads(captured.out.splitlines()[-1])
        assert result["event"] == "result" and result["outcome"] == "invalid", result
        assert result["exit"] == 2 and said in result["error"], result
        assert said in captured.err and captured.err.startswith("usage: canarytui ")
        assert main(argv) == 2 and capsys.readouterr().out == ""  # without --json: no line


def test_an_interrupted_command_that_changes_nothing_says_no_more(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C in `analyze` said an open deployment stays open in the journal, though it
    deploys nothing: only the commands that may leave one open say it."""
    module = importlib.import_module("canarytui.cli.main")

    def stopped() -> int:
        raise KeyboardInterrupt

    assert module._guard(stopped, changes=False) == 130
    assert capsys.readouterr().err == "\ncanarytui: interrupted\n"
    # A deploy stopped while it locked (a host hung) opened none: it said one stays open.
    assert module._guard(stopped, opens=True) == 130
    said = capsys.readouterr().err
    assert (
        said
        == "\ncanarytui: interrupted before a deployment opened: no host's release was changed\n"
    )
    stopping = importlib.import_module("canarytui.cli.stopping")

    def opened_then_stopped() -> int:
        stopping._note(ev.Notice(level="info", message="locked", deployment=7))
        raise KeyboardInterrupt

    assert module._guard(opened_then_stopped, opens=True) == 130
    assert "; deployment #7 stays open in the journal" in capsys.readouterr().err
    assert module._guard(stopped, opens=True) == 130  # the next command starts afresh
    assert "before a deployment opened" in capsys.readouterr().err
    # promote, rollback: stopped before they took the deployment up, nothing changed (it
    # said "a deployment it had opened stays open", of one they did not open).
    assert module._guard(stopped) == 130
    said = capsys.readouterr().err
    assert said == "\ncanarytui: interrupted before it took up a deployment: nothing was changed\n"
    assert module._guard(opened_then_stopped) == 130
    assert "; deployment #7 stays open in the journal" in capsys.readouterr().err


def test_completion_needs_a_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion"]) == 2
    assert "say which shell: bash or zsh" in capsys.readouterr().err
    assert main(["completion", "fish"]) == 2
    assert "invalid choice: 'fish'" in capsys.readouterr().err


def script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_bash_script_is_valid_and_names_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = script("bash", capsys)
    path = tmp_path / "canarytui.bash"
    path.write_text(text)
    check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    for name in COMMANDS:
        assert name in text
    assert "complete -o bashdefault -F _shtab_canarytui canarytui" in text


@pytest.fixture
def fleet_files(tmp_path: Path, state_dir: Path) -> Path:
    """A folder with an environment file (and a file that is not one), a journal with two
    deployments of it, and a `canarytui` on PATH that runs this checkout."""
    work = tmp_path / "work"
    (work / "envs").mkdir(parents=True)
    (work / "prod.yaml").write_text(ENV)
    (work / "notes.txt").write_text("not an environment")
    journal = Journal(state_dir)
    try:
        for version in ("1.4.0", "1.5.0"):
            d = journal.create_deployment(
                token=version,
                env="production",
                app="shop",
                env_path=str(work / "prod.yaml"),
                version=version,
                canaries=["web-01"],
                plan=[["web-02", "api-01"]],
                previous={},
                user="alice",
                machine="laptop",
            )
            if version == "1.4.0":  # 1.5.0 stays open: not a release to go back to
                done = ev.DeploymentFinished(outcome=ev.Outcome.COMPLETE, summary="", deployment=d)
                journal.record(done)
    finally:
        journal.close()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "canarytui"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m canarytui "$@"\n')
    wrapper.chmod(0o755)
    return work


def bash_complete(script_path: Path, work: Path, words: list[str]) -> list[str]:
    """What bash's completion function offers for ``words`` (the last is being typed)."""
    program = (
        f"source {shlex.quote(str(script_path))}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_shtab_canarytui\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = dict(os.environ)
    env["PATH"] = f"{work.parent / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-c", program], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return sorted(line for line in done.stdout.splitlines() if line)


def test_bash_completes_commands_files_hosts_versions_and_ids(
    fleet_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "canarytui.bash"
    path.write_text(script("bash", capsys))
    work = fleet_files

    def offered(*words: str) -> list[str]:
        return bash_complete(path, work, ["canarytui", *words])

    assert offered("") == sorted(COMMANDS)
    assert offered("rep") == ["replay", "report"]
    assert offered("deploy", "") == ["envs", "prod.yaml"]  # folders, no notes.txt
    assert offered("logs", "prod.yaml", "web") == ["web-01", "web-02"]
    assert offered("deploy", "prod.yaml", "1.5.0", "--canary", "web-01,") == [
        "web-01,api-01",
        "web-01,web-02",
    ]
    assert offered("promote", "prod.yaml", "--skip", "a") == ["api-01"]
    assert offered("deploy", "prod.yaml", "1.5.0", "--hosts", "api-01,w") == [
        "api-01,web-01",
        "api-01,web-02",
    ]
    assert offered("deploy", "prod.yaml", "") == ["1.4.0", "1.5.0"]
    assert offered("rollback", "prod.yaml", "--to", "1.4") == ["1.4.0"]
    assert offered("rollback", "prod.yaml", "--to", "") == ["1.4.0"]  # what --to takes
    assert offered("report", "prod.yaml", "") == ["1", "2"]
    assert offered("report", "prod.yaml", "--format", "") == ["json", "md"]
    assert offered("deploy", "prod.yaml", "1.5.0", "--theme", "") == [
        "dark",
        "high-contrast",
        "light",
    ]
    assert "--auto-promote" in offered("deploy", "prod.yaml", "1.5.0", "--")
    assert offered("logs", "missing.yaml", "") == []  # no file: nothing, and no error


def test_candidates(fleet_files: Path, state_dir: Path) -> None:
    env = str(fleet_files / "prod.yaml")
    assert candidates("hosts", env, "") == ["web-01", "web-02", "api-01"]
    assert candidates("hosts", env, "web-01,web-02,") == ["web-01,web-02,api-01"]
    assert candidates("versions", env, "", str(state_dir)) == ["1.5.0", "1.4.0"]
    assert candidates("ids", env, "", str(state_dir)) == ["2", "1"]
    assert candidates("ids", env, "", str(fleet_files / "no-journal")) == []
    assert not (fleet_files / "no-journal").exists()  # completing creates nothing
    assert candidates("hosts", str(fleet_files / "notes.txt"), "") == []


@pytest.mark.skipif(
    shutil.which("zsh") is None and not os.environ.get("CI"),
    reason="zsh is not installed on this machine (.ci/run installs it: under CI it must run)",
)
def test_zsh_script_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = script("zsh", capsys)
    assert text.startswith("#compdef canarytui")
    path = tmp_path / "_canarytui"
    path.write_text(text)
    check = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    assert "_files -g '(*.yaml|*.yml)'" in text and "_canarytui_hosts" in text


def _entry_point(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module args``, with a last line at exit saying whether the process
    collected less often (``heap``) and ended with what it held frozen."""
    probe = (
        "import atexit, gc, runpy, sys\n"
        "atexit.register(lambda: print('young', gc.get_threshold()[0],"
        " 'frozen', gc.get_freeze_count() > 0))\n"
        f"sys.argv = [{module!r}, *{list(args)!r}]\n"
        f"runpy.run_module({module!r}, run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_process_collects_less_and_ends_without_collecting_what_it_holds() -> None:
    """``canarytui`` and ``python -m canarytui`` go through ``run``: garbage collections
    every ``heap.YOUNG`` new objects, the command's exit status and its output whole, and
    everything the process held frozen before the interpreter ends (its last collection
    cost 0.45 s of CPU after a 1,000-host release); ``python -m canarytui.demo`` too."""
    entry = importlib.metadata.entry_points(group="console_scripts", name="canarytui")
    assert [e.value for e in entry] == ["canarytui.cli:run"]
    done = _entry_point("canarytui", "completion", "bash")
    assert done.returncode == 0, done.stderr
    # The command's own output, whole (the script's last line, ended), then the probe's.
    assert done.stdout.endswith(f"-F _shtab_canarytui canarytui\nyoung {YOUNG} frozen True\n")
    demo = _entry_point("canarytui.demo", "--hosts", "0")  # refused at once: exit 2
    assert demo.returncode == 2
    assert demo.stdout.endswith(f"young {YOUNG} frozen True\n")


def test_collecting_less_changes_only_how_often_young_objects_are_looked_at() -> None:
    before = gc.get_threshold()
    try:
        collect_less()
        assert gc.get_threshold() == (YOUNG, before[1], before[2])
    finally:
        gc.set_threshold(*before)


def test_run_exits_with_the_commands_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "main", lambda: 3)
    before = gc.get_threshold()
    try:
        with pytest.raises(SystemExit) as exited:
            cli_main.run()
        assert exited.value.code == 3
    finally:  # this test process goes on
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_is_the_installed_packages(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` says the version pip installed, and the completion scripts offer it."""
    assert main([flag]) == 0
    assert capsys.readouterr().out == f"canarytui {importlib.metadata.version('canarytui')}\n"
    assert "--version" in script("bash", capsys)


def test_a_hangup_ignored_by_the_caller_stays_ignored() -> None:
    # `nohup canarytui deploy ...`: the terminal closing must not stop it.
    stopping = importlib.import_module("canarytui.cli.main")._terminated_as_interrupted
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stopping():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        with stopping():  # the system's: stops it in order
            assert callable(signal.getsignal(signal.SIGHUP))
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_reader_that_went_away_leaves_the_commands_own_exit_status(
    fleet_files: Path,
) -> None:
    """`canarytui history ENV | head -1`: the reader gone, the rest of the output goes
    nowhere and the command ends with its own status, no traceback (it said 1, which
    `check` means as an unhealthy fleet)."""
    for argv, status in [(["history", "prod.yaml"], 0), (["report", "prod.yaml", "9"], 2)]:
        read, write = os.pipe()
        os.close(read)  # gone before the first line is written
        try:
            done = subprocess.run(
                [sys.executable, "-m", "canarytui", *argv],
                cwd=fleet_files,
                stdout=write,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        finally:
            os.close(write)
        assert done.returncode == status, (argv, done.stderr)
        assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    assert "report: no deployment #9" in done.stderr, done.stderr


def test_a_mistyped_state_dir_is_refused_by_the_commands_that_read_it(
    fleet_files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`history ENV --state-dir /mistyped`: it made an empty journal there and said "no
    deployments"; `status` said "no open deployment", hiding the real one."""
    monkeypatch.chdir(fleet_files)
    wrong = fleet_files / "no" / "such"
    for command in (["history"], ["status"], ["report"], ["replay", "prod.yaml", "1"]):
        argv = [*command[:1], "prod.yaml", *command[2:], "--state-dir", str(wrong)]
        assert main(argv) == 2, command
        said = capsys.readouterr().err
        assert f"--state-dir {wrong}: no such folder, so no journal to read" in said, said
    assert not (fleet_files / "no").exists()
