"""``check_folder``: what a dataset folder contains and what is wrong with it (``gtx data check``).

Detection only; printing is the CLI's job. Every image is fully decoded, so truncated files are
found too.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .folders import (
    KINDS,
    DataError,
    DataLayoutError,
    ImageReadError,
    expected_tree,
    pair_files,
    scan_folder,
)
from .images import probe_images
from .lock import DatasetLock, read_lock, verify_lock

__all__ = ["DataReport", "FolderReport", "check_folder", "detect_kind"]

_PHASES = ("train", "test", "val")


@dataclass
class FolderReport:
    """One image folder of a dataset: counts, sizes as (width, height), modes."""

    label: str  # e.g. "trainA", "A", "." for a single folder
    path: Path
    exists: bool
    count: int = 0  # readable images
    unreadable: int = 0
    ignored: int = 0  # non-image files (other extensions), not hidden ones
    min_size: tuple[int, int] | None = None  # smallest width, smallest height
    max_size: tuple[int, int] | None = None
    median_size: tuple[int, int] | None = None
    modes: dict[str, int] = field(default_factory=dict)


@dataclass
class DataReport:
    """Result of :func:`check_folder`.

    ``problems`` holds one human-readable line per problem, naming the file or folder;
    an empty list means the folder is ready to train on with ``kind``.
    """

    root: Path
    kind: str
    detected: bool  # True when the kind was detected rather than given
    folders: list[FolderReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: DatasetLock | None = None  # the download record, when the folder has one
    # Labelled data: readable images per class (label order), and warnings such as classes
    # under min_per_class (they do not stop training: dropping them is an explicit option).
    classes: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def counts(self) -> dict[str, int]:
        return {f.label: f.count for f in self.folders}

    @property
    def modes(self) -> dict[str, int]:
        """Histogram of Pillow modes over all folders."""
        total: Counter[str] = Counter()
        for f in self.folders:
            total.update(f.modes)
        return dict(total)


def detect_kind(root: str | os.PathLike[str]) -> str:
    """Guess the layout: ``unpaired`` (``trainA``/``trainB``...), ``paired`` (``A``/``B``), else
    ``single``."""
    root = Path(root)
    if any((root / f"{p}{d}").is_dir() for p in _PHASES for d in "AB"):
        return "unpaired"
    if any((base / d).is_dir() for base in (root, *(root / p for p in _PHASES)) for d in "AB"):
        return "paired"
    return "single"


def _folder_groups(kind: str, root: Path) -> list[list[tuple[str, Path]]]:
    """Folders to inspect, grouped as (A, B) partners for two-domain layouts."""
    if kind == "single":
        return [[(".", root)]]
    if kind == "labelled":  # one folder per class
        return [[(p.name, p)] for p in sorted(root.iterdir())
                if p.is_dir() and not p.name.startswith(".")]
    if kind == "unpaired":
        phases = [p for p in _PHASES if any((root / f"{p}{d}").is_dir() for d in "AB")]
        return [[(f"{p}{d}", root / f"{p}{d}") for d in "AB"] for p in phases or ["train"]]
    bases = [("", root)] if any((root / d).is_dir() for d in "AB") else []
    bases += [(f"{p}/", root / p) for p in _PHASES if any((root / p / d).is_dir() for d in "AB")]
    return [[(f"{prefix}{d}", base / d) for d in "AB"] for prefix, base in bases or [("", root)]]


def _inspect(label: str, path: Path, problems: list[str], tree: str) -> tuple[FolderReport, list[Path]]:
    report = FolderReport(label=label, path=path, exists=path.is_dir())
    if not report.exists:
        problems.append(f"{path} does not exist; expected:\n{tree}")
        return report, []
    scan = scan_folder(path)
    files, report.ignored = scan.images, scan.ignored
    # A looping or duplicate link is skipped (each real folder is listed once), but the user
    # should know: before, loops hung the walk or multiplied the dataset.
    problems.extend(link.describe() for link in scan.skipped_links)
    if not files:
        problems.append(f"{path} contains no images (jpg, jpeg, png, bmp, tif, tiff, webp)")
        return report, []
    sizes: list[tuple[int, int]] = []
    modes: Counter[str] = Counter()
    good: list[Path] = []
    for file, info in zip(files, probe_images(files, full=True), strict=True):
        if isinstance(info, ImageReadError):
            report.unreadable += 1
            problems.append(f"{file}: unreadable ({info.reason})")
            continue
        good.append(file)
        sizes.append(info.size)
        modes[info.mode] += 1
    report.count = len(good)
    report.modes = dict(sorted(modes.items()))
    if sizes:
        arr = np.array(sizes)
        report.min_size = (int(arr[:, 0].min()), int(arr[:, 1].min()))
        report.max_size = (int(arr[:, 0].max()), int(arr[:, 1].max()))
        report.median_size = (int(np.median(arr[:, 0])), int(np.median(arr[:, 1])))
    return report, good


def check_folder(path: str | os.PathLike[str], *, kind: str | None = None,
                 verify: bool = True, min_per_class: int = 100) -> DataReport:
    """Inspect a dataset folder: layout, counts, sizes, modes and problems.

    Args:
        path: the dataset root.
        kind: ``"single"``, ``"unpaired"``, ``"paired"`` or ``"labelled"`` (one folder per
            class; never detected, as any single folder with subfolders looks like it);
            ``None`` detects it from the layout.
        min_per_class: labelled data: classes with fewer readable images get a warning.
        verify: when the folder has a download lock (``gtx data download``), re-hash every file
            and report the ones that changed, went missing or were added since.

    Returns:
        A :class:`DataReport`; ``report.ok`` is False when anything would stop training
        (missing/empty folders, unreadable files, unmatched paired names).

    Raises:
        ValueError: an unknown ``kind``.
    """
    root = Path(path)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {', '.join(KINDS)}")
    report = DataReport(root=root, kind=kind or detect_kind(root), detected=kind is None)
    if not root.is_dir():
        report.problems.append(f"{root} is not a folder")
        return report
    try:
        report.lock = read_lock(root)
    except DataError as exc:
        report.problems.append(str(exc))
    if verify and report.lock is not None:
        report.problems.extend(verify_lock(root, report.lock))
    tree = expected_tree(report.kind, root)
    for group in _folder_groups(report.kind, root):
        found = []
        for label, folder in group:
            folder_report, good = _inspect(label, folder, report.problems, tree)
            report.folders.append(folder_report)
            found.append((folder, good))
        if report.kind == "paired" and all(good for _, good in found):
            (a_dir, a_files), (b_dir, b_files) = found
            try:
                pair_files(a_dir, b_dir, a_files, b_files)
            except DataLayoutError as exc:
                report.problems.append(str(exc))
    if report.kind == "labelled":
        _check_classes(report, min_per_class)
    return report


def _check_classes(report: DataReport, min_per_class: int) -> None:
    report.classes = {f.label: f.count for f in report.folders if f.count}
    if not report.classes:
        report.problems.append(f"{report.root} holds no class folders with images; expected:\n"
                               f"{expected_tree('labelled', report.root)}")
        return
    small = {name: n for name, n in report.classes.items() if n < min_per_class}
    if small:
        report.warnings.append(
            f"{len(small)} of {len(report.classes)} classes have fewer than {min_per_class} "
            f"images: {', '.join(f'{k} ({n})' for k, n in small.items())}. Training keeps them; "
            "to leave them out, train with --set drop_small_classes=true")
