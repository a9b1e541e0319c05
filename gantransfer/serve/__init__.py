"""``gtx serve``: a web page and an HTTP API that translate uploaded images with your models.

    >>> from gantransfer.serve import ServeConfig, open_served, serve
    >>> models = open_served(["h2z_int8.onnx", "runs/h2z"])           # doctest: +SKIP
    >>> serve(models, ServeConfig(port=8000))                          # doctest: +SKIP

Needs the ``serve`` extra (``pip install 'gantransfer[serve]'``: FastAPI, uvicorn,
python-multipart); importing this package does not import them, the functions that need them
raise :class:`~gantransfer._extras.MissingExtraError` with the pip command. See docs/serve.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._extras import MissingExtraError
from ._config import TOKEN_ENV, ServeConfig

__all__ = ["TOKEN_ENV", "MissingExtraError", "ServeConfig", "create_app", "open_served", "serve"]

_LAZY = {"create_app": ".app", "open_served": "._server", "serve": "._server"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "create_app":
        from .._extras import require

        require("serve")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from ._server import open_served, serve
    from .app import create_app
