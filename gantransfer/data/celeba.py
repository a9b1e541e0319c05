"""``gtx data prepare celeba``: a manually downloaded CelebA -> square face crops (and labels).

CelebA is distributed through Google Drive, which cannot be downloaded by a script; the user
downloads ``img_align_celeba`` (202,599 JPEGs of 178x218) and ``list_attr_celeba.txt`` and points
this at the folder holding them (the official ``Img/`` and ``Anno/`` subfolders and Kaggle's
``list_attr_celeba.csv`` are found too).

Crop (the DCGAN convention): the pytorch DCGAN tutorial applies ``Resize(64)`` then
``CenterCrop(64)`` to the aligned images, i.e. it keeps the centred 178x178 square. We crop that
square first and resize once: the box of a ``w x h`` image for a square of side ``s`` (default
``min(w, h)``) is ``left = (w - s) // 2``, ``top = (h - s) // 2``, so for 178x218 it is
``(0, 20, 178, 198)``; ``crop=108`` gives the tighter face crop of DCGAN-tensorflow,
``(35, 55, 143, 163)``. The square is resized to ``size x size`` with Pillow's bicubic filter
(antialiased when shrinking) and saved as PNG.

Labels: with ``attributes`` each image goes to ``OUT/<label>/`` by
:func:`gantransfer.data.labels.single_label` (exactly one chosen attribute: that one; none:
``none_label`` or left out; several: left out, or the first chosen with ``several="first"``).
Without, every image goes to ``OUT/``. The output appears atomically (a temporary folder beside
it is renamed), so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .folders import DataError, DataLayoutError, ImageReadError, list_images
from .labels import check_label_name, single_label

__all__ = ["CelebaReport", "attribute_classes", "crop_box", "prepare_celeba", "prepare_image",
           "read_attributes"]

log = logging.getLogger(__name__)

_IMAGE_DIRS = ("img_align_celeba/img_align_celeba", "img_align_celeba",
               "Img/img_align_celeba", ".")
_ATTR_FILES = ("list_attr_celeba.txt", "Anno/list_attr_celeba.txt", "list_attr_celeba.csv")
_PNG_LEVEL = 1  # fast; see gantransfer.data.side_by_side


@dataclass
class CelebaReport:
    """What :func:`prepare_celeba` wrote and left out."""

    out: Path
    written: int = 0
    per_label: dict[str, int] = field(default_factory=dict)  # empty without attributes
    no_label: int = 0  # none of the chosen attributes, and no none_label
    several_labels: int = 0  # more than one chosen attribute, several="skip"
    no_attributes: int = 0  # images without a row in the attribute file


def crop_box(size: tuple[int, int], crop: int | None = None) -> tuple[int, int, int, int]:
    """The centred square (left, top, right, bottom) of side ``crop`` (default: the shorter side)
    of an image of ``size`` = (width, height); ValueError when it does not fit."""
    w, h = size
    side = min(w, h) if crop is None else crop
    if not 0 < side <= min(w, h):
        raise ValueError(f"a {side}x{side} crop does not fit a {w}x{h} image")
    left, top = (w - side) // 2, (h - side) // 2
    return left, top, left + side, top + side


def prepare_image(img: Image.Image, *, size: int, crop: int | None = None) -> Image.Image:
    """RGB, cropped to :func:`crop_box`, resized to ``size x size`` (bicubic)."""
    img = img.convert("RGB").crop(crop_box(img.size, crop))
    return img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BICUBIC)


def read_attributes(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, dict[str, bool]]]:
    """Parse ``list_attr_celeba.txt`` (count, names, then ``file v1 v2 ...`` with 1/-1) or
    Kaggle's ``list_attr_celeba.csv``. Returns (attribute names, {file name: {name: bool}}).

    Raises:
        DataError: a malformed line, naming the file and the line number.
    """
    path = Path(path)
    with open(path, newline="") as fh:
        if path.suffix.lower() == ".csv":
            rows = list(csv.reader(fh))
            names, body, first = rows[0][1:] if rows else [], rows[1:], 2
        else:
            lines = fh.read().splitlines()
            names, first = (lines[1].split() if len(lines) > 1 else []), 3
            body = [line.split() for line in lines[2:] if line.strip()]
    if not names:
        raise DataError(f"{path} has no attribute names; expected CelebA's list_attr_celeba.txt")
    table: dict[str, dict[str, bool]] = {}
    for number, row in enumerate(body, start=first):
        values = row[1:]
        if len(values) != len(names) or any(v.strip() not in ("1", "-1", "0") for v in values):
            raise DataError(f"{path}, line {number}: expected a file name and {len(names)} "
                            f"values of 1 or -1, got {' '.join(row)[:120]!r}")
        table[row[0].strip()] = {n: v.strip() == "1" for n, v in zip(names, values, strict=True)}
    return names, table


def _find(src: Path, candidates: Sequence[str], test: Callable[[Path], bool], what: str) -> Path:
    for rel in candidates:
        if test(src / rel):
            return src / rel
    raise DataLayoutError(f"{src} holds no {what} (looked for {', '.join(candidates)}). Download "
                          "CelebA's Align&Cropped images and list_attr_celeba.txt from "
                          "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and unpack them there")


def _images(src: Path) -> list[Path]:
    return list_images(_find(src, _IMAGE_DIRS, lambda p: p.is_dir() and any(
        p.glob("*.jpg")), "img_align_celeba folder of .jpg images"))


def _chosen_table(src: Path, attributes: Sequence[str],
                  attr_file: str | os.PathLike[str] | None
                  ) -> tuple[list[str], dict[str, dict[str, bool]]]:
    """The checked attribute names and the attribute table; DataError for unknown names."""
    chosen = [check_label_name(a) for a in attributes]
    names, table = read_attributes(Path(attr_file) if attr_file else _find(
        src, _ATTR_FILES, Path.is_file, "list_attr_celeba.txt"))
    unknown = [a for a in chosen if a not in names]
    if unknown:
        raise DataError(f"unknown CelebA attribute(s) {', '.join(unknown)}; the attribute "
                        f"file has: {', '.join(names)}")
    return chosen, table


def attribute_classes(src: str | os.PathLike[str], attributes: Sequence[str], *,
                      none_label: str | None = None, several: str = "skip",
                      attr_file: str | os.PathLike[str] | None = None
                      ) -> dict[str, list[Path]]:
    """CelebA read in place as labelled data: the images of ``src`` by class, a class per
    chosen attribute (``--set attributes=Black_Hair,Blond_Hair``), classes sorted by name.

    Images without a row, or without exactly one label under ``none_label``/``several`` (see
    :func:`gantransfer.data.labels.single_label`), are left out.

    Raises:
        DataLayoutError: no images or no attribute file in ``src``. DataError: an unknown
        attribute (the message lists the file's names) or a malformed attribute file.
    """
    src = Path(src)
    images = _images(src)
    chosen, table = _chosen_table(src, attributes, attr_file)
    out: dict[str, list[Path]] = {}
    for path in images:
        row = table.get(path.name)
        label = None if row is None else single_label(row, chosen, none_label=none_label,
                                                         several=several)
        if label is not None:
            out.setdefault(label, []).append(path)
    return {name: out[name] for name in sorted(out)}


def prepare_celeba(src: str | os.PathLike[str], out: str | os.PathLike[str], *, size: int = 64,
                   crop: int | None = None, attributes: Sequence[str] | None = None,
                   none_label: str | None = None, several: str = "skip",
                   attr_file: str | os.PathLike[str] | None = None, limit: int | None = None,
                   workers: int = 4, force: bool = False,
                   progress: Callable[[int, int | None], None] | None = None) -> CelebaReport:
    """Crop and resize CelebA's aligned images into ``out`` (labelled with ``attributes``).

    Args:
        src: the folder holding ``img_align_celeba/`` (and the attribute file).
        out: the new dataset folder (single layout, or labelled with ``attributes``).
        size: output side in pixels. crop: side of the centred square (default: shorter side).
        attributes: CelebA attribute names that become class folders (None: no labels).
        none_label, several: see :func:`gantransfer.data.labels.single_label`.
        attr_file: the attribute file (default: found in ``src``); only read with attributes.
        limit: only the first ``limit`` images (sorted by name): a quick try.
        workers: threads. force: replace an existing ``out``. progress: (done, total) images.

    Raises:
        DataLayoutError: no images (or no attribute file) in ``src``. DataError: unknown
        attribute names, ``out`` exists without ``force``, a malformed attribute file.
        ImageReadError: an unreadable image. ValueError: bad ``size``/``crop``/labels.
    """
    src, out = Path(src), Path(out)
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if out.exists() and not force:
        raise DataError(f"{out} exists; choose another folder or pass --force to replace it")
    images = _images(src)
    images = images[:limit] if limit is not None else images
    labels: dict[Path, str | None] = {}
    report = CelebaReport(out=out)
    if attributes:
        if none_label:
            check_label_name(none_label)
        chosen, table = _chosen_table(src, attributes, attr_file)
        for path in images:
            row = table.get(path.name)
            if row is None:
                report.no_attributes += 1
                continue
            label = single_label(row, chosen, none_label=none_label, several=several)
            if label is None:
                present = sum(row[a] for a in chosen)
                report.no_label += present == 0
                report.several_labels += present > 1
                continue
            labels[path] = label
    else:
        labels = dict.fromkeys(images)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".prepare", dir=out.parent))
    try:
        for label in {v for v in labels.values() if v is not None}:
            (staging / label).mkdir()
        counts: Counter[str] = Counter()

        def one(item: tuple[Path, str | None]) -> None:
            path, label = item
            try:
                with Image.open(path) as img:
                    result = prepare_image(img, size=size, crop=crop)
            except (OSError, Image.DecompressionBombError) as exc:
                raise ImageReadError(path, str(exc)) from exc
            except ValueError as exc:
                raise DataError(f"{path}: {exc}; pass a smaller --crop") from exc
            target = staging / label if label else staging
            result.save(target / f"{path.stem}.png", "PNG", compress_level=_PNG_LEVEL)

        with ThreadPoolExecutor(max(1, workers)) as pool:
            for i, _ in enumerate(pool.map(one, labels.items())):
                if progress is not None:
                    progress(i + 1, len(labels))
        counts.update(label for label in labels.values() if label)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.written = len(labels)
    report.per_label = dict(sorted(counts.items()))
    log.info("wrote %d images of %dx%d to %s", report.written, size, size, out)
    return report


def _replace(staging: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, out)
