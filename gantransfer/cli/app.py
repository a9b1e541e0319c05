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

log = logging.getLogger("gantransfer.cli")

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
    "push",
    "bench",
    "serve",
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


def _command_name(info: typer.models.CommandInfo) -> str:
    # typer's own rule for a command registered without a name
    return info.name or info.callback.__name__.lower().replace("_", "-")  # type: ignore[union-attr]


def _add_plugin_commands(app: typer.Typer) -> None:
    """Add the commands plugins contribute through the ``gantransfer.commands`` entry-point group
    (docs/plugins.md): each entry point names a ``register(app)`` function, called with an app
    of its own whose commands are then added here. A plugin that fails to load, or a command
    name already taken (by the core or an earlier plugin), is logged and left out; the rest of
    ``gtx`` keeps working."""
    from ..registry import command_entry_points

    taken = {_command_name(c) for c in app.registered_commands}
    taken |= {g.name for g in app.registered_groups if g.name}
    for ep in command_entry_points():
        own = typer.Typer()
        try:
            ep.load()(own)
        except Exception as exc:  # a broken plugin must not take the CLI down
            log.warning("gtx: plugin commands %r (%s) could not be loaded and are left out: "
                        "%s: %s", ep.name, ep.value, type(exc).__name__, exc)
            continue
        for info in own.registered_commands:
            name = _command_name(info)
            if name in taken:
                log.warning("gtx: command %r from plugin %r is left out: the name is taken",
                            name, ep.value)
                continue
            taken.add(name)
            app.registered_commands.append(info)
        for group in own.registered_groups:
            if group.name in taken:
                log.warning("gtx: command group %r from plugin %r is left out: the name is "
                            "taken", group.name, ep.value)
                continue
            if group.name:
                taken.add(group.name)
            app.registered_groups.append(group)


_add_plugin_commands(app)


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
