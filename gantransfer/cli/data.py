"""`gtx data check DIR`, `gtx data download NAME`, `gtx data prepare celeba SRC`.

check: what a dataset folder holds and what would stop training. download and prepare live in
:mod:`gantransfer.cli.data_get` (registered here, so `gtx data` stays one group).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._data_report import print_report

__all__ = ["register"]

data_app = typer.Typer(help="Download, prepare and inspect datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from . import data_get

    data_get.register(data_app)
    app.add_typer(data_app, name="data")


@data_app.command("check")
def check_cmd(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    kind: Annotated[
        str | None,
        typer.Option("--kind", "-k", help="single, unpaired, paired or labelled (one folder "
                                          "per class; default: detect the others)."),
    ] = None,
    min_per_class: Annotated[int, typer.Option(
        "--min-per-class", min=0, help="Labelled data: warn about classes with fewer images.")
    ] = 100,
    max_pixels: Annotated[int | None, typer.Option(
        "--max-pixels", min=0,
        help="Report images with more pixels than this as problems (default 89478485, "
             "Pillow's decompression-bomb limit; 0: no limit).")] = None,
) -> None:
    """Report layout, image counts, sizes and modes; exit 1 if anything would stop training.

    A folder made by `gtx data download` is also re-hashed against its lock file: a file that
    changed, went missing or was added since the download is a problem.
    """
    from ..data import check_folder
    from ..data.images import set_max_pixels

    if max_pixels is not None:
        set_max_pixels(max_pixels)

    if kind is not None and kind not in ("single", "unpaired", "paired", "labelled"):
        raise typer.BadParameter("use single, unpaired, paired or labelled", param_hint="--kind")
    report = check_folder(path, kind=kind, min_per_class=min_per_class)
    if not print_report(report):
        raise typer.Exit(1)
