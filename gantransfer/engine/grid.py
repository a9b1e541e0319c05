"""Sample grids: one row per entry of ``model.sample()``, the images of a row side by side."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .._io import atomic_path
from ..pixels import to_uint8

__all__ = ["make_grid", "save_grid"]


def make_grid(rows: dict[str, Tensor]) -> Tensor:
    """Stack ``{row: N×C×H×W in [-1, 1]}`` into one ``H_total×W_total×C`` uint8 tensor.

    Rows are laid out top to bottom in dict order, images left to right without gaps. Rows may
    differ in channel count (1 or 3: grayscale rows are repeated to RGB) and in N (short rows are
    padded with black); all images must share H×W.

    Raises:
        ValueError: no rows, a tensor that is not N×C×H×W with C in (1, 3), or mixed sizes.
    """
    if not rows:
        raise ValueError("model.sample() returned no rows; it must return {name: N×C×H×W}")
    tensors = []
    for name, t in rows.items():
        if t.ndim != 4 or t.shape[1] not in (1, 3):
            raise ValueError(
                f"sample row {name!r} has shape {tuple(t.shape)}; expected N×C×H×W with C 1 or 3"
            )
        tensors.append(t.detach().float().cpu())
    size = tensors[0].shape[-2:]
    if any(t.shape[-2:] != size for t in tensors):
        shapes = {n: tuple(t.shape) for n, t in rows.items()}
        raise ValueError(f"sample rows must share one image size, got {shapes}")
    rgb = any(t.shape[1] == 3 for t in tensors)
    width = max(t.shape[0] for t in tensors)
    lines = []
    for t in tensors:
        if rgb and t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        if t.shape[0] < width:
            pad = torch.full((width - t.shape[0], *t.shape[1:]), -1.0)
            t = torch.cat([t, pad])
        lines.append(torch.cat(list(t), dim=2))  # C×H×(N·W)
    grid = torch.cat(lines, dim=1)  # C×(R·H)×(N·W)
    return to_uint8(grid).permute(1, 2, 0)


def save_grid(rows: dict[str, Tensor], path: str | os.PathLike[str]) -> Path:
    """Write :func:`make_grid` of ``rows`` to ``path`` as PNG, atomically; returns the path."""
    from PIL import Image

    pixels = make_grid(rows).numpy()
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
