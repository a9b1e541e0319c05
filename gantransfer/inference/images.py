"""Images in, padded batches out, and back: the conversion and padding every backend shares.

Accepted image inputs (a translator's output mirrors the type):

* a PIL image -> a PIL image (mode ``L`` or ``RGB``);
* a ``HxWxC`` (or ``HxW``) ``uint8`` numpy array -> a ``HxWxC`` ``uint8`` array;
* a ``CxHxW`` or ``NxCxHxW`` float tensor in [-1, 1] -> a tensor of the same rank and device;
* a list of any of those -> a list.

:func:`to_batch` turns one input into an ``NxCxHxW`` float32 batch in [-1, 1] (the channel rules
of the data layer, :func:`gantransfer.pixels.from_uint8`) and gives the function that turns the
generator's output back into the input's type; :func:`pad_to_multiple` pads a batch by
reflection to a size the generator accepts (its size divisor, minimum size, and the shape bucket)
and :func:`crop_to` crops the output back. The PyTorch and the onnxruntime backends, and the
folder pipeline, all use these, so they give the same pixels for the same input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..pixels import from_uint8, to_uint8

__all__ = [
    "BUCKET_RELATIVE",
    "bucket_size",
    "crop_to",
    "from_batch",
    "output_pixels",
    "pad_to_multiple",
    "padded_input",
    "padded_size",
    "to_batch",
    "to_channels",
]

BUCKET_RELATIVE = 0  # bucket value for steps relative to the size (see bucket_size)


# -- padding -----------------------------------------------------------------------------------
def _relative_step(side: int, divisor: int) -> int:
    # The largest power of two <= side/8: padding stays under 1/8 of the side, while sides
    # within an octave share at most 8 steps.
    power = 1 << max(0, (max(side, 1) // 8).bit_length() - 1)
    return math.lcm(max(divisor, 1), power)


def bucket_size(h: int, w: int, *, divisor: int, min_size: int = 1, bucket: int = 1
                ) -> tuple[int, int]:
    """The padded (H, W) an ``h x w`` image runs at, at least ``min_size`` and a multiple of
    ``divisor`` (what the generator needs) and of the bucket step, so that many sizes share one
    compiled shape.

    ``bucket`` is the step in pixels (``1``: pad to the divisor only), or ``0``
    (``BUCKET_RELATIVE``) for a step per side of the largest power of two <= side / 8: padding
    then stays under 12.5 % of each side (a 256 side stays 256, 500 -> 512, 375 -> 384). Padding
    is not free: instance normalisation sees the reflected border, so a bucketed output differs
    slightly from an unbucketed one, and more the larger the padded fraction.
    """
    if bucket < 0:
        raise ValueError(f"bucket must be >= 0 (0: relative steps), got {bucket}")

    def side(n: int) -> int:
        step = _relative_step(n, divisor) if bucket == BUCKET_RELATIVE else math.lcm(
            max(divisor, 1), bucket)
        floor = math.ceil(max(min_size, 1) / step) * step
        return max(math.ceil(n / step) * step, floor)

    return side(h), side(w)



def padded_size(h: int, w: int, divisor: int, min_size: int = 1) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) and >= ``min_size`` that are multiples of ``divisor``
    (:func:`bucket_size` without a bucket)."""
    return bucket_size(h, w, divisor=divisor, min_size=min_size)


def _reflect_pad(x: Tensor | np.ndarray, bottom: int, right: int) -> Tensor | np.ndarray:
    """Reflect-pad the bottom/right of an NCHW tensor or array by any amount.

    ``F.pad(mode="reflect")`` needs the pad to be smaller than the side, so a large pad (a tiny
    image) is applied in several reflections; a side of length 1 has nothing to reflect and is
    replicated instead. numpy arrays are padded with numpy (the same values), so that threads
    preparing images never enter torch's OpenMP pool while the model runs on it.
    """
    is_numpy = isinstance(x, np.ndarray)

    def pad(t: Any, b: int, r: int, mode: str) -> Any:
        if is_numpy:
            return np.pad(t, ((0, 0), (0, 0), (0, b), (0, r)),
                          mode="edge" if mode == "replicate" else "reflect")
        return F.pad(t, (0, r, 0, b), mode=mode)

    while bottom > 0 or right > 0:
        h, w = x.shape[-2:]
        if (bottom and h == 1) or (right and w == 1):
            rb, rr = (bottom if h == 1 else 0), (right if w == 1 else 0)
            x = pad(x, rb, rr, "replicate")
            bottom, right = bottom - rb, right - rr
            continue
        pb, pr = min(bottom, h - 1), min(right, w - 1)
        x = pad(x, pb, pr, "reflect")
        bottom, right = bottom - pb, right - pr
    return x


@overload
def pad_to_multiple(x: Tensor, divisor: int, min_size: int = 1, *, bucket: int = 1
                    ) -> tuple[Tensor, tuple[int, int]]: ...
@overload
def pad_to_multiple(x: np.ndarray, divisor: int, min_size: int = 1, *, bucket: int = 1
                    ) -> tuple[np.ndarray, tuple[int, int]]: ...
