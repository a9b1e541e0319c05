"""Inference benchmark: PyTorch eager vs onnxruntime (fp32, and fp16 on a GPU), interleaved.

Each repeat runs every backend once in turn, so a machine that slows down (thermal throttling,
other processes) hurts all backends alike; the table reports medians, images/s, achieved GFLOP/s
against the generator's FLOP count (``torch.utils.flop_counter``) and the ratio to eager.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..targets import ExportSpec, OnnxMetadata

__all__ = ["BenchRow", "benchmark_network", "count_flops", "format_table", "machine_summary"]


def _run_numpy(model: Any, x: torch.Tensor) -> object:
    """An onnxruntime model (``OnnxModel``) on a CPU tensor."""
    return model.run(x.numpy())

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchRow:
    """One backend at one batch size."""

    backend: str
    batch: int
    median_ms: float
    images_per_s: float
    gflops_per_s: float | None
    speedup: float | None  # eager median / this median (>1: faster than eager)


def count_flops(net: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``x`` (a multiply-add counts 2), eval mode, no grad."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _input(spec: ExportSpec, batch: int, size: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if spec.input == "latent":
        return torch.randn(batch, int(spec.latent_dim or 0), generator=gen)
    return torch.rand(batch, spec.in_channels, size, size, generator=gen) * 2 - 1


def benchmark_network(net: nn.Module | None, spec: ExportSpec, *, size: int = 256,
                      batches: Sequence[int] = (1, 4), repeats: int = 10, warmup: int = 2,
                      device: str = "cpu", onnx_path: str | Path | None = None,
                      threads: int | None = None) -> list[BenchRow]:
    """Time ``net`` in PyTorch eager and in onnxruntime at ``size``x``size`` for each batch.

    ``net`` may be None when only ``onnx_path`` is given (no eager row). Without ``onnx_path``
    the net is exported (and verified) to a temporary file first; on a CUDA device an fp16 file
    is exported too. ``threads`` sets the intra-op threads of both backends (default: torch's
    ``torch.get_num_threads()`` and onnxruntime's own choice, the physical cores). On a busy
    machine fewer threads than cores can be much faster for PyTorch (OpenMP barriers wait for
    descheduled threads), so compare both backends at the same thread count.
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _benchmark(net, spec, size=size, batches=batches, repeats=repeats, warmup=warmup,
                          device=device, onnx_path=onnx_path, threads=threads)
    finally:
        torch.set_num_threads(previous)


def _benchmark(net: nn.Module | None, spec: ExportSpec, *, size: int, batches: Sequence[int],
               repeats: int, warmup: int, device: str, onnx_path: str | Path | None,
               threads: int | None) -> list[BenchRow]:
    from ..inference.onnx_backend import load
    from .exporter import export_network

    dev = torch.device(device)
    if spec.input == "image" and (size % spec.size_divisor or size < spec.min_size):
        raise ValueError(f"size {size} must be a multiple of {spec.size_divisor} and >= "
                         f"{spec.min_size} for this generator")
    providers = ["cuda"] if dev.type == "cuda" else ["cpu"]
    backends: dict[str, Callable[[torch.Tensor], object]] = {}
    with tempfile.TemporaryDirectory(prefix="gtx-bench-") as tmp:
        files: dict[str, Path] = {}
        if onnx_path is not None:
            files["onnxruntime"] = Path(onnx_path)
        elif net is not None:
            meta = OnnxMetadata.from_spec(spec, target="bench")
            for precision in ("fp32", "fp16") if dev.type == "cuda" else ("fp32",):
                name = "onnxruntime" if precision == "fp32" else "onnxruntime fp16"
                files[name] = export_network(net, spec, Path(tmp) / f"{precision}.onnx",
                                             metadata=meta, precision=precision).path
        if net is not None:
            net = net.to(dev).eval()

            def eager(x: torch.Tensor) -> object:
                with torch.inference_mode():
                    out = net(x.to(dev))
                _sync(dev)
                return out

            backends["torch eager"] = eager
        for name, path in files.items():
            # No spin-waiting: onnxruntime's idle threads would otherwise busy-wait after each
            # run and steal the cores from the PyTorch run that follows (interleaving).
            model = load(path, providers=providers, strict=dev.type == "cuda",
                                 threads=threads,
                                 session_config={"session.intra_op.allow_spinning": "0"})
            backends[name] = partial(_run_numpy, model)
        flops = count_flops(net.cpu(), _input(spec, 1, size)) if net is not None else None
        if net is not None:
            net.to(dev)
        rows: list[BenchRow] = []
        for batch in batches:
            x = _input(spec, batch, size)
            times: dict[str, list[float]] = {name: [] for name in backends}
            for fn in backends.values():
                for _ in range(warmup):
                    fn(x)
            for _ in range(repeats):  # interleaved: one run of each backend per repeat
                for name, fn in backends.items():
                    start = time.perf_counter()
                    fn(x)
                    times[name].append(time.perf_counter() - start)
            eager_median = statistics.median(times["torch eager"]) if "torch eager" in times else None
            for name, samples in times.items():
                median = statistics.median(samples)
                rows.append(BenchRow(
                    backend=name, batch=batch, median_ms=median * 1e3,
                    images_per_s=batch / median,
                    gflops_per_s=flops * batch / median / 1e9 if flops else None,
                    speedup=eager_median / median if eager_median else None,
                ))
    return rows


def format_table(rows: Sequence[BenchRow]) -> list[list[str]]:
    """Rows of strings (header first) for printing."""
    table = [["backend", "batch", "median ms", "images/s", "GFLOP/s", "vs eager"]]
    for r in rows:
        table.append([r.backend, str(r.batch), f"{r.median_ms:.1f}", f"{r.images_per_s:.2f}",
                      "-" if r.gflops_per_s is None else f"{r.gflops_per_s:.1f}",
                      "-" if r.speedup is None else f"{r.speedup:.2f}x"])
    return table


def machine_summary() -> str:
    """CPU model, core count, torch and onnxruntime versions (for recording numbers)."""
    import os
    import platform

    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} CPUs, {gpu}; torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
            f"numpy {np.__version__}")
