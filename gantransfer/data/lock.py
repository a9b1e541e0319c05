"""The lock file of a downloaded dataset: what was downloaded, and what every file was.

``gtx data download`` writes ``DIR/.gantransfer-lock.json`` beside the data::

    {"gantransfer_lock": 1, "dataset": "horse2zebra", "layout": "unpaired",
     "source": {"url": ..., "size": ..., "sha256": ..., "date": ..., "verified": false},
     "files": {"trainA/n02381460_1001.jpg": [12345, "<sha256>"], ...}}

``source`` is the archive's :class:`~gantransfer.hub.Pin`: ``verified`` is true only when its
SHA-256 matched a published one; otherwise it was recorded on first use, and every later download
must match it. ``files`` lets later uses find changed data: ``gtx data check`` re-hashes every
file (:func:`verify_lock`), and building a training dataset compares sizes, which costs a stat
per file (:func:`check_sizes`). A changed file is reported, never silently used.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_bytes
from .folders import DataError

if TYPE_CHECKING:  # the download layer is imported on first use: `gantransfer.data` stays light
    from .._pin import Pin

__all__ = ["LOCK_NAME", "DatasetLock", "check_sizes", "hash_tree", "read_lock", "verify_lock",
           "write_lock"]

log = logging.getLogger(__name__)

LOCK_NAME = ".gantransfer-lock.json"
_FORMAT = 1
_WORKERS = 4  # hashlib releases the GIL: threads overlap hashing with reading


@dataclass
class DatasetLock:
    """A dataset's lock: its source archive and the size and SHA-256 of every file."""

    dataset: str
    layout: str
    source: Pin
    files: dict[str, tuple[int, str]] = field(default_factory=dict)

    def to_json(self) -> str:
        """Indented JSON with one line per file (a large dataset has 10^5 of them)."""
        head = json.dumps({"gantransfer_lock": _FORMAT, "dataset": self.dataset,
                           "layout": self.layout, "source": self.source.to_dict()}, indent=1)
        files = ",\n".join(f"  {json.dumps(rel)}: {json.dumps(list(entry))}"
                           for rel, entry in sorted(self.files.items()))
        return f"{head[:-2]},\n \"files\": {{\n{files}\n }}\n}}\n"


def lock_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / LOCK_NAME


def read_lock(folder: str | os.PathLike[str]) -> DatasetLock | None:
    """The lock of ``folder``, or None when it has none.

    Raises:
        DataError: the lock file exists but is not a valid lock (names it and what to do).
    """
    path = lock_path(folder)
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable lock file ({exc}); delete it to stop "
                        "verifying the folder, or download the dataset again") from exc
    from .._pin import Pin

    try:
        if data.get("gantransfer_lock") != _FORMAT:
            raise ValueError(f"unknown format {data.get('gantransfer_lock')!r}")
        files = {str(k): (int(v[0]), str(v[1])) for k, v in data["files"].items()}
        return DatasetLock(dataset=str(data["dataset"]), layout=str(data["layout"]),
                           source=Pin.from_dict(data["source"], where=str(path)), files=files)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{path} is not a valid lock file ({exc}); delete it to stop verifying "
                        "the folder, or download the dataset again") from exc


def write_lock(folder: str | os.PathLike[str], lock: DatasetLock) -> Path:
    """Write ``lock`` into ``folder`` atomically; returns the lock file's path."""
    path = lock_path(folder)
    atomic_write_bytes(path, lock.to_json().encode())
    return path


def _tree(folder: Path) -> dict[str, Path]:
    """Every entry below ``folder`` that is not a folder, by relative POSIX path (links are not
    followed: a link where a file was is a change), except the lock itself."""
    out: dict[str, Path] = {}
    for base, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            path = Path(base, name)
            rel = path.relative_to(folder).as_posix()
            if rel != LOCK_NAME:
                out[rel] = path
    return out


def hash_tree(folder: str | os.PathLike[str], *,
              progress: Callable[[int, int | None], None] | None = None
              ) -> dict[str, tuple[int, str]]:
    """Size and SHA-256 of every file below ``folder`` (the lock's ``files``)."""
    tree = _tree(Path(folder))
    out: dict[str, tuple[int, str]] = {}
    with ThreadPoolExecutor(_WORKERS) as pool:
        for i, (rel, digest) in enumerate(zip(tree, pool.map(_hash, tree.values()), strict=True)):
            out[rel] = digest
            if progress is not None:
                progress(i + 1, len(tree))
    return out


def _hash(path: Path) -> tuple[int, str]:
    from .._download import sha256_file

    if path.is_symlink() or not path.is_file():
        return -1, "not a regular file"
    return path.stat().st_size, sha256_file(path)


def verify_lock(folder: str | os.PathLike[str], lock: DatasetLock | None = None, *,
                full: bool = True, progress: Callable[[int, int | None], None] | None = None
                ) -> list[str]:
    """Compare ``folder`` with its lock: every file re-hashed (``full``), or only names and sizes.

    Returns:
        One line per problem (a changed, missing or added file), naming it, and a last line
        saying what to do; [] when the folder is what was downloaded, or has no lock.

    Raises:
        DataError: the lock file is malformed.
    """
    folder = Path(folder)
    lock = lock or read_lock(folder)
    if lock is None:
        return []
    now: dict[str, tuple[int, str | None]]  # (size, SHA-256 or None when not hashed)
    if full:
        now = dict(hash_tree(folder, progress=progress))
    else:
        now = {rel: (p.lstat().st_size if not p.is_symlink() else -1, None)
               for rel, p in _tree(folder).items()}
    where = lock_path(folder)
    problems = []
    for rel, (size, digest) in lock.files.items():
        if rel not in now:
            problems.append(f"{folder / rel} is missing (listed in {where})")
            continue
        got_size, got_digest = now[rel]
        if got_size != size:
            problems.append(f"{folder / rel} changed since it was downloaded ({got_size} bytes "
                            f"instead of {size})")
        elif got_digest is not None and got_digest != digest:
            problems.append(f"{folder / rel} changed since it was downloaded (SHA-256 "
                            f"{got_digest} instead of {digest})")
    problems += [f"{folder / rel} was added after the download (not in {where})"
                 for rel in now if rel not in lock.files]
    if problems:
        problems.append(f"{folder} no longer matches its download record {where}: download "
                        f"it again (gtx data download {lock.dataset} --force), or delete "
                        f"{where} if you changed the files on purpose")
    return problems


def check_sizes(root: str | os.PathLike[str], files: Iterable[Path]) -> None:
    """Cheap check before training: every file listed in ``root``'s lock has its recorded size.

    Files not in the lock (added by the user) are allowed. No lock: nothing to check.

    Raises:
        DataError: a file's size differs from the lock (names it and what to do).
    """
    root = Path(root)
    lock = read_lock(root)
    if lock is None:
        return
    changed = []
    for path in files:
        try:
            rel = Path(path).relative_to(root).as_posix()
        except ValueError:
            continue
        recorded = lock.files.get(rel)
        if recorded is not None and os.path.getsize(path) != recorded[0]:
            changed.append(f"{path} ({os.path.getsize(path)} bytes, recorded {recorded[0]})")
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise DataError(
            f"{len(changed)} file(s) of {root} changed since the download recorded in "
            f"{lock_path(root)}: {'; '.join(changed[:3])}{more}. Run `gtx data check {root}`, "
            f"download it again (gtx data download {lock.dataset} --force), or delete the lock "
            "file if you changed the files on purpose")
    log.debug("%s: file sizes match %s", root, lock_path(root))
