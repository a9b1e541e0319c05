"""Deprecated: the onnxruntime runtime moved to :mod:`gantransfer.inference.onnx_backend`; its
public face is ``gantransfer.onnx`` (``gantransfer.onnx.load``...). Removed in gantransfer 0.3."""

from __future__ import annotations

from .._deprecated import moved

__all__ = ["OnnxLoadError", "OnnxModel", "ProviderUnavailableError", "load"]  # noqa: F822

__getattr__ = moved(__name__, dict.fromkeys(__all__, "gantransfer.onnx"))
