"""Command line: arguments and exit codes, one module per command group, printers."""

from canarytui.cli.main import main

__all__ = ["main"]
