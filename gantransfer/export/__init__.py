"""Torch -> ONNX export with verification, and the onnxruntime inference runtime.

``gantransfer.export_onnx`` is :func:`export_onnx`; ``gantransfer.onnx`` is
:mod:`gantransfer.export.runtime`. onnx and onnxruntime are imported only when these run.
"""

from __future__ import annotations

from .exporter import ExportResult, ExportVerificationError, export_onnx
from .metadata import METADATA_PREFIX, OnnxMetadata

__all__ = [
    "METADATA_PREFIX",
    "ExportResult",
    "ExportVerificationError",
    "OnnxMetadata",
    "export_onnx",
]
