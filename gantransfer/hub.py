"""Downloads: pretrained weights files (cache, verification) and the download layer they share.

Every file gantransfer fetches (weights, datasets, pretrained models) goes through the same code,
re-exported here: :func:`fetch` (streamed, time-bounded, resumable, verified, atomic; in
``gantransfer._download``) and, for sources that publish no checksum, :func:`fetch_pinned` /
:func:`pin_file` with a :class:`Pin` recorded on first use and checked ever after (trust on first
use, ``gantransfer._pin``). Archives are unpacked by ``gantransfer._archive.extract``.

Nothing here runs implicitly: a network looks for its file in the cache and falls back to random
weights with a warning; only ``gtx weights download NAME`` (or :func:`download_weights`) fetches.

A network factory advertises its file by carrying a ``pretrained_weights`` attribute holding a
:class:`WeightsFile`; :func:`weights_file_for` finds it through the registry, so the core never
names a plugin::

    def vgg16(*, weights="auto", ...): ...
    vgg16.pretrained_weights = WeightsFile(
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        filename="vgg16-397923af.pth", sha256_prefix="397923af")

The cache is torchvision's (``$TORCH_HOME/hub/checkpoints``; ``TORCH_HOME`` defaults to
``$XDG_CACHE_HOME/torch``, i.e. ``~/.cache/torch``), so a file torchvision already downloaded is
found without copying.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ._download import (
    DEFAULT_DEADLINE,
    DEFAULT_MIN_SPEED,
    Downloaded,
    DownloadError,
    IntegrityError,
    ProgressFn,
    fetch,
    partial_path,
    sha256_file,
    verify_digest,
)
from ._pin import (
    ChangedFileError,
    Pin,
    fetch_pinned,
    pin_file,
    read_pin,
    verify_pinned,
    write_pin,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MIN_SPEED",
    "ChangedFileError",
    "DownloadError",
    "Downloaded",
    "IntegrityError",
    "Pin",
    "ProgressFn",
    "WeightsFile",
    "cache_dir",
    "cached_file",
    "download",
    "download_weights",
    "fetch",
    "fetch_pinned",
    "partial_path",
    "pin_file",
    "read_pin",
    "sha256_file",
    "verify_digest",
    "verify_pinned",
    "weights_file_for",
    "write_pin",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class WeightsFile:
    """A downloadable weights file.

    ``sha256`` is the full SHA-256 when known. Otherwise ``sha256_prefix`` is checked: torchvision
    names its files ``<name>-<first 8 hex digits of the SHA-256>.pth``, which is a weaker but real
    check. At least one of the two must be given.
    """

    url: str
    filename: str
    sha256: str | None = None
    sha256_prefix: str | None = None

    def __post_init__(self) -> None:
        if not (self.sha256 or self.sha256_prefix):
            raise ValueError(f"WeightsFile {self.filename!r} needs sha256 or sha256_prefix")
        for value in (self.sha256, self.sha256_prefix):
            if value is not None and (value != value.lower() or
                                      any(c not in "0123456789abcdef" for c in value)):
                raise ValueError(f"WeightsFile hashes are lowercase hex; got {value!r}")


def cache_dir() -> Path:
    """torchvision's weights cache: ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch``)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch"
    )
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def cached_file(spec: WeightsFile) -> Path | None:
    """The cached copy of ``spec`` if it exists (not verified here), else None."""
    path = cache_dir() / spec.filename
    return path if path.is_file() else None


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None,
             sha256_prefix: str | None = None, timeout: float = 60.0,
             deadline: float | None = DEFAULT_DEADLINE, min_speed: float = DEFAULT_MIN_SPEED
             ) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying the SHA-256 (or its prefix).

    The body is streamed into a temporary file next to ``dest`` while hashing; ``dest`` appears
    only when the transfer is complete and the hash matches, so a failure leaves nothing behind.

    Three limits bound the time, so a slow or hostile server cannot hold the command for long
    (a per-read timeout alone let a server trickling a few bytes every few seconds run for hours):

    * ``timeout`` (seconds): connecting, and waiting for any one piece of data;
    * the stall rule: every ``timeout`` seconds of the transfer must bring at least
      ``min_speed * timeout`` bytes (``min_speed`` in bytes per second; 0 turns it off);
    * ``deadline`` (seconds, None for none): the whole download, connection included.

    This is :func:`fetch` (progress, resume, size checks) without its extras.

    Raises:
        DownloadError: network failure, stalled or too slow transfer, deadline passed, truncated
            transfer or hash mismatch (the message names the URL, what was received, and says
            where to copy the file by hand).
    """
    return fetch(url, dest, sha256=sha256, sha256_prefix=sha256_prefix, timeout=timeout,
                 deadline=deadline, min_speed=min_speed).path


def download_weights(spec: WeightsFile, *, dest_dir: str | os.PathLike[str] | None = None,
                     url: str | None = None, timeout: float = 60.0,
                     deadline: float | None = DEFAULT_DEADLINE,
                     min_speed: float = DEFAULT_MIN_SPEED) -> Path:
    """Download ``spec`` into ``dest_dir`` (default: :func:`cache_dir`) unless a verified copy
    is already there; ``url`` replaces the spec's URL (a mirror), the hash check stays.
    ``timeout``, ``deadline`` and ``min_speed`` bound the time (see :func:`download`).

    Returns the path of the verified file. Raises :class:`DownloadError` (see :func:`download`).
    """
    dest = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    path = dest / spec.filename
    if path.is_file():
        try:
            verify_digest(sha256_file(path), sha256=spec.sha256, sha256_prefix=spec.sha256_prefix,
                          what=str(path))
        except DownloadError as exc:
            log.warning("%s; downloading it again", exc)
        else:
            log.info("%s is already present and verified", path)
            return path
    return download(url or spec.url, path, sha256=spec.sha256, sha256_prefix=spec.sha256_prefix,
                    timeout=timeout, deadline=deadline, min_speed=min_speed)


def weights_file_for(name: str) -> WeightsFile:
    """The :class:`WeightsFile` advertised by the registered network ``name``.

    Raises:
        UnknownPluginError: no network of that name.
        LookupError: the network has no ``pretrained_weights`` attribute.
    """
    from .registry import list as list_names
    from .registry import load_class

    spec = getattr(load_class(name, kind="network"), "pretrained_weights", None)
    if not isinstance(spec, WeightsFile):
        with_weights = []
        for other in list_names(kind="network"):
            try:  # a broken plugin must not hide the others
                obj = load_class(other, kind="network")
            except ImportError:
                continue
            if isinstance(getattr(obj, "pretrained_weights", None), WeightsFile):
                with_weights.append(other)
        raise LookupError(
            f"network {name!r} has no downloadable weights; networks with weights: "
            f"{', '.join(with_weights) or '(none)'}"
        )
    return spec
