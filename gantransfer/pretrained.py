"""Pretrained models by name: a catalogue plugins fill, a cache, and the one resolver of sources.

A name such as ``cyclegan/style_monet`` is an entry of the catalogue: where upstream publishes the
file, and how the plugin that owns it converts it into a gantransfer checkpoint. Plugins publish
entries through the entry-point group ``gantransfer.pretrained``: the entry point names a callable
that returns :class:`PretrainedModel` objects (the core names no architecture)::

    [project.entry-points."gantransfer.pretrained"]
    ugatit = "gantransfer_ugatit.pretrained:catalogue"

``download_pretrained(name)`` (what ``gtx weights download NAME`` runs) fetches the file through
the shared download layer (resumable, time-bounded, atomic), checks it against a published
SHA-256 when the entry has one and otherwise records it on first use (``gantransfer._pin``: the
official CycleGAN/pix2pix files have no published checksum), converts it with the entry's
``convert`` and stores ``model.pt`` with a lock file in the cache
(``$XDG_CACHE_HOME/gantransfer/pretrained/<name>/``, default ``~/.cache``).

:func:`resolve_source` turns what a user names into a local path; every command that takes a run
directory goes through it (``gantransfer.load``, ``gtx translate``, ``gtx export``...):

* an existing path is taken as it is (a local folder wins over a name);
* ``hf://user/repo[@revision][/file]``: a Hugging Face Hub repository (:mod:`gantransfer.hf`);
* a catalogue name: its cached checkpoint, verified against the lock file.

Nothing is fetched implicitly: a name that is not in the cache raises :class:`NotDownloadedError`
with the command that downloads it.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as md
from pathlib import Path
from typing import Any

from ._download import NotDownloadedError, ProgressFn, sha256_file
from ._io import atomic_write_bytes
from ._pin import ChangedFileError, Pin, fetch_pinned, now_utc

__all__ = [
    "GROUP",
    "CachedModel",
    "NotDownloadedError",
    "PretrainedModel",
    "cache_root",
    "cached",
    "catalogue",
    "download_pretrained",
    "find_pretrained",
    "register_pretrained",
    "resolve_source",
    "unregister_pretrained",
]

log = logging.getLogger(__name__)

GROUP = "gantransfer.pretrained"
LOCK_NAME = ".gantransfer-lock.json"
CHECKPOINT_NAME = "model.pt"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")

ConvertFn = Callable[[Path, Path], None]


@dataclass(frozen=True, kw_only=True)
class PretrainedModel:
    """One downloadable pretrained model.

    ``name`` is ``<collection>/<model>`` (``cyclegan/style_monet``). ``convert(downloaded,
    checkpoint)`` reads the upstream file and writes a gantransfer checkpoint (atomically) that
    :func:`gantransfer.load` rebuilds; it runs once, at download time. ``sha256``/``size`` are
    published values, checked when given; without them the first download is recorded and every
    later one checked against that record (trust on first use).
    """

    name: str
    url: str
    convert: ConvertFn = field(repr=False, compare=False)
    description: str = ""  # what it does, e.g. "photo -> Monet painting"
    architecture: str = ""  # the architecture of the converted checkpoint
    approx_size: int | None = None  # bytes, for display only
    sha256: str | None = None
    size: int | None = None
    note: str | None = None  # licence or behaviour notes, shown at download
    distribution: str | None = None  # filled in from the entry point

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"pretrained model name {self.name!r} must be <collection>/<model> "
                             "(letters, digits, '_', '.', '-')")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")

    @property
    def filename(self) -> str:
        """The upstream file name (also what ``--mirror`` appends)."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def url_for(self, *, url: str | None = None, mirror: str | None = None) -> str:
        """``url`` as given, ``mirror`` + the upstream file name, or the upstream URL."""
        if url:
            return url
        if mirror:
            return f"{mirror.rstrip('/')}/{self.filename}"
        return self.url


@dataclass(frozen=True)
class CachedModel:
    """A converted pretrained model in the cache and what its lock file recorded."""

    checkpoint: Path
    source: Pin  # the upstream file as first downloaded
    checkpoint_sha256: str
    checkpoint_size: int
    converted: str  # UTC date of the conversion


# -- the catalogue ------------------------------------------------------------------------------
_registered: dict[str, PretrainedModel] = {}


