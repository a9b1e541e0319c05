"""Safe extraction of downloaded zip and tar(.gz/.bz2/.xz) archives.

An archive from the network is untrusted input. :func:`extract` writes only regular files and
folders, each strictly inside the target folder, and refuses the whole archive when any entry

* has an absolute path, a drive letter, a ``..`` component, a backslash or a NUL in its name;
* is a symlink, a hardlink, a device, a FIFO or a socket (none is ever created from an archive);
* is encrypted, or appears twice;
* or when the entries together exceed :class:`ExtractLimits` (the unpacked size, the ratio of
  unpacked to archive size, the number of entries): zip bombs stop there.

Sizes are checked against the archive's own header before anything is written (zip), and while
writing (both formats: headers can lie). Permissions, owners and times from the archive are not
applied. :func:`extract_to` unpacks into a temporary folder beside the target and renames it into
place, so on any failure nothing is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from ._text import format_bytes as _size

__all__ = ["ArchiveError", "ExtractLimits", "archive_format", "extract", "extract_to"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_SKIPPED_TOP = ("__MACOSX",)  # resource forks macOS adds to zips: never data


class ArchiveError(RuntimeError):
    """An archive is unsafe, corrupt, or larger than the extraction limits allow."""


@dataclass(frozen=True, kw_only=True)
class ExtractLimits:
    """Caps on what an archive may unpack to.

    The size cap is ``max_bytes`` when given, else ``max(floor_bytes, max_ratio * archive size)``:
    datasets of JPEG/PNG images hardly compress (ratio ~1), a zip bomb reaches 1000 and more.
    """

    max_bytes: int | None = None
    max_ratio: float = 20.0
    floor_bytes: int = 16 << 20
    max_entries: int = 1_000_000

    def size_cap(self, archive_size: int) -> int:
        if self.max_bytes is not None:
            return self.max_bytes
        return max(self.floor_bytes, int(self.max_ratio * archive_size))


def archive_format(path: str | os.PathLike[str]) -> str:
    """``"zip"`` or ``"tar"`` (any compression tarfile reads), from the file's contents.

    Raises:
        ArchiveError: neither (an HTML error page saved under the archive's name, for example).
    """
    if zipfile.is_zipfile(path):
        return "zip"
    with contextlib.suppress(OSError, tarfile.TarError):
        if tarfile.is_tarfile(path):
            return "tar"
    raise ArchiveError(f"{path} is neither a zip nor a tar archive (an error page saved under "
                       "its name?); delete it and download it again")


def safe_name(name: str, *, archive: str | os.PathLike[str]) -> PurePosixPath | None:
    """The relative path an entry ``name`` may be written to, None for entries to skip (``./``,
    ``__MACOSX/``). Raises :class:`ArchiveError` for a name that could leave the target."""
    if "\x00" in name or "\\" in name:
        raise ArchiveError(f"{archive}: entry {name!r} has a NUL or backslash in its name; "
                           "refusing the archive")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: entry {name!r} has an absolute path; refusing the archive")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{archive}: entry {name!r} would be written outside the target "
                           "folder ('..'); refusing the archive")
    if not parts or parts[0] in _SKIPPED_TOP:
        return None
    return PurePosixPath(*parts)


def extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str], *,
            limits: ExtractLimits | None = None,
            progress: Callable[[int, int | None], None] | None = None) -> list[PurePosixPath]:
    """Unpack ``archive`` into the existing, empty folder ``dest``.

    Args:
        archive: a zip or tar file (the format is read from its contents).
        dest: the folder to fill; entries land strictly inside it.
        limits: size and count caps (default :class:`ExtractLimits`).
        progress: ``progress(done, total)``: unpacked bytes and the declared total (zip), or
            archive bytes read and the archive size (tar).

    Returns:
        The relative paths of the files written.

    Raises:
        ArchiveError: an unsafe entry, a cap exceeded, a corrupt archive, or no space left. What
            was written so far stays in ``dest``: callers unpack into a temporary folder
            (:func:`extract_to` does).
    """
    limits = limits or ExtractLimits()
    archive, dest = Path(archive), Path(dest)
    cap = limits.size_cap(archive.stat().st_size)
    try:
        if archive_format(archive) == "zip":
            return _extract_zip(archive, dest, cap=cap, limits=limits, progress=progress)
        return _extract_tar(archive, dest, cap=cap, limits=limits, progress=progress)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zipfile.LargeZipFile) as exc:
        raise ArchiveError(f"{archive} is corrupt or truncated ({exc}); delete it and download "
                           "it again") from exc
    except OSError as exc:
        raise ArchiveError(f"cannot unpack {archive} into {dest}: {exc}") from exc


def extract_to(archive: str | os.PathLike[str], target: str | os.PathLike[str], *,
               limits: ExtractLimits | None = None,
               progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Unpack ``archive`` into the new folder ``target``, atomically: a temporary folder beside it
    is filled and renamed; on any failure it is removed and ``target`` does not appear.

    Raises:
        FileExistsError: ``target`` exists. ArchiveError: see :func:`extract`.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} exists; move it away first")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".unpack",
                                    dir=target.parent))
    try:
        extract(archive, staging, limits=limits, progress=progress)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


class _Writer:
    """Writes entries below ``dest``, counting files and bytes against the caps."""

    def __init__(self, archive: Path, dest: Path, *, cap: int, limits: ExtractLimits,
                 progress: Callable[[int, int | None], None] | None, total: int | None) -> None:
        self.archive, self.dest, self.cap, self.limits = archive, dest, cap, limits
        self.progress, self.total = progress, total
        self.root = os.path.realpath(dest)
        self.written = 0
        self.entries = 0
        self.files: list[PurePosixPath] = []
        self.seen: set[PurePosixPath] = set()

    def check_entry(self, rel: PurePosixPath) -> Path:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise ArchiveError(f"{self.archive} has more than {self.limits.max_entries} entries, "
                               "the extraction limit; refusing the archive")
        if rel in self.seen:
            raise ArchiveError(f"{self.archive}: entry {rel} appears twice; refusing the archive")
        self.seen.add(rel)
        path = Path(self.root, *rel.parts)
        # Belt and braces: safe_name already refused '..' and absolute names, and no links exist.
        if os.path.commonpath([self.root, os.path.normpath(path)]) != self.root:
            raise ArchiveError(f"{self.archive}: entry {rel} escapes the target folder")
        return path

    def folder(self, rel: PurePosixPath) -> None:
        self.check_entry(rel).mkdir(parents=True, exist_ok=True)

    def file(self, rel: PurePosixPath, source: IO[bytes], progress_pos: Callable[[], int]) -> None:
        path = self.check_entry(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as out:
            while chunk := source.read(_CHUNK):
                self.written += len(chunk)
                if self.written > self.cap:
                    raise self.too_big(self.written)
                out.write(chunk)
                if self.progress is not None:
                    self.progress(progress_pos(), self.total)
        self.files.append(rel)

    def too_big(self, size: int) -> ArchiveError:
        return ArchiveError(
            f"{self.archive} unpacks to more than {_size(self.cap)} (at least {_size(size)}), the "
            f"extraction limit for a {_size(self.archive.stat().st_size)} archive; refusing it "
            "(a zip bomb, or a wrong file)")


def _extract_zip(archive: Path, dest: Path, *, cap: int, limits: ExtractLimits,
                 progress: Callable[[int, int | None], None] | None) -> list[PurePosixPath]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        declared = 0
        for info in infos:  # everything is checked before anything is written
            rel = safe_name(info.filename, archive=archive)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode) if info.create_system == 3 else 0  # 3: made on Unix
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                what = "a symlink" if kind == stat.S_IFLNK else "a special file (device, FIFO)"
                raise ArchiveError(f"{archive}: entry {info.filename!r} is {what}; archives may "
                                   "only hold files and folders, refusing it")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{archive}: entry {info.filename!r} is encrypted; refusing it")
            if rel is not None:
                plan.append((info, rel))
                declared += 0 if info.is_dir() else info.file_size
        writer = _Writer(archive, dest, cap=cap, limits=limits, progress=progress, total=declared)
        if len(plan) > limits.max_entries:
            raise ArchiveError(f"{archive} has {len(plan)} entries, more than the extraction "
                               f"limit of {limits.max_entries}; refusing the archive")
        if declared > cap:
            raise writer.too_big(declared)
        _check_space(dest, declared, archive)
        for info, rel in plan:
            if info.is_dir():
                writer.folder(rel)
            else:
                with zf.open(info) as source:
                    writer.file(rel, source, lambda: writer.written)
    return writer.files


def _extract_tar(archive: Path, dest: Path, *, cap: int, limits: ExtractLimits,
                 progress: Callable[[int, int | None], None] | None) -> list[PurePosixPath]:
    size = archive.stat().st_size
    writer = _Writer(archive, dest, cap=cap, limits=limits, progress=progress, total=size)
    with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tf:
        # One streaming pass: a .tar.gz is decompressed once, entries are checked as they come.
        for member in tf:
            rel = safe_name(member.name, archive=archive)
            if not (member.isreg() or member.isdir()):
                what = ("a symlink" if member.issym() else "a hardlink" if member.islnk()
                        else "a device or FIFO")
                raise ArchiveError(f"{archive}: entry {member.name!r} is {what}; archives may "
                                   "only hold files and folders, refusing it")
            if rel is None:
                continue
            if member.isdir():
                writer.folder(rel)
                continue
            if writer.written + member.size > cap:
                raise writer.too_big(writer.written + member.size)
            source = tf.extractfile(member)
            assert source is not None  # a regular file always has data
            with source:
                writer.file(rel, source, raw.tell)
    return writer.files


def _check_space(dest: Path, needed: int, archive: Path) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise ArchiveError(f"{archive} unpacks to {_size(needed)} but {dest} has only "
                           f"{_size(free)} free; make room or choose another folder")
