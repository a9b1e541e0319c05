"""The Translator: the per-batch engine behind every translation, whatever runs the model.

A :class:`Translator` wraps a backend's forward function (a padded ``NxCxHxW`` float32 batch in,
the generator's output out: :mod:`~gantransfer.inference.torch_backend` for PyTorch models,
:mod:`~gantransfer.inference.onnx_backend` for ONNX files) with what every translation needs:
timing, the finiteness check, one compiled shape per bucket (:func:`resolve_compile` decides
whether to compile) and the eager fallback. :meth:`Translator.translate` runs any supported input
through it with :func:`map_images` (convert, group by size into batches, pad, run, crop back);
the folder pipeline (:mod:`~gantransfer.inference.pipeline`) calls the translator per batch.

A conditional generator (a label per image, issue 14) will get its labels here: ``map_images``
keeps each image's label with it when it groups images by size, and ``Translator.__call__``
passes the batch's labels to ``forward`` beside the images (an int64 ``N`` tensor).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from .images import crop_to, pad_to_multiple, to_batch

__all__ = [
    "COMPILE_MODES",
    "DEFAULT_BATCH_SIZE",
    "NonFiniteOutputError",
    "Translator",
    "check_finite",
    "compile_available",
    "map_images",
    "resolve_compile",
]

log = logging.getLogger(__name__)

COMPILE_MODES = ("off", "on", "auto")
DEFAULT_BATCH_SIZE = 8  # images per run of map_images (and OnnxModel.translate) unless told
# More distinct shapes than dynamo's default limit (8) is normal for a folder of photos; past the
# limit dynamo would silently run eager for the rest.
_RECOMPILE_LIMIT = 64


class NonFiniteOutputError(RuntimeError):
    """A generator produced NaN or infinite values: its weights are broken."""


def check_finite(y: Any, *, source: str) -> None:
    """Raise :class:`NonFiniteOutputError` naming ``source`` when the output batch ``y`` (tensor
    or numpy array) holds NaN or inf. One sum over the output: negligible beside the model."""
    if isinstance(y, Tensor):
        if bool(torch.isfinite(y.sum())):  # NaN and inf propagate; ~50x faster than isfinite
            return
        finite = torch.isfinite(y)
    else:
        if bool(np.isfinite(y.sum())):
            return
        finite = np.isfinite(y)
    if bool(finite.all()):  # only a sum that overflowed
        return
    bad, total = int((~finite).sum()), int(np.prod(finite.shape))
    raise NonFiniteOutputError(
        f"{source} produced NaN or infinite values ({bad} of {total} output values), so the "
        "images would be garbage: its weights are damaged or come from a diverged training "
        "run. Use an earlier checkpoint (or export one).")


def compile_available(device: torch.device) -> bool:
    """Whether ``torch.compile`` can plausibly build kernels for ``device`` here: inductor needs a
    C++ compiler for CPUs and triton for CUDA. ``compile="on"`` tries anyway (and falls back)."""
    if not hasattr(torch, "compile"):
        return False
    if device.type == "cpu":
        return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))
    if device.type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return False


def resolve_compile(compile: str | bool, device: torch.device, *, images: int | None) -> bool:
    """Whether to compile: ``on``/``off``, or ``auto`` = compile when torch.compile is usable on
    ``device`` and the call has at least :func:`~gantransfer.inference.defaults.compile_min_images`
    images, the measured break-even of a compile on this kind of device (about 100 images on
    CPUs with native bf16, 500 without, 512 on CUDA; ``images`` unknown counts as too few).
    Raises ``ValueError`` for another value."""
    if isinstance(compile, bool):
        return compile
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {compile!r}")
    if compile != "auto":
        return compile == "on"
    from .defaults import compile_min_images

    threshold = compile_min_images(device)
    return (threshold is not None and images is not None and images >= threshold
            and compile_available(device))


class Translator:
    """Run an image generator on padded batches, timing the time spent inside it.

    Args:
        forward: padded ``NxCxHxW`` float32 batch -> output batch (any device); it must be pure
            (the same input gives the same output) and thread-compatible with the caller.
        channels: input channels the generator takes (1 or 3).
        divisor, min_size: the generator's size rules (inputs are padded to them).
        bucket: the :func:`~gantransfer.inference.images.bucket_size` step, so that sizes share compiled shapes (1: off,
            0: relative to the size).
        compiled: ``forward`` is a torch.compile'd function: every (C, H, W) keeps the batch size
            it first ran at (smaller batches are padded with copies of their last row, larger
            ones split), so each bucket compiles exactly once.
        fallback: eager ``forward`` used, with one warning, when the compiled one fails.
        batch_size: the batch size calls use when they do not give one; None: the measured
            default for ``device`` (1 on CPUs, 8 on CUDA, see :mod:`gantransfer.inference.defaults`).
        description: a short human-readable summary (precision, compile, device).
        source: what the model came from (a checkpoint path, a file), named in errors.
        memory_probe: returns the estimated peak bytes per input pixel of one image (see
            :mod:`gantransfer.inference.memory`); None when it cannot be told (ONNX files).

    ``model_seconds`` accumulates the wall time of the calls (the device is synchronised),
    ``compile_seconds`` the part of it spent in first calls of new compiled shapes (compiling
    plus one run), and ``shapes`` holds the batch shapes actually run.
    """

    def __init__(self, forward: Callable[[Tensor], Tensor], *, channels: int, divisor: int,
                 min_size: int, bucket: int = 1, compiled: bool = False,
                 fallback: Callable[[Tensor], Tensor] | None = None,
                 device: torch.device | None = None, batch_size: int | None = None,
                 description: str = "",
                 evaluating: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
                 memory_probe: Callable[[], float] | None = None, source: str = "the model"
                 ) -> None:
        if compiled and fallback is None:
            raise ValueError("a compiled Translator needs an eager fallback")
        self.forward = forward
        self.channels = channels
        self.divisor = divisor
        self.min_size = min_size
        self.bucket = bucket
        self.compiled = compiled
        self.fallback = fallback
        self.device = device or torch.device("cpu")
        if batch_size is None:
            from .defaults import default_batch_size

            batch_size = default_batch_size(self.device)
        self.batch_size = batch_size
        self.description = description
        # The model's eval-mode context (PyTorch models), entered by translate() and
        # translate_files() around a whole run; None for models without modes (ONNX).
        self.evaluating = evaluating
        self._memory_probe = memory_probe
        self.source = source
        self._bytes_per_pixel: float | None = None
        self.model_seconds = 0.0
        self.compile_seconds = 0.0
        self.shapes: set[tuple[int, ...]] = set()
        self._batch_for: dict[tuple[int, ...], int] = {}
        self._lock = threading.Lock()

    def translate(self, images: Any, *, batch_size: int | None = None) -> Any:
        """Translate images of any supported type (see :mod:`gantransfer.inference.images`); the output
        mirrors the input. ``batch_size`` None: the measured default for the device (1 on CPUs,
        8 on CUDA). Build the translator once and call this repeatedly to reuse compiled code."""
        batch_size = self.batch_size if batch_size is None else batch_size
        with self.evaluation():
            return map_images(self, images, channels=self.channels, divisor=self.divisor,
                              min_size=self.min_size, batch_size=batch_size, bucket=self.bucket)

    def bytes_per_pixel(self) -> float | None:
        """Estimated peak memory per input pixel of one image (measured once, on first call, in
        eval mode), or None when this translator cannot tell."""
        if self._bytes_per_pixel is None and self._memory_probe is not None:
            with self.evaluation():
                self._bytes_per_pixel = self._memory_probe()
        return self._bytes_per_pixel

    def evaluation(self) -> contextlib.AbstractContextManager[Any]:
        """The model's eval mode for a run (restored afterwards); a no-op without one."""
        return self.evaluating() if self.evaluating is not None else contextlib.nullcontext()

    def __call__(self, x: Tensor) -> Tensor:
        """The generator's output (float32) for a padded batch ``x``."""
        with self._lock, torch.no_grad():  # grad mode is per thread: callers may be any thread
            start = time.perf_counter()
            try:
                y = self._run(x)
            finally:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self.model_seconds += time.perf_counter() - start
        check_finite(y, source=self.source)
        return y

    def _run(self, x: Tensor) -> Tensor:
        if not self.compiled:
            self.shapes.add(tuple(x.shape))
            return self.forward(x)
        key = tuple(x.shape[1:])
        n = int(x.shape[0])
        size = self._batch_for.setdefault(key, n)
        if n == size:
            return self._compiled(x)
        parts = []
        for start in range(0, n, size):
            part = x[start : start + size]
            rows = part.shape[0]
            if rows < size:  # one compiled shape per bucket: pad the batch with copies
                part = torch.cat([part, part[-1:].expand(size - rows, *part.shape[1:])])
            parts.append(self._compiled(part)[:rows])
        return torch.cat(parts)

    def _compiled(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        if not self.compiled:  # an earlier call fell back to eager
            self.shapes.add(shape)
            return self.forward(x)
        first = shape not in self.shapes
        self.shapes.add(shape)
        start = time.perf_counter()
        try:
            with _recompile_limit():
                y = self.forward(x)
            if first:
                self.compile_seconds += time.perf_counter() - start
            return y
        except Exception as exc:  # compile errors come in many types (backend, C++, triton...)
            log.warning("torch.compile failed (%s: %s); running eager from now on",
                        type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else "")
            assert self.fallback is not None
            self.forward, self.compiled = self.fallback, False
            self.description = self.description.replace("compiled", "eager (compile failed)")
            return self.forward(x)


def _recompile_limit() -> contextlib.AbstractContextManager[Any]:
    config = getattr(getattr(torch, "_dynamo", None), "config", None)
    name = next((n for n in ("recompile_limit", "cache_size_limit") if hasattr(config, n)), None)
    if name is None or getattr(config, name) >= _RECOMPILE_LIMIT:
        return contextlib.nullcontext()
    return config.patch(**{name: _RECOMPILE_LIMIT})  # type: ignore[union-attr]



def map_images(run: Callable[[Tensor], Tensor], images: Any, *, channels: int, divisor: int,
               min_size: int, batch_size: int = DEFAULT_BATCH_SIZE, bucket: int = 1) -> Any:
    """Apply an image generator ``run`` (padded NCHW float32 -> NCHW) to any supported input.

    Inputs are converted, padded to ``divisor``/``min_size`` (and ``bucket``, see
    :func:`~gantransfer.inference.images.bucket_size`), grouped into batches of up to ``batch_size`` images of equal size, run,
    cropped back and converted to the input's type. This is the single implementation behind
    :func:`translate` and the ONNX runtime.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    single = not isinstance(images, (list, tuple))
    items: Sequence[Any] = [images] if single else images
    converted = [to_batch(item, channels) for item in items]
    # Group rows of equal size so mixed sizes still batch; rows keep their input order.
    rows: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, (batch, _) in enumerate(converted):
        for j in range(batch.shape[0]):
            rows.setdefault((batch.shape[-2], batch.shape[-1]), []).append((i, j))
    # Sizes that pad to the same bucket still run separately: a batch holds one input size, so
    # cropping back stays a plain slice. The compiled shape is shared all the same.
    outputs: list[list[Tensor | None]] = [[None] * b.shape[0] for b, _ in converted]
    for members in rows.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            x = torch.cat([converted[i][0][j : j + 1] for i, j in chunk])
            xp, size = pad_to_multiple(x, divisor, min_size, bucket=bucket)
            y = crop_to(run(xp), size, (xp.shape[-2], xp.shape[-1]))
            for k, (i, j) in enumerate(chunk):
                outputs[i][j] = y[k : k + 1]
    # every slot of `outputs` is filled by now (each row is in exactly one chunk)
    results = [back(torch.cat(cast("list[Tensor]", out)))
               for (_, back), out in zip(converted, outputs, strict=True)]
    return results[0] if single else results
