"""The `gtx` command line: a thin typer app over the public API (one module per command group)."""

from __future__ import annotations

from ._console import console, err_console
from .app import app, main

# console/err_console: where commands print (plugin commands too, docs/plugins.md).
__all__ = ["app", "console", "err_console", "main"]
