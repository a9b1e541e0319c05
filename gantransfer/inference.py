"""Torch-side inference shared by every architecture: translate images, generate from latents.

The image plumbing here (input conversion, channel rules, padding to the generator's size divisor,
batching by size, cropping back) is also what the onnxruntime runtime uses
(:mod:`gantransfer.export.runtime`), so both paths give the same pixels for the same input.

Accepted image inputs (the output mirrors the type):

* a PIL image -> a PIL image (mode ``L`` or ``RGB``);
* a ``HxWxC`` (or ``HxW``) ``uint8`` numpy array -> a ``HxWxC`` ``uint8`` array;
* a ``CxHxW`` or ``NxCxHxW`` float tensor in [-1, 1] -> a tensor of the same rank and device;
* a list of any of those -> a list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._runner import (
    BUCKET_RELATIVE,
    INFERENCE_PRECISIONS,
    NonFiniteOutputError,
    Translator,
    bucket_size,
    check_finite,
    model_source,
    resolve_compile,
    resolve_inference_precision,
    torch_translator,
)
from ._translate_plan import compile_min_images, default_batch_size
from .pixels import from_uint8, to_uint8

if TYPE_CHECKING:  # pragma: no cover
    from .model import ExportSpec, GANModel

__all__ = [
    "BUCKET_RELATIVE",
    "INFERENCE_PRECISIONS",
    "NonFiniteOutputError",
    "Translator",
    "bucket_size",
    "check_finite",
    "compile_min_images",
    "crop_to",
    "default_batch_size",
    "from_batch",
    "generate",
    "map_images",
    "pad_to_multiple",
    "padded_size",
    "resolve_compile",
    "resolve_inference_precision",
    "resolve_target",
    "to_batch",
    "to_channels",
    "translate",
    "translator",
]

DEFAULT_BATCH_SIZE = 8


# -- padding -----------------------------------------------------------------------------------
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


def crop_to(y: Tensor | np.ndarray, size: tuple[int, int], padded: tuple[int, int]
            ) -> Tensor | np.ndarray:
    """Crop a generator output back to the input's size.

    ``padded`` is the (H, W) that went into the generator; an output at a different scale (e.g. a
    2x upsampler) is cropped to the same fraction of the picture.
    """
    sy, sx = y.shape[-2] / padded[0], y.shape[-1] / padded[1]
    return y[..., : round(size[0] * sy), : round(size[1] * sx)]


# -- conversion --------------------------------------------------------------------------------
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
        from .data.images import convert_mode  # the data layer's rules (alpha over white...)

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


def map_images(run: Callable[[Tensor], Tensor], images: Any, *, channels: int, divisor: int,
               min_size: int, batch_size: int = DEFAULT_BATCH_SIZE, bucket: int = 1) -> Any:
    """Apply an image generator ``run`` (padded NCHW float32 -> NCHW) to any supported input.

    Inputs are converted, padded to ``divisor``/``min_size`` (and ``bucket``, see
    :func:`bucket_size`), grouped into batches of up to ``batch_size`` images of equal size, run,
    cropped back and converted to the input's type. This is the single implementation behind
    :func:`translate` and the ONNX runtime.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    single = not isinstance(images, (list, tuple))
    items: Sequence[Any] = [images] if single else images
    converted = [to_batch(item, channels) for item in items]
    # Group rows of equal size so mixed sizes still batch; rows keep their input order.
    rows: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, (batch, _) in enumerate(converted):
        for j in range(batch.shape[0]):
            rows.setdefault(tuple(batch.shape[-2:]), []).append((i, j))
    # Sizes that pad to the same bucket still run separately: a batch holds one input size, so
    # cropping back stays a plain slice. The compiled shape is shared all the same.
    outputs: list[list[Tensor | None]] = [[None] * b.shape[0] for b, _ in converted]
    for members in rows.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            x = torch.cat([converted[i][0][j : j + 1] for i, j in chunk])
            xp, size = pad_to_multiple(x, divisor, min_size, bucket=bucket)
            y = crop_to(run(xp), size, tuple(xp.shape[-2:]))
            for k, (i, j) in enumerate(chunk):
                outputs[i][j] = y[k : k + 1]
    results = [back(torch.cat(out)) for (_, back), out in zip(converted, outputs, strict=True)]
    return results[0] if single else results


