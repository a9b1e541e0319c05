"""Calibration images for int8 quantisation: which files calibrate, which are held out, and how
they are read (the same conversion and normalisation as inference). Used by
:mod:`gantransfer.export.quantize`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.folders import DataError, ImageReadError, list_images
from ..pixels import from_uint8

__all__ = ["DEFAULT_CALIB_COUNT", "HOLDOUT_MIN_IMAGES", "CalibrationError",
           "calibration_split", "check_calibration_files", "load_calibration_images"]

log = logging.getLogger(__name__)

DEFAULT_CALIB_COUNT = 32  # calibration images used (more only slows calibration down)
HOLDOUT_MIN_IMAGES = 5  # from this many images on, every fifth is held out to check quality
_MAX_HELDOUT = 8


class CalibrationError(DataError):
    """The calibration folder is missing, empty or has no readable images."""


# -- choosing and reading --------------------------------------------------------------------------
def calibration_split(folder: str | os.PathLike[str], *, count: int = DEFAULT_CALIB_COUNT
                      ) -> tuple[list[Path], list[Path]]:
    """Choose calibration and held-out image files below ``folder`` (recursive, sorted).

    With :data:`HOLDOUT_MIN_IMAGES` (5) images or more, every fifth file (at most 8) is held out
    to check the int8 file on images it was not calibrated on; with 1-4 images none is held out
    (all calibrate, and quality is checked on them). Up to ``count`` of the rest, spread evenly
    over the sorted list, calibrate. Raises :class:`CalibrationError` naming the folder when it is missing or
    holds no image files.
    """
    if count < 1:
        raise ValueError(f"calibration count must be >= 1, got {count}")
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(
            f"calibration folder {folder} does not exist or is not a folder; pass a folder of "
            "real input images for this generator (e.g. the dataset's testA/ for a2b)")
    files = list_images(folder)
    if not files:
        raise CalibrationError(
            f"calibration folder {folder} has no image files (looked recursively for .png, .jpg, "
            ".jpeg, .bmp, .tif, .tiff, .webp); put some real input images there")
    heldout = files[4::5][:_MAX_HELDOUT] if len(files) >= HOLDOUT_MIN_IMAGES else []
    held = set(heldout)
    rest = [f for f in files if f not in held]
    if len(rest) > count:  # spread the choice over the whole (sorted) folder
        idx = np.unique(np.linspace(0, len(rest) - 1, count).round().astype(int))
        rest = [rest[i] for i in idx]
    return rest, heldout


def check_calibration_files(folder: str | os.PathLike[str], files: Sequence[Path]) -> None:
    """Raise :class:`CalibrationError` when none of ``files`` has a readable image header (a
    few hundred bytes each), so a hopeless int8 export fails before the fp32 export runs."""
    from ..data.images import probe_images

    if files and all(isinstance(info, ImageReadError) for info in probe_images(files)):
        raise CalibrationError(
            f"calibration folder {folder} has no readable images ({len(files)} file(s) are not "
            "images Pillow can open); put some real input images there")


def _center_resize(img: Any, size: tuple[int, int]) -> Any:
    """Resize (bicubic) so the image covers ``size`` (h, w), then crop the centre."""
    from PIL import Image

    h, w = size
    scale = max(h / img.height, w / img.width)
    rw, rh = max(w, round(img.width * scale)), max(h, round(img.height * scale))
    if (rw, rh) != img.size:
        img = img.resize((rw, rh), Image.Resampling.BICUBIC)
    left, top = (rw - w) // 2, (rh - h) // 2
    return img.crop((left, top, left + w, top + h))


def load_calibration_images(paths: Sequence[Path], *, channels: int, size: tuple[int, int],
                            folder: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Read ``paths`` with the project's reader as an ``N×C×H×W`` float32 array in [-1, 1].

    Images are converted to ``channels`` (the data layer's rules), resized to cover ``size``
    (h, w) and centre-cropped, then normalised exactly like inference
    (:func:`gantransfer.pixels.from_uint8`).
    Unreadable files are skipped with a warning; :class:`CalibrationError` (naming ``folder``)
    when none is readable.
    """
    from ..data.images import read_image

    arrays = []
    for path in paths:
        try:
            img = read_image(path, channels=channels)
        except ImageReadError as exc:
            log.warning("calibration: skipping %s (%s)", path, exc.reason)
            continue
        arr = np.asarray(_center_resize(img, size))
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        arrays.append(from_uint8(arr.transpose(2, 0, 1)))
    if paths and not arrays:
        where = folder if folder is not None else paths[0].parent
        raise CalibrationError(f"calibration folder {where} has no readable images "
                               f"({len(paths)} file(s) failed to decode; see the warnings)")
    if not arrays:
        return np.zeros((0, channels, *size), dtype=np.float32)
    return np.stack(arrays).astype(np.float32)
