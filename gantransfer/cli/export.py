"""`gtx export RUN_OR_CKPT --onnx PATH`: verified ONNX export of a model's generators."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._console import console

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        source: Annotated[Path, typer.Argument(help="Run directory or checkpoint.")],
        onnx: Annotated[Path, typer.Option("--onnx", help="Output .onnx file (or folder/stem "
                                           "with --target all).")],
        target: Annotated[str | None, typer.Option(
            help="a2b, b2a, generator... or all (default: the model's first target).")] = None,
        opset: Annotated[int | None, typer.Option(help="ONNX opset (default: exporter's).")] = None,
        static: Annotated[bool, typer.Option("--static", help="Fixed input shape.")] = False,
        height: Annotated[int | None, typer.Option(help="Static height.")] = None,
        width: Annotated[int | None, typer.Option(help="Static width.")] = None,
        batch: Annotated[int, typer.Option(help="Static batch size.")] = 1,
        precision: Annotated[str, typer.Option(help="fp32 or fp16.")] = "fp32",
        ema: Annotated[bool | None, typer.Option("--ema/--no-ema", help="EMA weights.")] = None,
        verify: Annotated[bool, typer.Option("--verify/--no-verify",
                                             help="Check against PyTorch.")] = True,
        atol: Annotated[float | None, typer.Option(help="Max abs error allowed.")] = None,
    ) -> None:
        """Export, verify in onnxruntime against PyTorch, and only then replace the file."""
        from ..export import export_onnx

        if precision not in ("fp32", "fp16"):
            raise typer.BadParameter("use fp32 or fp16", param_hint="--precision")
        static_shape = None
        if static:
            if height is None or width is None:
                raise typer.BadParameter("--static needs --height and --width (and --batch)",
                                         param_hint="--static")
            static_shape = (batch, height, width)
        results = export_onnx(source, onnx, target=target, opset=opset, dynamic=not static,
                              static_shape=static_shape, precision=precision, ema=ema,
                              verify=verify, atol=atol)
        for r in results:
            check = ("not verified" if r.worst_error is None
                     else f"max abs error {r.worst_error:.2g} over {len(r.max_abs_error)} shapes")
            console.print(f"[green]{r.target}[/green] -> {r.path} ({r.precision}, {check}, "
                          f"{r.elapsed:.1f}s)", highlight=False)
