"""Deprecated: the ONNX file's metadata is :class:`gantransfer.targets.OnnxMetadata` (an
``ExportSpec`` plus provenance; also ``gantransfer.export.OnnxMetadata``). Removed in 0.3."""

from __future__ import annotations

from .._deprecated import moved

__all__ = ["METADATA_PREFIX", "OnnxMetadata"]  # noqa: F822

__getattr__ = moved(__name__, dict.fromkeys(__all__, "gantransfer.targets"))