# -- model-level API ---------------------------------------------------------------------------
def resolve_target(model: GANModel, target: str | None, *, kind: str) -> tuple[str, ExportSpec]:
    """The export target named ``target`` (or the first one whose input is ``kind``)."""
    targets = model.export_targets()
    if target is None:
        for name, spec in targets.items():
            if spec.input == kind:
                return name, spec
        raise ValueError(
            f"{type(model).__name__} has no {kind}-input target (targets: "
            f"{', '.join(f'{n} ({s.input})' for n, s in targets.items())})"
        )
    if target not in targets:
        raise ValueError(f"unknown target {target!r}; {type(model).__name__} has "
                         f"{', '.join(map(repr, targets))}")
    spec = targets[target]
    if spec.input != kind:
        raise ValueError(f"target {target!r} takes a {spec.input} input, not an {kind}; "
                         f"use {'generate' if spec.input == 'latent' else 'translate'}() instead")
    return target, spec


def _count(images: Any) -> int:
    items = images if isinstance(images, (list, tuple)) else [images]
    return sum(int(i.shape[0]) if isinstance(i, Tensor) and i.ndim == 4 else 1 for i in items)


@torch.no_grad()
def translate(model: GANModel, images: Any, *, target: str | None = None,
              batch_size: int | None = None, precision: str = "fp32",
              compile: str | bool = "off", bucket: int | None = None,
              compile_options: dict[str, Any] | None = None) -> Any:
    """Translate ``images`` with the image-input target ``target`` (default: the first one).

    Runs in eval mode (the model's mode is restored afterwards) on the model's device. See the
    module docstring for accepted inputs; any image size works (reflect-padded to the generator's
    size divisor and cropped back).

    ``batch_size`` None is the measured default for the model's device (1 on CPUs, where
    batching gave no gain and up to 29 % loss; 8 on CUDA; see :func:`default_batch_size`).
    ``precision`` (``fp32``, ``bf16``, ``auto``), ``compile`` (``off``, ``on``, ``auto``) and
    ``bucket`` choose the fast paths of :func:`translator` (docs/inference.md); the defaults run
    fp32 eager, exactly as before. To translate many times with a compiled model, build one
    :func:`translator` and call its ``translate`` so compiled code is reused.

    Raises:
        ValueError: an unknown or latent target, or an unknown precision/compile value.
    """
    runner = torch_translator(model, target=target, precision=precision, compile=compile,
                              bucket=bucket, images=_count(images),
                              compile_options=compile_options)
    with model.evaluating():
        return runner.translate(images, batch_size=batch_size)  # None: runner.batch_size


translator = torch_translator


@torch.no_grad()
def generate(model: GANModel, n: int, *, target: str | None = None,
             generator: torch.Generator | None = None, batch_size: int = 64,
             latents: Tensor | None = None) -> Tensor:
    """Draw ``n`` images (``NxCxHxW`` float32 in [-1, 1], on the model's device) from a latent
    target. The noise is drawn on the CPU from ``generator`` so a seed gives the same images on
    every device; ``latents`` (``N x latent_dim``) gives the noise directly (``n`` is then
    ignored), as for ``OnnxModel.generate``. Runs in eval mode, restoring the model's mode
    afterwards. Raises :class:`NonFiniteOutputError` (naming the checkpoint) when the output
    holds NaN or inf."""
    _, spec = resolve_target(model, target, kind="latent")
    if latents is not None:
        z, n = latents.float().cpu(), len(latents)
    elif n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    else:
        z = torch.randn(n, int(spec.latent_dim or 0), generator=generator)
    net = model.nets[spec.net]
    with model.evaluating():
        parts = [net(z[i : i + batch_size].to(model.device)).float()
                 for i in range(0, n, batch_size)]
    out = torch.cat(parts)
    check_finite(out, source=model_source(model))
    return out
