"""Reading ``torch.save`` files safely, with errors that say what the file is and what to do.

Every file gantransfer reads with torch (checkpoints, official CycleGAN weights, VGG weights)
goes through :func:`load_tensors`: ``torch.load(weights_only=True)``, which never runs code from
the file. When it refuses a file, torch's own message is a how-to for bypassing the check
("re-run with weights_only=False") or asks to file an issue; ours instead says what the file is
(an ONNX model, an image, a damaged archive, a pickle that would call ``os.system``) and what was
expected. Loading code from a file is refused on purpose and no option turns that off.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["DamagedFileError", "TorchFileError", "UnsafeFileError", "load_tensors"]

# Reading more than this to find the globals a refused pickle names is not worth it: the pickle
# part of a torch file (data.pkl) is small, tensors live in other archive members.
_MAX_PICKLE_BYTES = 16 * 2**20
_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL (\S+?)(?: was not| whose|$)", re.MULTILINE)
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                         "SHORT_BINSTRING", "BINSTRING", "STRING"})
# What a file's first bytes say it is, when it is not a torch file at all.
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"GIF8", "a GIF image"), (b"BM", "a BMP image"), (b"RIFF", "a RIFF (e.g. WebP) file"),
          (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
          (b"\x1f\x8b", "a gzip archive"), (b"{", "a JSON/text file"))


class TorchFileError(ValueError):
    """A file could not be read as a ``torch.save`` file of tensors and plain data."""


class DamagedFileError(TorchFileError):
    """A torch file that is empty, truncated or damaged (its archive or pickle does not read):
    an interrupted copy or bit rot, as opposed to another kind of file or a refused one."""


class UnsafeFileError(TorchFileError):
    """A file asks to import and call code while loading; it was not loaded.

    ``blocked`` lists the globals it names (e.g. ``["posix.system"]``) when they could be found.
    """

    def __init__(self, message: str, *, blocked: list[str]) -> None:
        super().__init__(message)
        self.blocked = blocked


def load_tensors(path: str | os.PathLike[str], *, expected: str, map_location: Any = "cpu"
                 ) -> Any:
    """``torch.load(path, weights_only=True)``, with errors that name the file and say why.

    Args:
        path: the file to read.
        expected: what the caller wanted, for the messages, e.g. ``"a gantransfer checkpoint
            (RUN/checkpoints/step_*.pt) or a run directory"``.
        map_location: as for ``torch.load``.

    Returns:
        What the file holds (tensors, containers and plain data only).

    Raises:
        UnsafeFileError: the file would import and call code (a pickled object or function
            other than tensors and plain data); the message names what it asks for.
        DamagedFileError: the file is empty, truncated or damaged (e.g. a torch zip archive
            whose pickle or central directory does not read).
        TorchFileError: the file is missing or another kind of file (an ONNX model, an
            image...); the message says which.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise TorchFileError(f"{path} does not exist (or is not a file); expected {expected}")
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it did not write; the error below says more.
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refused(path, str(exc), expected=expected) from exc
    except Exception as exc:
        # torch's zip reader and legacy loader fail with many types on damaged bytes (a
        # RuntimeError from miniz, EOFError on an empty file, KeyError/IndexError on a corrupt
        # archive, struct.error on a 1-byte file, found by tests/reliability/test_rel_fuzz.py):
        # all mean "not a readable torch file".
        kind = _what_it_is(path)
        if kind is not None and path.stat().st_size > 0:
            raise TorchFileError(_not_torch(path, kind, expected=expected)) from exc
        raise DamagedFileError(_damaged(path, exc, expected=expected)) from exc


