"""Models on the Hugging Face Hub as sources: ``hf://user/repo[@revision][/file]``.

``download_hub`` (``gtx weights download hf://...``, or a command's explicit ``--download``)
fetches a repository into the Hub's own cache (``HF_HUB_CACHE``, default
``~/.cache/huggingface/hub``) with ``huggingface_hub`` (the optional extra ``hub``), then checks
every file against the Hub's listing: its size, and its SHA-256 (files stored with LFS) or git
blob id (other files) where the listing gives them. What was checked is recorded in
``$XDG_CACHE_HOME/gantransfer/hub/<user>/<repo>/<commit>.json``.

``resolve_hub`` (called by :func:`gantransfer.pretrained.resolve_source` for every command) never
downloads: it finds the cached snapshot, re-checks its files against that record and returns the
model file: ``/file`` when given, else ``model.pt`` (a gantransfer checkpoint, loaded
weights-only like every checkpoint), else the repository's only ``.onnx`` file.
``HF_ENDPOINT`` (read at each call) points at another Hub, e.g. a local stand-in in tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._download import IntegrityError, NotDownloadedError, sha256_file
from ._io import atomic_write_bytes
from ._pin import ChangedFileError

__all__ = ["HubAddress", "HubDownload", "download_hub", "parse_address", "resolve_hub"]

_ADDRESS = re.compile(r"hf:/{1,2}(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[\w.-]+))?(?:/(?P<file>.+))?")
MODEL_FILE = "model.pt"


@dataclass(frozen=True)
class HubAddress:
    """A parsed ``hf://`` address: repository id, revision (None: the default branch) and an
    optional file inside the repository."""

    repo_id: str
    revision: str | None = None
    filename: str | None = None

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo_id}{rev}" + (f"/{self.filename}" if self.filename else "")

    @property
    def repo_text(self) -> str:
        """The address without the file (what ``gtx weights download`` takes)."""
        return f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class HubDownload:
    """A downloaded, checked repository snapshot: where it is, its commit, the files, and a
    sentence saying what was checked."""

    address: HubAddress
    commit: str
    folder: Path
    files: list[str]
    checked: str


def parse_address(text: str | os.PathLike[str]) -> HubAddress:
    """Parse ``hf://user/repo[@revision][/file]`` (``hf:/...`` too, as pathlib writes it).

    Raises:
        ValueError: not such an address (the message shows the expected form).
    """
    match = _ADDRESS.fullmatch(str(text))
    if not match:
        raise ValueError(f"{text!s} is not a Hub address; expected hf://user/repo, "
                         "hf://user/repo@revision or hf://user/repo/file.onnx")
    return HubAddress(match["repo"], match["rev"], match["file"])


def require_hub() -> Any:
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ImportError("hf:// sources and gtx push need huggingface_hub: pip install "
                          "'gantransfer[hub]'") from exc
    return huggingface_hub


def endpoint() -> str | None:
    """``HF_ENDPOINT`` as set now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def hub_cache() -> Path:
    """The Hub's cache: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _record_path(repo_id: str, commit: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "gantransfer", "hub", *repo_id.split("/"), f"{commit}.json")


def _git_blob_id(path: Path) -> str:
    """The git object id of a file (SHA-1 of ``blob <size>\\0`` + content), as the Hub lists it."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_hub(text: str | os.PathLike[str], *, force: bool = False) -> HubDownload:
    """Download the repository ``text`` names into the Hub cache and check every file.

    Raises:
        ImportError: huggingface_hub is not installed.
        IntegrityError: a file differs from the size/hash the Hub lists (the message names it).
        huggingface_hub errors: repository or revision not found, network failure.
    """
    hub = require_hub()
    address = parse_address(text)
    folder = Path(hub.snapshot_download(address.repo_id, revision=address.revision,
                                        cache_dir=hub_cache(), endpoint=endpoint(),
                                        force_download=force))
    commit = folder.name
    api = hub.HfApi(endpoint=endpoint())
    listed = [f for f in api.list_repo_tree(address.repo_id, revision=commit, recursive=True)
              if isinstance(f, hub.hf_api.RepoFile)]
    record: dict[str, dict[str, Any]] = {}
    hashed = blobs = 0
    for item in listed:
        path = folder / item.path
        if not path.is_file():
            raise IntegrityError(f"{address.repo_text}: {item.path} is listed by the Hub but "
                                 f"missing from {folder}; download again with --force")
        size = path.stat().st_size
        digest = sha256_file(path)
        expected_size = item.lfs.size if item.lfs is not None else item.size
        problem = None
        if expected_size is not None and size != expected_size:
            problem = f"{size} bytes, the Hub lists {expected_size}"
        elif item.lfs is not None and item.lfs.sha256:
            hashed += 1
            if digest != item.lfs.sha256:
                problem = f"SHA-256 {digest}, the Hub lists {item.lfs.sha256}"
        elif item.blob_id:
            blobs += 1
            if (blob := _git_blob_id(path)) != item.blob_id:
                problem = f"git blob id {blob}, the Hub lists {item.blob_id}"
        if problem:
            raise IntegrityError(f"{address.repo_text}: {path} has {problem}. Nothing from "
                                 "this download is used; run the download again with --force")
        record[item.path] = {"size": size, "sha256": digest}
    record_path = _record_path(address.repo_id, commit)
    atomic_write_bytes(record_path, (json.dumps({"repo": address.repo_id, "commit": commit,
                                                 "files": record}, indent=2) + "\n").encode())
    checked = (f"{len(record)} file(s): sizes, {hashed} SHA-256 (LFS) and {blobs} git blob "
               "id(s)")
    return HubDownload(address, commit, folder, sorted(record), checked)


