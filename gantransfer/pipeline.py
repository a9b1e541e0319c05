"""Deprecated: the folder pipeline moved to :mod:`gantransfer.inference.pipeline`
(``translate_files`` is also ``gantransfer.inference.translate_files``); ``onnx_translator`` and
``as_translator`` are :func:`gantransfer.inference.translator` now. Removed in gantransfer 0.3."""

from __future__ import annotations

from ._deprecated import moved

__all__ = ["PipelineStats", "TranslationMemoryError", "as_translator",  # noqa: F822
           "onnx_translator", "save_image", "translate_files"]

__getattr__ = moved(__name__, {
    **dict.fromkeys(("PipelineStats", "TranslationMemoryError", "save_image", "translate_files"),
                    "gantransfer.inference.pipeline"),
    "as_translator": "gantransfer.inference.dispatch:translator",
    "onnx_translator": "gantransfer.inference.onnx_backend",
})