def _refused(path: Path, message: str, *, expected: str) -> TorchFileError:
    """The error for a file torch's weights-only unpickler stopped reading."""
    blocked = _GLOBAL_IN_MESSAGE.findall(message)
    kind = _what_it_is(path)
    if not blocked and kind is None:
        blocked = _unsafe_globals(path)
    if blocked:
        names = ", ".join(f"`{name}`" for name in dict.fromkeys(blocked))
        return UnsafeFileError(
            f"{path} was not loaded: it asks to import and call {names} while loading. Loading "
            f"code from a file is refused on purpose (a file that runs code when opened can do "
            f"anything your account can), and there is no option to allow it; {expected} "
            "holds only tensors and plain data. If you made this file from code you trust, "
            "save only its tensors (e.g. torch.save(model.state_dict(), path)) and load that.",
            blocked=list(dict.fromkeys(blocked)))
    if kind is not None:
        return TorchFileError(_not_torch(path, kind, expected=expected))
    reason = next((line.strip() for line in message.splitlines()
                   if line.strip().startswith("Unsupported")), "")
    # Inside torch's own zip format the pickle is part of what torch.save wrote: damaged.
    error = DamagedFileError if zipfile.is_zipfile(path) else TorchFileError
    return error(
        f"{path} was not loaded: its pickled data uses constructs a safe (weights-only) load "
        f"does not accept{f' ({reason})' if reason else ''}. Expected {expected}; the file is "
        "damaged or was written by something other than torch.save of tensors and plain data.")


def _damaged(path: Path, exc: BaseException, *, expected: str) -> str:
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return f"{path} is empty (0 bytes); expected {expected}"
    # The first sentence of torch's reason is enough ("PytorchStreamReader failed reading zip
    # archive: failed finding central directory"); the rest is generic advice.
    text = str(exc).strip().split(". ")[0] or type(exc).__name__
    return (f"{path} could not be read: the file is truncated or damaged (an interrupted copy "
            f"or download?), {size} bytes. Expected {expected}. Details: {text}")


def _not_torch(path: Path, kind: str, *, expected: str) -> str:
    if kind == "an ONNX model":
        return (f"{path} is an ONNX model, not {expected}. An ONNX file is already exported: "
                f"run it with `gtx translate {path} IMAGES -o OUT` or gantransfer.onnx.load(); "
                "`gtx export` makes ONNX files from a run directory or checkpoint")
    if kind.startswith("bytes "):
        return (f"{path} is not a PyTorch file (torch.save writes a zip archive; this file "
                f"starts with {kind}); expected {expected}")
    return f"{path} is {kind}, not a PyTorch file; expected {expected}"


def _what_it_is(path: Path) -> str | None:
    """What a file that is not a torch file appears to be, from its name and first bytes;
    None when it may be a torch file (a zip archive or a pickle)."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(b"PK") or head.startswith(b"\x80"):
        return None  # torch's zip format, or a (legacy torch) pickle
    if path.suffix.lower() == ".onnx":
        return "an ONNX model"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return f"bytes {head[:4].hex(' ')}" if head else "an empty file"


def _unsafe_globals(path: Path) -> list[str]:
    """Globals (``module.name``) the pickle in ``path`` would import that a weights-only load
    does not allow, found by reading the pickle's opcodes without running them."""
    data = _pickle_bytes(path)
    if not data:
        return []
    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL" and isinstance(arg, str):
                found.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif op.name in _STRING_OPS and isinstance(arg, str | bytes):
                strings.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
    except Exception:  # genops stops at the first malformed opcode; what it found still counts
        pass
    allowed = _allowed_globals()
    return [name for name in found if name not in allowed]


def _pickle_bytes(path: Path) -> bytes | None:
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((i for i in archive.infolist() if i.filename.endswith("data.pkl")),
                              None)
                if member is None or member.file_size > _MAX_PICKLE_BYTES:
                    return None
                return archive.read(member)
        with path.open("rb") as f:
            data = f.read(_MAX_PICKLE_BYTES)
        return data if data.startswith(b"\x80") else None
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, RuntimeError):
        return None


def _allowed_globals() -> set[str]:
    """Names torch's weights-only unpickler accepts (a private list; empty if it moved)."""
    try:
        from torch import _weights_only_unpickler as wou

        return set(wou._get_allowed_globals())
    except Exception:  # pragma: no cover - a torch without the private helper
        return set()
