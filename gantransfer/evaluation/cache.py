"""A cache of the features of real-image folders, so evaluating many checkpoints against the same
data extracts them once.

**Key.** SHA-256 over: the cache format version; the extractor's ``cache_key`` (for the Inception
network, the weights file's SHA-256 and the preprocessing); the image reading rule; and, for every
image file in sorted order, its relative path, size in bytes and modification time in
nanoseconds. File *contents* are not hashed: that would read every byte of the folder on every
evaluation, which is what a cache hit should avoid (reading 5 GB of images costs about as much as
the features on a GPU). A file that is replaced, edited, added, removed or renamed changes its
size, mtime or name and so the key; copying a folder gives new mtimes, hence one recomputation,
never a wrong hit. The one miss this allows is a file rewritten with the same size and the
mtime set back by hand.

**Storage.** One ``<key>.npz`` per folder under ``$XDG_CACHE_HOME/gantransfer/eval-features``
(default ``~/.cache/...``): the ``N×D`` float32 features (8 KiB per image; KID needs them all,
not only FID's mean and covariance), the key, the folder path and the image count as metadata.
Written atomically; read with ``allow_pickle=False``; an unreadable or mismatching entry is
ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import atomic_path

__all__ = ["FeatureCache", "default_cache_dir", "folder_key"]

log = logging.getLogger(__name__)

_FORMAT = "gantransfer-eval-features-v1"
# How files become RGB before the extractor sees them (features.read_rgb); bump it when that
# rule changes, or cached features of unchanged folders would be reused wrongly.
READ_RULE = "gantransfer.data.read_image(channels=3)-v1"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gantransfer/eval-features`` (``XDG_CACHE_HOME`` defaults to ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gantransfer" / "eval-features"


def folder_key(folder: str | os.PathLike[str], files: Sequence[Path], extractor_key: str) -> str:
    """The cache key of ``files`` (below ``folder``) under an extractor (see the module docs)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for part in (_FORMAT, extractor_key, READ_RULE):
        digest.update(part.encode() + b"\0")
    for path in files:
        stat = path.stat()
        rel = path.relative_to(folder).as_posix()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class FeatureCache:
    """Features of image folders stored by :func:`folder_key` in ``root``
    (default :func:`default_cache_dir`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> np.ndarray | None:
        """The cached ``N×D`` features for ``key``, or None (missing, unreadable or mismatching)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                stored_key, features = str(data["key"]), data["features"]
                count = int(data["count"])
        except Exception as exc:  # truncated, not an npz, missing fields: recompute
            log.warning("ignoring unreadable cached features %s (%s)", path, exc)
            return None
        if stored_key != key or features.ndim != 2 or len(features) != count:
            log.warning("ignoring cached features %s: they do not match their key", path)
            return None
        log.info("using cached features of %d images from %s", count, path)
        return features

    def save(self, key: str, features: np.ndarray, *, folder: str | os.PathLike[str]) -> Path:
        """Store ``features`` under ``key`` atomically; returns the file written."""
        path = self.path(key)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, features=np.asarray(features, np.float32), key=np.array(key),
                     folder=np.array(str(folder)), count=np.array(len(features)))
        log.info("cached features of %d images from %s in %s", len(features), folder, path)
        return path
