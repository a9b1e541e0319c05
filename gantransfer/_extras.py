"""Optional dependencies ("extras"): one clear error, with the pip command, when one is missing.

``gtx serve`` needs the ``serve`` extra (FastAPI, uvicorn, python-multipart) and video
translation the ``video`` extra (PyAV). Neither is imported by ``import gantransfer``.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "MissingExtraError", "require"]

# extra -> (what it enables, the modules it provides, their distribution names)
EXTRAS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "serve": ("gtx serve (the web page and HTTP API)", ("fastapi", "uvicorn", "multipart"),
              ("fastapi", "uvicorn", "python-multipart")),
    "video": ("video translation", ("av",), ("av",)),
}


class MissingExtraError(ImportError):
    """An optional dependency of a feature is not installed; the message gives the command."""


def require(extra: str) -> None:
    """Raise :class:`MissingExtraError` when a module of ``extra`` cannot be imported here.

    Only looks the modules up (nothing is imported), so it is cheap to call before any work.
    """
    feature, modules, dists = EXTRAS[extra]
    missing = [d for m, d in zip(modules, dists, strict=True)
               if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"{feature} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed; install the extra: pip install 'gantransfer[{extra}]'")