def register_pretrained(entry: PretrainedModel) -> PretrainedModel:
    """Add ``entry`` in-process (notebooks, tests); returns it.

    Raises:
        ValueError: the name is already in the catalogue (unregister it first).
    """
    if entry.name in catalogue():
        raise ValueError(f"pretrained model {entry.name!r} is already in the catalogue")
    _registered[entry.name] = entry
    return entry


def unregister_pretrained(name: str) -> None:
    """Remove an entry added with :func:`register_pretrained` (KeyError if there is none)."""
    del _registered[name]


def catalogue() -> dict[str, PretrainedModel]:
    """All pretrained models: built-in plugins' first, then third-party ones, then in-process.

    A plugin whose entry point fails is skipped with a warning (the others keep working); a
    third-party entry may not shadow a name another distribution already publishes: it is
    reported and not used.
    """
    found: dict[str, PretrainedModel] = {}
    points = sorted(md.entry_points(group=GROUP),
                    key=lambda ep: (_dist_name(ep) != "gantransfer", ep.name))
    for ep in points:
        dist = _dist_name(ep)
        try:
            published = ep.load()
            entries = list(published() if callable(published) else published)
            bad = [e for e in entries if not isinstance(e, PretrainedModel)]
            if bad:
                raise TypeError(f"expected PretrainedModel objects, got {type(bad[0]).__name__}")
        except Exception as exc:  # a broken plugin must not hide the others
            log.warning("pretrained models of entry point %r (%s) are skipped: %s: %s",
                        ep.name, dist or "unknown distribution", type(exc).__name__, exc)
            continue
        for entry in entries:
            if entry.name in found:
                log.warning("pretrained model %r of %s is ignored: %s already publishes it",
                            entry.name, dist, found[entry.name].distribution)
                continue
            found[entry.name] = _with_distribution(entry, dist)
    for name, entry in _registered.items():
        found.setdefault(name, entry)
    return found


def find_pretrained(name: str) -> PretrainedModel:
    """The catalogue entry ``name``.

    Raises:
        LookupError: unknown name; the message suggests close names and says how to list them.
    """
    entries = catalogue()
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, entries, n=3, cutoff=0.6)
    close += [n for n in entries if n.endswith(f"/{name}") and n not in close]
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise LookupError(f"unknown pretrained model {name!r}.{hint} See them all with "
                      "`gtx weights list`.")


