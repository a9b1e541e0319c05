"""`gtx import-cyclegan`: convert official CycleGAN ``.pth`` weights to a gantransfer checkpoint.

The CycleGAN plugin's own ``gtx`` command, contributed through the ``gantransfer.commands``
entry-point group (docs/plugins.md): ``gtx`` calls :func:`register` with a typer app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["import_official_cyclegan", "register"]


def import_official_cyclegan(out: Path, *, g_a: Path | None = None, g_b: Path | None = None,
                             d_a: Path | None = None, d_b: Path | None = None,
                             **overrides: Any) -> Any:
    """Build a ``cyclegan`` model from official weights and save it as a checkpoint at ``out``.

    Returns the model. Raises ``ValueError``/``FileNotFoundError`` for unusable inputs.
    """
    from gantransfer.engine import save_model

    from .model import CycleGAN

    if not any((g_a, g_b, d_a, d_b)):
        raise ValueError("give at least one official weight file (G_A positional, or --g-b, "
                         "--d-a, --d-b)")
    model = CycleGAN.load_official(g_a=g_a, g_b=g_b, d_a=d_a, d_b=d_b, **overrides)
    model.arch_name = "cyclegan"  # the name this plugin registers (pyproject.toml)
    save_model(model, out, source={"official": {
        k: str(v) for k, v in {"G_A": g_a, "G_B": g_b, "D_A": d_a, "D_B": d_b}.items() if v}})
    return model


def register(app: typer.Typer) -> None:
    """Add ``import-cyclegan`` to ``app`` (the ``gantransfer.commands`` entry point)."""

    @app.command("import-cyclegan")
    def import_cyclegan(
        g_a: Annotated[Path | None, typer.Argument(
            help="Official generator G_A (A->B), e.g. latest_net_G_A.pth.")] = None,
        output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint to write.")] = Path(
            "cyclegan_official.pt"),
        g_b: Annotated[Path | None, typer.Option("--g-b", help="Official G_B (B->A).")] = None,
        d_a: Annotated[Path | None, typer.Option(
            "--d-a", help="Official D_A (judges domain B images; becomes d_b).")] = None,
        d_b: Annotated[Path | None, typer.Option(
            "--d-b", help="Official D_B (judges domain A images; becomes d_a).")] = None,
        netG: Annotated[str | None, typer.Option(
            "--netG", help="Generator (default: read from the weights).")] = None,
        ngf: Annotated[int | None, typer.Option("--ngf", help="Generator width.")] = None,
        norm: Annotated[str | None, typer.Option(
            "--norm", help="instance | batch | none (default: read from the weights).")] = None,
        dropout: Annotated[bool | None, typer.Option(
            "--dropout/--no-dropout", help="Generator dropout (official --no_dropout).")] = None,
    ) -> None:
        """Convert official CycleGAN weights (junyanz/pytorch-CycleGAN-and-pix2pix) to a
        gantransfer checkpoint usable by `gtx translate`, `gtx export` and gantransfer.load."""
        from gantransfer.cli import console

        overrides = {k: v for k, v in {"netG": netG, "ngf": ngf, "norm": norm,
                                        "dropout": dropout}.items() if v is not None}
        model = import_official_cyclegan(output, g_a=g_a, g_b=g_b, d_a=d_a, d_b=d_b, **overrides)
        c = model.config
        console.print(f"wrote {output} (cyclegan, netG={c.netG}, ngf={c.ngf}, norm={c.norm}, "
                      f"A={c.in_channels}ch, B={c.out_channels}ch)")
