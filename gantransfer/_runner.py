"""The per-batch engine behind translation: precision, torch.compile, shape buckets, timing.

A :class:`Translator` turns a padded ``NxCxHxW`` float32 batch into the generator's output. It is
what :func:`gantransfer.inference.translate` and the folder pipeline (:mod:`gantransfer.pipeline`)
call, for PyTorch models (:func:`torch_translator`) and for ONNX files alike. Public names are
re-exported by :mod:`gantransfer.inference`; the rules are documented in docs/inference.md.

Why the rules are what they are (measured on a 2-core avx512_bf16 CPU, torch 2.13, CycleGAN
resnet_9blocks at 256x256): eager fp32 0.56-0.60 s/image, eager bf16 autocast 0.71 s/image (the
casts cost more than the bf16 convolutions save), compiled fp32 0.53 s, compiled bf16 0.26 s.
Compiling costs 8-30 s per input shape (a few seconds when inductor's on-disk cache is warm).
Hence on CPUs bf16 only pays when compiled, and compiling only pays for enough images per shape.
(Compiled bf16 with the first convolution kept in fp32, as run here: 0.260 s, 48.6 dB PSNR.)
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import math
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .precision import ALLOWED, Precision

if TYPE_CHECKING:  # pragma: no cover
    from .model import GANModel

__all__ = [
    "BUCKET_RELATIVE",
    "INFERENCE_PRECISIONS",
    "NonFiniteOutputError",
    "Translator",
    "bucket_size",
    "check_finite",
    "compile_available",
    "model_source",
    "resolve_compile",
    "resolve_inference_precision",
    "torch_translator",
]

log = logging.getLogger(__name__)

INFERENCE_PRECISIONS = ALLOWED["translation"]
COMPILE_MODES = ("off", "on", "auto")
BUCKET_RELATIVE = 0  # bucket value for steps relative to the size (see bucket_size)
# More distinct shapes than dynamo's default limit (8) is normal for a folder of photos; past the
# limit dynamo would silently run eager for the rest.
_RECOMPILE_LIMIT = 64


class NonFiniteOutputError(RuntimeError):
    """A generator produced NaN or infinite values: its weights are broken."""


def check_finite(y: Any, *, source: str) -> None:
    """Raise :class:`NonFiniteOutputError` naming ``source`` when the output batch ``y`` (tensor
    or numpy array) holds NaN or inf. One sum over the output: negligible beside the model."""
    import numpy as np

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


def _relative_step(side: int, divisor: int) -> int:
    # The largest power of two <= side/8: padding stays under 1/8 of the side, while sides
    # within an octave share at most 8 steps.
    power = 1 << max(0, (max(side, 1) // 8).bit_length() - 1)
    return math.lcm(max(divisor, 1), power)


def bucket_size(h: int, w: int, *, divisor: int, min_size: int = 1, bucket: int = 1
                ) -> tuple[int, int]:
    """The padded (H, W) an ``h x w`` image runs at, at least ``min_size`` and a multiple of
    ``divisor`` (what the generator needs) and of the bucket step, so that many sizes share one
    compiled shape.

    ``bucket`` is the step in pixels (``1``: pad to the divisor only), or ``0``
    (``BUCKET_RELATIVE``) for a step per side of the largest power of two <= side / 8: padding
    then stays under 12.5 % of each side (a 256 side stays 256, 500 -> 512, 375 -> 384). Padding
    is not free: instance normalisation sees the reflected border, so a bucketed output differs
    slightly from an unbucketed one, and more the larger the padded fraction.
    """
    if bucket < 0:
        raise ValueError(f"bucket must be >= 0 (0: relative steps), got {bucket}")

    def side(n: int) -> int:
        step = _relative_step(n, divisor) if bucket == BUCKET_RELATIVE else math.lcm(
            max(divisor, 1), bucket)
        floor = math.ceil(max(min_size, 1) / step) * step
        return max(math.ceil(n / step) * step, floor)

    return side(h), side(w)


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
    ``device`` and the call has at least :func:`~gantransfer._translate_plan.compile_min_images`
    images, the measured break-even of a compile on this kind of device (about 100 images on
    CPUs with native bf16, 500 without, 512 on CUDA; ``images`` unknown counts as too few).
    Raises ``ValueError`` for another value."""
    if isinstance(compile, bool):
        return compile
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {compile!r}")
    if compile != "auto":
        return compile == "on"
    from ._translate_plan import compile_min_images

    threshold = compile_min_images(device)
    return (threshold is not None and images is not None and images >= threshold
            and compile_available(device))


