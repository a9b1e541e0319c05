"""``gantransfer.onnx``: run exported ONNX generators with onnxruntime.

The public face of :mod:`gantransfer.inference.onnx_backend` (see there), importable either way::

    import gantransfer.onnx            # or: import gantransfer; gantransfer.onnx.load(...)
    model = gantransfer.onnx.load("h2z_a2b.onnx")

onnx and onnxruntime are imported when a file is loaded, not when this module is.
"""

from __future__ import annotations

from .inference.onnx_backend import OnnxLoadError, OnnxModel, ProviderUnavailableError, load

__all__ = ["OnnxLoadError", "OnnxModel", "ProviderUnavailableError", "load"]
