"""`gtx generate SOURCE -n 64 -o grid.png`: samples from a latent generator, as one grid PNG or
as one PNG per image in a folder (``-o DIR``, streamed in batches: any ``-n`` in bounded memory).

Noise is drawn ``_CHUNK`` rows at a time from one seeded generator; chunks of 64 rows give the
very numbers one ``torch.randn(n, latent_dim)`` would (torch fills normals 16 at a time), so image
``i`` of a seed is the same in a grid, in a folder, and through ``gantransfer.inference.generate``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._console import console
from ._options import Overwrite, SkipExisting, existing_from_flags

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import Tensor

    from ..inference import Source

__all__ = ["GRID_MAX_PIXELS", "register"]

# A grid is built in memory (float32 images, then the uint8 canvas): about 70 bytes per grid
# pixel at the peak (measured: 4096 images of 64x64, 16.8 megapixels, peaked at 1.53 GB RSS,
# one image at 0.35 GB). 64 images of 64x64 (the default -n) are 0.26 megapixels.
GRID_MAX_PIXELS = 1 << 24
_GRID_BYTES_PER_PIXEL = 70
_CHUNK = 64  # images drawn, run and written at a time


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)


def generate_cmd(
    source: Annotated[Path, typer.Argument(help="Run directory, checkpoint, or .onnx file.")],
    n: Annotated[int, typer.Option("-n", min=1, help="Number of images.")] = 64,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="A .png file: one grid of all images (up to 16 megapixels). A "
                            "folder (no extension): one PNG per image, any -n.")] = Path("grid.png"),
    seed: Annotated[int, typer.Option(help="Noise seed (same seed, same images).")] = 0,
    target: Annotated[str | None, typer.Option(help="Latent export target.")] = None,
    device: Annotated[str, typer.Option(
        help="PyTorch device: auto, cpu, cuda, cuda:N or mps.")] = "auto",
    providers: Annotated[str, typer.Option(help="onnxruntime providers (auto, cpu,...).")
                         ] = "auto",
    ema: Annotated[bool | None, typer.Option("--ema/--no-ema", help="EMA weights.")] = None,
    label: Annotated[str | None, typer.Option(
        "--label", help="Class of a class-conditional model (name or index). Without it such a "
                        "model draws N images of every class: a grid with one row per class, "
                        "or one subfolder per class.")] = None,
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
) -> None:
    """Draw N images and write them as one square-ish grid PNG, or one PNG each into a folder."""
    from ..inference import open_source
    from ..targets import resolve_label

    src = open_source(source, device=device, providers=providers, ema=ema)
    names = src.model.label_names
    if names is None or label is not None:
        index = None if label is None else resolve_label(label, names, source=src.description)
        _generate(src, source, n=n, out=out, seed=seed, target=target, label=index,
                  overwrite=overwrite, skip_existing=skip_existing)
        return
    to_folder = out.suffix == "" or out.is_dir()
    if to_folder:  # one subfolder per class
        for k, name in enumerate(names):
            _generate(src, source, n=n, out=out / name, seed=seed, target=target, label=k,
                      overwrite=overwrite, skip_existing=skip_existing)
        return
    _grid_per_label(src, source, names, n=n, out=out, seed=seed, target=target,
                    existing=existing_from_flags(overwrite, skip_existing))


def _grid_per_label(src: Source, source: Path, names: tuple[str, ...], *, n: int, out: Path,
                    seed: int, target: str | None, existing: str) -> None:
    """One grid, one row of ``n`` images per class, the same noise in every row."""
    import torch

    from .._io import remove_stale_temps
    from .._outputs import select_outputs
    from ..engine.grid import save_grid

    inputs = [source] if source.is_file() else []
    if not any(select_outputs([out], inputs=inputs, existing=existing)):  # type: ignore[arg-type]
        console.print(f"[green]nothing to do[/green]: {out} exists (--skip-existing)",
                      highlight=False)
        return
    rows: dict[str, Tensor] = {}
    for k, name in enumerate(names):
        parts = [images for _, images in _batches(
            src, n, target=target, generator=torch.Generator().manual_seed(seed), wanted=None,
            label=k)]
        if not rows:
            _check_grid(n * len(names), rows=len(names), cols=n,
                        size=(parts[0].shape[-2], parts[0].shape[-1]))
        rows[name] = torch.cat(parts)
    remove_stale_temps(out.parent, name=out.name)
    save_grid(rows, out)
    console.print(f"[green]wrote {n} image(s) of each of {len(names)} classes "
                  f"({', '.join(names)}) as a grid, one row per class, to {out}[/green]",
                  highlight=False)


def _generate(src: Source, source: Path, *, n: int, out: Path, seed: int, target: str | None,
              label: int | None, overwrite: bool, skip_existing: bool) -> None:
    """N images (of class ``label`` for a conditional model) as a grid or a folder."""
    import torch

    from .._outputs import select_outputs

    existing = existing_from_flags(overwrite, skip_existing)
    to_folder = out.suffix == "" or out.is_dir()
    paths = _file_names(out, n) if to_folder else [out]
    inputs = [source] if source.is_file() else []
    keep = select_outputs(paths, inputs=inputs, existing=existing)
    if not any(keep):
        console.print(f"[green]nothing to do[/green]: {out} has all {n} image(s) "
                      "(--skip-existing)", highlight=False)
        return
    batches = _batches(src, n, target=target, generator=torch.Generator().manual_seed(seed),
                       wanted=keep if to_folder else None, label=label)
    if to_folder:
        written = _write_files(batches, paths, keep)
        console.print(f"[green]wrote {written} image(s) to {out}[/green]"
                      + (f", kept {n - written} existing" if written < n else ""),
                      highlight=False)
    else:
        rows, cols = _write_grid(batches, n, out)
        console.print(f"[green]wrote {n} image(s) as a {rows}x{cols} grid to {out}[/green]",
                      highlight=False)


def _file_names(folder: Path, n: int) -> list[Path]:
    width = max(6, len(str(n - 1)))
    return [folder / f"{i:0{width}d}.png" for i in range(n)]


def _batches(src: Source, n: int, *, target: str | None, generator: torch.Generator,
             wanted: list[bool] | None, label: int | None = None
             ) -> Iterator[tuple[int, Tensor]]:
    """``(first index, images)`` per chunk; chunks with nothing ``wanted`` are not run (their
    noise is still drawn, so every other image stays the same). ``label``: the class of every
    image of a class-conditional model."""
    import torch

    from ..inference import latent_generator

    if src.kind == "onnx" and src.model.metadata.input_kind != "latent":
        raise ValueError(f"{src.description} translates images; `gtx generate` needs a latent "
                         "generator (use `gtx translate` for this file)")
    latent_dim, run = latent_generator(src.model, target=target)
    for start in range(0, n, _CHUNK):
        z = torch.randn(min(_CHUNK, n - start), latent_dim, generator=generator)
        if wanted is None or any(wanted[start : start + len(z)]):
            yield start, run(z) if label is None else run(z, label=label)


def _write_files(batches: Iterator[tuple[int, Tensor]], paths: list[Path], keep: list[bool]
                 ) -> int:
    from PIL import Image

    from .._io import remove_stale_temps
    from ..inference.images import from_batch
    from ..inference.pipeline import save_image

    remove_stale_temps(paths[0].parent)
    written = 0
    for start, images in batches:
        for offset, pixels in enumerate(from_batch(images)):
            if keep[start + offset]:
                save_image(Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels),
                           paths[start + offset])
                written += 1
    return written


def _write_grid(batches: Iterator[tuple[int, Tensor]], n: int, out: Path) -> tuple[int, int]:
    """Collect the images into one grid PNG; refuses (before drawing more than one chunk) a grid
    past ``GRID_MAX_PIXELS``. Returns (rows, columns)."""
    import torch

    from .._io import remove_stale_temps
    from ..engine.grid import save_grid

    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    parts: list[Tensor] = []
    for _, images in batches:
        if not parts:
            _check_grid(n, rows=rows, cols=cols, size=(images.shape[-2], images.shape[-1]))
        parts.append(images)
    grid = torch.cat(parts)
    remove_stale_temps(out.parent, name=out.name)
    save_grid({f"row{i}": grid[i : i + cols] for i in range(0, n, cols)}, out)
    return rows, cols


def _check_grid(n: int, *, rows: int, cols: int, size: tuple[int, int]) -> None:
    h, w = size
    pixels = rows * h * cols * w
    if pixels <= GRID_MAX_PIXELS:
        return
    fits = max(1, math.isqrt(GRID_MAX_PIXELS // (h * w))) ** 2
    raise ValueError(
        f"a grid of {n} images of {h}x{w} would be {cols * w}x{rows * h} pixels "
        f"({pixels / 1e6:.0f} megapixels, about {pixels * _GRID_BYTES_PER_PIXEL / 2**30:.1f} GiB "
        "of memory to build); "
        f"grids are limited to {GRID_MAX_PIXELS / 1e6:.1f} megapixels (about {fits} images of "
        "this size). Write one PNG per image instead: -o DIR (a folder; streamed in batches, "
        "any -n), or lower -n")