def resolve_inference_precision(precision: str, device: torch.device, *, compiled: bool) -> str:
    """``fp32`` or ``bf16`` for ``precision`` on ``device``: ``Precision.resolve(precision,
    device, job="translation", compiled=compiled)`` (:mod:`gantransfer.precision` has the
    rule). Raises ``ValueError`` for another name."""
    return Precision.resolve(precision, device, job="translation", compiled=compiled)


class Translator:
    """Run an image generator on padded batches, timing the time spent inside it.

    Args:
        forward: padded ``NxCxHxW`` float32 batch -> output batch (any device); it must be pure
            (the same input gives the same output) and thread-compatible with the caller.
        channels: input channels the generator takes (1 or 3).
        divisor, min_size: the generator's size rules (inputs are padded to them).
        bucket: the :func:`bucket_size` step, so that sizes share compiled shapes (1: off,
            0: relative to the size).
        compiled: ``forward`` is a torch.compile'd function: every (C, H, W) keeps the batch size
            it first ran at (smaller batches are padded with copies of their last row, larger
            ones split), so each bucket compiles exactly once.
        fallback: eager ``forward`` used, with one warning, when the compiled one fails.
        batch_size: the batch size calls use when they do not give one; None: the measured
            default for ``device`` (1 on CPUs, 8 on CUDA, see ``gantransfer._translate_plan``).
        description: a short human-readable summary (precision, compile, device).
        source: what the model came from (a checkpoint path, a file), named in errors.
        memory_probe: returns the estimated peak bytes per input pixel of one image (see
            :mod:`gantransfer._memory`); None when it cannot be told (ONNX files).

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
            from ._translate_plan import default_batch_size

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
        """Translate images of any supported type (see :mod:`gantransfer.inference`); the output
        mirrors the input. ``batch_size`` None: the measured default for the device (1 on CPUs,
        8 on CUDA). Build the translator once and call this repeatedly to reuse compiled code."""
        from .inference import map_images

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


def torch_translator(model: GANModel, *, target: str | None = None, precision: str = "fp32",
                     compile: str | bool = "off", bucket: int | None = None,
                     images: int | None = None, compile_options: dict[str, Any] | None = None
                     ) -> Translator:
    """A :class:`Translator` for ``model``'s image-input ``target`` (default: the first).

    Args:
        precision: ``fp32``, ``bf16`` (autocast on the model's device, output cast to float32;
            the first convolution stays float32, see :func:`_with_fp32_input_conv`) or
            ``auto`` (see :func:`resolve_inference_precision`).
        compile: ``off``, ``on`` or ``auto`` (see :func:`resolve_compile`); a failing or missing
            torch.compile falls back to eager with one warning.
        bucket: the :func:`bucket_size` step: default ``BUCKET_RELATIVE`` (padding under 1/8 of
            each side) when compiled, else 1 (no padding beyond the generator's divisor, which
            keeps eager results exactly as before).
        images: how many images the call will translate (for ``compile="auto"``).
        compile_options: keyword arguments for ``torch.compile`` (e.g. ``{"mode": ...}``).

    The translator's ``translate`` (and :func:`gantransfer.pipeline.translate_files`) put the
    model in eval mode for the run; a direct call on a padded batch does not. Raises ``ValueError`` for bad options or a
    latent/unknown target.
    """
    from ._memory import activation_bytes_per_pixel
    from .inference import resolve_target

    _, spec = resolve_target(model, target, kind="image")
    net = plain = model.nets[spec.net]
    device = model.device
    want_compile = resolve_compile(compile, device, images=images)
    chosen = Precision.resolve(precision, device, job="translation", compiled=want_compile)
    if chosen is Precision.BF16:
        net = _with_fp32_input_conv(net, in_channels=spec.in_channels)
    eager = _forward(net, device, chosen)
    forward = eager
    if want_compile:
        try:
            forward = torch.compile(eager, dynamic=False, **(compile_options or {}))
        except Exception as exc:  # e.g. a Python or platform torch.compile does not support
            log.warning("torch.compile is unavailable (%s: %s); running eager",
                        type(exc).__name__, exc)
            want_compile = False
    if bucket is None:
        bucket = BUCKET_RELATIVE if want_compile else 1
    text = f"{chosen}, {'compiled' if want_compile else 'eager'}"
    if bucket == BUCKET_RELATIVE:
        text += ", sizes bucketed (padding < 1/8 of each side)"
    elif math.lcm(spec.size_divisor, bucket) > spec.size_divisor:
        text += f", sizes bucketed to multiples of {math.lcm(spec.size_divisor, bucket)} px"
    return Translator(forward, channels=spec.in_channels, divisor=spec.size_divisor,
                      min_size=spec.min_size, bucket=bucket, compiled=want_compile,
                      fallback=eager, device=device, description=text,
                      evaluating=model.evaluating,
                      memory_probe=lambda: activation_bytes_per_pixel(
                          plain, channels=spec.in_channels, divisor=spec.size_divisor,
                          min_size=spec.min_size, device=device),
                      source=model_source(model))


def model_source(model: Any) -> str:
    """How errors name a model: the checkpoint it was loaded from, else its architecture."""
    path = getattr(model, "checkpoint_path", None)
    if path is not None:
        return f"checkpoint {path}"
    return f"the {getattr(model, 'arch_name', None) or type(model).__name__} model"


class _Float32(nn.Module):
    """Runs the wrapped layer in float32 inside a bf16 autocast region (parameters shared)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.inner(x.float())


