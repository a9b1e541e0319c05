"""One HTTP download: streamed, time-bounded, resumable, verified and placed atomically.

Every file gantransfer fetches goes through :func:`fetch` (weights via :mod:`gantransfer.hub`,
datasets via :mod:`gantransfer.data.download`); the public names are re-exported by ``hub``.

* Limits: ``timeout`` per connection and per read, a stall rule (every ``timeout`` seconds must
  bring ``min_speed * timeout`` bytes) and an overall ``deadline`` (see :class:`_Transfer`).
* Progress: ``progress(done, total)`` after every read (bytes; ``total`` None when unknown).
  Library code reports through it and never prints.
* Resume (``resume=True``): the body goes to ``<dest>.part`` with the server's validators in
  ``<dest>.part.json``. A later call sends ``Range: bytes=N-`` with ``If-Range`` (a strong ETag,
  else Last-Modified); a ``206`` whose ``Content-Range`` starts at ``N`` and has the recorded total
  size is appended, anything else (``200``: the file changed or the server does not do ranges;
  ``416``; another total) starts over. Without any validator (no ETag, Last-Modified or size) no
  partial file is kept, since a changed file could not be told apart.
* Integrity: the SHA-256 is computed while streaming (the kept part is hashed first on resume);
  ``dest`` appears only once the size and hash match. A size or hash mismatch removes the partial
  file too: resuming a wrong file cannot make it right.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._io import atomic_write_bytes, remove_stale_temps, temp_name
from ._text import format_bytes as _size

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MIN_SPEED",
    "DownloadError",
    "Downloaded",
    "IntegrityError",
    "NotDownloadedError",
    "ProgressFn",
    "fetch",
    "partial_path",
    "sha256_file",
    "verify_digest",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_READ = 1 << 16  # bytes per read: reads return as data arrives, so limits are checked often
DEFAULT_DEADLINE = 3600.0  # seconds for a whole download (VGG19, 548 MB, at 150 kB/s)
DEFAULT_MIN_SPEED = 10 * 1024.0  # bytes/s over each --timeout window

ProgressFn = Callable[[int, "int | None"], None]
"""``progress(done, total)``: bytes so far (resumed bytes included) and the full size or None."""


class DownloadError(RuntimeError):
    """A file could not be downloaded, or did not match its expected hash or size."""


class IntegrityError(DownloadError):
    """The bytes arrived but are not the expected file (SHA-256 or size mismatch)."""


class NotDownloadedError(FileNotFoundError):
    """A pretrained name or Hub repository that is not in the cache; the message gives the
    command that downloads it (nothing is fetched implicitly)."""


@dataclass(frozen=True)
class Downloaded:
    """A verified download: where it is, what it is, and how much came from an earlier try."""

    path: Path
    url: str
    size: int
    sha256: str
    resumed_from: int = 0  # bytes kept from an interrupted transfer (0: downloaded whole)


def sha256_file(path: str | os.PathLike[str], *, progress: ProgressFn | None = None) -> str:
    """SHA-256 of a file as lowercase hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    total = os.path.getsize(path) if progress else None
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if progress:
                done += len(chunk)
                progress(done, total)
    return digest.hexdigest()


def verify_digest(digest: str, *, sha256: str | None = None, sha256_prefix: str | None = None,
                  what: str = "file") -> None:
    """Raise :class:`IntegrityError` when ``digest`` differs from the expected hash (or prefix)."""
    if sha256 is not None and digest != sha256:
        raise IntegrityError(f"{what} has SHA-256 {digest}, expected {sha256}")
    if sha256 is None and sha256_prefix is not None and not digest.startswith(sha256_prefix):
        raise IntegrityError(
            f"{what} has SHA-256 {digest}, which does not start with the expected {sha256_prefix}"
        )


