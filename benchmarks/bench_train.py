"""CycleGAN training iteration time and peak memory, fp32 against bf16 (and fp16 on CUDA).

    python benchmarks/bench_train.py [--crops 128,256] [--precisions fp32,bf16] [--iters 5]
                                     [--warmup 1] [--device cpu|cuda] [--json PATH]
                                     [--batch 1] [--threads N] [--no-memory] [--no-flops]

What is timed is what a user's run executes per step: ``CycleGAN.train_step`` (official defaults:
resnet_9blocks generators, 70x70 PatchGAN discriminators, lsgan, identity loss on, image pools)
driven by the engine's own :class:`~gantransfer.engine.context.EngineContext` (autocast, with
fp32 norm inputs on CPU; backward, finiteness check, Adam step; one gradient scaler per group in
fp16), batch 1 (``--batch``), on one fixed random batch already on the device (data loading is
not timed). Precisions are timed interleaved — one iteration of each in turn, ``--iters``
rounds — so the ratio column compares them under the same machine load; the table shows
medians.

Peak memory per configuration is measured on a fresh model: on CPU in a fresh subprocess (peak
RSS during the first two iterations minus the RSS after the model and optimizers were built), on
CUDA with ``torch.cuda.max_memory_allocated`` over the same window. Both therefore include
gradients and Adam state (``state MB`` column: 3 fp32 copies of the parameters) besides the
activations. FLOPs of one iteration are counted once per crop with ``FlopCounterMode``.

On a GPU a batch-1 CycleGAN step is bound by kernel launches and Python, not arithmetic
(measured on an H200, torch 2.11: about 66 ms per step at crop 128 and at 256 alike, and bf16 and
fp16 slower than fp32 by their cast kernels), so expect bf16 gains there only with more work per
step.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

import gantransfer
from gantransfer.engine.context import EngineContext

PRECISIONS = ("fp32", "bf16", "fp16")


def machine() -> dict[str, Any]:
    """CPU model, CPU count, GPU name and torch version, for recording the numbers."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version()}


def build(crop: int, precision: str, device: torch.device, args: argparse.Namespace,
          ) -> tuple[Any, EngineContext, dict[str, torch.Tensor]]:
    """A CycleGAN on ``device``, an EngineContext as the Trainer builds it, and one batch."""
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", netG=args.netG, ngf=args.ngf, ndf=args.ndf,
                            crop_size=crop, load_size=crop).to(device).train()
    optimizers = model.make_optimizers()
    scalers = ({g: torch.amp.GradScaler(device.type) for g in optimizers}
               if precision == "fp16" else {})
    ctx = EngineContext(model, optimizers=optimizers, groups=model.optimizer_groups(),
                        scalers=scalers, precision=precision, device=device, grad_clip=None,
                        ema=None)
    gen = torch.Generator().manual_seed(1)
    batch = {k: torch.rand(args.batch, 3, crop, crop, generator=gen).mul(2).sub(1).to(device)
             for k in ("A", "B")}
    return model, ctx, batch


def step(model: Any, ctx: EngineContext, batch: dict[str, torch.Tensor]) -> float:
    """One training iteration; seconds (the device is synchronised before and after)."""
    if batch["A"].is_cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    model.train_step(batch, ctx)  # returns Python floats, which already waits for the device
    if batch["A"].is_cuda:
        torch.cuda.synchronize()
    ctx.step += 1
    return time.perf_counter() - t


def count_flops(crop: int, device: torch.device, args: argparse.Namespace) -> float | None:
    """FLOPs of one fp32 iteration (convolutions and matmuls, forward and backward)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # pragma: no cover - very old torch
        return None
    model, ctx, batch = build(crop, "fp32", device, args)
    with FlopCounterMode(display=False) as counter:
        model.train_step(batch, ctx)
    return float(counter.get_total_flops())


def state_mb(model: Any) -> float:
    """Gradients plus Adam's two moments of every trainable parameter, fp32, in MB."""
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return 3 * 4 * n / 2**20


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} line in /proc/self/status")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def memory_child(crop: int, precision: str, args: argparse.Namespace) -> dict[str, float]:
    """Run in a fresh process: peak RSS of two iterations over the RSS after construction."""
    device = torch.device("cpu")
    model, ctx, batch = build(crop, precision, device, args)
    gc.collect()
    base = _rss_mb()
    for _ in range(2):
        step(model, ctx, batch)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the forking parent
    # through exec, so a child of a big benchmark process reported the parent's peak (3.6 GB
    # for both precisions) instead of its own.
    peak = _status_mb("VmHWM")
    return {"peak_mb": peak - base, "state_mb": state_mb(model)}


