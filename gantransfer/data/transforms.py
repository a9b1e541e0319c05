"""Preprocessing compatible with the official CycleGAN/pix2pix code (``data/base_dataset.py``).

Modes (``load_size`` = L, ``crop_size`` = C):

==========================  =================================================================
``resize_and_crop``         resize to L×L (bicubic), random C×C crop
``crop``                    random C×C crop of the original image
``scale_width``             width to L keeping the aspect ratio, height at least C (official
                            ``__scale_width``), then both sides rounded to a multiple of 4
``scale_width_and_crop``    the same scaling (without rounding), then a random C×C crop
``none``                    only round both sides to a multiple of 4 (official
                            ``__make_power_2`` with base 4)
``center_crop``             the shorter side to L keeping the aspect ratio, then the centred
                            C×C crop (torchvision ``Resize(L)`` + ``CenterCrop(C)``, the DCGAN
                            convention; not in the official CycleGAN code)
==========================  =================================================================

Then an optional horizontal flip (p = 0.5) and normalisation to [-1, 1]. Every random choice is
drawn from a ``numpy.random.Generator`` that the caller seeds per sample, so the output is a pure
function of the image and the seed. Rounding ``scale_width`` to a multiple of 4 is our addition:
the official code feeds such images with batch size 1 to nets that need multiples of 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..pixels import from_uint8
from .folders import DataError

if TYPE_CHECKING:  # pragma: no cover
    from ..nn import SizeContract

__all__ = [
    "TransformParams",
    "apply_transform",
    "center_crop_xy",
    "check_crop",
    "check_image_sizes",
    "check_model_size",
    "output_size",
    "resized_size",
    "sample_params",
    "to_tensor",
]

_SIZE_BASE = 4  # official __make_power_2 base: two stride-2 downsamplings need multiples of 4


@dataclass(frozen=True)
class TransformParams:
    """The random choices for one image (or one A/B pair): crop corner and flip."""

    crop_xy: tuple[int, int] | None
    flip: bool


def _round_to_base(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    return (max(_SIZE_BASE, round(w / _SIZE_BASE) * _SIZE_BASE),
            max(_SIZE_BASE, round(h / _SIZE_BASE) * _SIZE_BASE))


def _scale_width(size: tuple[int, int], load_size: int, crop_size: int) -> tuple[int, int]:
    w, h = size
    if w == load_size and h >= crop_size:
        return size
    return load_size, int(max(load_size * h / w, crop_size))


def _scale_shorter(size: tuple[int, int], load_size: int) -> tuple[int, int]:
    """The shorter side to ``load_size``, the longer one scaled and truncated (torchvision's
    ``Resize(int)``: ``int(load_size * long / short)``)."""
    w, h = size
    if w <= h:
        return load_size, int(load_size * h / w)
    return int(load_size * w / h), load_size


def center_crop_xy(size: tuple[int, int], crop_size: int) -> tuple[int, int]:
    """Corner of the centred ``crop_size`` square of an image of ``size`` (torchvision's
    ``CenterCrop``: ``int(round((side - crop_size) / 2))``)."""
    w, h = size
    return round((w - crop_size) / 2.0), round((h - crop_size) / 2.0)


def resized_size(size: tuple[int, int], *, preprocess: str, load_size: int,
                 crop_size: int) -> tuple[int, int]:
    """(width, height) of an image of ``size`` after the resize step of ``preprocess``."""
    if preprocess == "center_crop":
        return _scale_shorter(size, load_size)
    if preprocess == "resize_and_crop":
        return load_size, load_size
    if preprocess == "scale_width":
        return _round_to_base(_scale_width(size, load_size, crop_size))
    if preprocess == "scale_width_and_crop":
        return _scale_width(size, load_size, crop_size)
    if preprocess == "none":
        return _round_to_base(size)
    if preprocess == "crop":
        return size
    raise ValueError(f"unknown preprocess mode {preprocess!r}")


def output_size(size: tuple[int, int], *, preprocess: str, load_size: int,
                crop_size: int) -> tuple[int, int]:
    """(width, height) of the tensor the model receives for an image of ``size``."""
    if "crop" in preprocess:
        return crop_size, crop_size
    return resized_size(size, preprocess=preprocess, load_size=load_size, crop_size=crop_size)


def check_model_size(contract: SizeContract | None, *, preprocess: str, load_size: int,
                     crop_size: int, smallest_image: int | None = None) -> None:
    """Raise if the crop the options ask for is a size the model cannot take (its networks'
    size contracts, see ``GANModel.training_size_contract``). Only the crop modes are checked
    here (their output is ``crop_size`` whatever the images; see :func:`check_image_sizes`).
    With preprocess ``crop`` the crop comes from the image itself: pass ``smallest_image``, the
    smallest image side (nothing is checked without it), so the suggested size fits the images.

    Raises:
        DataError: saying which sizes the model takes, why, and which ``crop_size`` to use.
    """
    if contract is None or "crop" not in preprocess:
        return
    if preprocess == "crop" and smallest_image is None:
        return
    problem = contract.problem(crop_size, crop_size)
    if problem is None:
        return
    # the largest possible crop (with preprocess "crop", smallest_image is given: see above)
    limit = smallest_image if preprocess == "crop" and smallest_image is not None else load_size
    below, above = contract.below(crop_size), contract.above(crop_size)
    if above <= limit:
        fix = f"--set crop_size={above}" + ("" if below is None else f" or {below}")
    elif below is not None:
        fix = f"--set crop_size={below}"
        if preprocess != "crop":
            fix += f" (or crop_size={above} with load_size >= {above})"
    elif preprocess != "crop":
        fix = f"--set crop_size={above} --set load_size={above}"
    else:
        fix = (f"preprocess 'resize_and_crop' with --set crop_size={above} --set "
               f"load_size={above} (the smallest image is {smallest_image} px)")
    raise DataError(f"crop_size {crop_size} does not fit this model: {problem}. It trains on "
                    f"{contract.describe()} ({_reason(contract)}). Use {fix}")


def check_image_sizes(sizes: dict[str, tuple[int, int]], contract: SizeContract | None, *,
                      preprocess: str, load_size: int, crop_size: int) -> None:
    """For the modes that keep image sizes (``none``, ``scale_width``): raise if an image comes
    out at a size the model cannot take. ``sizes`` maps file names to header (width, height).

    Raises:
        DataError: naming the first such file, its size after preprocessing and how to fix it.
    """
    if contract is None or "crop" in preprocess:
        return
    for name, size in sizes.items():
        w, h = output_size(size, preprocess=preprocess, load_size=load_size, crop_size=crop_size)
        problem = contract.problem(h, w)
        if problem is not None:
            raise DataError(
                f"{name} comes out {w}x{h} with preprocess {preprocess!r}, which this model "
                f"cannot take: {problem}. It trains on {contract.describe()} "
                f"({_reason(contract)}). Use preprocess 'resize_and_crop' with --set "
                f"crop_size={contract.above(min(crop_size, load_size))} (a size it takes), or "
                "resize the images")


def _reason(contract: SizeContract) -> str:
    return contract.reason or "its networks' size rules"


def check_crop(sizes: dict[str, tuple[int, int]], *, preprocess: str, load_size: int,
               crop_size: int, contract: SizeContract | None = None) -> None:
    """Raise if the crop cannot fit; ``sizes`` maps file names to header (width, height).
    ``contract``: the model's size rules, so that a suggested crop size is one it takes.

    Raises:
        DataError: naming the smallest offending file (or the options) and how to fix it.
    """
    if preprocess in ("resize_and_crop", "scale_width_and_crop", "center_crop") and \
            crop_size > load_size:
        raise DataError(
            f"crop_size {crop_size} is larger than load_size {load_size}: with preprocess "
            f"{preprocess!r} images are scaled to {load_size} px first. Use --set "
            f"crop_size={load_size} (or smaller) or --set load_size={crop_size} (or larger)")
    if preprocess == "crop" and sizes:
        name, (w, h) = min(sizes.items(), key=lambda item: min(item[1]))
        if min(w, h) < crop_size:
            fits = min(w, h) if contract is None else contract.below(min(w, h))
            if fits is None and contract is not None:  # smaller than anything the model takes
                raise DataError(
                    f"the image {name} ({w}x{h}) is smaller than the smallest crop this model "
                    f"takes ({contract.smallest} px; {_reason(contract)}), and preprocess "
                    f"'crop' does not resize. Remove it, or use preprocess 'resize_and_crop' "
                    f"(which scales images to load_size first)")
            raise DataError(
                f"crop_size {crop_size} does not fit the smallest image {name} ({w}x{h}); "
                f"preprocess 'crop' does not resize. Use --set crop_size={fits} (or "
                f"smaller), or preprocess 'resize_and_crop' with load_size >= {crop_size}")


def sample_params(rng: np.random.Generator, size: tuple[int, int], *, preprocess: str,
                  load_size: int, crop_size: int, flip: bool) -> TransformParams:
    """Draw the crop corner and flip for an image of (header) ``size``, like official get_params.

    The random crop modes draw x then y, then every mode draws the flip coin, so the number of
    draws depends on the mode only, never on image contents. ``center_crop`` draws no corner.
    """
    crop_xy = None
    if preprocess == "center_crop":
        w, h = resized_size(size, preprocess=preprocess, load_size=load_size, crop_size=crop_size)
        crop_xy = center_crop_xy((w, h), crop_size)
    elif "crop" in preprocess:
        w, h = resized_size(size, preprocess=preprocess, load_size=load_size, crop_size=crop_size)
        crop_xy = (int(rng.integers(0, max(0, w - crop_size) + 1)),
                   int(rng.integers(0, max(0, h - crop_size) + 1)))
    do_flip = bool(rng.random() < 0.5)
    return TransformParams(crop_xy=crop_xy, flip=flip and do_flip)


def apply_transform(img: Image.Image, params: TransformParams, *, preprocess: str,
                    load_size: int, crop_size: int) -> Image.Image:
    """Resize (bicubic, as the official code), crop and flip one image with given params."""
    target = resized_size(img.size, preprocess=preprocess, load_size=load_size,
                          crop_size=crop_size)
    if target != img.size:
        img = img.resize(target, Image.Resampling.BICUBIC)
    if params.crop_xy is not None:
        x, y = params.crop_xy
        if x + crop_size > img.width or y + crop_size > img.height:
            raise DataError(f"crop {crop_size}x{crop_size} at ({x}, {y}) does not fit an image of "
                            f"{img.width}x{img.height} after {preprocess!r}")
        img = img.crop((x, y, x + crop_size, y + crop_size))
    if params.flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An 8-bit "L" or "RGB" image -> float32 C×H×W tensor in [-1, 1] (0 -> -1, 255 -> 1)."""
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    # A copy: Pillow's buffer is read-only, and torch wants writable memory.
    return from_uint8(torch.from_numpy(np.array(array.transpose(2, 0, 1), order="C")))
