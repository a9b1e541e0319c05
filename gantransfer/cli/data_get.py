"""`gtx data download NAME` and `gtx data prepare celeba SRC`: getting a dataset to train on.

Thin over :mod:`gantransfer.data.download` and :mod:`gantransfer.data.celeba`; this module
prints (progress bars on stderr, results on stdout) and picks exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .._text import format_bytes
from ._console import console, err_console

__all__ = ["register"]

_BYTE_PHASES = {"download": "downloading", "verify": "hashing archive", "extract": "unpacking"}
_COUNT_PHASES = {"split": "splitting A|B pairs", "hash": "hashing files", "images": "images"}


def register(data_app: typer.Typer) -> None:
    data_app.command("download")(download_cmd)
    prepare_app = typer.Typer(help="Turn a manually downloaded dataset into a training folder.",
                              no_args_is_help=True)
    prepare_app.command("celeba")(celeba_cmd)
    data_app.add_typer(prepare_app, name="prepare")


class _Bars:
    """One rich progress bar per phase, on stderr; the library's progress callback."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[amount]}"), TimeRemainingColumn(),
                                 console=err_console, transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase in _BYTE_PHASES:
            amount = format_bytes(done) + (f" / {format_bytes(total)}" if total else "")
        else:
            amount = f"{done} / {total}" if total else str(done)
        if phase not in self.tasks:
            label = _BYTE_PHASES.get(phase) or _COUNT_PHASES.get(phase, phase)
            self.tasks[phase] = self.progress.add_task(label, total=total, amount=amount)
        self.progress.update(self.tasks[phase], completed=done, total=total, amount=amount)


def download_cmd(
    name: Annotated[str | None, typer.Argument(
        help="Dataset name, e.g. horse2zebra or pix2pix/facades (see --list).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Datasets folder; the dataset lands "
                                      "in OUT/NAME.")] = Path("datasets"),
    list_: Annotated[bool, typer.Option("--list", help="List the datasets, their approximate "
                                        "sizes and whether each is present in OUT.")] = False,
    url: Annotated[str | None, typer.Option(
        help="Download the archive from this URL instead; all checks stay.")] = None,
    mirror: Annotated[str | None, typer.Option(
        help="Base URL of a mirror holding upstream's file names (BASE/horse2zebra.zip).")
    ] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Download again and replace OUT/NAME (a changed archive is still "
                        "refused).")] = False,
    keep_archive: Annotated[bool, typer.Option(
        "--keep-archive", help="Keep OUT/NAME.zip (or .tar.gz) after unpacking.")] = False,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Print the `gtx data check` summary afterwards (decodes "
                                   "every image).")] = True,
    timeout: Annotated[float, typer.Option(
        min=0.001, help="Seconds to wait for the connection or for any data; also the window "
                        "over which --min-speed is measured.")] = 60.0,
    deadline: Annotated[float, typer.Option(
        min=0, help="Seconds for the whole download (0: no limit).")] = 0.0,
    min_speed: Annotated[float, typer.Option(
        "--min-speed", min=0,
        help="KiB/s the transfer must average over each --timeout window, or it is stopped "
             "as stalled (0: off).")] = 10.0,
) -> None:
    """Download an official CycleGAN or pix2pix dataset into the layout the trainers read.

    The transfer resumes after an interruption (run the same command again). Upstream publishes
    no checksums: the first download's SHA-256 is recorded in OUT/NAME/.gantransfer-lock.json
    (and said to be unverified); every later download and `gtx data check` is verified against
    it. Offline: download the archive elsewhere, copy it to OUT/NAME.zip (or .tar.gz) and run
    the command again.
    """
    from ..data import download as dl

    if list_:
        _print_catalogue(dl, out)
        return
    if name is None:
        raise typer.BadParameter("give a dataset NAME, or --list to see them", param_hint="NAME")
    if url and mirror:
        raise typer.BadParameter("give --url or --mirror, not both", param_hint="--mirror")
    source = dl.find_dataset(name)
    if source.note and (source.url or url or mirror):
        console.print(Text(f"note: {source.note}"), style="dim", highlight=False)
    with _Bars() as bars:
        result = dl.download_dataset(
            source.name, out, url=url, mirror=mirror, force=force, keep_archive=keep_archive,
            progress=bars, timeout=timeout, deadline=deadline or None,
            min_speed=min_speed * 1024)
    _print_download(result)
    if check:
        from ..data import check_folder
        from ._data_report import print_report

        # the files were hashed into the lock a moment ago: no need to hash them again
        if not print_report(check_folder(result.folder, verify=False)):
            raise typer.Exit(1)