def measure_memory(crop: int, precision: str, device: torch.device,
                   args: argparse.Namespace) -> dict[str, float] | None:
    """Peak memory of the first two iterations of a fresh model (see the module docstring)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        model, ctx, batch = build(crop, precision, device, args)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        for _ in range(2):
            step(model, ctx, batch)
        peak = torch.cuda.max_memory_allocated()
        out = {"peak_mb": (peak - base) / 2**20, "state_mb": state_mb(model)}
        del model, ctx, batch
        return out
    if not sys.platform.startswith("linux"):
        return None  # /proc/self/status is Linux's
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", f"{crop}:{precision}",
           "--netG", args.netG, "--ngf", str(args.ngf), "--ndf", str(args.ndf),
           "--batch", str(args.batch),
           "--threads", str(torch.get_num_threads())]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement for crop {crop} {precision} failed:\n"
                           f"{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for p in precisions:
        if p not in PRECISIONS:
            raise SystemExit(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
        if p == "fp16" and device.type != "cuda":
            raise SystemExit("fp16 trains with a gradient scaler and needs --device cuda")
    if device.type == "cuda":
        # What a user's run gets: the engine leaves cuDNN's algorithm search at torch's default.
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
    rows: list[dict[str, Any]] = []
    for crop in [int(c) for c in args.crops.split(",")]:
        flops = None if args.no_flops else count_flops(crop, device, args)
        setups = {p: build(crop, p, device, args) for p in precisions}
        for p in precisions:
            for _ in range(args.warmup):
                step(*setups[p])
        times: dict[str, list[float]] = {p: [] for p in precisions}
        for _ in range(args.iters):  # interleaved: every precision sees the same load
            for p in precisions:
                times[p].append(step(*setups[p]))
        del setups
        gc.collect()
        for p in precisions:
            med = statistics.median(times[p])
            mem = None if args.no_memory else measure_memory(crop, p, device, args)
            rows.append({"crop": crop, "precision": p, "median_s": med, "min_s": min(times[p]),
                         "times_s": times[p], "its_per_s": 1.0 / med,
                         "flops": flops, "gflops_per_s": flops / med / 1e9 if flops else None,
                         "peak_mb": mem["peak_mb"] if mem else None,
                         "state_mb": mem["state_mb"] if mem else None})
        base = next((r for r in rows if r["crop"] == crop and r["precision"] == "fp32"), None)
        for r in rows:
            if r["crop"] == crop:
                r["speedup_vs_fp32"] = base["median_s"] / r["median_s"] if base else None
    return {"benchmark": "train", "machine": machine(), "device": str(device),
            "settings": {"netG": args.netG, "ngf": args.ngf, "ndf": args.ndf, "batch": args.batch,
                         "iters": args.iters, "warmup": args.warmup,
                         "cudnn_benchmark": args.cudnn_benchmark},
            "rows": rows}


def table(result: dict[str, Any]) -> str:
    head = ["crop", "precision", "s/iter", "min s", "it/s", "x fp32", "GFLOP/s", "peak MB",
            "state MB"]
    lines = [head]
    for r in result["rows"]:
        def f(v: Any, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)
        lines.append([str(r["crop"]), r["precision"], f(r["median_s"], ".3f"),
                      f(r["min_s"], ".3f"), f(r["its_per_s"], ".2f"),
                      f(r.get("speedup_vs_fp32"), ".2f"), f(r["gflops_per_s"], ".0f"),
                      f(r["peak_mb"], ".0f"), f(r["state_mb"], ".0f")])
    widths = [max(len(ln[i]) for ln in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(ln, widths, strict=True))
                     for ln in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", default="128,256", help="comma-separated crop sizes")
    parser.add_argument("--precisions", default="fp32,bf16", help="any of fp32,bf16,fp16")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per precision")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--batch", type=int, default=1, help="images per step (official 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--netG", default="resnet_9blocks", help="generator (smoke runs: smaller)")
    parser.add_argument("--ngf", type=int, default=64, help="generator width (official 64)")
    parser.add_argument("--ndf", type=int, default=64, help="discriminator width (official 64)")
    parser.add_argument("--no-memory", action="store_true", help="skip peak memory")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="let cuDNN search algorithms (off by default, as in the engine)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:  # internal: one CPU memory measurement in this fresh process
        crop, precision = args.memory_child.split(":")
        print(json.dumps(memory_child(int(crop), precision, args)))
        return
    if args.iters < 1 or args.warmup < 0 or args.batch < 1:
        raise SystemExit("--iters and --batch must be >= 1 and --warmup >= 0")
    result = run(args)
    m = result["machine"]
    print(f"{m['cpu']} ({m['cpus']} CPUs, {m['threads']} threads), GPU: {m['gpu'] or 'none'}; "
          f"torch {m['torch']}; device {result['device']}")
    print(f"CycleGAN {args.netG} ngf {args.ngf}, patchgan ndf {args.ndf}, batch {args.batch}; "
          f"medians of {args.iters} interleaved iterations after {args.warmup} warm-up")
    print(table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
