"""Deprecated: onnxruntime provider choice lives in :mod:`gantransfer.inference._providers`
(docs/export.md's troubleshooting command named this module). Removed in 0.3."""

from __future__ import annotations

from .._deprecated import moved

__all__ = ["ALIASES", "ProviderUnavailableError", "choose_providers", "provider_usable"]  # noqa: F822

__getattr__ = moved(__name__, dict.fromkeys(__all__, "gantransfer.inference._providers"))
