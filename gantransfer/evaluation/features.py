"""Feature extraction for FID/KID: images from folders, tensors or iterators, in batches.

Every image becomes ``3×H×W`` uint8 RGB first, by one rule for all sources:

* files are decoded with :func:`gantransfer.data.read_image` (grayscale repeated to RGB,
  transparency composited over white, 16-bit scaled; docs/data.md). For 8-bit RGB, grayscale and
  palette files (what FID datasets hold) this is exactly the reference implementations'
  ``PIL.Image.convert("RGB")``;
* tensors may be uint8 0..255 or float in [-1, 1] (a generator's output), which is rounded to
  uint8 exactly as ``gtx translate`` writes PNGs, so translating in memory and evaluating the
  saved files give the same features; 1-channel tensors are repeated to RGB.

The extractor then resizes each image on its own (sizes may differ within a folder) and runs the
network on batches of the prepared images.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ..data.folders import ImageReadError, list_images
from ..data.images import read_image
from ..pixels import to_uint8
from ..precision import exact_float32

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EvaluationError",
    "FeatureExtractor",
    "Progress",
    "extract_features",
    "find_images",
    "read_rgb",
    "to_uint8_rgb",
]

DEFAULT_BATCH_SIZE = 50  # the reference FID code's batch size; any value gives the same features

# Called as progress(stage, done, total) after every batch; total is None when unknown (an
# iterator without a length).
Progress = Callable[[str, int, "int | None"], None]


class EvaluationError(ValueError):
    """Evaluation inputs that cannot give a meaningful number: an empty or missing folder, too few
    images, a KID subset larger than a set, paired images whose sizes or channels differ."""


class FeatureExtractor(Protocol):
    """What :func:`extract_features` needs; :class:`~.inception.InceptionV3Features` is one.

    ``prepare`` maps one same-size batch ``N×3×H×W`` of uint8 images (on the extractor's device)
    to the network input, ``embed`` maps a batch of prepared images to ``N×D`` features, and
    ``cache_key`` names the weights and preprocessing (two extractors with equal keys must give
    equal features).
    """

    @property
    def cache_key(self) -> str: ...  # read-only is enough (a plain attribute also fits)

    def prepare(self, images: Tensor) -> Tensor: ...

    def embed(self, x: Tensor) -> Tensor: ...


def find_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files below ``folder`` (recursive, sorted by relative path, hidden skipped).

    Raises:
        EvaluationError: the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise EvaluationError(f"{folder} {what}; expected a folder of images")
    files = list_images(folder)
    if not files:
        raise EvaluationError(f"{folder} contains no images (jpg, jpeg, png, bmp, tif, tiff, "
                              "webp, searched recursively)")
    return files


def read_rgb(path: str | os.PathLike[str]) -> Tensor:
    """Decode an image file to a ``3×H×W`` uint8 tensor (the module docstring gives the rule).

    Raises:
        EvaluationError: the file cannot be decoded (the message names it).
    """
    try:
        image = read_image(path, channels=3)
    except ImageReadError as exc:
        raise EvaluationError(f"cannot read image {exc.path}: {exc.reason}. Delete or replace "
                              "the file") from exc
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def to_uint8_rgb(images: Tensor) -> Tensor:
    """``N×C×H×W`` (or ``C×H×W``) images -> ``N×3×H×W`` uint8.

    uint8 passes through; floating point is taken as [-1, 1] and rounded like saved PNGs
    (``round((x + 1)·127.5)`` after clamping); C = 1 is repeated to RGB.

    Raises:
        ValueError: another dtype, rank or channel count.
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected N×C×H×W images with C = 1 or 3, got shape "
                         f"{tuple(images.shape)}")
    if images.is_floating_point():
        images = to_uint8(images)
    elif images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 (0..255) or float ([-1, 1]) images, got {images.dtype}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _read_ahead(paths: Sequence[Path], *, ahead: int) -> Iterator[Tensor]:
    # Decoding overlaps with the network: Pillow releases the GIL, so a few threads keep a GPU
    # fed. At most `ahead` decoded images wait in memory (one batch: full-size photos are large).
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        remaining = iter(paths)
        pending = deque(pool.submit(read_rgb, p) for p in _take(remaining, ahead))
        while pending:
            image = pending.popleft().result()
            for path in _take(remaining, 1):
                pending.append(pool.submit(read_rgb, path))
            yield image


def _take(iterator: Iterator[Path], n: int) -> list[Path]:
    return [path for _, path in zip(range(n), iterator, strict=False)]


def _batches(images: Tensor | Iterable[Tensor]) -> Iterator[Tensor]:
    if isinstance(images, Tensor):
        yield images
        return
    for item in images:
        if not isinstance(item, Tensor):
            raise TypeError(f"expected tensors of images, got {type(item).__name__}")
        yield item


def extract_features(images: Tensor | Iterable[Tensor] | Sequence[str | os.PathLike[str]],
                     extractor: FeatureExtractor, *, device: str | torch.device = "cpu",
                     batch_size: int = DEFAULT_BATCH_SIZE,
                     progress: Progress | None = None, stage: str = "features",
                     total: int | None = None) -> np.ndarray:
    """Features of images: ``N×D`` float32 numpy, in input order.

    Args:
        images: an ``N×C×H×W`` tensor, an iterable of such tensors (or ``C×H×W`` ones; e.g. a
            generator yielding translated batches), or a list of image file paths. Tensors follow
            :func:`to_uint8_rgb`; sizes may differ between images.
        extractor: an :class:`InceptionV3Features` (or any :class:`FeatureExtractor`), already
            on ``device``.
        device: where images are prepared and the network runs.
        batch_size: images per network call (changes speed and memory only).
        progress: called as ``progress(stage, done, total)`` after each batch.
        total: the number of images, for ``progress`` when ``images`` has no length.

    Raises:
        EvaluationError: an unreadable file.
        ValueError: tensors of the wrong dtype, rank or channel count; ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = torch.device(device)
    if isinstance(images, Sequence) and images and not isinstance(images, Tensor) \
            and isinstance(images[0], str | os.PathLike):
        paths = [Path(p) for p in images]
        total = len(paths)
        single = _read_ahead(paths, ahead=batch_size)
        source: Iterator[Tensor] = (img.unsqueeze(0) for img in single)
    else:
        if total is None and isinstance(images, Tensor):
            total = len(images)
        source = _batches(images)  # type: ignore[arg-type]

    chunks: list[np.ndarray] = []
    pending: list[Tensor] = []
    pending_n = done = 0

    def flush() -> None:
        nonlocal pending_n, done
        batch = torch.cat(pending)
        chunks.append(extractor.embed(batch).float().cpu().numpy())
        done += len(batch)
        pending.clear()
        pending_n = 0
        if progress is not None:
            progress(stage, done, total)

    # FID is defined in float32, and CPU and GPU should agree: no TF32 (see exact_float32).
    with torch.inference_mode(), exact_float32(device):
        for item in source:
            rgb = to_uint8_rgb(item).to(device)
            start = 0
            while start < len(rgb):  # fill the open batch exactly, whatever the input's batching
                part = rgb[start:start + batch_size - pending_n]
                pending.append(extractor.prepare(part))
                pending_n += len(part)
                start += len(part)
                if pending_n == batch_size:
                    flush()
        if pending:
            flush()
    if not chunks:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(chunks)
