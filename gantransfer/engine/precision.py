"""Which floating-point precision a run trains in: ``fp32``, ``bf16``, ``fp16`` or ``auto``.

``auto`` picks bf16 where the hardware computes it natively, because there mixed precision
is a real speed-up (CPU bf16 matmul peaks at about twice fp32 on avx512_bf16 parts, and CUDA
sm80+ tensor cores run bf16 at full rate), and fp32 elsewhere, where emulated bf16 is slower
than fp32. bf16 is preferred over fp16 on GPUs because it needs no gradient scaler.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "cpu_has_native_bf16", "native_bf16", "resolve_precision"]

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16", "auto")


# oneDNN instruction-set caps (ONEDNN_MAX_CPU_ISA) below which it has no bf16 instructions.
_ONEDNN_ISAS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2",
                                       "AVX512_CORE", "AVX512_CORE_VNNI"})


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


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision a run on ``device`` uses for ``requested`` (``auto`` resolved).

    Raises:
        ValueError: an unknown name, or fp16 off CUDA (fp16 trains with a gradient scaler, which
            only CUDA supports here).
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r} is not one of {', '.join(PRECISIONS)}")
    if requested == "fp16" and device.type != "cuda":
        raise ValueError(
            f"precision 'fp16' needs a CUDA GPU (it trains with a gradient scaler), but the "
            f"device is {device.type}; use precision='bf16', 'auto' or 'fp32' instead"
        )
    if requested != "auto":
        return requested
    chosen = "bf16" if native_bf16(device) else "fp32"
    why = ("it computes bf16 natively" if chosen == "bf16"
           else "it has no native bf16 arithmetic")
    log.info("precision auto: %s on %s (%s)", chosen, device, why)
    return chosen
