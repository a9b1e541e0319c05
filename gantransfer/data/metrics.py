"""Image quality metrics used to score translations against ground truth (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["psnr"]


def _to_unit(x: Any) -> np.ndarray:
    """uint8 arrays -> [0, 1]; float arrays/tensors are taken as [-1, 1] and mapped to [0, 1]."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if np.issubdtype(x.dtype, np.floating):
        return (x.astype(np.float64) + 1.0) / 2.0
    raise TypeError(f"psnr expects uint8 images or float images in [-1, 1], got dtype {x.dtype}")


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio in dB between two images (or batches) of the same shape.

    Inputs are uint8 (0..255) or floating point in [-1, 1] (numpy arrays or torch tensors; the two
    may differ in type). PSNR = 10 log10(1 / MSE) on the [0, 1] scale; identical inputs give
    ``inf``.

    Raises:
        ValueError: when the shapes differ.
        TypeError: for other dtypes.
    """
    ua, ub = _to_unit(a), _to_unit(b)
    if ua.shape != ub.shape:
        raise ValueError(f"psnr needs equal shapes, got {ua.shape} and {ub.shape}")
    mse = float(np.mean((ua - ub) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * float(np.log10(1.0 / mse))
