"""Inference: translate images and draw samples with a trained model or an exported ONNX file.

    >>> from gantransfer.inference import open_source, translate_files, translator
    >>> src = open_source("runs/h2z")                          # run dir, checkpoint or .onnx
    >>> runner = translator(src.model, precision="auto")       # doctest: +SKIP
    >>> zebra = runner.translate(horse_image)                  # doctest: +SKIP
    >>> stats = translate_files(runner, [("in/a.jpg", "out/a.png")])  # doctest: +SKIP

One file per idea (docs/architecture.md):

* :mod:`.images`: image conversion and padding (PIL/numpy/tensor in, padded batches, back);
* :mod:`.runner`: the :class:`Translator` (per-batch engine: timing, compiled shapes,
  eager fallback, NaN check) and the compile rule; :mod:`.defaults`: the measured defaults
  (batch size, when to compile, the int8 hint); :mod:`.memory`: the memory estimate;
* :mod:`.torch_backend` (PyTorch models) and :mod:`.onnx_backend` (onnxruntime, the one session
  factory, ``gantransfer.onnx``);
* :mod:`.sources`: run dir / checkpoint / ``.onnx`` -> a loaded model (:func:`open_source`);
  :mod:`.dispatch`: a loaded model -> a translator (:func:`translator`), the one switch;
* :mod:`.pipeline`: folders of files, decoding and encoding overlapped (:func:`translate_files`).
"""

from __future__ import annotations

import torch

from .._deprecated import moved
from ..precision import ALLOWED, Precision
from .dispatch import latent_generator, translate, translator
from .images import BUCKET_RELATIVE
from .pipeline import PipelineStats, TranslationMemoryError, translate_files
from .runner import NonFiniteOutputError, Translator
from .sources import Source, open_source
from .torch_backend import generate

__all__ = [
    "BUCKET_RELATIVE",
    "NonFiniteOutputError",
    "PipelineStats",
    "Source",
    "TranslationMemoryError",
    "Translator",
    "generate",
    "latent_generator",
    "open_source",
    "translate",
    "translate_files",
    "translator",
]


_INFERENCE_PRECISIONS = ALLOWED["translation"]


def _resolve_inference_precision(precision: str, device: torch.device, *, compiled: bool) -> str:
    return Precision.resolve(precision, device, job="translation", compiled=compiled)


# Helpers that were importable from here before the package was split (removed in 0.3).
__getattr__ = moved(__name__, {
    **dict.fromkeys(("bucket_size", "crop_to", "from_batch", "pad_to_multiple", "padded_size",
                     "to_batch", "to_channels"), "gantransfer.inference.images"),
    **dict.fromkeys(("check_finite", "map_images", "resolve_compile", "DEFAULT_BATCH_SIZE"),
                    "gantransfer.inference.runner"),
    **dict.fromkeys(("compile_min_images", "default_batch_size"),
                    "gantransfer.inference.defaults"),
    **dict.fromkeys(("model_source", "resolve_target", "torch_translator"),
                    "gantransfer.inference.torch_backend"),
    "INFERENCE_PRECISIONS": (f"{__name__}:_INFERENCE_PRECISIONS",
                             "gantransfer.precision.ALLOWED['translation']"),
    "resolve_inference_precision": (
        f"{__name__}:_resolve_inference_precision",
        "gantransfer.precision.Precision.resolve(..., job='translation', compiled=...)"),
})
