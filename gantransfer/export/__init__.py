"""Torch -> ONNX export with verification, and int8 quantisation.

``gantransfer.export_onnx`` is :func:`export_onnx`. The runtime that runs the files is
``gantransfer.onnx`` (:mod:`gantransfer.inference.onnx_backend`). onnx and onnxruntime are
imported only when these run.
"""

from __future__ import annotations

from ..targets import METADATA_PREFIX, OnnxMetadata
from .exporter import ExportResult, ExportVerificationError, export_onnx
from .quantize import CalibrationError, QuantizationError, QuantizationReport, quantize_int8

__all__ = [
    "METADATA_PREFIX",
    "CalibrationError",
    "ExportResult",
    "ExportVerificationError",
    "OnnxMetadata",
    "QuantizationError",
    "QuantizationReport",
    "export_onnx",
    "quantize_int8",
]
