"""Check an exported ONNX file against the PyTorch generator in onnxruntime (CPU provider)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch

from ..targets import ExportSpec

__all__ = ["DEFAULT_ATOL", "ExportVerificationError", "compare", "verification_shapes"]

# Max abs error allowed on outputs in [-1, 1]. fp16 rounds every activation to ~3 decimal digits.
DEFAULT_ATOL = {"fp32": 1e-4, "fp16": 2e-2}


class ExportVerificationError(RuntimeError):
    """The ONNX file disagrees with PyTorch (or produced NaN/Inf); it was not written."""


def verification_shapes(spec: ExportSpec, *, static_shape: tuple[int, ...] | None
                        ) -> list[tuple[int, ...]]:
    """Input shapes to verify: batch 1 and 2, square and non-square, multiples of the divisor."""
    if spec.input == "latent":
        if static_shape is not None:
            return [(static_shape[0], int(spec.latent_dim or 0))]
        return [(1, int(spec.latent_dim or 0)), (2, int(spec.latent_dim or 0))]
    c = spec.in_channels
    if static_shape is not None:
        b, h, w = static_shape
        return [(b, c, h, w)]
    d = spec.size_divisor
    s = d * max(math.ceil(spec.min_size / d), 2)
    big = d * max(math.ceil(40 / d), s // d + 1)  # a mid-size, non-square image
    return [(1, c, s, s), (2, c, s, s + d), (1, c, big, s + 2 * d)]


def compare(path: str | os.PathLike[str], reference: Callable[..., torch.Tensor], *,
            spec: ExportSpec, shapes: list[tuple[int, ...]], atol: float, label: str = ""
            ) -> dict[str, float]:
    """Run ``path`` in onnxruntime (CPU) and ``reference`` on the same random inputs.

    Returns ``{"1x3x8x8": max_abs_error, ...}`` (``"1x3x8x8@monet"`` per label for a
    conditional generator: ``reference(x, labels)`` is checked for every label of
    ``spec.labels``). Raises :class:`ExportVerificationError` when an
    output shape differs, any value is NaN/Inf, or an error exceeds ``atol``.
    """
    from ..inference.onnx_backend import open_session

    session = open_session(path)  # the CPU provider, errors-only logging
    names = [i.name for i in session.get_inputs()]
    gen = torch.Generator().manual_seed(0)
    errors: dict[str, float] = {}
    # A conditional generator is checked for every label (every row of a batch the same label).
    cases = [(shape, None) for shape in shapes] if spec.labels is None else [
        (shape, k) for shape in shapes for k in range(len(spec.labels))]
    for shape, k in cases:
        if spec.input == "latent":
            x = torch.randn(*shape, generator=gen)
        else:
            x = torch.rand(*shape, generator=gen) * 2 - 1
        feed = {names[0]: x.numpy()}
        with torch.no_grad():
            if k is None:
                expected = reference(x).float().cpu().numpy()
            else:
                labels = torch.full((shape[0],), k, dtype=torch.long)
                feed[names[1]] = labels.numpy()
                expected = reference(x, labels).float().cpu().numpy()
        got = session.run(None, feed)[0]
        key = "x".join(map(str, shape))
        if k is not None:
            key += f"@{spec.labels[k]}"  # type: ignore[index]
        if got.shape != expected.shape:
            raise ExportVerificationError(
                f"{label}: ONNX output shape {got.shape} != PyTorch {expected.shape} for input "
                f"{key}"
            )
        if not np.isfinite(got).all():
            raise ExportVerificationError(f"{label}: ONNX output has NaN/Inf for input {key}")
        errors[key] = float(np.abs(got.astype(np.float64) - expected).max())
        if errors[key] > atol:
            raise ExportVerificationError(
                f"{label}: max abs error {errors[key]:.3g} > tolerance {atol:g} for input {key} "
                "(the existing file, if any, was left untouched; raise atol= / --atol if this "
                "difference is acceptable)"
            )
    return errors
