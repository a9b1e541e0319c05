"""CycleGAN for gantransfer: the ``cyclegan`` architecture, its networks and official imports.

Registered names (entry points): architecture ``cyclegan``; networks ``resnet_6blocks``,
``resnet_9blocks``, ``unet_128``, ``unet_256``, ``patchgan``, ``pixel``. Importing this package
is light: submodules load on first attribute access.

    >>> import gantransfer
    >>> model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=32)  # doctest: +SKIP
    >>> model = CycleGAN.load_official(g_a="latest_net_G_A.pth")            # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CycleGAN",
    "CycleGANConfig",
    "GANLoss",
    "ImagePool",
    "gradient_penalty",
    "load_official_generator",
    "load_official_weights",
]

_LAZY = {
    "CycleGAN": ".model",
    "CycleGANConfig": ".config",
    "GANLoss": ".losses",
    "gradient_penalty": ".losses",
    "ImagePool": ".pool",
    "load_official_generator": ".official",
    "load_official_weights": ".official",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gantransfer_cyclegan' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value
