"""The resolver: from what a user names (a run directory, a checkpoint, an ``.onnx`` file) to a
loaded model, before :mod:`~gantransfer.inference.dispatch` picks what runs it.

    >>> src = open_source("runs/h2z")                   # doctest: +SKIP
    >>> src.kind, src.description                       # doctest: +SKIP
    ('torch', 'runs/h2z (cyclegan, PyTorch on cpu)')
    >>> translator(src.model, precision="auto")         # doctest: +SKIP

Every command that takes a model (``gtx translate``, ``gtx generate``, ``gtx bench``,
``gtx export``) resolves it here, so a new kind of source is added in one place: a pretrained
name (``cyclegan/style_monet``) or a hub address (``hf://user/repo``) will resolve to a local file
in :func:`locate` (downloading it explicitly first), and everything after that stays as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .onnx_backend import OnnxModel

__all__ = ["Source", "locate", "open_source"]


@dataclass(frozen=True)
class Source:
    """A loaded model and how to name it: ``kind`` ``"torch"`` (a GANModel) or ``"onnx"`` (an
    OnnxModel); ``description`` says what it is and where it runs (for messages)."""

    kind: Literal["torch", "onnx"]
    model: Any
    description: str
    path: Path | None = None


def locate(source: str | os.PathLike[str]) -> Path:
    """The local file or run directory ``source`` names: a path as it is, a pretrained name
    (``cyclegan/style_monet``) or ``hf://user/repo`` as its cached file
    (:func:`gantransfer.pretrained.resolve_source`). Nothing here downloads implicitly: a name
    that is not cached raises NotDownloadedError with the download command."""
    from ..pretrained import resolve_source

    return resolve_source(source)


def open_source(source: str | os.PathLike[str] | Any, *, device: str = "auto",
                providers: str | Sequence[str] = "auto", ema: bool | None = None,
                **onnx_options: Any) -> Source:
    """Load ``source``: an ``.onnx`` file with onnxruntime (:func:`gantransfer.onnx.load`), any
    other path as a checkpoint or run directory (:func:`gantransfer.load`). A model that is
    already loaded (a GANModel or OnnxModel) is wrapped as it is.

    Args:
        device: for checkpoints: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``
            (:func:`gantransfer.device.resolve_device`).
        providers: for ONNX files: ``auto``, a name, a comma-separated list of names
            (``"cpu,cuda"``) or a list.
        ema: for checkpoints: use the EMA weights (None: the checkpoint's default).
        onnx_options: more options for :func:`gantransfer.onnx.load` (``threads``...).

    Raises:
        CheckpointError, OnnxLoadError: the file cannot be loaded (the message names it).
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, OnnxModel):
        return Source("onnx", source, _onnx_text(source.path, source), source.path)
    if hasattr(source, "export_targets") and hasattr(source, "nets"):  # a GANModel
        model: Any = source  # (not isinstance: inference does not import the model layer)
        name = getattr(model, "arch_name", None) or type(model).__name__
        return Source("torch", model, f"{name} (PyTorch on {model.device})")
    path = locate(source)
    if path.suffix.lower() == ".onnx":
        from .onnx_backend import load

        if isinstance(providers, str) and providers != "auto":
            providers = [p.strip() for p in providers.split(",")]
        model = load(path, providers=providers, **onnx_options)
        return Source("onnx", model, _onnx_text(source, model), path)
    from ..device import resolve_device
    from ..engine.checkpoint import load as load_checkpoint

    dev = str(resolve_device(device))
    loaded = load_checkpoint(path, device=dev, ema=ema)
    return Source("torch", loaded, f"{source} ({loaded.arch_name}, PyTorch on {dev})", path)


def _onnx_text(source: Any, model: OnnxModel) -> str:
    return f"{source} (onnxruntime: {', '.join(model.providers)})"
