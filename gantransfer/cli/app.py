"""The root `gtx` app: global options, error handling and exit codes.

Exit codes: 0 ok, 1 failure (one clear message, no traceback unless ``--debug``), 2 usage error.
Each command group lives in its own module with a ``register(app)`` function.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from ._console import console, err_console, setup_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="gtx",
    help="gantransfer: train, export and run GAN style-transfer models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Command modules, each with `register(app)`. Kept as names so a broken optional module cannot
# take the whole CLI down at import time.
_COMMAND_MODULES = (
    "registry_cmds",
    "train",
    "data",
    "demo",
    "generate",
    "translate",
    "export",
    "weights",
    "import_cyclegan",
    "bench",
    "evaluate",
    "report",
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        console.print(f"gantransfer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _state["debug"] = debug or bool(os.environ.get("GTX_DEBUG"))
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    setup_logging(level)
    # gantransfer's image readers check sizes themselves (ImageTooLargeError: the file, its size
    # and --max-pixels / GANTRANSFER_MAX_PIXELS); Pillow's own check would first print a raw
    # DecompressionBombWarning, or refuse above twice its limit whatever --max-pixels says.
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None


for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(f".{_name}", __package__)
    except ModuleNotFoundError as _exc:  # a command group not written yet
        if _exc.name != f"{__package__}.{_name}":
            raise
        continue
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `gtx` script.

    typer/click handle usage errors (exit 2) and --help; anything a command raises becomes one
    red line and exit 1, with the traceback only under ``--debug`` (or ``GTX_DEBUG=1``).
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("GTX_DEBUG"))
    try:
        app(args=args, prog_name="gtx")
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]")
        sys.exit(130)
    except Exception as exc:  # one clear message, never a bare traceback
        if debug:
            raise
        # Escaped: messages quote paths and backend errors like "[/path/pair.cc:537]", which
        # rich would read as markup. Under torchrun each rank says who it is.
        err_console.print(f"[bold red]error:[/bold red] {escape(_rank_prefix() + _describe(exc))}",
                          highlight=False)
        err_console.print("[dim](run with --debug for the full traceback)[/dim]")
        sys.exit(1)


def _rank_prefix() -> str:
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ:
        return f"rank {os.environ['RANK']} failed: "
    return ""


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (KeyError,)) and exc.args:
        text = str(exc.args[0])
    if type(exc).__module__.startswith(("gantransfer", "builtins")):
        return text
    return f"{type(exc).__name__}: {text}"
