"""`python -m canarytui`: the same command line as `canarytui`."""

from canarytui.cli import run

run()
