"""The demo file's traffic hook: ``python -m canarytui.demo.lb VERSION PERCENT --socket PATH``.

The same request as ``canarytui demo ctl lb VERSION PERCENT --socket PATH`` (and the same
output and exit status), without the command line around it: the engine runs it at every
phase change of a release and waits for it, and the command line's start-up was half its
time (~80 ms, now ~35 ms). It imports the control channel's client only.
"""

from __future__ import annotations

import sys

from canarytui.demo.control import lb_main

USAGE = "usage: python -m canarytui.demo.lb [VERSION PERCENT] [--socket PATH]"


def main(argv: list[str]) -> int:
    words = list(argv)
    socket_path: str | None = None
    if "--socket" in words:
        at = words.index("--socket")
        if at + 1 >= len(words):
            print(USAGE, file=sys.stderr)
            return 2
        socket_path = words[at + 1]
        del words[at : at + 2]
    return lb_main(words, socket_path)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
