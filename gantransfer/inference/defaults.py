"""Translation defaults chosen from the hardware and the job's size, by measured rules.

What ``gtx translate``, :func:`gantransfer.inference.translate` and
:func:`gantransfer.inference.translate_files` do when the user leaves the batch size and
``compile`` to them, and when ``gtx translate`` points to the int8 ONNX path. The numbers behind
the rules are in :data:`CPU_TIMES` below and in docs/performance.md ("Translation defaults");
``benchmarks/bench_defaults.py`` measures them (on this CPU as it is, and with bf16 switched off
through ``ONEDNN_MAX_CPU_ISA``).

1. **Batch size: 1 on CPUs, 8 on CUDA GPUs.** On CPUs batching gives no per-image gain and can
   cost: on an Intel Xeon without bf16 (quiet, 64 images at 256x256, eager fp32) ``-b 8`` took
   81.0 s and ``-b 1`` 62.8 s (+29 %); on a 2-core AMD EPYC with bf16 batching gave no gain.
   On an H200, eager fp32 ran 374 img/s at batch 1 and 769 at batch 8.
2. **torch.compile (``compile="auto"``): compile when the call's images repay a cold compile.**
   The break-even is ``compile seconds / (eager - compiled seconds per image)``, from the CPU's
   row of :data:`CPU_TIMES` (native bf16 or not): about 100 images where compiled code runs in
   bf16 (2.2x faster than eager fp32), about 500 where it cannot (compiled fp32 saves ~12 %
   while a cold compile costs about a minute). CUDA: 512 images (eager is milliseconds there).
3. **int8 hint: say so when the int8 ONNX file is several times faster.** When the path the
   defaults chose is at least :data:`INT8_HINT_MIN_SPEEDUP` times slower per image than the
   static int8 ONNX file on such a CPU, and the job has enough images to repay an export
   (:data:`INT8_HINT_MIN_IMAGES`), ``gtx translate`` prints how to export and use it. Measured:
   2.0x on the Xeon without bf16 (eager fp32 0.98 s vs int8 0.50 s per image), 2.7x against
   eager fp32 but only 1.2x against compiled bf16 on the EPYC with bf16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "CPU_TIMES",
    "CUDA_BATCH_SIZE",
    "CUDA_COMPILE_MIN_IMAGES",
    "INT8_HINT_MIN_IMAGES",
    "INT8_HINT_MIN_SPEEDUP",
    "CpuTimes",
    "compile_min_images",
    "cpu_times",
    "default_batch_size",
    "int8_hint",
]

CPU_BATCH_SIZE = 1
CUDA_BATCH_SIZE = 8
CUDA_COMPILE_MIN_IMAGES = 512
# "Several times faster": the Xeon without bf16 measured 2.0x (1.98), so the bar sits a little
# below 2 to survive the few percent measurements wobble by.
INT8_HINT_MIN_SPEEDUP = 1.8
# An int8 export (calibration included) takes about a minute on 2 cores: below this many images
# the hint would cost more than it saves.
INT8_HINT_MIN_IMAGES = 64


@dataclass(frozen=True)
class CpuTimes:
    """Measured seconds per image (CycleGAN resnet_9blocks, 256x256, batch 1) on one kind of CPU,
    and the seconds a cold torch.compile of one input shape took there."""

    eager_fp32: float
    compiled: float  # torch.compile at precision auto: bf16 where native, else fp32
    onnx_fp32: float
    onnx_int8: float
    compile_s: float
    source: str  # which machine, when (docs/performance.md has the tables)


CPU_TIMES = {
    # 2-core AMD EPYC with avx512_bf16 (docs/performance.md, "Inference (CPU)", 2026-11-26):
    # eager fp32 575 ms, compiled bf16 261 ms, onnx fp32 532 ms, int8 213 ms per image; a
    # compile took 8-30 s per shape there (the top of that range is used: a cold cache).
    True: CpuTimes(eager_fp32=0.575, compiled=0.261, onnx_fp32=0.532, onnx_int8=0.213,
                   compile_s=30.0, source="a 2-core CPU with native bf16"),
    # Intel Xeon with AVX-512 VNNI and no bf16 (issue 12, quiet, 64 images): eager fp32 -b 1
    # 62.8 s, onnx fp32 58.9 s, int8 31.7 s; compiled fp32 saved 12 % over eager at -b 8 (71.7
    # vs 81.0 s, warm cache) and a cold compile cost 61 s more. Compiled at batch 1 is taken as
    # the same 12 % faster than eager.
    False: CpuTimes(eager_fp32=0.981, compiled=0.863, onnx_fp32=0.920, onnx_int8=0.495,
                    compile_s=61.0, source="an AVX-512 VNNI Xeon without native bf16"),
}


def _device(device: torch.device | str) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


def cpu_times(device: torch.device | str) -> CpuTimes | None:
    """The measured row for ``device``'s kind of CPU (None for other devices)."""
    device = _device(device)
    if device.type != "cpu":
        return None
    from .. import precision  # looked up per call: tests switch native bf16 off

    return CPU_TIMES[precision.cpu_has_native_bf16()]


def default_batch_size(device: torch.device | str) -> int:
    """Rule 1: 8 on CUDA, 1 everywhere else (CPUs; MPS is unmeasured and gets the safe 1)."""
    return CUDA_BATCH_SIZE if _device(device).type == "cuda" else CPU_BATCH_SIZE


def compile_min_images(device: torch.device | str) -> int | None:
    """Rule 2: the images from which ``compile="auto"`` compiles on ``device`` (None: never).

    CPUs: the break-even of their :data:`CPU_TIMES` row, ``compile_s / (eager - compiled)``
    (rounded up): 100 with native bf16, 500 without. CUDA: 512. Other devices: never.
    """
    device = _device(device)
    if device.type == "cuda":
        return CUDA_COMPILE_MIN_IMAGES
    times = cpu_times(device)
    if times is None:
        return None
    saving = times.eager_fp32 - times.compiled
    return math.ceil(times.compile_s / saving) if saving > 0 else None


def int8_hint(device: torch.device | str, *, source: str, images: int, compiled: bool = False
              ) -> str | None:
    """Rule 3: a sentence pointing to the int8 ONNX path, or None when it would not pay.

    Args:
        device: where the translation runs.
        source: what runs: ``"torch"`` (a checkpoint), ``"onnx-fp32"``, or another ONNX
            precision (``"onnx-int8"``, ``"onnx-fp16"``: no hint).
        images: how many images the job translates.
        compiled: the torch path is compiled (compare with compiled, not eager, speed).
    """
    times = cpu_times(device)
    if times is None or images < INT8_HINT_MIN_IMAGES:
        return None
    if source == "torch":
        current = times.compiled if compiled else times.eager_fp32
    elif source == "onnx-fp32":
        current = times.onnx_fp32
    else:
        return None
    speedup = current / times.onnx_int8
    if speedup < INT8_HINT_MIN_SPEEDUP:
        return None
    return (f"an int8 ONNX export ran {speedup:.1f}x faster than this path on {times.source} "
            "(docs/performance.md)")
