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
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ._io import atomic_path, remove_stale_temps
from ._memory import format_bytes as _size

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
_READ = 1 << 16  # bytes per read: reads return as data arrives, so limits are checked often
DEFAULT_DEADLINE = 3600.0  # seconds for a whole download (VGG19, 548 MB, at 150 kB/s)
DEFAULT_MIN_SPEED = 10 * 1024.0  # bytes/s over each --timeout window


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

    Raises:
        DownloadError: network failure, stalled or too slow transfer, deadline passed, truncated
            transfer or hash mismatch (the message names the URL, what was received, and says
            where to copy the file by hand).
    """
    dest = Path(dest)
    manual = (f"If this machine is offline, download {url} elsewhere and copy it to {dest}.")
    log.info("downloading %s -> %s", url, dest)
    clock = _Transfer(url, timeout=timeout, deadline=deadline, min_speed=min_speed, hint=manual)
    remove_stale_temps(dest.parent, name=dest.name)  # left by a download that was killed
    try:
        with atomic_path(dest) as tmp:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=clock.wait()) as response, \
                    open(tmp, "wb") as out:
                expected = response.headers.get("Content-Length")
                clock.expected = int(expected) if expected and expected.isdigit() else None
                sock = _socket_of(response)
                read = getattr(response, "read1", response.read)  # read1: what has arrived
                while True:
                    if sock is not None:  # never block past the deadline in one read
                        sock.settimeout(clock.wait())
                    chunk = read(_READ)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    clock.received(len(chunk))
            if clock.expected is not None and clock.total != clock.expected:
                raise DownloadError(
                    f"download of {url} was cut short: got {clock.total} of {clock.expected} "
                    "bytes. " + manual
                )
            verify_digest(digest.hexdigest(), sha256=sha256, sha256_prefix=sha256_prefix,
                          what=f"the file downloaded from {url}")
    except DownloadError:
        raise
    except TimeoutError as exc:  # no byte for `timeout` seconds, or the deadline came mid-read
        raise clock.timed_out() from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, TimeoutError):
            raise clock.timed_out() from exc
        raise DownloadError(f"could not download {url}: {reason}. {manual}") from exc
    log.info("saved %s (%s)", dest, digest.hexdigest())
    return dest


class _Transfer:
    """Time limits of one download: the deadline and the stall rule, checked after each read."""

    def __init__(self, url: str, *, timeout: float, deadline: float | None, min_speed: float,
                 hint: str) -> None:
        if timeout <= 0 or (deadline is not None and deadline <= 0) or min_speed < 0:
            raise ValueError(f"download limits must be positive: timeout={timeout}, "
                             f"deadline={deadline}, min_speed={min_speed}")
        self.url, self.timeout, self.deadline, self.min_speed = url, timeout, deadline, min_speed
        self.hint = hint
        self.start = self.window_start = time.monotonic()
        self.total = self.window_bytes = 0
        self.expected: int | None = None
        self.deadline_bound = False  # the last wait() was shortened by the deadline

    def wait(self) -> float:
        """Seconds the next blocking call may wait: ``timeout``, or less near the deadline."""
        if self.deadline is None:
            return self.timeout
        left = self.deadline - (time.monotonic() - self.start)
        if left <= 0:
            raise self._past_deadline()
        self.deadline_bound = left < self.timeout
        return min(self.timeout, left)

    def received(self, n: int) -> None:
        """Count ``n`` bytes; raise when the deadline passed or the last window was too slow."""
        now = time.monotonic()
        self.total += n
        self.window_bytes += n
        if self.deadline is not None and now - self.start > self.deadline:
            raise self._past_deadline()
        if now - self.window_start >= self.timeout:
            needed = self.min_speed * (now - self.window_start)
            if self.window_bytes < needed:
                raise DownloadError(
                    f"download of {self.url} stalled: {_size(self.window_bytes)} in the last "
                    f"{now - self.window_start:.0f} s, below the minimum of "
                    f"{_size(self.min_speed)}/s ({self._progress()}). The server or the network "
                    "is too slow; try again later or a mirror (--url), or lower --min-speed. "
                    + self.hint
                )
            self.window_start, self.window_bytes = now, 0

    def timed_out(self) -> DownloadError:
        """The error for a read or connection that waited ``wait()`` seconds for nothing."""
        if self.deadline_bound:
            return self._past_deadline()
        return DownloadError(
            f"download of {self.url} stalled: no data for {self.timeout:g} s ({self._progress()}). "
            "Try again later or a mirror (--url), or raise --timeout. " + self.hint
        )

    def _past_deadline(self) -> DownloadError:
        return DownloadError(
            f"download of {self.url} did not finish within the deadline of {self.deadline:g} s "
            f"({self._progress()}). Raise --deadline for a slow connection, or try a mirror "
            "(--url). " + self.hint
        )

    def _progress(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        of = f" of {_size(self.expected)}" if self.expected is not None else ""
        return f"received {_size(self.total)}{of} in {elapsed:.0f} s, {_size(self.total / elapsed)}/s"


def _socket_of(response: object) -> socket.socket | None:
    """The socket under an ``http.client.HTTPResponse`` (to shorten its read timeout), if any."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


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
