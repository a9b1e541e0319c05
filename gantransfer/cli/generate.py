"""`gtx generate SOURCE -n 64 -o grid.png`: a grid of samples from a latent generator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from ._console import console

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate_cmd(
        source: Annotated[Path, typer.Argument(help="Run directory, checkpoint, or .onnx file.")],
        n: Annotated[int, typer.Option("-n", min=1, help="Number of images.")] = 64,
        out: Annotated[Path, typer.Option("--out", "-o", help="Grid PNG to write.")] = Path(
            "grid.png"),
        seed: Annotated[int, typer.Option(help="Noise seed (same seed, same images).")] = 0,
        target: Annotated[str | None, typer.Option(help="Latent export target.")] = None,
        device: Annotated[str, typer.Option(
            help="PyTorch device: auto, cpu, cuda, cuda:N or mps.")] = "auto",
        providers: Annotated[str, typer.Option(help="onnxruntime providers (auto, cpu,...).")
                             ] = "auto",
        ema: Annotated[bool | None, typer.Option("--ema/--no-ema", help="EMA weights.")] = None,
    ) -> None:
        """Draw N images and write them as one square-ish grid PNG."""
        import torch

        from ..engine.grid import save_grid
        from .translate import open_source

        src = open_source(source, device=device, providers=providers, ema=ema)
        gen = torch.Generator().manual_seed(seed)
        if src.kind == "onnx":
            images = src.model.generate(n, generator=gen)
        else:
            from ..inference import generate

            images = generate(src.model, n, target=target, generator=gen).cpu()
        cols = math.ceil(math.sqrt(n))
        rows = {f"row{i}": images[i : i + cols] for i in range(0, n, cols)}
        path = save_grid(rows, out)
        console.print(f"[green]wrote {n} image(s) as a {len(rows)}x{cols} grid to {path}[/green]",
                      highlight=False)
