"""Floating-point precision: the names, which ones each job accepts, and how ``auto`` resolves.

One :class:`Precision` value is resolved once per job, from what was asked, the device, the
hardware and whether the code is compiled, and training (the engine's autocast and gradient
scalers), translation (the PyTorch backend's autocast) and export (the ONNX file's precision) all
read it. The allowed names per job are :data:`ALLOWED`.

Why ``auto`` is what it is:

* **Training**: bf16 where the hardware computes it natively, because there mixed precision is
  a real speed-up (CPU bf16 matmul peaks at about twice fp32 on avx512_bf16 parts, and CUDA sm80+
  tensor cores run bf16 at full rate), and fp32 elsewhere, where emulated bf16 is slower than
  fp32. bf16 is preferred over fp16 on GPUs because it needs no gradient scaler.
* **Translation**: bf16 where it is native *and* fast: always on CUDA, on CPUs only when compiled
  (eager bf16 autocast was measured slower than fp32 there: the casts cost more than the bf16
  convolutions save; see :mod:`gantransfer.inference.torch_backend`). fp16 is not offered: bf16
  has fp32's range.
* **Export** writes a file of the precision asked for; there is no ``auto``.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

__all__ = ["ALLOWED", "Job", "Precision", "cpu_has_native_bf16", "exact_float32", "native_bf16"]

log = logging.getLogger(__name__)

Job = Literal["training", "translation", "export"]

# The names each job accepts (``auto`` is resolved by Precision.resolve).
ALLOWED: dict[str, tuple[str, ...]] = {
    "training": ("fp32", "bf16", "fp16", "auto"),
    "translation": ("fp32", "bf16", "auto"),
    "export": ("fp32", "fp16", "int8"),
}

# oneDNN instruction-set caps (ONEDNN_MAX_CPU_ISA) below which it has no bf16 instructions.
_ONEDNN_ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2",
                                       "AVX512_CORE", "AVX512_CORE_VNNI"})


class Precision(enum.StrEnum):
    """A resolved precision. A ``str`` (``Precision.BF16 == "bf16"``), so it prints, compares
    and serialises as its name."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"  # export only: static int8 quantisation of an ONNX file

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype ``torch.autocast`` runs convolutions and matmuls in; None for fp32 (no
        autocast) and int8 (not a PyTorch compute precision)."""
        return {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}.get(self)

    @property
    def needs_grad_scaler(self) -> bool:
        """fp16 trains with a gradient scaler (its range is too small for raw gradients)."""
        return self is Precision.FP16

    @classmethod
    def check(cls, requested: str, job: Job) -> str:
        """Return ``requested`` if ``job`` accepts it (see :data:`ALLOWED`).

        Raises:
            ValueError: another name; the message lists the accepted ones.
        """
        allowed = ALLOWED[job]
        if requested in allowed:
            return requested
        if job == "translation":
            raise ValueError(f"precision must be one of {', '.join(allowed)}, got {requested!r} "
                             "(fp16 inference is not offered: bf16 has fp32's range)")
        if job == "export":
            raise ValueError(f"precision must be {', '.join(map(repr, allowed[:-1]))} or "
                             f"{allowed[-1]!r}, got {requested!r}")
        raise ValueError(f"precision {requested!r} is not one of {', '.join(allowed)}")

    @classmethod
    def resolve(cls, requested: str, device: torch.device, *, job: Job,
                compiled: bool = False) -> Precision:
        """The precision ``job`` runs at on ``device`` for ``requested`` (``auto`` resolved).

        Raises:
            ValueError: a name ``job`` does not accept, or fp16 training off CUDA (it trains with
                a gradient scaler, which only CUDA supports here).
        """
        cls.check(requested, job)
        if job == "training" and requested == "fp16" and device.type != "cuda":
            raise ValueError(
                f"precision 'fp16' needs a CUDA GPU (it trains with a gradient scaler), but the "
                f"device is {device.type}; use precision='bf16', 'auto' or 'fp32' instead"
            )
        if requested != "auto":
            return cls(requested)
        if job == "translation":
            fast = device.type == "cuda" or compiled
            return cls.BF16 if fast and native_bf16(device) else cls.FP32
        chosen = cls.BF16 if native_bf16(device) else cls.FP32
        why = ("it computes bf16 natively" if chosen is cls.BF16
               else "it has no native bf16 arithmetic")
        log.info("precision auto: %s on %s (%s)", chosen, device, why)
        return chosen


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 arithmetic instructions (x86 avx512_bf16 or AMX tiles) and
    PyTorch's CPU kernels (oneDNN) may use them.

    ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) set to an instruction set without bf16
    (e.g. ``AVX512_CORE_VNNI``) makes oneDNN emulate bf16, several times slower than fp32
    (measured in docs/performance.md), so the answer is then False. Otherwise torch's own probe
    is used where it exists (it is private, so it may disappear), else the Linux CPU flags.
    Anything else (macOS, Windows without the probe) answers False: fp32 is the safe choice
    where nothing proves bf16 is native.
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    if cap.strip().upper() in _ONEDNN_ISAS_WITHOUT_BF16:
        return False
    probe = getattr(torch, "cpu", None)
    checks = [getattr(probe, n, None) for n in ("_is_avx512_bf16_supported",
                                                 "_is_amx_tile_supported")]
    if any(callable(c) for c in checks):
        try:
            return any(bool(c()) for c in checks if callable(c))
        except (RuntimeError, AttributeError):  # pragma: no cover - probe broke in this build
            pass
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def native_bf16(device: torch.device) -> bool:
    """True when ``device`` computes bf16 natively (CUDA compute capability 8.0+, see
    :func:`cpu_has_native_bf16` for CPUs; False for MPS and anything else)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


@contextlib.contextmanager
def exact_float32(device: torch.device) -> Iterator[None]:
    """Inside: float32 matmuls and cuDNN convolutions on ``device`` compute in true float32.

    On Ampere and newer GPUs torch runs cuDNN convolutions in TF32 by default (10 mantissa bits),
    which moves a generator's pixels by up to 2 uint8 levels and FID features by ~1e-3. So
    ``fp32`` means IEEE float32 for the jobs that must agree with the CPU and with ONNX files
    (translation at ``fp32``, feature extraction): this switches
    ``torch.backends.cudnn.allow_tf32`` and ``torch.backends.cuda.matmul.allow_tf32`` off and
    restores both afterwards (also on an exception). Nothing changes on other devices.
    """
    if device.type != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved
