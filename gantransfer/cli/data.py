"""`gtx data check DIR`, `gtx data download NAME`, `gtx data prepare celeba SRC`.

check: what a dataset folder holds and what would stop training. download and prepare live in
:mod:`gantransfer.cli.data_get` (registered here, so `gtx data` stays one group).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ._console import console

__all__ = ["register"]

data_app = typer.Typer(help="Download, prepare and inspect datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from . import data_get

    data_get.register(data_app)
    app.add_typer(data_app, name="data")


def _size(size: tuple[int, int] | None) -> str:
    return "-" if size is None else f"{size[0]}x{size[1]}"


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


def print_report(report) -> bool:
    """Print a :class:`~gantransfer.data.DataReport` as `gtx data check` does; True if ok."""
    how = "detected" if report.detected else "given"
    console.print(f"[bold]{report.root}[/bold]: {report.kind} layout ({how})", highlight=False)
    table = Table(show_header=True, header_style="bold")
    for column in ("folder", "images", "unreadable", "min size", "median size", "max size", "modes"):
        table.add_column(column, justify="right" if column != "folder" else "left")
    for f in report.folders:
        modes = ", ".join(f"{m} {n}" for m, n in f.modes.items()) or "-"
        table.add_row(f.label if f.exists else f"{f.label} (missing)", str(f.count),
                      str(f.unreadable), _size(f.min_size), _size(f.median_size),
                      _size(f.max_size), modes)
    if report.folders:
        console.print(table)
    if report.classes:
        console.print(Text(f"{len(report.classes)} classes (label = index): " + ", ".join(
            f"{k}={name} ({n})" for k, (name, n) in enumerate(report.classes.items()))),
            highlight=False)
    for warning in report.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), highlight=False)
    ignored = sum(f.ignored for f in report.folders)
    if ignored:
        console.print(f"[dim]{ignored} non-image file(s) ignored[/dim]")
    if report.lock is not None:
        pin = report.lock.source
        state = "verified against the published SHA-256" if pin.verified else \
            "unverified: recorded on first download"
        console.print(Text(f"download record: {report.lock.dataset} from {pin.url}, SHA-256 "
                           f"{pin.sha256} ({state}, {pin.date})"), highlight=False)
    if report.ok:
        console.print("[green]no problems found[/green]")
        return True
    console.print(f"[bold red]{len(report.problems)} problem(s):[/bold red]")
    for problem in report.problems:
        # Text, not markup: file names may contain brackets.
        console.print(Text.assemble(("  • ", "red"), problem), highlight=False)
    return False
