"""Reading image files and converting every PIL mode to the model's channel count.

The rules (also in docs/data.md):

* Transparency (RGBA, LA, PA, a palette or colour key with ``transparency``) is alpha-composited
  over **white**, so transparent pixels become 1.0 after normalisation.
* 16-bit integer images (``I;16*``, and ``I``, which Pillow uses for 16-bit PNG/TIFF) are scaled
  from 0..65535 to 0..255 (``round(v * 255 / 65535)``), not clipped; ``I`` values outside
  0..65535 are clipped.
* Floating point images (``F``) are taken as 0..1 and scaled to 0..255 (values outside clipped).
* Bilevel (``1``) becomes 0/255; CMYK, YCbCr, LAB and HSV use Pillow's conversion to RGB.
* To 1 channel: ITU-R 601 luma, ``L = (299 R + 587 G + 114 B) / 1000`` (Pillow ``convert("L")``).
  To 3 channels from grayscale: the gray value repeated in R, G and B.
* EXIF orientation is not applied (like the official CycleGAN code); multi-page files use page 1.

Size limit: an image above :func:`max_pixels` (default about 89.5 million pixels, Pillow's own
threshold; ``GANTRANSFER_MAX_PIXELS`` or :func:`set_max_pixels` change it, ``gtx translate
--max-pixels`` and ``gtx data check --max-pixels`` too) is refused from its header, before any
decoding, with :class:`ImageTooLargeError` naming the file, its size and the limit. This replaces
Pillow's ``DecompressionBombWarning``/``Error`` (the CLI turns Pillow's own check off, so no raw
warning is printed; library users keep Pillow's settings).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .folders import ImageReadError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageInfo",
    "ImageTooLargeError",
    "convert_mode",
    "fit_size",
    "max_pixels",
    "probe_image",
    "probe_images",
    "read_image",
    "set_max_pixels",
]

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")

# Pillow's default Image.MAX_IMAGE_PIXELS (1 GiB of 24-bit pixels / 4): above it Pillow warns of
# a "decompression bomb" (a small file that decodes to a huge image), above twice it refuses.
DEFAULT_MAX_PIXELS = 89_478_485
_ENV_MAX_PIXELS = "GANTRANSFER_MAX_PIXELS"
_max_pixels: int | None = None  # set_max_pixels(); None: the environment or the default


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than :func:`max_pixels` allows (checked from its header)."""

    def __init__(self, path: str | os.PathLike[str], size: tuple[int, int], limit: int) -> None:
        self.path, self.size, self.limit = Path(path), size, limit
        self.reason = (f"{size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.1f} million pixels, "
                       f"above the limit of {limit / 1e6:.1f} million")
        Exception.__init__(
            self,
            f"image {self.path} is {self.reason} (a guard against files that decode to huge "
            f"images). If you trust the file, raise the limit: --max-pixels "
            f"{size[0] * size[1]} ({_ENV_MAX_PIXELS}={size[0] * size[1]} for any command; 0: "
            "no limit), or downscale it first",
        )


def max_pixels() -> int | None:
    """The largest image (width x height) the readers accept; None means no limit.

    :func:`set_max_pixels` wins, then the ``GANTRANSFER_MAX_PIXELS`` environment variable (``0``:
    no limit; read by DataLoader worker processes too), then :data:`DEFAULT_MAX_PIXELS`.
    """
    if _max_pixels is not None:
        return _max_pixels or None
    env = os.environ.get(_ENV_MAX_PIXELS, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"{_ENV_MAX_PIXELS}={env!r} is not a whole number of pixels "
                             "(0: no limit)") from None
        return value if value > 0 else None
    return DEFAULT_MAX_PIXELS


def set_max_pixels(limit: int | None) -> None:
    """Set the process-wide image size limit in pixels (0: no limit; None: back to the
    environment variable or the default)."""
    global _max_pixels
    if limit is not None and limit < 0:
        raise ValueError(f"max pixels must be >= 0 (0: no limit), got {limit}")
    _max_pixels = limit


def _check_size(path: str | os.PathLike[str], size: tuple[int, int]) -> None:
    limit = max_pixels()
    if limit is not None and size[0] * size[1] > limit:
        raise ImageTooLargeError(path, size, limit)