def resolve_hub(text: str | os.PathLike[str], *, download: bool = False) -> Path:
    """The model file of a cached repository (see the module docstring); with ``download``
    the repository is downloaded first when it is not cached.

    Raises:
        NotDownloadedError: not cached (the message gives the download command).
        ChangedFileError: a cached file differs from what the download checked.
        FileNotFoundError: the repository holds no model file (or several ``.onnx``: the message
            lists them for ``hf://user/repo/FILE``).
    """
    address = parse_address(text)
    if download:
        download_hub(address.repo_text)
    hub = require_hub()
    try:
        folder = Path(hub.snapshot_download(address.repo_id, revision=address.revision,
                                            cache_dir=hub_cache(), local_files_only=True))
    except hub.errors.LocalEntryNotFoundError:
        folder = None
    record_path = _record_path(address.repo_id, folder.name) if folder else None
    if folder is None or record_path is None or not record_path.is_file():
        raise NotDownloadedError(
            f"{address.repo_text} is not downloaded yet (nothing is fetched implicitly). "
            f"Download it with: gtx weights download {address.repo_text} (or pass --download "
            "to the command)")
    files = json.loads(record_path.read_text())["files"]
    for name, expected in files.items():
        path = folder / name
        got = (sha256_file(path), path.stat().st_size) if path.is_file() else ("", -1)
        if got != (expected["sha256"], expected["size"]):
            raise ChangedFileError(
                f"{path} is not the file downloaded and checked from {address.repo_text} "
                f"(recorded in {record_path}); download it again with: gtx weights download "
                f"{address.repo_text} --force")
    if address.filename:
        if address.filename not in files:
            raise FileNotFoundError(f"{address.repo_text} has no file {address.filename!r}; "
                                    f"it has {', '.join(sorted(files))}")
        return folder / address.filename
    if MODEL_FILE in files:
        return folder / MODEL_FILE
    onnx = sorted(n for n in files if n.endswith(".onnx"))
    if len(onnx) == 1:
        return folder / onnx[0]
    raise FileNotFoundError(
        f"{address.repo_text} holds " + (f"several ONNX files ({', '.join(onnx)}): name one, "
                                         f"e.g. {address.repo_text}/{onnx[0]}" if onnx else
                                         f"no {MODEL_FILE} and no .onnx file"))