def _dist_name(ep: md.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _with_distribution(entry: PretrainedModel, dist: str | None) -> PretrainedModel:
    if entry.distribution or not dist:
        return entry
    from dataclasses import replace

    return replace(entry, distribution=dist)


# -- the cache ----------------------------------------------------------------------------------
def cache_root() -> Path:
    """``$XDG_CACHE_HOME/gantransfer/pretrained`` (``XDG_CACHE_HOME`` defaults to ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gantransfer" / "pretrained"


def _folder(name: str) -> Path:
    return cache_root().joinpath(*name.split("/"))


def cached(name: str, *, verify: bool = True) -> CachedModel | None:
    """The cached, converted model ``name``, or None when it is not downloaded.

    With ``verify`` the checkpoint's SHA-256 is checked against the lock file.

    Raises:
        ChangedFileError: the checkpoint differs from the one the download wrote.
        ValueError: the lock file is damaged (the message says to download again).
    """
    folder = _folder(name)
    lock, checkpoint = folder / LOCK_NAME, folder / CHECKPOINT_NAME
    if not (lock.is_file() and checkpoint.is_file()):
        return None
    try:
        data = json.loads(lock.read_text())
        record = CachedModel(checkpoint=checkpoint,
                             source=Pin.from_dict(data["source"], where=str(lock)),
                             checkpoint_sha256=str(data["checkpoint"]["sha256"]),
                             checkpoint_size=int(data["checkpoint"]["size"]),
                             converted=str(data["checkpoint"]["date"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{lock} is damaged ({exc}); run `gtx weights download {name} "
                         "--force` to download and convert the model again") from exc
    if verify:
        size = checkpoint.stat().st_size
        digest = sha256_file(checkpoint) if size == record.checkpoint_size else ""
        if (digest, size) != (record.checkpoint_sha256, record.checkpoint_size):
            raise ChangedFileError(
                f"{checkpoint} is not the checkpoint converted on {record.converted} (recorded "
                f"in {lock}: SHA-256 {record.checkpoint_sha256}, {record.checkpoint_size} "
                f"bytes; found {size} bytes). Run `gtx weights download {name} --force` to "
                "download and convert it again.")
    return record


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download_pretrained` did: the cached model, whether it was already there,
    whether this was the first (unverified) download, and from where."""

    entry: PretrainedModel
    model: CachedModel
    already_present: bool
    first_use: bool
    url: str | None


def download_pretrained(name: str, *, url: str | None = None, mirror: str | None = None,
                        force: bool = False, progress: ProgressFn | None = None,
                        **fetch_kwargs: Any) -> DownloadResult:
    """Download, verify and convert the pretrained model ``name`` into the cache.

    A verified copy already in the cache is kept (``force`` converts it again). The upstream
    file is checked against the entry's published SHA-256/size, else against the record of the
    first download (a changed file is refused); it is deleted once converted.

    Args:
        url, mirror: another source (the checks stay).
        progress: ``(bytes so far, total or None)`` during the transfer.
        fetch_kwargs: ``timeout``, ``deadline``, ``min_speed`` (see ``gantransfer.hub.fetch``).

    Raises:
        LookupError: unknown name.
        ChangedFileError, IntegrityError: the file differs from what was recorded or published.
        DownloadError: the transfer failed (the message names the URL and the manual path).
        ValueError: the plugin's conversion refused the file.
    """
    entry = find_pretrained(name)
    folder = _folder(entry.name)
    lock = folder / LOCK_NAME
    old_pin: Pin | None = None
    if lock.is_file():
        try:
            old_pin = Pin.from_dict(json.loads(lock.read_text())["source"], where=str(lock))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{lock} is damaged ({exc}); delete {folder} and download "
                             "again") from exc
    if not force:
        present = cached(entry.name)
        if present is not None:
            return DownloadResult(entry, present, already_present=True, first_use=False,
                                  url=None)
    source_url = entry.url_for(url=url, mirror=mirror)
    download = folder / entry.filename
    got, pin = fetch_pinned(
        source_url, download, pin=old_pin, sha256=entry.sha256, size=entry.size,
        record=str(lock), progress=progress, resume=True,
        manual_hint="Or download it by hand and pass --url file://PATH (it is recorded and "
                    "checked the same way)", **fetch_kwargs)
    checkpoint = folder / CHECKPOINT_NAME
    try:
        entry.convert(got.path, checkpoint)
    finally:
        download.unlink(missing_ok=True)
    record = {"name": entry.name, "source": pin.to_dict(),
              "checkpoint": {"sha256": sha256_file(checkpoint),
                             "size": checkpoint.stat().st_size, "date": now_utc()}}
    atomic_write_bytes(lock, (json.dumps(record, indent=2) + "\n").encode())
    model = cached(entry.name, verify=False)
    assert model is not None  # just written
    log.info("%s: converted into %s", entry.name, checkpoint)
    return DownloadResult(entry, model, already_present=False, first_use=old_pin is None and
                          not pin.verified, url=source_url)


# -- the resolver -------------------------------------------------------------------------------
def is_hub_address(source: str | os.PathLike[str]) -> bool:
    """True for ``hf://...`` (also as ``hf:/...``, what ``pathlib`` makes of it)."""
    return str(source).startswith(("hf://", "hf:/"))


def resolve_source(source: str | os.PathLike[str]) -> Path:
    """The local file or run directory ``source`` names (see the module docstring).

    Raises:
        NotDownloadedError: a pretrained name or hub repository that is not cached (the
            message gives the download command).
        ChangedFileError: the cached file differs from what its download recorded.
        LookupError: ``source`` looks like a pretrained name of a known collection but is not
            in the catalogue (close names suggested).
    """
    path = Path(source)
    if path.exists():
        return path
    text = str(source)
    if is_hub_address(text):
        from .hf import resolve_hub

        return resolve_hub(text)
    if not _NAME.fullmatch(text):
        return path
    entries = catalogue()
    if text not in entries:
        collections = {n.split("/", 1)[0] for n in entries}
        if text.split("/", 1)[0] in collections:
            find_pretrained(text)  # raises LookupError with suggestions
        return path
    record = cached(text)
    if record is None:
        raise NotDownloadedError(
            f"{text} is a pretrained model that is not downloaded yet (and nothing is fetched "
            f"implicitly). Download it once with: gtx weights download {text}")
    return record.checkpoint

