"""gantransfer: GAN-based image style transfer.

Architectures come from plugins registered through entry points; one trainer engine drives them;
generators export to verified ONNX files. Importing this package is cheap: torch is imported on
first use of a model, onnx/onnxruntime and plugins only when needed.

    >>> import gantransfer
    >>> gantransfer.list()                        # doctest: +SKIP
    ['cyclegan', 'dcgan']
    >>> model = gantransfer.get("dcgan", image_size=32)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .factory import build_network, get, get_network, spec
from .registry import (
    PluginConflictError,
    PluginLoadError,
    UnknownPluginError,
    list,
    refresh,
    register,
    unregister,
)

# name -> (module, attribute); resolved on first access so `import gantransfer` stays light.
_LAZY: dict[str, tuple[str, str | None]] = {
    "GANModel": (".model", "GANModel"),
    "ExportSpec": (".targets", "ExportSpec"),
    "StepContext": (".model", "StepContext"),
    "field": (".config", "field"),
    "Trainer": (".engine", "Trainer"),
    "TrainConfig": (".engine", "TrainConfig"),
    "load": (".engine.checkpoint", "load"),
    "CheckpointError": (".engine.checkpoint", "CheckpointError"),
    "CheckpointCorruptError": (".engine.checkpoint", "CheckpointCorruptError"),
    "DataConfig": (".data", "DataConfig"),
    "export_onnx": (".export", "export_onnx"),
    "onnx": (".onnx", None),
}

__all__ = [
    "CheckpointCorruptError",
    "CheckpointError",
    "DataConfig",
    "ExportSpec",
    "GANModel",
    "PluginConflictError",
    "PluginLoadError",
    "StepContext",
    "TrainConfig",
    "Trainer",
    "UnknownPluginError",
    "__version__",
    "build_network",
    "export_onnx",
    "field",
    "get",
    "get_network",
    "list",
    "load",
    "onnx",
    "refresh",
    "register",
    "spec",
    "unregister",
]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gantransfer' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .config import field
    from .data import DataConfig
    from .engine import TrainConfig, Trainer
    from .engine.checkpoint import CheckpointCorruptError, CheckpointError, load
    from .export import export_onnx
    from .model import GANModel, StepContext
    from .targets import ExportSpec
