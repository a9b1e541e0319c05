"""`gtx export RUN_OR_CKPT --onnx PATH`: verified ONNX export of a model's generators
(fp32, fp16, or int8 calibrated on a folder of images with ``--int8 --calib DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ._console import console
from ._options import Download, Overwrite, SkipExisting, download_if_asked, existing_from_flags

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        source: Annotated[Path, typer.Argument(
            help="Run directory, checkpoint, pretrained name (cyclegan/style_monet) or "
                 "hf://user/repo.")],
        onnx: Annotated[Path, typer.Option("--onnx", help="Output .onnx file (or folder/stem "
                                           "with --target all).")],
        target: Annotated[str | None, typer.Option(
            help="a2b, b2a, generator... or all (default: the model's first target).")] = None,
        opset: Annotated[int | None, typer.Option(
            help="ONNX opset (default: the exporter's, 18); others from 18 to what the "
                 "installed onnxruntime loads.")] = None,
        static: Annotated[bool, typer.Option("--static", help="Fixed input shape.")] = False,
        height: Annotated[int | None, typer.Option(help="Static height.")] = None,
        width: Annotated[int | None, typer.Option(help="Static width.")] = None,
        batch: Annotated[int, typer.Option(help="Static batch size.")] = 1,
        precision: Annotated[str, typer.Option(help="fp32 or fp16.")] = "fp32",
        ema: Annotated[bool | None, typer.Option("--ema/--no-ema", help="EMA weights.")] = None,
        verify: Annotated[bool, typer.Option("--verify/--no-verify",
                                             help="Check against PyTorch.")] = True,
        atol: Annotated[float | None, typer.Option(help="Max abs error allowed.")] = None,
        int8: Annotated[bool, typer.Option(
            "--int8", help="Static int8 quantisation for CPU inference (needs --calib).")] = False,
        calib: Annotated[Path | None, typer.Option(
            help="int8: folder of real input images to calibrate on (recursive).")] = None,
        calib_count: Annotated[int | None, typer.Option(
            help="int8: calibration images to use (default 32).")] = None,
        calib_size: Annotated[int | None, typer.Option(
            help="int8: calibration image size (default: the training crop, else 256).")] = None,
        min_psnr: Annotated[float | None, typer.Option(
            help="int8: refuse below this PSNR (dB) vs fp32 (default 40).")] = None,
        overwrite: Overwrite = False,
        skip_existing: SkipExisting = False,
        download: Download = False,
    ) -> None:
        """Export, verify in onnxruntime against PyTorch, and only then write the file (an
        existing file is replaced only with --overwrite)."""
        from ..export import export_onnx
        from ..export.exporter import check_opset

        try:  # a usage error (exit 2) before the model is even loaded
            check_opset(opset)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--opset") from exc
        existing = existing_from_flags(overwrite, skip_existing)
        if precision not in ("fp32", "fp16"):
            raise typer.BadParameter("use fp32 or fp16", param_hint="--precision")
        file_precision: Literal["fp32", "fp16", "int8"] = "fp16" if precision == "fp16" else "fp32"
        if int8:
            if precision != "fp32":
                raise typer.BadParameter(f"--int8 cannot be combined with --precision "
                                         f"{precision}; choose one", param_hint="--int8")
            if calib is None:
                raise typer.BadParameter("--int8 needs --calib DIR, a folder of real input "
                                         "images for the generator", param_hint="--calib")
            file_precision = "int8"
        elif any(v is not None for v in (calib, calib_count, calib_size, min_psnr)):
            raise typer.BadParameter("--calib, --calib-count, --calib-size and --min-psnr "
                                     "only apply with --int8", param_hint="--int8")
        static_shape = None
        if static:
            if height is None or width is None:
                raise typer.BadParameter("--static needs --height and --width (and --batch)",
                                         param_hint="--static")
            static_shape = (batch, height, width)
        download_if_asked(source, download)
        results = export_onnx(source, onnx, target=target, opset=opset, dynamic=not static,
                              static_shape=static_shape, precision=file_precision, ema=ema,
                              verify=verify, atol=atol, calib=calib, calib_count=calib_count,
                              calib_size=calib_size, min_psnr=min_psnr, existing=existing)
        if not results:
            console.print(f"[green]nothing to do[/green]: the ONNX file(s) for {onnx} exist "
                          "(--skip-existing)", highlight=False)
        for r in results:
            check = ("not verified" if r.worst_error is None
                     else f"max abs error {r.worst_error:.2g} over {len(r.max_abs_error)} shapes")
            if r.psnr is not None:
                held = (", none held out (fewer than 5 images)" if r.heldout_psnr is None
                        else f", {r.heldout_psnr:.2f} dB on held-out images")
                check = (f"PSNR vs fp32 {r.psnr:.2f} dB on calibration images{held}; ran at "
                         f"{len(r.max_abs_error)} shapes")
            console.print(f"[green]{r.target}[/green] -> {r.path} ({r.precision}, {check}, "
                          f"{r.elapsed:.1f}s)", highlight=False)
