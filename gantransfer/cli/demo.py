"""`gtx demo`: train on built-in data, translate held-out images, score against ground truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ._console import console
from ._options import Overwrite

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for data, run and results.")]
    = Path("gtx-demo"),
    arch: Annotated[str, typer.Option("--arch", "--model", help="cyclegan (translation), dcgan "
                                      "(unconditional generation), dcgan_conditional (one class "
                                      "per grid row) or stargan (one generator, four styles)."
                                      )] = "cyclegan",
    steps: Annotated[int | None, typer.Option(help="Override the number of training steps.")]
    = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "cpu",
    precision: Annotated[str, typer.Option(help="fp32, bf16, auto (bf16 where native) or fp16 (CUDA).")] = "fp32",
    seed: Annotated[int, typer.Option()] = 0,
    progress: Annotated[str, typer.Option(help="auto, bar, log or none.")] = "auto",
    overwrite: Overwrite = False,
) -> None:
    """Train a small model on procedurally generated data (no download) and show the result.

    An earlier demo's outputs in --out are not replaced without --overwrite (its run is then
    moved aside, never deleted)."""
    from ..demo import run_demo
    from ._progress import training_callbacks

    start = time.perf_counter()
    console.print(f"[bold]gtx demo[/bold]: {arch} on built-in data in {out}/ (device {device})")
    result = run_demo(out, architecture=arch, steps=steps, device=device, precision=precision,
                      seed=seed, callbacks=training_callbacks(progress), overwrite=overwrite)
    minutes = (time.perf_counter() - start) / 60
    console.print(f"trained in {minutes:.1f} min; run directory: {result.run_dir}")
    if result.samples:
        console.print(f"sample grids: {result.samples[0].parent}/ (latest: {result.samples[-1].name})")
    model_db, identity_db = result.psnr_model, result.psnr_identity
    if result.comparison is not None and model_db is not None and identity_db is not None:
        # (the demo sets the three together)
        layout = ("photo, then translated | ground truth per style" if "per_style" in result.extra
                  else "input | translated | ground truth")
        console.print(f"held-out comparison ({layout}): {result.comparison}")
        for style, (style_db, style_identity_db) in result.extra.get("per_style", {}).items():
            console.print(f"  style {style}: translated {style_db:.2f} dB vs identity "
                          f"{style_identity_db:.2f} dB ({style_db - style_identity_db:+.2f} dB)",
                          highlight=False)
        gain = model_db - identity_db
        console.print(f"PSNR against ground truth: translated [bold]{model_db:.2f} dB[/bold]"
                      f" vs identity baseline {identity_db:.2f} dB ({gain:+.2f} dB)")
    if "onnx" in result.extra:
        console.print(f"ONNX export: {result.extra['onnx']} (max abs error vs PyTorch "
                      f"{result.extra['onnx_error']:.1e})")
