"""``gtx data download``: fetch a catalogue dataset, unpack it safely, lay it out, lock it.

Steps (each one leaves nothing behind when it fails):

1. The archive is downloaded to ``DIR/<name>.<ext>`` (``gantransfer.hub.fetch_pinned``: streamed,
   resumable from ``<archive>.part``, time-bounded). An archive already there (copied by hand on
   an offline machine) is used instead.
2. Its SHA-256 is checked against a published one (none is published upstream), else against
   the dataset's lock from an earlier download, else recorded as unverified (trust on first use).
3. It is unpacked by ``gantransfer._archive.extract`` into a temporary folder beside the target.
4. The layout the trainers read is made there: CycleGAN archives already hold
   ``trainA/trainB/testA/testB``; pix2pix's side-by-side pairs are split into ``<split>/A`` and
   ``<split>/B`` (:mod:`gantransfer.data.side_by_side`).
5. The lock (:mod:`gantransfer.data.lock`) is written, and the folder is renamed into place
   (replacing an old copy only with ``force``). The archive is removed unless ``keep_archive``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import hub
from .._archive import ExtractLimits, extract
from .._download import partial_path
from .catalogue import CATALOGUE, DatasetSource, find_dataset
from .folders import DataError
from .lock import DatasetLock, hash_tree, lock_path, read_lock, verify_lock, write_lock
from .side_by_side import split_splits

__all__ = ["DatasetDownload", "PhaseProgress", "dataset_folder", "dataset_status",
           "download_dataset"]

log = logging.getLogger(__name__)

PhaseProgress = Callable[[str, int, "int | None"], None]
"""``progress(phase, done, total)``; phases: ``download`` and ``extract`` (bytes), ``verify``
(bytes of an archive found on disk), ``split`` (pairs), ``hash`` (files)."""


@dataclass
class DatasetDownload:
    """What :func:`download_dataset` did."""

    source: DatasetSource
    folder: Path
    pin: hub.Pin  # the archive's record, as stored in the lock
    first_use: bool  # the SHA-256 was recorded now, not checked against anything
    already_present: bool = False  # nothing was downloaded: the locked folder was there
    url: str | None = None  # where the archive came from (None: it was on disk already)
    resumed_from: int = 0
    archive_kept: Path | None = None
    splits: dict[str, int] = field(default_factory=dict)  # pix2pix pairs per split


def dataset_folder(name: str, root: str | os.PathLike[str] = "datasets") -> Path:
    """Where dataset ``name`` lands below ``root`` (``root/<name>``)."""
    return Path(root) / find_dataset(name).name


def _archive_path(source: DatasetSource, root: Path) -> Path:
    return (root / source.name).with_name(source.filename)


def dataset_status(source: DatasetSource, root: str | os.PathLike[str] = "datasets") -> str:
    """One word or phrase for ``--list``: ``present``, ``changed``, ``present (no lock)``,
    ``archive downloaded``, ``partial download``, or ``-``. Checks names and sizes only."""
    root = Path(root)
    folder = root / source.name
    if folder.is_dir():
        try:
            lock = read_lock(folder)
        except DataError:
            return "changed"
        if lock is None:
            return "present (no lock)"
        return "changed" if verify_lock(folder, lock, full=False) else "present"
    archive = _archive_path(source, root)
    if archive.is_file():
        return "archive downloaded"
    return "partial download" if partial_path(archive).is_file() else "-"


def download_dataset(name: str, root: str | os.PathLike[str] = "datasets", *,
                     url: str | None = None, mirror: str | None = None, force: bool = False,
                     keep_archive: bool = False, limits: ExtractLimits | None = None,
                     workers: int = 4, progress: PhaseProgress | None = None,
                     timeout: float = 60.0, deadline: float | None = None,
                     min_speed: float = hub.DEFAULT_MIN_SPEED) -> DatasetDownload:
    """Download catalogue dataset ``name`` into ``root/<name>`` in the layout trainers read.

    Args:
        name: a catalogue name (:data:`~gantransfer.data.catalogue.CATALOGUE`).
        root: the datasets folder.
        url: fetch from this URL instead (the checks stay); ``mirror``: a base URL holding the
            same file names as upstream.
        force: download again and replace an existing folder (a lock from the old download
            still pins the archive: a changed archive is refused).
        keep_archive: keep ``root/<name>.<ext>`` after unpacking.
        limits: extraction caps; workers: threads for splitting pairs.
        progress: ``progress(phase, done, total)`` (see :data:`PhaseProgress`).
        timeout, deadline, min_speed: download limits (``deadline`` None: none, since datasets
            reach gigabytes; the stall rule still stops a dead transfer).

    Returns:
        :class:`DatasetDownload`.

    Raises:
        LookupError: unknown name, or no public download and no ``url``/``mirror``.
        DataError: the folder exists without a lock, or differs from its lock (without
            ``force``); the archive does not hold the expected layout.
        hub.ChangedFileError: the archive differs from the one recorded in the lock.
        hub.DownloadError: network failure (names the URL and where to copy the file by hand).
        ArchiveError: an unsafe or corrupt archive, or one over the limits.
    """
    source = find_dataset(name)
    root = Path(root)
    folder = root / source.name
    lock = read_lock(folder) if folder.is_dir() else None
    if folder.exists() and not force:
        if lock is None:
            raise DataError(f"{folder} exists and was not made by gtx data download (it has no "
                            f"{lock_path(folder).name}); move it away, or pass --force to "
                            "replace it")
        problems = verify_lock(folder, lock, full=False)
        if problems:
            raise DataError(f"{folder} exists but differs from its download record: "
                            + "; ".join(problems[:3]) + ". Pass --force to download it again")
        log.info("%s is present and matches its lock; nothing to download", folder)
        return DatasetDownload(source=source, folder=folder, pin=lock.source, first_use=False,
                               already_present=True)
    archive = _archive_path(source, root)
    record = str(lock_path(folder))
    old_pin = lock.source if lock else None
    first_use = old_pin is None and source.sha256 is None
    fetched_from, resumed, downloaded = None, 0, False
    if archive.is_file():
        log.info("using %s, which is already on disk (not downloading)", archive)
        src_url = source.url_for(url=url, mirror=mirror) if (url or mirror or source.url) \
            else f"file:{archive}"
        pin = hub.pin_file(archive, url=src_url, pin=old_pin, sha256=source.sha256,
                           size=source.size, record=record,
                           progress=None if progress is None else
                           lambda d, t: progress("verify", d, t))
    else:
        src_url = source.url_for(url=url, mirror=mirror)
        manual = (f"If this machine is offline, download {src_url} elsewhere and copy it to "
                  f"{archive}, then run the same command again: the copy is used and its "
                  "SHA-256 recorded.")
        got, pin = hub.fetch_pinned(
            src_url, archive, pin=old_pin, sha256=source.sha256, size=source.size,
            record=record, resume=True, manual_hint=manual, timeout=timeout, deadline=deadline,
            min_speed=min_speed,
            progress=None if progress is None else lambda d, t: progress("download", d, t))
        fetched_from, resumed, downloaded = src_url, got.resumed_from, True
    result = DatasetDownload(source=source, folder=folder, pin=pin, first_use=first_use,
                             url=fetched_from, resumed_from=resumed)
    try:
        _unpack(source, archive, folder, pin=pin, limits=limits, workers=workers,
                progress=progress, result=result)
    except BaseException:
        if downloaded and not keep_archive:  # an archive that cannot be used is not kept
            with contextlib.suppress(FileNotFoundError):
                archive.unlink()
        raise
    if keep_archive:
        result.archive_kept = archive
    else:
        archive.unlink()
    return result


def _unpack(source: DatasetSource, archive: Path, folder: Path, *, pin: hub.Pin,
            limits: ExtractLimits | None, workers: int, progress: PhaseProgress | None,
            result: DatasetDownload) -> None:
    """Steps 3-5: unpack into a temporary folder, lay out, lock, rename into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".unpack",
                                    dir=folder.parent))

    def phase(name: str) -> Callable[[int, int | None], None] | None:
        return None if progress is None else lambda d, t: progress(name, d, t)

    try:
        extract(archive, staging, limits=limits, progress=phase("extract"))
        content = _content_root(staging)
        if source.layout == "side_by_side":
            result.splits = split_splits(content, workers=workers, progress=phase("split"))
            layout = "paired"
        else:
            missing = [d for d in ("trainA", "trainB") if not (content / d).is_dir()]
            if missing:
                found = ", ".join(sorted(p.name for p in content.iterdir())) or "nothing"
                raise DataError(f"{archive} does not hold the CycleGAN layout: no "
                                f"{' or '.join(missing)} (found: {found})")
            layout = "unpaired"
        write_lock(content, DatasetLock(dataset=source.name, layout=layout, source=pin,
                                        files=hash_tree(content, progress=phase("hash"))))
        _place(content, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _content_root(staging: Path) -> Path:
    """The archive's single top-level folder (``horse2zebra/``), or the staging folder itself."""
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return staging


def _place(content: Path, folder: Path) -> None:
    """Rename ``content`` to ``folder``; an existing ``folder`` is swapped out, then removed."""
    if not folder.exists():
        os.rename(content, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    os.rename(folder, old / folder.name)
    try:
        os.rename(content, folder)
    except BaseException:
        os.rename(old / folder.name, folder)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def catalogue_rows(root: str | os.PathLike[str] = "datasets"
                   ) -> list[tuple[DatasetSource, str]]:
    """Every catalogue entry with its :func:`dataset_status` below ``root`` (for ``--list``)."""
    return [(source, dataset_status(source, root)) for source in CATALOGUE.values()]
