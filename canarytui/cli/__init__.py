"""Command line: arguments and exit codes, one module per command group, printers."""

from canarytui.cli.main import main, run

__all__ = ["main", "run"]
