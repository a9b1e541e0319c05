"""The table `gtx data check` prints, shared with `gtx data download --check`.

Its own module so that :mod:`gantransfer.cli.data` (which registers the download commands) and
:mod:`gantransfer.cli.data_get` both import it without importing each other (an import cycle:
see docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from ._console import console

if TYPE_CHECKING:
    from ..data import DataReport

__all__ = ["print_report"]


def _size(size: tuple[int, int] | None) -> str:
    return "-" if size is None else f"{size[0]}x{size[1]}"


def print_report(report: DataReport) -> bool:
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
