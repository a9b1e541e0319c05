"""`gtx weights download NAME` and `gtx weights list`: pretrained files for networks.

Nothing is downloaded implicitly anywhere in gantransfer; this command is the one way to fetch.
A network advertises its file with a ``pretrained_weights`` attribute (see gantransfer.hub);
files that belong to no registered network (the FID Inception-v3, ``inception``) are named in
:func:`named_weights`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .. import hub, registry
from ._console import console

__all__ = ["named_weights", "register", "weights_spec"]


def named_weights() -> dict[str, hub.WeightsFile]:
    """Downloadable files that are not a registered network's: ``inception`` (FID/KID)."""
    from ..evaluation.inception import INCEPTION_WEIGHTS

    return {"inception": INCEPTION_WEIGHTS}


def weights_spec(name: str, *, sha256: str | None = None) -> hub.WeightsFile:
    """The file ``name`` stands for (:func:`named_weights`, else a network's
    ``pretrained_weights``); ``sha256`` replaces its published hash by a full SHA-256 the
    caller supplies (a file of their own, a test file), which is then verified instead.

    Raises:
        LookupError, UnknownPluginError: no such file; ValueError: ``sha256`` is not 64 hex
            digits.
    """
    spec = named_weights().get(name) or hub.weights_file_for(name)
    if sha256 is None:
        return spec
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"--sha256 must be the file's full SHA-256 (64 hex digits); got "
                         f"{sha256!r}")
    return dataclasses.replace(spec, sha256=sha256.lower(), sha256_prefix=None)


def register(app: typer.Typer) -> None:
    weights_app = typer.Typer(help="Download and locate pretrained weights (e.g. VGG for the "
                                   "vgg16 discriminator, Inception-v3 for FID/KID).",
                              no_args_is_help=True)
    weights_app.command("download")(download_cmd)
    weights_app.command("list")(list_cmd)
    app.add_typer(weights_app, name="weights")


def download_cmd(
    name: Annotated[str, typer.Argument(
        help="Network name, e.g. vgg16 or vgg19, or inception (the FID/KID Inception-v3).")],
    url: Annotated[str | None, typer.Option(
        help="Download from this URL instead (a mirror); the hash is still checked.")] = None,
    sha256: Annotated[str | None, typer.Option(
        "--sha256", help="Verify against this full SHA-256 instead of the published hash (for "
                         "a file of your own at --url); the download is always verified.")
    ] = None,
    dest: Annotated[Path | None, typer.Option(
        help="Folder to write into (default: torchvision's cache, $TORCH_HOME/hub/checkpoints).")
    ] = None,
    timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds to wait for the connection or for any data; also the window "
                        "over which --min-speed is measured.")] = 60.0,
    deadline: Annotated[float, typer.Option(
        min=0, help="Seconds for the whole download (0: no limit).")] = hub.DEFAULT_DEADLINE,
    min_speed: Annotated[float, typer.Option(
        "--min-speed", min=0,
        help="KiB/s the transfer must average over each --timeout window, or it is stopped "
             "as stalled (0: off).")] = hub.DEFAULT_MIN_SPEED / 1024,
) -> None:
    """Download a network's pretrained weights, verify the hash and store them atomically.

    A slow server cannot hold the command: it stops when no data comes for --timeout seconds,
    when a --timeout window brings less than --min-speed, or at --deadline.
    """
    spec = weights_spec(name, sha256=sha256)
    if sha256 is not None:
        console.print(f"{name}: verifying against the given SHA-256, not the published file's "
                      "hash: numbers computed with this file are not comparable with published "
                      "ones unless it is the same file", style="yellow", highlight=False)
    path = hub.download_weights(spec, dest_dir=dest, url=url, timeout=timeout,
                                deadline=deadline or None, min_speed=min_speed * 1024)
    check = f"SHA-256 {spec.sha256}" if spec.sha256 else \
        f"SHA-256 prefix {spec.sha256_prefix} (torchvision file-name hash)"
    console.print(f"{name}: {path} verified ({check})")


def list_cmd() -> None:
    """Networks with downloadable weights and whether the file is in the cache."""
    table = Table(show_header=True, header_style="bold")
    for column in ("network", "file", "cached", "url"):
        table.add_column(column)
    specs = dict(named_weights())
    for name in registry.list(kind="network"):
        try:
            specs[name] = hub.weights_file_for(name)
        except (LookupError, ImportError):
            continue
    for name, spec in specs.items():
        cached = hub.cached_file(spec)
        table.add_row(name, spec.filename, "yes" if cached else "no", spec.url)
    console.print(table)
    console.print(f"cache: {hub.cache_dir()}")
