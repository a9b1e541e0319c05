"""`gtx weights download NAME` and `gtx weights list`: pretrained models and network weights.

Nothing is downloaded implicitly anywhere in gantransfer; this command is the one way to fetch.
NAME is a pretrained model of the catalogue (``cyclegan/style_monet``, see
gantransfer.pretrained), a Hugging Face Hub repository (``hf://user/repo[@revision]``, see
gantransfer.hf) or a network with a ``pretrained_weights`` attribute (``vgg16``, see
gantransfer.hub).
Files that belong to no registered network (the FID Inception-v3, ``inception``) are
named in :func:`named_weights`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from .. import hub, registry
from .._text import format_bytes
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
    weights_app = typer.Typer(help="Download and list pretrained models (cyclegan/style_monet, "
                                   "hf://user/repo) and network weights (vgg16, inception for "
                                   "FID/KID).",
                              no_args_is_help=True)
    weights_app.command("download")(download_cmd)
    weights_app.command("list")(list_cmd)
    app.add_typer(weights_app, name="weights")


def download_cmd(
    name: Annotated[str, typer.Argument(
        help="A pretrained model (cyclegan/style_monet; see `gtx weights list`), "
             "hf://user/repo[@revision], a network (vgg16, vgg19), or inception (the FID/KID "
             "Inception-v3).")],
    url: Annotated[str | None, typer.Option(
        help="Download from this URL instead (a mirror); the hash is still checked.")] = None,
    mirror: Annotated[str | None, typer.Option(
        help="Pretrained models: base URL of a mirror holding upstream's file names "
             "(BASE/style_monet.pth); the checks stay.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Pretrained models: download and convert again (a changed file is still "
                        "refused).")] = False,
    sha256: Annotated[str | None, typer.Option(
        "--sha256", help="Verify against this full SHA-256 instead of the published hash (for "
                         "a file of your own at --url); the download is always verified.")
    ] = None,
    dest: Annotated[Path | None, typer.Option(
        help="Networks: folder to write into (default: torchvision's cache, "
             "$TORCH_HOME/hub/checkpoints).")] = None,
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
    """Download a pretrained model or a network's weights, verify it and store it atomically.

    A pretrained model is converted into a gantransfer checkpoint in the cache
    ($XDG_CACHE_HOME/gantransfer/pretrained); then its name works wherever a run directory
    does (gtx translate cyclegan/style_monet photos/ -o out/). Upstream publishes no checksums:
    the first download's SHA-256 is recorded (and said to be unverified), later ones are checked
    against it. A Hub repository is downloaded into the Hub cache and its files are checked
    against the sizes and hashes the Hub lists.

    A slow server cannot hold the command: it stops when no data comes for --timeout seconds,
    when a --timeout window brings less than --min-speed, or at --deadline.
    """
    limits = {"timeout": timeout, "deadline": deadline or None, "min_speed": min_speed * 1024}
    if "/" in name or name.startswith("hf:"):
        if dest is not None:
            raise typer.BadParameter("--dest applies to network weights only; pretrained "
                                     "models live in the cache", param_hint="--dest")
        if url and mirror:
            raise typer.BadParameter("give --url or --mirror, not both", param_hint="--mirror")
        if sha256 is not None:
            raise typer.BadParameter("--sha256 applies to network weights; a pretrained model "
                                     "is checked against its lock file (or the Hub's listing)",
                                     param_hint="--sha256")
        _download_model(name, url=url, mirror=mirror, force=force, limits=limits)
        return
    if mirror or force:
        raise typer.BadParameter("--mirror and --force apply to pretrained models (NAME with a "
                                 "'/'); use --url for a network's file", param_hint="--mirror")
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


def _download_model(name: str, *, url: str | None, mirror: str | None, force: bool,
                    limits: dict[str, Any]) -> None:
    """`gtx weights download` for a pretrained name or an hf:// address."""
    from .. import pretrained
    from .data_get import _Bars, print_pin

    if pretrained.is_hub_address(name):
        from .. import hf

        if url or mirror:
            raise typer.BadParameter("--url/--mirror do not apply to hf:// (set HF_ENDPOINT "
                                     "for another Hub endpoint)", param_hint="--url")
        got = hf.download_hub(name, force=force)
        console.print(Text(f"{got.address}: {len(got.files)} file(s) at revision "
                           f"{got.commit[:12]} in {got.folder}"), highlight=False)
        console.print(Text(f"verified against the Hub's listing: {got.checked}"),
                      highlight=False)
        console.print(Text(f"use it as: gtx translate {name} IMAGES -o OUT"), style="bold",
                      highlight=False)
        return
    entry = pretrained.find_pretrained(name)
    if entry.note:
        console.print(Text(f"note: {entry.note}"), style="dim", highlight=False)
    with _Bars() as bars:
        result = pretrained.download_pretrained(
            entry.name, url=url, mirror=mirror, force=force,
            progress=lambda done, total: bars("download", done, total), **limits)
    model, pin = result.model, result.model.source
    if result.already_present:
        console.print(Text(f"{entry.name}: {model.checkpoint} is present and matches its lock "
                           "file; nothing downloaded (--force converts it again)."),
                      highlight=False)
        return
    console.print(Text(f"downloaded {result.url}"), highlight=False)
    console.print(Text(f"SHA-256 {pin.sha256}  ({format_bytes(pin.size)})"), highlight=False)
    print_pin(pin, first_use=result.first_use,
              lock=model.checkpoint.parent / pretrained.LOCK_NAME, checked="later downloads are")
    console.print(Text(f"{entry.name} ({entry.description}) converted into "
                       f"{model.checkpoint}"), highlight=False)
    console.print(Text(f"use it as: gtx translate {entry.name} IMAGES -o OUT"), style="bold",
                  highlight=False)


def list_cmd() -> None:
    """Pretrained models and networks with downloadable weights, and what is in the cache."""
    from .. import pretrained

    models = Table(show_header=True, header_style="bold", title="pretrained models")
    models.add_column("name", no_wrap=True)  # a name is typed back: never broken
    for column in ("does", "size", "cached", "from"):
        models.add_column(column, justify="right" if column == "size" else "left",
                          no_wrap=column != "does")
    for name, entry in pretrained.catalogue().items():
        try:
            present = "yes" if pretrained.cached(name, verify=False) else "no"
        except ValueError:
            present = "damaged"
        size = f"~{format_bytes(entry.approx_size)}" if entry.approx_size else ""
        models.add_row(name, entry.description, size, present, entry.distribution or "")
    console.print(models)
    console.print(f"cache: {pretrained.cache_root()}  (download: gtx weights download NAME)")
    table = Table(show_header=True, header_style="bold", title="network weights")
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