def _print_catalogue(dl: Any, out: Path) -> None:
    table = Table(show_header=True, header_style="bold")
    for column in ("name", "layout", "size", "A -> B", f"in {out}"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for source, status in dl.catalogue_rows(out):
        layout = "paired (A|B)" if source.layout == "side_by_side" else source.layout
        available = "" if source.url else " (no public download)"
        table.add_row(source.name, layout, f"~{format_bytes(source.approx_size)}",
                      f"{source.a} -> {source.b}{available}", status)
    console.print(table)
    console.print("Sizes are approximate. The upstream server publishes no checksums: a first "
                  "download is recorded in the dataset's lock file and later ones are checked "
                  "against it.", style="dim")


def _print_download(result: Any) -> None:
    pin, folder = result.pin, result.folder
    if result.already_present:
        console.print(Text(f"{result.source.name}: {folder} is present and matches its lock "
                           "file (sizes checked); nothing downloaded. Use --force to download "
                           "again, `gtx data check` to re-hash it."), highlight=False)
        return
    origin = f"downloaded {result.url}" if result.url else "used the archive already on disk"
    resumed = f" (resumed at {format_bytes(result.resumed_from)})" if result.resumed_from else ""
    console.print(Text(f"{origin}{resumed}"), highlight=False)
    console.print(Text(f"SHA-256 {pin.sha256}  ({format_bytes(pin.size)})"), highlight=False)
    print_pin(pin, first_use=result.first_use, lock=folder / ".gantransfer-lock.json",
              checked="later downloads and `gtx data check` are")
    for split, pairs in result.splits.items():
        console.print(f"{split}: {pairs} side-by-side pairs split into {split}/A and {split}/B")
    if result.archive_kept:
        console.print(Text(f"archive kept: {result.archive_kept}"), highlight=False)
    console.print(Text(f"{result.source.name} is ready in {folder}"), style="bold",
                  highlight=False)


def print_pin(pin: Any, *, first_use: bool, lock: Path, checked: str) -> None:
    """Say how a download was checked: against a published SHA-256, recorded unverified on
    first use (in ``lock``; ``checked`` says what is verified against it later), or against
    that record."""
    if pin.verified:
        console.print("[green]verified[/green] against the published SHA-256")
    elif first_use:
        console.print(Text.assemble(
            ("UNVERIFIED", "bold yellow"),
            f": the source publishes no checksum, so this first download could not be checked. "
            f"Its SHA-256 is recorded in {lock}; {checked} verified against it."),
            highlight=False)
    else:
        console.print(Text(f"matches the SHA-256 recorded on {pin.date} in {lock} (that first "
                           "download was unverified)"), highlight=False)


def celeba_cmd(
    src: Annotated[Path, typer.Argument(help="Folder with img_align_celeba/ and "
                                             "list_attr_celeba.txt (downloaded by hand).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The new dataset folder.")],
    size: Annotated[int, typer.Option(min=1, help="Output side in pixels.")] = 64,
    crop: Annotated[int | None, typer.Option(
        min=1, help="Side of the centred square cropped before resizing (default: the shorter "
                    "side, 178 for CelebA: the DCGAN convention; 108: a tighter face crop).")
    ] = None,
    attributes: Annotated[str | None, typer.Option(
        help="Comma-separated CelebA attributes, one class folder each (e.g. "
             "Black_Hair,Blond_Hair,Brown_Hair): OUT/<attribute>/*.png.")] = None,
    none_label: Annotated[str | None, typer.Option(
        "--none-label", help="Folder for images with none of the attributes (default: leave "
                             "them out).")] = None,
    several: Annotated[str, typer.Option(
        help="Images with several of the attributes: skip (leave out) or first (the first "
             "listed).")] = "skip",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N images.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Threads.")] = 4,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
) -> None:
    """Centre-crop and resize a manually downloaded CelebA, optionally into labelled folders.

    Google Drive downloads cannot be scripted: get the Align&Cropped images and
    list_attr_celeba.txt from the CelebA site. The crop is the centred square of the shorter
    side (0,20,178,198 for 178x218 images), resized bicubically to SIZE; see docs/data.md.
    """
    from ..data.celeba import prepare_celeba
    from ..data.labels import SEVERAL_POLICIES

    if several not in SEVERAL_POLICIES:
        raise typer.BadParameter(f"use {' or '.join(SEVERAL_POLICIES)}", param_hint="--several")
    chosen = [a.strip() for a in attributes.split(",") if a.strip()] if attributes else None
    if none_label and not chosen:
        raise typer.BadParameter("needs --attributes", param_hint="--none-label")
    with _Bars() as bars:
        report = prepare_celeba(src, out, size=size, crop=crop, attributes=chosen,
                                none_label=none_label, several=several, limit=limit,
                                workers=workers, force=force,
                                progress=lambda d, t: bars("images", d, t))
    console.print(Text(f"wrote {report.written} images of {size}x{size} to {report.out}"),
                  highlight=False)
    if chosen:
        table = Table(show_header=True, header_style="bold")
        table.add_column("label")
        table.add_column("images", justify="right")
        for label, count in report.per_label.items():
            table.add_row(label, str(count))
        console.print(table)
        left_out = {"with none of the attributes": report.no_label,
                    "with several of them": report.several_labels,
                    "without a row in the attribute file": report.no_attributes}
        for why, count in left_out.items():
            if count:
                console.print(f"left out {count} image(s) {why}")
