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
