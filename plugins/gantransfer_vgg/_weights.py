"""Reading VGG weights files (torchvision ``.pth`` or ``.safetensors``) with their SHA-256."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from gantransfer.hub import WeightsFile, cache_dir, cached_file, sha256_file
from gantransfer.torchfile import TorchFileError, load_tensors

__all__ = ["WEIGHTS", "LoadedWeights", "WeightsFileError", "find_recorded_file", "read_weights",
           "resolve_weights"]

log = logging.getLogger(__name__)

# torchvision's ImageNet weights (IMAGENET1K_V1). The full SHA-256 is not recorded here; the
# 8-hex-digit prefix torchvision puts in the file name is verified instead (see docs/vgg.md).
WEIGHTS: dict[str, WeightsFile] = {
    "vgg16": WeightsFile(url="https://download.pytorch.org/models/vgg16-397923af.pth",
                         filename="vgg16-397923af.pth", sha256_prefix="397923af"),
    "vgg19": WeightsFile(url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                         filename="vgg19-dcbb9e9d.pth", sha256_prefix="dcbb9e9d"),
}


class WeightsFileError(RuntimeError):
    """A VGG weights file is missing, changed since it was recorded, or not a VGG state dict."""


@dataclass(frozen=True)
class LoadedWeights:
    """A state dict read from ``path`` whose bytes hash to ``sha256``."""

    path: Path
    sha256: str
    state_dict: dict[str, Tensor]

    def record(self) -> dict[str, str]:
        """Plain-data record kept in checkpoints instead of the frozen tensors."""
        return {"path": str(self.path), "filename": self.path.name, "sha256": self.sha256}


def resolve_weights(weights: str | None, *, arch: str) -> Path | None:
    """The file to load for ``weights``: ``"auto"`` (the torchvision cache, if present), a path,
    or None / ``"none"`` (random initialisation).

    Raises:
        FileNotFoundError: an explicit path that does not exist.
    """
    if weights is None or weights == "none":
        return None
    if weights == "auto":
        path = cached_file(WEIGHTS[arch])
        if path is None:
            log.warning(
                "no pretrained %s weights in %s; the discriminator starts from random weights. "
                "Run `gtx weights download %s` (or pass weights=PATH) to use ImageNet features.",
                arch, cache_dir(), arch,
            )
        return path
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{arch} weights file {path} does not exist; pass a torchvision-format .pth or "
            f".safetensors file, weights='auto' for the cache, or run `gtx weights download {arch}`"
        )
    return path


def read_weights(path: Path, *, arch: str, expected_sha256: str | None = None) -> LoadedWeights:
    """Hash ``path`` and load its tensors on the CPU without unpickling code.

    ``expected_sha256`` (full hex digest, or torchvision's 8-digit prefix) is checked when given.

    Raises:
        WeightsFileError: hash mismatch, or the file does not hold a dict of tensors.
        ImportError: a ``.safetensors`` file without the ``safetensors`` package installed.
    """
    digest = sha256_file(path)
    if expected_sha256 is not None and not digest.startswith(expected_sha256):
        raise WeightsFileError(
            f"{path} has SHA-256 {digest}, expected {expected_sha256}: the file was changed or "
            f"is corrupt; replace it (e.g. `gtx weights download {arch}`)"
        )
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ImportError(
                f"reading {path} needs the safetensors package: pip install safetensors "
                f"(or use the torchvision .pth file)"
            ) from exc
        state = load_file(str(path), device="cpu")
    else:
        try:
            state = load_tensors(path, expected=f"the .pth file of torchvision's {arch} (a "
                                 "state dict of tensors)")
        except TorchFileError as exc:  # names the file, what it is and what is refused
            raise WeightsFileError(str(exc)) from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsFileError(f"{path} does not hold a state dict (a dict of tensors)")
    return LoadedWeights(path=path, sha256=digest, state_dict=dict(state))


def find_recorded_file(record: dict[str, str], *, arch: str) -> LoadedWeights:
    """Re-read the file a checkpoint refers to and check that it is the same file.

    Looks at the recorded path, then the torchvision cache under the recorded file name (the
    checkpoint may come from another machine).

    Raises:
        WeightsFileError: the file is in neither place, or its hash differs from the record.
    """
    candidates = [Path(record["path"]).expanduser(), cache_dir() / record["filename"]]
    for path in candidates:
        if path.is_file():
            return read_weights(path, arch=arch, expected_sha256=record["sha256"])
    raise WeightsFileError(
        f"this checkpoint keeps the frozen {arch} layers by reference to {record['filename']} "
        f"(SHA-256 {record['sha256']}), which is in neither {candidates[0]} nor {candidates[1]}. "
        f"Copy that file there (or run `gtx weights download {arch}` if it is the torchvision "
        f"file)."
    )
