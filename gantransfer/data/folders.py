"""Image discovery and the three folder layouts (single, unpaired, paired), with their errors.

Layouts (``DIR`` is ``DataConfig.root``, ``<phase>`` is ``DataConfig.phase``, e.g. ``train``):

* single:   ``DIR/**/*.png`` (every image below DIR, any depth)
* unpaired: ``DIR/<phase>A/**`` and ``DIR/<phase>B/**`` (independent sets, any sizes)
* paired:   ``DIR/<phase>/A`` and ``DIR/<phase>/B`` when ``DIR/<phase>`` exists, else ``DIR/A`` and
  ``DIR/B``; an A file pairs with the B file of the same relative path without extension.

Files are found recursively, sorted by relative path, with extensions jpg, jpeg, png, bmp, tif,
tiff, webp in any case. Hidden files and folders (name starting with ``.``) are ignored. Symlinked
folders are followed, but each real folder is listed once: a link back to one of its own parents
(a loop) or to a folder already listed is skipped and reported (:func:`scan_folder`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "IMAGE_EXTENSIONS",
    "KINDS",
    "DataError",
    "DataLayoutError",
    "FolderScan",
    "ImageReadError",
    "SkippedLink",
    "expected_tree",
    "is_image_file",
    "list_images",
    "pair_files",
    "resolve_layout",
    "scan_folder",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
KINDS = ("single", "unpaired", "paired", "labelled")


class DataError(Exception):
    """Base class of data-layer errors (layout, unreadable images, impossible crops)."""


class DataLayoutError(DataError):
    """A dataset folder is missing, empty or laid out differently from what the kind expects."""


class ImageReadError(DataError):
    """An image file cannot be decoded; the message names the file and what to do."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"cannot read image {self.path}: {reason}. Delete or replace the file, or pass "
            f"--skip-bad-images (DataConfig(skip_bad_images=True)) to skip unreadable files"
        )


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True for a non-hidden file name with a supported image extension (any case)."""
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class SkippedLink:
    """A folder symlink the walk did not follow, because its real folder is listed already."""

    link: Path  # the link, as a path below the scanned folder
    target: Path  # the real folder it points to
    loop: bool  # True: the target is the link's own parent or an ancestor (a cycle)
    listed_as: Path  # where the target's files are listed (or the ancestor it loops back to)

    def describe(self) -> str:
        """One line naming the link, for logs and ``gtx data check``."""
        if self.loop:
            return (f"symlink loop: {self.link} -> {self.target} points back to "
                    f"{self.listed_as}, a folder above it; not followed (remove the link)")
        return (f"symlink {self.link} -> {self.target} leads to a folder already listed as "
                f"{self.listed_as}; its images are listed once (remove the link to silence this)")


@dataclass
class FolderScan:
    """Result of :func:`scan_folder`."""

    images: list[Path] = field(default_factory=list)  # sorted by relative path
    ignored: int = 0  # non-hidden files that are not images
    skipped_links: list[SkippedLink] = field(default_factory=list)


def scan_folder(folder: str | os.PathLike[str]) -> FolderScan:
    """Walk ``folder`` recursively, visiting each real directory once; never logs or raises.

    Symlinked folders are followed (datasets are often assembled from links) after the real
    folders, so a folder reachable both directly and through a link is listed under its own path.
    A link to a folder already visited is skipped and reported: a loop when it points back to one
    of its own ancestors (two links to ``.`` used to make the walk grow without end; one
    multiplied the dataset), a duplicate otherwise. Folders that cannot be listed (permissions)
    are skipped like ``os.walk`` does. A missing folder gives an empty scan.
    """
    root = Path(folder)
    scan = FolderScan()
    try:
        info = os.stat(root)
    except OSError:
        return scan
    listed: dict[tuple[int, int], Path] = {(info.st_dev, info.st_ino): root}
    # (folder, keys of the folders from the root down to it); links wait for the next round
    todo: list[tuple[Path, tuple[tuple[int, int], ...]]] = [(root, ((info.st_dev, info.st_ino),))]
    found: list[tuple[str, Path]] = []
    while todo:
        links: list[tuple[Path, tuple[tuple[int, int], ...]]] = []
        while todo:
            path, ancestors = todo.pop()
            for entry, is_dir in _entries(path):
                sub = path / entry.name
                if not is_dir:
                    if is_image_file(entry.name):
                        found.append((sub.relative_to(root).as_posix(), sub))
                    else:
                        scan.ignored += 1
                elif entry.is_symlink():
                    links.append((sub, ancestors))
                else:
                    _visit(sub, ancestors, listed, todo, scan)
        for sub, ancestors in sorted(links, key=lambda item: item[0].as_posix()):
            _visit(sub, ancestors, listed, todo, scan)
    found.sort(key=lambda item: item[0])
    scan.images = [path for _, path in found]
    return scan


def _entries(path: Path) -> list[tuple[os.DirEntry[str], bool]]:
    """Non-hidden entries of ``path`` with "is a folder (links followed)"; [] if unlistable."""
    out = []
    try:
        with os.scandir(path) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                out.append((entry, is_dir))
    except OSError as exc:
        log.debug("cannot list %s: %s", path, exc)
    return out


def _visit(path: Path, ancestors: tuple[tuple[int, int], ...],
           listed: dict[tuple[int, int], Path], todo: list, scan: FolderScan) -> None:
    """Queue folder ``path`` unless its real folder was listed already (then report the link)."""
    try:
        info = os.stat(path)
    except OSError:
        return  # vanished or unreadable since it was listed
    key = (info.st_dev, info.st_ino)
    if key in listed:
        scan.skipped_links.append(SkippedLink(
            link=path, target=Path(os.path.realpath(path)), loop=key in ancestors,
            listed_as=listed[key]))
        return
    listed[key] = path
    todo.append((path, (*ancestors, key)))


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """All image files below ``folder`` (recursive), sorted by relative path.

    Hidden files and hidden folders are skipped. Each real folder is listed once; a symlink that
    loops back or leads to a folder already listed is skipped with a warning naming it (see
    :func:`scan_folder`). A missing folder gives an empty list (callers turn that into a
    :class:`DataLayoutError` with the expected tree).
    """
    scan = scan_folder(folder)
    for skipped in scan.skipped_links:
        log.warning("%s", skipped.describe())
    return scan.images


def expected_tree(kind: str, root: str | os.PathLike[str], *, phase: str = "train") -> str:
    """A short picture of the folder tree ``kind`` expects, used in error messages."""
    root = Path(root)
    if kind == "single":
        return f"{root}/\n  0001.png\n  ...            (any depth; jpg, jpeg, png, bmp, tif, tiff, webp)"
    if kind == "unpaired":
        return (f"{root}/\n  {phase}A/  0001.png ...   (domain A)\n"
                f"  {phase}B/  0001.png ...   (domain B; unpaired, counts may differ)")
    if kind == "paired":
        return (f"{root}/\n  A/  x.png ...        (inputs)\n  B/  x.png ...        (targets, same "
                f"names as A)\nor {root}/{phase}/A and {root}/{phase}/B")
    if kind == "labelled":
        return (f"{root}/\n  <label>/  0001.png ...   (one folder per class or style; labels "
                "are the sorted folder names)\n  <label>/  ...")
    raise ValueError(f"unknown data kind {kind!r}; expected one of {', '.join(KINDS)}")


def _require_images(folder: Path, kind: str, root: Path, phase: str) -> list[Path]:
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise DataLayoutError(f"{folder} {what}; {kind} data expects:\n"
                              f"{expected_tree(kind, root, phase=phase)}")
    files = list_images(folder)
    if not files:
        raise DataLayoutError(f"{folder} contains no images (jpg, jpeg, png, bmp, tif, tiff, webp); "
                              f"{kind} data expects:\n{expected_tree(kind, root, phase=phase)}")
    return files


def _paired_dirs(root: Path, phase: str) -> tuple[Path, Path]:
    base = root / phase if (root / phase / "A").is_dir() else root
    return base / "A", base / "B"


def _pair_key(path: Path, folder: Path) -> str:
    return path.relative_to(folder).with_suffix("").as_posix()


def pair_files(a_dir: Path, b_dir: Path, a_files: list[Path], b_files: list[Path]
               ) -> tuple[list[Path], list[Path]]:
    """Match A and B files by relative path without extension; raise on any unmatched name."""
    b_by_key: dict[str, Path] = {}
    for path in b_files:
        b_by_key.setdefault(_pair_key(path, b_dir), path)
    a_keys = {_pair_key(p, a_dir) for p in a_files}
    only_a = [p for p in a_files if _pair_key(p, a_dir) not in b_by_key]
    only_b = [p for p in b_files if _pair_key(p, b_dir) not in a_keys]
    if only_a or only_b:
        lines = [f"  {p} has no partner in {b_dir}" for p in only_a[:5]]
        lines += [f"  {p} has no partner in {a_dir}" for p in only_b[:5]]
        more = len(only_a) + len(only_b) - len(lines)
        if more > 0:
            lines.append(f"  ... and {more} more")
        raise DataLayoutError("paired data needs the same file names in A and B "
                              f"({len(only_a)} only in A, {len(only_b)} only in B):\n"
                              + "\n".join(lines)
                              + "\nRename or remove the unmatched files.")
    return a_files, [b_by_key[_pair_key(p, a_dir)] for p in a_files]


def resolve_layout(kind: str, root: str | os.PathLike[str], *, phase: str = "train"
                   ) -> dict[str, list[Path]]:
    """Find the image files of a dataset.

    Args:
        kind: ``"single"``, ``"unpaired"`` or ``"paired"``.
        root: the dataset folder.
        phase: ``"train"``, ``"test"``, ... (selects ``<phase>A``/``<phase>B`` or ``<phase>/A``).

    Returns:
        ``{"image": [...]}`` for single data, ``{"A": [...], "B": [...]}`` otherwise; for paired
        data ``A[i]`` and ``B[i]`` are partners.

    Raises:
        DataLayoutError: a folder is missing or empty, or paired names do not match; the message
            shows the expected tree.
        ValueError: an unknown kind.
    """
    root = Path(root)
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "single":
        return {"image": _require_images(root, kind, root, phase)}
    if kind == "labelled":  # every class folder's images, classes in sorted order
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                         ) if root.is_dir() else []
        files = [f for folder in classes for f in list_images(folder)]
        if not files:
            raise DataLayoutError(f"{root} holds no class folders with images; labelled data "
                                  f"expects:\n{expected_tree(kind, root, phase=phase)}")
        return {"image": files}
    if kind == "unpaired":
        return {d: _require_images(root / f"{phase}{d}", kind, root, phase) for d in ("A", "B")}
    a_dir, b_dir = _paired_dirs(root, phase)
    a_files = _require_images(a_dir, kind, root, phase)
    b_files = _require_images(b_dir, kind, root, phase)
    a_files, b_files = pair_files(a_dir, b_dir, a_files, b_files)
    return {"A": a_files, "B": b_files}