def pad_to_multiple(x: Tensor | np.ndarray, divisor: int, min_size: int = 1, *, bucket: int = 1
                    ) -> tuple[Tensor | np.ndarray, tuple[int, int]]:
    """Pad an ``NxCxHxW`` batch at the bottom/right by reflection to a size the generator accepts.

    Returns the padded batch (same type as ``x``: tensor or numpy array) and the original
    ``(h, w)`` to crop back to with :func:`crop_to`. Any input size works, even 1x1. ``bucket``
    pads further, to multiples of it (see :func:`bucket_size`), so many sizes share a shape.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph, pw = bucket_size(h, w, divisor=divisor, min_size=min_size, bucket=bucket)
    if (ph, pw) == (h, w):
        return x, (h, w)
    return _reflect_pad(x, ph - h, pw - w), (h, w)


@overload
def crop_to(y: Tensor, size: tuple[int, int], padded: tuple[int, int]) -> Tensor: ...
@overload
def crop_to(y: np.ndarray, size: tuple[int, int], padded: tuple[int, int]) -> np.ndarray: ...
def crop_to(y: Tensor | np.ndarray, size: tuple[int, int], padded: tuple[int, int]
            ) -> Tensor | np.ndarray:
    """Crop a generator output back to the input's size.

    ``padded`` is the (H, W) that went into the generator; an output at a different scale (e.g. a
    2x upsampler) is cropped to the same fraction of the picture.
    """
    sy, sx = y.shape[-2] / padded[0], y.shape[-1] / padded[1]
    return y[..., : round(size[0] * sy), : round(size[1] * sx)]


def padded_input(pixels: np.ndarray, *, divisor: int, min_size: int = 1, bucket: int = 1
                 ) -> tuple[Tensor, tuple[int, int]]:
    """A decoded ``HxWxC`` (or ``HxW``) ``uint8`` image as the ``1xCxHxW`` float32 batch in
    [-1, 1] a translator runs, padded like :func:`pad_to_multiple`, and its ``(h, w)`` for
    :func:`crop_to`. The folder pipeline, the server and video frames all prepare images here.

    Only numpy work (the tensor shares the array's memory): torch ops in decoding threads would
    start OpenMP teams that fight the model's threads for the cores. The channel count is the
    caller's (decode to the translator's channels first).
    """
    arr = pixels[:, :, None] if pixels.ndim == 2 else pixels
    x, size = pad_to_multiple(from_uint8(arr.transpose(2, 0, 1)[None]), divisor, min_size,
                              bucket=bucket)
    return torch.from_numpy(np.ascontiguousarray(x)), size


def output_pixels(y: Tensor) -> np.ndarray:
    """The first image of an ``NxCxHxW`` output batch in [-1, 1] (on the CPU) as ``uint8``
    pixels for PIL: ``HxW`` for one channel, else ``HxWxC``."""
    arr = to_uint8(y[0].numpy()).transpose(1, 2, 0)
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


# -- conversion ------------------------------------------------------------------------------
def to_channels(x: Tensor, channels: int) -> Tensor:
    """Convert an NCHW batch to ``channels`` (1 or 3) with the usual image rules.

    Grey to RGB repeats the channel; RGB to grey uses ITU-R 601-2 luma (what PIL's ``L`` does);
    a 4th (alpha) channel is dropped; two channels are read as grey + alpha.
    """
    c = x.shape[1]
    if c == channels:
        return x
    if c in (2, 4):  # drop alpha
        x, c = x[:, : c - 1], c - 1
        if c == channels:
            return x
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
    raise ValueError(f"cannot convert a {c}-channel image to {channels} channels")


def to_batch(item: Any, channels: int) -> tuple[Tensor, Callable[[Tensor], Any]]:
    """Turn one input (PIL image, uint8 array, CHW/NCHW tensor) into an ``NxCxHxW`` float32
    batch in [-1, 1] with ``channels`` channels, and a function that turns the generator's output
    batch back into the input's type. Raises ``TypeError``/``ValueError`` for other inputs."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(item, Image.Image):
        from ..data.images import convert_mode  # the data layer's rules (alpha over white...)

        arr = np.asarray(convert_mode(item, channels))
        batch, back = to_batch(arr, channels)

        def back_pil(y: Tensor) -> Any:
            out = back(y)  # HxWx1 when a grey image comes out of an RGB input
            return Image.fromarray(out[:, :, 0] if out.ndim == 3 and out.shape[2] == 1 else out)

        return batch, back_pil
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise TypeError(
                f"numpy images must be HxWxC uint8 arrays, got dtype {item.dtype}; pass float "
                "data as a CxHxW torch tensor in [-1, 1] instead"
            )
        if item.ndim not in (2, 3):
            raise ValueError(f"numpy images must be HxW or HxWxC, got shape {item.shape}")
        squeeze = item.ndim == 2
        arr = item[:, :, None] if squeeze else item
        # A copy: PIL arrays are read-only.
        t = to_channels(from_uint8(torch.from_numpy(np.array(arr)).permute(2, 0, 1)[None]),
                        channels)

        def back_np(y: Tensor) -> np.ndarray:
            out = to_uint8(y[0]).permute(1, 2, 0).cpu().numpy()
            return out[:, :, 0] if squeeze and out.shape[2] == 1 else out

        return t, back_np
    if isinstance(item, Tensor):
        if item.ndim == 3:
            return to_channels(item[None].float(), channels), lambda y: y[0].to(item.dtype)
        if item.ndim == 4:
            return to_channels(item.float(), channels), lambda y: y.to(item.dtype)
        raise ValueError(f"image tensors must be CxHxW or NxCxHxW, got shape {tuple(item.shape)}")
    raise TypeError(
        f"cannot translate a {type(item).__name__}: expected a PIL image, a HxWxC uint8 numpy "
        "array, a CxHxW/NxCxHxW tensor in [-1, 1], or a list of those"
    )


def from_batch(y: Tensor) -> list[np.ndarray]:
    """An ``NxCxHxW`` batch in [-1, 1] as a list of ``HxWxC`` uint8 arrays (for saving)."""
    return list(to_uint8(y).permute(0, 2, 3, 1).cpu().numpy())