def partial_path(dest: str | os.PathLike[str]) -> Path:
    """Where :func:`fetch` keeps an interrupted transfer of ``dest`` (``<dest>.part``)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def fetch(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None,
          sha256_prefix: str | None = None, size: int | None = None, timeout: float = 60.0,
          deadline: float | None = DEFAULT_DEADLINE, min_speed: float = DEFAULT_MIN_SPEED,
          progress: ProgressFn | None = None, resume: bool = False,
          manual_hint: str | None = None) -> Downloaded:
    """Download ``url`` to ``dest``; verify ``size``, ``sha256`` (or ``sha256_prefix``) if given.

    Args:
        url: what to fetch (http, https; anything ``urllib`` opens).
        dest: the final path; it appears (atomically) only when the download is complete and
            verified. The parent folder is created.
        timeout, deadline, min_speed: the time limits (see the module docstring).
        progress: called with (bytes so far, total or None) after every read.
        resume: keep an interrupted transfer in ``<dest>.part`` and continue it next time.
        manual_hint: the sentence that says how to get the file by hand (default: copy it to
            ``dest``); appended to network errors.

    Returns:
        :class:`Downloaded` with the SHA-256 and size of the file now at ``dest``.

    Raises:
        IntegrityError: hash or size mismatch (nothing is left behind).
        DownloadError: network failure, stalled or too slow transfer, deadline passed, truncated
            transfer; the message names the URL and how to fetch the file by hand, and, when a
            partial file was kept, that the same call resumes it.
    """
    dest = Path(dest)
    hint = manual_hint or (f"If this machine is offline, download {url} elsewhere and copy it "
                           f"to {dest}.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Temporary files of downloads that were killed (this host, dead pid) are removed first;
    # a new one is named like every atomic write's, so the next download can tell it is stale.
    remove_stale_temps(dest.parent, name=dest.name)
    part = partial_path(dest) if resume else dest.with_name(temp_name(dest.name))
    state = _PartState(part, url) if resume else None
    clock = _Transfer(url, timeout=timeout, deadline=deadline, min_speed=min_speed, hint=hint)
    log.info("downloading %s -> %s", url, dest)
    try:
        digest, offset = _transfer(url, part, state, clock, progress)
        got = offset + clock.total
        if clock.expected is not None and got != clock.expected:
            raise DownloadError(f"download of {url} was cut short: got {got} of "
                                f"{clock.expected} bytes. " + hint)
        if size is not None and got != size:
            raise IntegrityError(f"the file downloaded from {url} has {got} bytes, expected {size}")
        verify_digest(digest, sha256=sha256, sha256_prefix=sha256_prefix,
                      what=f"the file downloaded from {url}")
        with open(part, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part, dest)
    except BaseException as exc:
        # A wrong file is removed; an interrupted one (network, limits, Ctrl-C) is kept when it
        # can be resumed safely.
        keep = state is not None and state.resumable and not isinstance(exc, IntegrityError)
        _cleanup(part, state, keep)
        if isinstance(exc, DownloadError):
            error = exc
        elif isinstance(exc, TimeoutError):  # no byte for `timeout` s, or the deadline came
            error = clock.timed_out()
        elif isinstance(exc, (urllib.error.URLError, http.client.HTTPException, OSError)):
            reason = getattr(exc, "reason", None) or exc
            error = clock.timed_out() if isinstance(reason, TimeoutError) else DownloadError(
                f"could not download {url}: {reason}. {hint}")
        else:  # KeyboardInterrupt and programming errors pass through unchanged
            raise
        raise _with_resume_note(error, part, keep) from (exc if error is not exc else
                                                         exc.__cause__)
    if state is not None:
        state.forget()
    log.info("saved %s (%s, SHA-256 %s)", dest, _size(got), digest)
    return Downloaded(path=dest, url=url, size=got, sha256=digest, resumed_from=offset)


def _cleanup(part: Path, state: _PartState | None, keep: bool) -> None:
    if keep and part.is_file() and part.stat().st_size > 0:
        return
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    if state is not None:
        state.forget()


def _with_resume_note(error: DownloadError, part: Path, kept: bool) -> DownloadError:
    if not kept or not part.is_file():
        return error
    return type(error)(f"{error} The {_size(part.stat().st_size)} received so far are kept in "
                       f"{part}: the same command resumes from there (delete it to start over).")


def _transfer(url: str, part: Path, state: _PartState | None, clock: _Transfer,
              progress: ProgressFn | None) -> tuple[str, int]:
    """Stream ``url`` into ``part`` (appending when the server resumes); return (SHA-256, offset).

    ``clock.total`` counts the bytes of this transfer, ``clock.expected`` the full size.
    """
    offset = state.offset() if state is not None else 0
    response = _open(url, state, offset, clock)
    try:
        if offset and response.status != 206:
            log.info("%s: the server sent the whole file (it changed, or the server does not "
                     "resume); starting over", url)
            offset = 0
        if offset:  # only with a state: offset is 0 without one
            start, total = _content_range(response)
            known = state.total if state is not None else None
            if start != offset or (known is not None and total != known):
                log.info("%s: the server resumed at byte %s of %s, expected %s of %s; "
                         "starting over", url, start, total, offset, known)
                response.close()
                offset = 0
                response = _open(url, None, 0, clock)
            else:
                clock.expected = total
        if not offset:
            length = response.headers.get("Content-Length")
            clock.expected = int(length) if length and length.isdigit() else None
        if state is not None:
            state.remember(response, clock.expected)
        digest = hashlib.sha256()
        if offset:  # the kept bytes are part of the file: hash them first
            with open(part, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        with open(part, "ab" if offset else "wb") as out:
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
                if progress is not None:
                    progress(offset + clock.total, clock.expected)
    finally:
        response.close()
    return digest.hexdigest(), offset


def _open(url: str, state: _PartState | None, offset: int, clock: _Transfer
          ) -> http.client.HTTPResponse:
    """Send the GET (with Range/If-Range when resuming from ``offset``); a 416 starts over."""
    headers = {}
    if state is not None and offset:
        headers["Range"] = f"bytes={offset}-"
        if state.validator:
            headers["If-Range"] = state.validator
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=clock.wait())
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        exc.close()
        log.info("%s: the kept part is not a prefix of the file (HTTP 416); starting over", url)
        return urllib.request.urlopen(urllib.request.Request(url), timeout=clock.wait())


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _content_range(response: http.client.HTTPResponse) -> tuple[int | None, int | None]:
    match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    if not match:
        return None, None
    return int(match[1]), None if match[3] == "*" else int(match[3])


class _PartState:
    """The partial file of a resumable download and the validators recorded beside it."""

    def __init__(self, part: Path, url: str) -> None:
        self.part, self.url = part, url
        self.meta = part.with_name(part.name + ".json")
        self.validator: str | None = None
        self.total: int | None = None
        self.resumable = False

    def offset(self) -> int:
        """Bytes that can be resumed from (0 and the files removed when they cannot)."""
        try:
            saved = json.loads(self.meta.read_text())
            size = self.part.stat().st_size
        except (OSError, ValueError):
            self.forget()
            return 0
        if not isinstance(saved, dict) or saved.get("url") != self.url or size == 0:
            log.info("%s: discarding a partial file of another download", self.part)
            self.forget()
            return 0
        self.validator = saved.get("validator") if isinstance(saved.get("validator"), str) else None
        total = saved.get("total")
        self.total = total if isinstance(total, int) else None
        if self.total is not None and size > self.total:
            self.forget()
            return 0
        self.resumable = True  # validated when it was kept: a failed retry must not lose it
        log.info("resuming %s from byte %d", self.url, size)
        return size

    def remember(self, response: http.client.HTTPResponse, total: int | None) -> None:
        """Record the server's validators; a file without any is not kept on failure."""
        etag = response.headers.get("ETag")
        validator = etag if etag and not etag.startswith("W/") else \
            response.headers.get("Last-Modified")
        self.validator, self.total = validator, total
        self.resumable = bool(validator or total)
        if self.resumable:
            atomic_write_bytes(self.meta, json.dumps(
                {"url": self.url, "validator": validator, "total": total}).encode())

    def forget(self) -> None:
        for path in (self.part, self.meta):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


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
