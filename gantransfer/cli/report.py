"""`gtx report RUN -o report.html`: one self-contained HTML page about a run
(:mod:`gantransfer.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._console import console
from ._options import Overwrite

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_cmd(
        run: Annotated[Path, typer.Argument(help="Run directory (gtx train -o).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")
                       ] = Path("report.html"),
        smoothing: Annotated[float, typer.Option(
            min=0.0, max=0.99, help="Moving-average weight of the loss curves (0: raw).")
        ] = 0.6,
        max_samples: Annotated[int, typer.Option(
            "--max-samples", min=2, help="Most sample grids embedded (evenly spaced).")] = 40,
        overwrite: Overwrite = False,
    ) -> None:
        """Write one HTML file (images embedded, no external scripts) with the config, loss
        curves, learning rate, evaluation metrics with the best checkpoint, and the sample
        grids over time. Works while the run is still training."""
        from ..report import write_report

        if out.exists() and not overwrite:
            raise typer.BadParameter(f"{out} exists; pass --overwrite to replace it",
                                     param_hint="--out")
        path = write_report(run, out, smoothing=smoothing, max_samples=max_samples)
        size = path.stat().st_size / 1024
        console.print(f"wrote {path} ({size:.0f} KiB)", highlight=False)
