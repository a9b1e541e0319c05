"""Trust on first use: a record of what a download was, so a changed file is never trusted.

Upstream servers often publish no checksum (the CycleGAN/pix2pix datasets and pretrained models
have none). The first download then cannot be verified; what we can do is record its SHA-256 and
size in a :class:`Pin` (stored by the caller, e.g. in a dataset's lock file) and check every
later download or use against it. A pin made against a published SHA-256 says so
(``verified=True``); one recorded on first use says ``verified=False``, and callers tell the user.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._download import Downloaded, IntegrityError, ProgressFn, fetch, sha256_file
from ._io import atomic_write_bytes

__all__ = ["ChangedFileError", "Pin", "fetch_pinned", "read_pin", "verify_pinned", "write_pin"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


class ChangedFileError(IntegrityError):
    """A file differs from the SHA-256 or size recorded when it was first downloaded."""


@dataclass(frozen=True, kw_only=True)
class Pin:
    """What a downloaded file was: its source, size, SHA-256, when it was first recorded, and
    whether that SHA-256 was checked against a published one (``verified``) or only recorded."""

    url: str
    size: int
    sha256: str
    date: str  # UTC, ISO 8601, of the first download
    verified: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, where: str) -> Pin:
        """Rebuild a pin from JSON data; ``ValueError`` naming ``where`` when it is malformed."""
        try:
            pin = cls(url=str(data["url"]), size=int(data["size"]), sha256=str(data["sha256"]),
                      date=str(data["date"]), verified=bool(data["verified"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"{where} is not a valid download record ({exc!r}); delete it to "
                             "record the file anew") from exc
        if not _HEX64.fullmatch(pin.sha256) or pin.size < 0:
            raise ValueError(f"{where}: {pin.sha256!r} / {pin.size} is not a SHA-256 and size; "
                             "delete it to record the file anew")
        return pin


def now_utc() -> str:
    """The current time as the pins record it (UTC, seconds)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def verify_pinned(sha256: str, size: int, pin: Pin, *, what: str, record: str) -> None:
    """Raise :class:`ChangedFileError` unless ``sha256`` and ``size`` are the pinned ones.

    ``what`` names the file checked, ``record`` where the pin is stored (for the message).
    """
    if sha256 == pin.sha256 and size == pin.size:
        return
    how = "checked against the published SHA-256" if pin.verified else \
        "unverified: recorded on first use"
    raise ChangedFileError(
        f"{what} is not the file recorded on {pin.date} in {record} ({how}): SHA-256 {sha256}, "
        f"{size} bytes, recorded {pin.sha256}, {pin.size} bytes. gantransfer does not trust a "
        f"changed file. If the source re-published it on purpose, delete {record} (and the old "
        "data) and run the command again to record the new file; otherwise try again later or "
        "another mirror.")


def fetch_pinned(url: str, dest: str | os.PathLike[str], *, pin: Pin | None = None,
                 sha256: str | None = None, size: int | None = None,
                 record: str = "the download record", **fetch_kwargs: Any
                 ) -> tuple[Downloaded, Pin]:
    """Download ``url`` to ``dest`` and check it against a published hash, else against ``pin``.

    Args:
        url, dest: as for :func:`gantransfer.hub.fetch`.
        pin: what was recorded the first time (None: this is the first time).
        sha256, size: published values, checked when given; they take precedence over ``pin``.
        record: where the pin is stored, for messages.
        fetch_kwargs: limits, ``progress``, ``resume``, ``manual_hint`` (see ``fetch``).

    Returns:
        The download and the pin to store: the old pin when there was one, otherwise a new one
        with ``verified=True`` only if a published SHA-256 was checked.

    Raises:
        ChangedFileError: the file differs from ``pin`` (nothing is left behind).
        IntegrityError: the file differs from the published ``sha256``/``size``.
        DownloadError: see ``fetch``.
    """
    expected_sha = sha256 or (pin.sha256 if pin else None)
    expected_size = size if size is not None else (pin.size if pin else None)
    try:
        got = fetch(url, dest, sha256=expected_sha, size=expected_size, **fetch_kwargs)
    except ChangedFileError:
        raise
    except IntegrityError as exc:
        if sha256 is not None or size is not None or pin is None:
            raise
        raise ChangedFileError(
            f"the file at {url} changed since it was first downloaded on {pin.date} ({exc}). "
            f"gantransfer does not trust a changed file: nothing was replaced. If the source "
            f"re-published it on purpose, delete {record} (and the old data) and run the command "
            "again to record the new file; otherwise try again later or another mirror.") from exc
    if pin is not None and not sha256:
        return got, pin
    return got, Pin(url=url, size=got.size, sha256=got.sha256,
                    date=pin.date if pin else now_utc(), verified=sha256 is not None)


def pin_file(path: str | os.PathLike[str], *, url: str, pin: Pin | None = None,
             sha256: str | None = None, size: int | None = None,
             record: str = "the download record", progress: ProgressFn | None = None) -> Pin:
    """Check a file obtained by hand (copied in place of a download) like :func:`fetch_pinned`;
    ``progress(done, total)`` follows the hashing.

    Returns the pin to store. Raises :class:`IntegrityError` / :class:`ChangedFileError`.
    """
    digest, got = sha256_file(path, progress=progress), os.path.getsize(path)
    what = f"{path} (in place of {url})"
    if sha256 is not None or size is not None:
        if (sha256 is not None and digest != sha256) or (size is not None and got != size):
            raise IntegrityError(f"{what} has SHA-256 {digest} and {got} bytes, expected "
                                 f"{sha256 or 'any SHA-256'} and {size or 'any size'}; it is "
                                 "not the published file: delete it and download again")
        return Pin(url=url, size=got, sha256=digest, date=pin.date if pin else now_utc(),
                   verified=sha256 is not None)
    if pin is not None:
        verify_pinned(digest, got, pin, what=what, record=record)
        return pin
    return Pin(url=url, size=got, sha256=digest, date=now_utc(), verified=False)


def read_pin(path: str | os.PathLike[str]) -> Pin | None:
    """The pin stored as JSON at ``path``, or None when there is none. ValueError if malformed."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON ({exc}); delete it to record the file anew") from exc
    return Pin.from_dict(data, where=str(path))


def write_pin(path: str | os.PathLike[str], pin: Pin) -> None:
    """Store ``pin`` as JSON at ``path`` (atomically)."""
    atomic_write_bytes(path, (json.dumps(pin.to_dict(), indent=2) + "\n").encode())