@dataclass(frozen=True)
class ImageInfo:
    """What a file header says: ``size`` as (width, height) and the Pillow ``mode``."""

    size: tuple[int, int]
    mode: str


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text


def probe_image(path: str | os.PathLike[str], *, full: bool = False) -> ImageInfo:
    """Read an image's size and mode from its header; with ``full=True`` also decode all pixels.

    Opening is lazy in Pillow, so the default is cheap (a few hundred bytes read). ``full``
    catches truncated or corrupt pixel data too, at the cost of decoding.

    Raises:
        ImageReadError: the file is not an image Pillow can read, or (with ``full``) its data is
            truncated or corrupt. The message names the file and what to do.
    """
    try:
        with Image.open(path) as img:
            info = ImageInfo(size=img.size, mode=img.mode)
            _check_size(path, img.size)
            if full:
                img.load()
    except ImageReadError:
        raise
    # Pillow's decoders raise many types for bad data (OSError, SyntaxError, ValueError,
    # EOFError, struct.error, zlib.error, DecompressionBombError ...): all mean "unreadable".
    except Exception as exc:
        raise ImageReadError(path, _describe(exc)) from exc
    return info


_PARALLEL_PROBE_MIN = 64  # below this, a thread pool costs more than it saves


def probe_images(paths: Sequence[Path], *, full: bool = False) -> list[ImageInfo | ImageReadError]:
    """:func:`probe_image` for many files; a failure is returned in place, not raised."""

    def probe(path: Path) -> ImageInfo | ImageReadError:
        try:
            return probe_image(path, full=full)
        except ImageReadError as exc:
            return exc

    if len(paths) < _PARALLEL_PROBE_MIN:
        return [probe(p) for p in paths]
    # Pillow releases the GIL while decoding, so threads speed up full verification.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(probe, paths))


def fit_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """``size`` scaled down (aspect kept, each side >= 1) so the longer side is <= ``max_side``."""
    w, h = size
    if max_side is None or max(w, h) <= max_side:
        return size
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _composite_over_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _scale_to_8bit(values: np.ndarray, *, full_scale: float) -> Image.Image:
    scaled = np.rint(values.astype(np.float64) * (255.0 / full_scale))
    return Image.fromarray(scaled.clip(0, 255).astype(np.uint8), "L")


def convert_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert an image of any Pillow mode to ``"L"`` (channels=1) or ``"RGB"`` (channels=3).

    See the module docstring for the rule used for each mode.

    Raises:
        ValueError: ``channels`` is not 1 or 3.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    mode = img.mode
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in img.info):
        img = _composite_over_white(img)
    elif mode in _SIXTEEN_BIT:
        img = _scale_to_8bit(np.asarray(img), full_scale=65535.0)
    elif mode == "F":
        img = _scale_to_8bit(np.asarray(img), full_scale=1.0)
    elif mode not in ("L", "RGB"):
        # "1", "P" without transparency, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversion.
        img = img.convert("L" if mode == "1" else "RGB")
    return img.convert("L" if channels == 1 else "RGB")


def read_image(path: str | os.PathLike[str], *, channels: int,
               max_side: int | None = None) -> Image.Image:
    """Decode ``path`` and convert it to ``channels`` (1 -> mode "L", 3 -> mode "RGB").

    ``max_side``: downscale (Lanczos, aspect kept) so that the longer side is at most this many
    pixels; JPEGs are then decoded at a reduced scale directly (Pillow's ``draft``), which saves
    most of the decoding time and memory of a large photo.

    Raises:
        ImageTooLargeError: the image has more pixels than :func:`max_pixels` (from the header).
        ImageReadError: the file cannot be decoded (the message names it and says what to do).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    try:
        with Image.open(path) as img:
            _check_size(path, img.size)
            target = fit_size(img.size, max_side)
            if target != img.size and img.format == "JPEG":
                img.draft(img.mode, target)  # decode at 1/2, 1/4 or 1/8 scale, >= target
            img.load()
            out = convert_mode(img, channels)
            if out.size != target:
                out = out.resize(target, Image.Resampling.LANCZOS)
            return out
    except ImageReadError:
        raise
    except Exception as exc:  # see probe_image: every decoder failure means "unreadable"
        raise ImageReadError(path, _describe(exc)) from exc