_FP32_FIRST: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def _with_fp32_input_conv(net: nn.Module, *, in_channels: int) -> nn.Module:
    """A view of ``net`` whose first convolution runs in float32 under bf16 autocast.

    Rounding the *image* to bf16 (8 significant bits: about a quarter of an 8-bit grey level off
    near +-1) is the largest bf16 error: for a random resnet_9blocks at 256x256, compiled, keeping
    the first convolution in fp32 raised PSNR against fp32 from 43.8 to 48.6 dB at 1 % of the
    time (0.260 vs 0.257 s/image; fp32 eager 0.585 s). The last convolution in fp32 too added
    0.1 dB for 10 % more time, so it stays bf16. The first convolution is the first one in
    module order that takes ``in_channels``; none leaves ``net`` as is.

    The view shares every parameter and layer with ``net`` (only the containers on the path to
    the convolution are shallow-copied), so it follows weight updates; it is cached per ``net``
    so that compiled code keyed on it is reused.
    """
    cached = _FP32_FIRST.get(net)
    if cached is not None:
        return cached
    first = next(((n, m) for n, m in net.named_modules()
                  if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
    if first is None or first[1].in_channels != in_channels:
        view = net
    elif first[0] == "":  # the net is a single convolution
        view = _Float32(net)
    else:
        view = _replace(net, {first[0]}, "")
    _FP32_FIRST[net] = view
    return view


def _replace(module: nn.Module, targets: set[str], prefix: str) -> nn.Module:
    new = copy.copy(module)  # shares parameters, buffers and hooks; gets its own child table
    new._modules = dict(module._modules)
    for name, child in module._modules.items():
        if child is None:
            continue
        full = f"{prefix}{name}"
        if full in targets:
            new._modules[name] = _Float32(child)
        elif any(t.startswith(full + ".") for t in targets):
            new._modules[name] = _replace(child, targets, full + ".")
    return new


def _forward(net: torch.nn.Module, device: torch.device, precision: Precision
             ) -> Callable[[Tensor], Tensor]:
    dtype = precision.autocast_dtype
    if dtype is not None:
        def run(x: Tensor) -> Tensor:
            with torch.autocast(device.type, dtype=dtype):
                y = net(x.to(device))
            return y.float()
    else:
        def run(x: Tensor) -> Tensor:
            return net(x.to(device)).float()
    return run
