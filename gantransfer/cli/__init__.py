"""The `gtx` command line: a thin typer app over the public API (one module per command group)."""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
