"""Every subcommand's `--help`: its name, its options, examples, and the common options.

``finish`` is called once the parser is built: each subcommand gets ``canarytui NAME`` as
its program name (the top level's usage is the whole command list), a formatter that wraps
descriptions but keeps the example lines as written, and an epilog of examples.
"""

from __future__ import annotations

import argparse

COMMON = (
    "common options (anywhere on the line):\n"
    "  --state-dir DIR   the journal's folder (default: the platform's user state dir,\n"
    "                    or $CANARYTUI_STATE_DIR)\n"
    "  --theme NAME      the UI's theme (dark, light, high-contrast, or a theme file's)"
)

# Examples per subcommand: what a newcomer types first, then the options that matter.
USAGE = """\
canarytui ENV.yaml                      the UI on that environment
canarytui demo [--hosts N]              embedded demo fleet + the UI
canarytui check ENV.yaml [--json]       validate, connect to every host, print version and health,
                                        every analysis rule whose metric a host lacks, and
                                        every host where a deployment's lock cannot be made
                                        or is held, or whose version does not read
canarytui analyze ENV.yaml [--canary a,b] [--for 1m] [--json]
                                        the rules now, canaries vs baseline, nothing deployed
canarytui deploy ENV.yaml VERSION [--canary a,b | --canary-percent N | --no-canary]
                                        [--hosts a,web-*,role=R] [--auto-promote] [--json]
                                        [--previous VERSION]: for hosts reporting no version
canarytui deploy ENV.yaml VERSION --dry-run [--json]   the plan, versions and locks; nothing changed
canarytui promote ENV.yaml [--wave] [--retry | --skip HOST,...] [--json]
                                        continue the open deployment to the rest (--wave:
                                        the next wave; a failed host deployed again, or left)
canarytui rollback ENV.yaml [--json]    roll the open (or last) deployment back where it went
canarytui rollback ENV.yaml --to VERSION   a known release back on every host, in waves
canarytui rollback ENV.yaml --take-over  roll back another machine's open deployment
canarytui status ENV.yaml [--json]      the open deployment and the fleet, once
canarytui history ENV.yaml [--json]     past deployments from the journal
canarytui unlock ENV.yaml [--force]     break a stale lock, after saying whose it was
canarytui logs ENV.yaml [-f] [--for 2s] [HOST ...]   the hosts' logs (default all), host-prefixed
canarytui lock ENV.yaml -m "reason"     hold the environment for maintenance (deploys refused)
canarytui replay ENV.yaml ID [--speed 10]   the UI replays a past deployment; no host is touched
canarytui report ENV.yaml [ID] [--format md|json]   one deployment (default the last): timeline,
                                        decisions, verdict with every value, hosts
canarytui init [--inventory FILE] [--hosts a,b] [-o FILE] [--force]
                                        a commented environment file to start from
canarytui completion bash|zsh          a shell completion script (options, files, hosts)
canarytui --version                     the version of canarytui
canarytui demo --serve [--hosts N]      the demo fleet alone; prints its env file's path
canarytui demo ctl HOST down|hang|flaky|slow|up    faults on a running demo fleet
                                        (--socket PATH: that fleet's, of several)
canarytui demo ctl lb [VERSION PERCENT]   the demo's load balancer: a share of users to VERSION

common options (anywhere on the line): --state-dir DIR (journal; default the platform's
user state dir, or $CANARYTUI_STATE_DIR), --theme NAME

exit status: 0 done as asked; 1 other error (lock held, canary unreachable, ...);
2 invalid input, nothing touched; 3 canary failed and was rolled back;
4 promotion halted or rolled back; 130 interrupted (the deployment stays open);
143 stopped by SIGTERM, 129 by its terminal closing (SIGHUP) (the same)
analyze: 0 the rules pass, 3 they would fail the canaries, 1 inconclusive
"""

EXAMPLES: dict[str, list[str]] = {
    "check": ["canarytui check prod.yaml", "canarytui check prod.yaml --json | jq .ok"],
    "analyze": [
        "canarytui analyze prod.yaml",
        "canarytui analyze prod.yaml --canary web-01,web-02 --for 1m --json",
    ],
    "deploy": [
        "canarytui deploy prod.yaml 1.4.2",
        "canarytui deploy prod.yaml 1.4.2 --dry-run",
        "canarytui deploy prod.yaml 1.4.2 --canary web-01,web-02 --auto-promote",
        "canarytui deploy prod.yaml 1.4.2 --canary-percent 10 --json",
        "canarytui deploy prod.yaml 1.4.2 --hosts role=web,api-01 --auto-promote",
        "canarytui deploy prod.yaml 1.4.2 --hosts web-09 --no-canary    # a host left behind",
    ],
    "promote": [
        "canarytui promote prod.yaml",
        "canarytui promote prod.yaml --wave",
        "canarytui promote prod.yaml --retry",
        "canarytui promote prod.yaml --skip web-07",
    ],
    "rollback": [
        "canarytui rollback prod.yaml",
        "canarytui rollback prod.yaml --to 1.4.1",
        "canarytui rollback prod.yaml --take-over",
    ],
    "status": ["canarytui status prod.yaml", "canarytui status prod.yaml --json | jq .open"],
    "history": ["canarytui history prod.yaml", "canarytui history prod.yaml --json"],
    "unlock": ["canarytui unlock prod.yaml", "canarytui unlock prod.yaml --force"],
    "logs": [
        "canarytui logs prod.yaml",
        "canarytui logs prod.yaml -f web-01 web-02",
        "canarytui logs prod.yaml --for 10s",
    ],
    "lock": ['canarytui lock prod.yaml -m "database migration until 14:00"'],
    "replay": ["canarytui replay prod.yaml 12", "canarytui replay prod.yaml 12 --speed 50"],
    "report": [
        "canarytui report prod.yaml",
        "canarytui report prod.yaml 12 > deployment-12.md",
        "canarytui report prod.yaml 12 --format json",
    ],
    "init": [
        "canarytui init --inventory hosts.ini -o production.yaml",
        "canarytui init --hosts web-01,web-02 > staging.yaml",
    ],
    "demo": [
        "canarytui demo",
        "canarytui demo --hosts 24",
        "canarytui demo --serve",
        "canarytui demo ctl web-03 hang",
    ],
    "completion": [
        "canarytui completion bash > ~/.local/share/bash-completion/completions/canarytui",
        "canarytui completion zsh > ~/.zfunc/_canarytui   # with fpath=(~/.zfunc $fpath)",
    ],
}


class HelpFormatter(argparse.HelpFormatter):
    """Paragraphs written as one line are wrapped; those written line by line are kept."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for paragraph in text.split("\n\n"):
            if "\n" in paragraph:
                out.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:
                out.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(out)


def epilog(name: str) -> str:
    """The examples (none for a subcommand missing from ``EXAMPLES``: a test says so)."""
    lines = EXAMPLES.get(name, [])
    examples = "\n".join(["examples:", *(f"  {line}" for line in lines)]) if lines else ""
    return (examples + "\n\n" if examples else "") + COMMON


def finish(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Name, formatter and examples for every subcommand (see the module's text)."""
    for name, sub in subparsers.choices.items():
        sub.prog = f"canarytui {name}"
        sub.formatter_class = HelpFormatter
        sub.epilog = epilog(name)
