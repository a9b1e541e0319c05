"""Inference latency, throughput and fidelity of every inference path, side by side in one run.

    python benchmarks/bench_inference.py [--size 256] [--batch 1,4] [--repeats 10]
        [--network resnet_9blocks] [--checkpoint RUN] [--device cpu|cuda] [--threads N]
        [--backends eager,compiled,bf16,onnx,int8] [--json PATH]

Paths (``--backends``; on CUDA also ``onnx-cuda``, ``onnx-cuda-fp16`` and ``tensorrt`` where
onnxruntime has those providers):

* ``eager``: PyTorch eager fp32, the baseline every ratio is against;
* ``compiled``: torch.compile fp32;  ``bf16``: torch.compile + bf16 autocast, exactly the
  translator ``gtx translate --precision bf16 --compile on`` runs;
* ``onnx``: onnxruntime fp32 (CPU provider);  ``int8``: the static QDQ int8 file of
  ``gtx export --int8``, calibrated on procedural scenes of the built-in data.

The generator is a CycleGAN ``--network`` with random weights, or the a2b generator of
``--checkpoint`` (a trained model: fidelity numbers then mean more). Each repeat runs every path
once in turn (interleaved), so a machine that slows down hurts all paths alike; the table gives
medians, images/s, the ratio to eager and the PSNR of each path's outputs against eager fp32 on
``--eval`` scenes (not the calibration ones).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gantransfer
from gantransfer.data.demo import make_single
from gantransfer.data.images import read_image
from gantransfer.data.metrics import psnr
from gantransfer.export.bench import count_flops, machine_summary
from gantransfer.inference import translator
from gantransfer.pixels import from_uint8

CPU_BACKENDS = ("eager", "compiled", "bf16", "onnx", "int8")
CUDA_BACKENDS = ("eager", "compiled", "bf16", "onnx-cuda", "onnx-cuda-fp16", "tensorrt")


def _scenes(folder: Path, *, count: int, size: int, seed: int) -> list[Path]:
    """``count`` procedural scenes of the built-in data (PNG), sorted."""
    make_single(folder, n=count, size=size, seed=seed)
    return sorted(folder.glob("*.png"))


def _tensor(paths: list[Path]) -> torch.Tensor:
    arrays = [np.asarray(read_image(p, channels=3)) for p in paths]
    return from_uint8(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2))


def _model(args: argparse.Namespace) -> Any:
    if args.checkpoint:
        return gantransfer.load(args.checkpoint, device=args.device)
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", netG=args.network)
    return model.to(args.device).eval()


def _ort(path: Path, providers: list[str], threads: int | None) -> Callable[[torch.Tensor], Any]:
    # No spin-waiting: idle onnxruntime threads would otherwise busy-wait after each run and
    # steal the cores from the path timed next (the runs are interleaved).
    m = gantransfer.onnx.load(path, providers=providers, strict=True, threads=threads,
                              session_config={"session.intra_op.allow_spinning": "0"})
    return lambda x: torch.from_numpy(m.run(x.cpu().numpy()))


def _compiled(model: Any, name: str) -> Any:
    # A compiled translator keeps the batch size it first ran at (it never recompiles for the
    # batch dimension), so each batch size gets its own translator.
    return translator(model, target="a2b", compile="on",
                      precision="fp32" if name == "compiled" else "bf16")


def _backends(model: Any, names: list[str], work: Path, calib: Path, args: argparse.Namespace
              ) -> tuple[dict[str, Callable[[torch.Tensor], Any]], dict[str, str]]:
    """name -> function of a padded batch; and name -> why it was left out."""
    net = model.nets[model.export_targets()["a2b"].net]
    dev = torch.device(args.device)
    fns: dict[str, Callable[[torch.Tensor], Any]] = {}
    missing: dict[str, str] = {}
    fp32_onnx: Path | None = None

    def onnx_file() -> Path:
        nonlocal fp32_onnx
        if fp32_onnx is None:
            fp32_onnx = gantransfer.export_onnx(model, work / "fp32.onnx", target="a2b")[0].path
        return fp32_onnx

    import onnxruntime

    available = set(onnxruntime.get_available_providers())
    for name in names:
        if name == "eager":
            def eager(x: torch.Tensor) -> torch.Tensor:
                with torch.inference_mode():
                    return net(x.to(dev)).float()
            fns[name] = eager
        elif name in ("compiled", "bf16"):
            fns[name] = _compiled(model, name)
        elif name == "onnx":
            fns[name] = _ort(onnx_file(), ["cpu"], args.threads)
        elif name == "int8":
            path = gantransfer.export_onnx(model, work / "int8.onnx", target="a2b",
                                           precision="int8", calib=calib, calib_size=args.size,
                                           min_psnr=0.0)[0].path
            fns[name] = _ort(path, ["cpu"], args.threads)
        elif name in ("onnx-cuda", "onnx-cuda-fp16", "tensorrt"):
            provider = "TensorrtExecutionProvider" if name == "tensorrt" else "CUDAExecutionProvider"
            if provider not in available:
                missing[name] = f"onnxruntime has no {provider} here"
                continue
            path = onnx_file()
            if name == "onnx-cuda-fp16":
                path = gantransfer.export_onnx(model, work / "fp16.onnx", target="a2b",
                                               precision="fp16")[0].path
            try:
                fns[name] = _ort(path, ["tensorrt" if name == "tensorrt" else "cuda"], None)
            except Exception as exc:  # a provider listed but unusable (libraries missing)
                missing[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        else:
            raise SystemExit(f"unknown backend {name!r}; choose from {CPU_BACKENDS + CUDA_BACKENDS}")
    return fns, missing


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _db(value: float | None) -> str:
    return "ref" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="resnet_9blocks")
    parser.add_argument("--checkpoint", default=None, help="use this run's a2b generator")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", default="1,4")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--eval", type=int, default=8, help="scenes for the PSNR column")
    parser.add_argument("--calib", type=int, default=32, help="scenes to calibrate int8 on")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--backends", default=None, help="comma list (default: all for device)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = (args.backends.split(",") if args.backends
             else list(CUDA_BACKENDS if dev.type == "cuda" else CPU_BACKENDS))
    if "eager" not in names:
        names.insert(0, "eager")
    machine = machine_summary()
    print(machine)
    model = _model(args)
    with tempfile.TemporaryDirectory(prefix="gtx-bench-inf-") as tmp:
        work = Path(tmp)
        calib = work / "calib"
        _scenes(calib, count=args.calib, size=args.size, seed=1)
        x_eval = _tensor(_scenes(work / "eval", count=args.eval, size=args.size, seed=2))
        setup = time.perf_counter()
        fns, missing = _backends(model, names, work, calib, args)
        setup = time.perf_counter() - setup
        for name, why in missing.items():
            print(f"skipped {name}: {why}")
        # Fidelity first (this also compiles the compiled paths at batch 1).
        reference = torch.cat([fns["eager"](x_eval[i : i + 1]).cpu() for i in range(len(x_eval))])
        quality: dict[str, float | None] = {"eager": None}  # the reference itself
        for name, fn in fns.items():
            if name == "eager":
                continue
            out = torch.cat([torch.as_tensor(fn(x_eval[i : i + 1])).float().cpu()
                             for i in range(len(x_eval))])
            quality[name] = float(np.mean([psnr(out[i], reference[i])
                                           for i in range(len(x_eval))]))
        net = model.nets[model.export_targets()["a2b"].net]
        flops = count_flops(net.cpu(), x_eval[:1])
        model.to(dev)
        rows = []
        for batch in [int(b) for b in args.batch.split(",")]:
            x = x_eval[:1].repeat(batch, 1, 1, 1)
            for name in fns:
                if name in ("compiled", "bf16") and batch != 1:
                    fns[name] = _compiled(model, name)
            times: dict[str, list[float]] = {n: [] for n in fns}
            for fn in fns.values():
                for _ in range(args.warmup):
                    fn(x)
            for _ in range(args.repeats):
                for name, fn in fns.items():
                    _sync(dev)
                    start = time.perf_counter()
                    fn(x)
                    _sync(dev)
                    times[name].append(time.perf_counter() - start)
            base = statistics.median(times["eager"])
            for name, samples in times.items():
                med = statistics.median(samples)
                rows.append({"backend": name, "batch": batch, "median_ms": med * 1e3,
                             "images_per_s": batch / med, "vs_eager": base / med,
                             "gflops_per_s": flops * batch / med / 1e9,
                             "psnr_vs_eager_db": quality[name]})
    header = f"{'backend':<16}{'batch':>6}{'median ms':>11}{'img/s':>8}{'GFLOP/s':>9}" \
             f"{'vs eager':>10}{'PSNR dB':>9}"
    print(f"\n{args.checkpoint or args.network + ' (random weights)'} at {args.size}x{args.size} "
          f"on {args.device}")
    print(header)
    for r in rows:
        print(f"{r['backend']:<16}{r['batch']:>6}{r['median_ms']:>11.1f}{r['images_per_s']:>8.2f}"
              f"{r['gflops_per_s']:>9.1f}{r['vs_eager']:>9.2f}x{_db(r['psnr_vs_eager_db']):>9}")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "inference", "machine": machine, "device": args.device,
            "size": args.size, "model": args.checkpoint or f"{args.network} (random weights)",
            "repeats": args.repeats, "setup_s": setup, "skipped": missing, "rows": rows,
        }, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
