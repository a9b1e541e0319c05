"""Pretrained weights files: where they are cached, how they are downloaded and verified.

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

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ._io import atomic_path, remove_stale_temps

__all__ = [
    "DownloadError",
    "WeightsFile",
    "cache_dir",
    "cached_file",
    "download",
    "download_weights",
    "sha256_file",
    "verify_digest",
    "weights_file_for",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A weights file could not be downloaded or did not match its expected hash."""


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


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file as lowercase hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_digest(digest: str, *, sha256: str | None = None, sha256_prefix: str | None = None,
                  what: str = "file") -> None:
    """Raise :class:`DownloadError` when ``digest`` differs from the expected hash (or prefix)."""
    if sha256 is not None and digest != sha256:
        raise DownloadError(f"{what} has SHA-256 {digest}, expected {sha256}")
    if sha256 is None and sha256_prefix is not None and not digest.startswith(sha256_prefix):
        raise DownloadError(
            f"{what} has SHA-256 {digest}, which does not start with the expected {sha256_prefix}"
        )


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None,
             sha256_prefix: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying the SHA-256 (or its prefix).

    The body is streamed into a temporary file next to ``dest`` while hashing; ``dest`` appears
    only when the transfer is complete and the hash matches, so a failure leaves nothing behind.

    Raises:
        DownloadError: network failure, truncated transfer or hash mismatch (the message names
            the URL and says where to copy the file by hand).
    """
    dest = Path(dest)
    manual = (f"If this machine is offline, download {url} elsewhere and copy it to {dest}.")
    log.info("downloading %s -> %s", url, dest)
    remove_stale_temps(dest.parent, name=dest.name)  # left by a download that was killed
    try:
        with atomic_path(dest) as tmp:
            digest = hashlib.sha256()
            received = 0
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                expected = response.headers.get("Content-Length")
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
            if expected is not None and received != int(expected):
                raise DownloadError(
                    f"download of {url} was cut short: got {received} of {expected} bytes. "
                    + manual
                )
            verify_digest(digest.hexdigest(), sha256=sha256, sha256_prefix=sha256_prefix,
                          what=f"the file downloaded from {url}")
    except DownloadError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download {url}: {reason}. {manual}") from exc
    log.info("saved %s (%s)", dest, digest.hexdigest())
    return dest


def download_weights(spec: WeightsFile, *, dest_dir: str | os.PathLike[str] | None = None,
                     url: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``spec`` into ``dest_dir`` (default: :func:`cache_dir`) unless a verified copy
    is already there; ``url`` replaces the spec's URL (a mirror), the hash check stays.

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
                    timeout=timeout)


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
