"""Console output for the CLI only (library code logs and raises; it never prints)."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

__all__ = ["console", "err_console", "setup_logging"]

console = Console()
err_console = Console(stderr=True)


def setup_logging(level: int = logging.INFO) -> None:
    """Route library logs to stderr: rich on a terminal, plain lines otherwise (CI logs)."""
    root = logging.getLogger("gantransfer")
    for h in list(root.handlers):
        root.removeHandler(h)
    if err_console.is_terminal:
        handler: logging.Handler = RichHandler(console=err_console, show_path=False,
                                               rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
