"""The one conversion between 8-bit pixels and the [-1, 1] floats every network sees.

``from_uint8``: 0 -> -1.0, 255 -> 1.0 (``x / 127.5 - 1``). ``to_uint8``: clamped to [-1, 1], then
``(x + 1) * 127.5`` rounded half to even. Both work elementwise on numpy arrays and torch tensors
of any shape (``HxW``, ``HxWxC``, ``CxHxW``, ``NxCxHxW``: the layout is the caller's), return the
input's kind, and give the same values for both kinds, so images read by the data layer, by
inference, by int8 calibration and written to sample grids, files and metrics all agree::

    >>> from gantransfer.pixels import from_uint8, to_uint8
    >>> x = from_uint8(np.asarray(image))      # HxWxC float32 in [-1, 1]
    >>> png = to_uint8(generator(batch))       # NxCxHxW uint8

float32 is the working precision (float64 input stays float64; float16/bfloat16 input is widened
to float32 first: their 8-11 significant bits cannot hold 255 levels and their halves).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch

__all__ = ["from_uint8", "to_uint8"]

_SCALE = 127.5


@overload
def from_uint8(pixels: np.ndarray) -> np.ndarray: ...
@overload
def from_uint8(pixels: torch.Tensor) -> torch.Tensor: ...
def from_uint8(pixels: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``uint8`` pixels (0..255) -> float32 values in [-1, 1], same shape and kind.

    Raises:
        TypeError: the input is not ``uint8`` (numpy array or torch tensor).
    """
    if isinstance(pixels, np.ndarray):
        if pixels.dtype != np.uint8:
            raise TypeError(f"from_uint8 expects uint8 pixels, got a {pixels.dtype} array")
        return pixels.astype(np.float32) / np.float32(_SCALE) - np.float32(1.0)
    if isinstance(pixels, torch.Tensor):
        if pixels.dtype != torch.uint8:
            raise TypeError(f"from_uint8 expects uint8 pixels, got a {pixels.dtype} tensor")
        # A new float tensor (never the input), so the in-place steps are safe.
        return pixels.to(torch.float32).div_(_SCALE).sub_(1.0)
    raise TypeError(f"from_uint8 expects a numpy array or torch tensor, got "
                    f"{type(pixels).__name__}")


@overload
def to_uint8(images: np.ndarray) -> np.ndarray: ...
@overload
def to_uint8(images: torch.Tensor) -> torch.Tensor: ...
def to_uint8(images: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Floating-point images in [-1, 1] -> ``uint8`` pixels, same shape and kind (a tensor stays
    on its device; gradients are not tracked). Values outside [-1, 1] are clamped; ties round to
    even (``0.0`` -> 128, like ``round(127.5)``).

    Raises:
        TypeError: the input is not floating point (numpy array or torch tensor).
    """
    if isinstance(images, np.ndarray):
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(f"to_uint8 expects float images in [-1, 1], got a {images.dtype} "
                            "array")
        x = images if images.dtype in (np.float32, np.float64) else images.astype(np.float32)
        return np.rint((np.clip(x, -1.0, 1.0) + 1.0) * _SCALE).astype(np.uint8)
    if isinstance(images, torch.Tensor):
        if not images.is_floating_point():
            raise TypeError(f"to_uint8 expects float images in [-1, 1], got a {images.dtype} "
                            "tensor")
        t = images.detach()
        if t.dtype != torch.float64:
            t = t.float()
        return ((t.clamp(-1, 1) + 1) * _SCALE).round().to(torch.uint8)
    raise TypeError(f"to_uint8 expects a numpy array or torch tensor, got {type(images).__name__}")
