"""End-to-end folder translation: how much decoding and encoding add to the model's own time.

    python benchmarks/bench_translate.py [--count 64] [--size 256] [--network resnet_9blocks]
                                         [--batch-size 1] [--repeats 1] [--json PATH]
                                         [--backends torch-fp32,torch-bf16,onnx-fp32,onnx-int8]

Writes ``--count`` procedural PNG scenes (gantransfer.data.demo) to a temporary folder, builds a
CycleGAN with a random ``--network`` generator, or loads ``--checkpoint`` (speed does not depend
on the weights; the PSNR column means more for a trained model) and, for
each backend, times

* **model**: the translator alone over the same images, already decoded and padded, back to back;
* **end to end**: :func:`gantransfer.inference.translate_files` from PNG files to PNG files
  (decode, infer, encode, atomic save), exactly what ``gtx translate`` runs;

after one warm-up batch (which is where torch.compile compiles; its time is reported apart).
``overhead`` is end-to-end / model - 1; the target is <= 15 %. ``x fp32`` is end-to-end
throughput relative to torch fp32 eager's. ``psnr`` compares each backend's model outputs with
torch fp32 eager. The int8 file is calibrated on the same images (with random weights its PSNR says little
about a trained model's).
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
from gantransfer.inference import Translator, translate_files, translator
from gantransfer.inference.images import crop_to, pad_to_multiple
from gantransfer.pixels import from_uint8

BACKENDS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")


def _write_images(folder: Path, *, count: int, size: int, seed: int) -> list[Path]:
    """``count`` procedural scenes of the built-in data (PNG), sorted."""
    make_single(folder, n=count, size=size, seed=seed)
    return sorted(folder.glob("*.png"))


def _make_translators(model: Any, backends: list[str], work: Path, images: Path, *, count: int,
                      size: int) -> dict[str, Callable[[], Translator] | str]:
    """Backend name -> a factory for its Translator, or the reason it is unavailable."""
    out: dict[str, Callable[[], Translator] | str] = {}
    for name in backends:
        if name == "torch-fp32":
            out[name] = lambda: translator(model, precision="fp32", compile="off")
        elif name == "torch-bf16":
            out[name] = lambda: translator(model, precision="bf16", compile="on")
        elif name == "onnx-fp32":
            path = gantransfer.export_onnx(model, work / "fp32.onnx", target="a2b")[0].path
            out[name] = lambda p=path: translator(gantransfer.onnx.load(p))
        elif name == "onnx-int8":
            try:
                path = gantransfer.export_onnx(
                    model, work / "int8.onnx", target="a2b", precision="int8", calib=images,
                    calib_count=min(count, 32), calib_size=size, min_psnr=0.0)[0].path
            except Exception as exc:  # report, do not abort the other rows
                out[name] = f"int8 export failed: {type(exc).__name__}: {exc}"
                continue
            out[name] = lambda p=path: translator(gantransfer.onnx.load(p))
        else:
            raise SystemExit(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return out


def _model_only(runner: Translator, inputs: list[tuple[torch.Tensor, tuple[int, int]]],
                batch_size: int) -> tuple[float, list[torch.Tensor]]:
    outputs: list[torch.Tensor] = []
    start = time.perf_counter()
    for i in range(0, len(inputs), batch_size):
        chunk = inputs[i : i + batch_size]
        y = runner(torch.cat([x for x, _ in chunk]))
        padded = tuple(chunk[0][0].shape[-2:])
        outputs.extend(crop_to(y[k : k + 1], s, padded) for k, (_, s) in enumerate(chunk))
    return time.perf_counter() - start, outputs


def _psnr(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    mse = statistics.fmean(float(((x - y) ** 2).mean()) for x, y in zip(a, b, strict=True))
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(0)
    if args.checkpoint:  # a trained model: the PSNR column then says what users would see
        model = gantransfer.load(args.checkpoint)
    else:
        model = gantransfer.get("cyclegan", netG=args.network, ngf=args.ngf).eval()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_translate_") as tmp:
        work = Path(tmp)
        paths = _write_images(work / "in", count=args.count, size=args.size, seed=args.seed)
        factories = _make_translators(model, backends, work, work / "in", count=args.count,
                                      size=args.size)
        reference: list[torch.Tensor] | None = None
        for name in backends:
            factory = factories[name]
            if isinstance(factory, str):
                rows.append({"backend": name, "skipped": factory})
                continue
            runner = factory()
            inputs = []
            for p in paths:  # decoded and padded up front: not part of the model time
                arr = np.asarray(read_image(p, channels=runner.channels))
                x = from_uint8(torch.from_numpy(arr.transpose(2, 0, 1).copy())[None])
                inputs.append(pad_to_multiple(x, runner.divisor, runner.min_size,
                                              bucket=runner.bucket))
            warm = time.perf_counter()
            with model.evaluating():
                runner(torch.cat([x for x, _ in inputs[: args.batch_size]]))
                warm = time.perf_counter() - warm
                model_times, e2e_times, overheads = [], [], []
                for r in range(args.repeats):
                    seconds, outputs = _model_only(runner, inputs, args.batch_size)
                    model_times.append(seconds)
                    pairs = [(p, work / f"out_{name}_{r}" / p.name) for p in paths]
                    stats = translate_files(runner, pairs, batch_size=args.batch_size,
                                            workers=args.workers)
                    e2e_times.append(stats.wall_seconds)
                    overheads.append(stats.overhead)
            if name == "torch-fp32":
                reference = outputs
            model_s, e2e_s = statistics.median(model_times), statistics.median(e2e_times)
            rows.append({
                "backend": name, "description": runner.description, "images": args.count,
                "model_seconds": model_s, "end_to_end_seconds": e2e_s,
                "overhead": e2e_s / model_s - 1.0,
                "in_pipeline_overhead": statistics.median(overheads),
                "images_per_second": args.count / e2e_s,
                "model_images_per_second": args.count / model_s,
                "warmup_seconds": warm,
                "psnr_vs_torch_fp32": None if reference is None else _psnr(outputs, reference),
            })
    return {"machine": _machine(), "settings": vars(args), "rows": rows}


def _machine() -> str:
    from gantransfer.export.bench import machine_summary

    return machine_summary()


def format_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    header = ["backend", "model s", "end-to-end s", "overhead", "img/s", "model img/s",
              "x fp32", "PSNR dB", "warm-up s", "runs as"]
    table = [header]
    base = next((r["images_per_second"] for r in rows if r["backend"] == "torch-fp32"
                 and "skipped" not in r), None)
    for r in rows:
        if "skipped" in r:
            table.append([r["backend"], "-", "-", "-", "-", "-", "-", "-", "-", r["skipped"]])
            continue
        psnr = r["psnr_vs_torch_fp32"]
        table.append([
            r["backend"], f"{r['model_seconds']:.2f}", f"{r['end_to_end_seconds']:.2f}",
            f"{100 * r['overhead']:+.1f}%", f"{r['images_per_second']:.2f}",
            f"{r['model_images_per_second']:.2f}",
            "-" if base is None else f"{r['images_per_second'] / base:.2f}",
            "-" if psnr is None else ("inf" if psnr == float("inf") else f"{psnr:.1f}"),
            f"{r['warmup_seconds']:.1f}", r["description"],
        ])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64, help="images in the folder")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--network", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64, help="generator width (small: smoke runs)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="decoder threads")
    parser.add_argument("--repeats", type=int, default=1, help="medians over this many runs")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None,
                        help="run dir/checkpoint of a trained CycleGAN (default: random weights)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    result = run(args)
    print(result["machine"])
    what = args.checkpoint or f"{args.network} (ngf {args.ngf}, random weights)"
    print(f"{args.count} images of {args.size}x{args.size}, {what}, "
          f"batch {args.batch_size}, median of {args.repeats}")
    table = format_rows(result["rows"])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) if i in (0, len(row) - 1) else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result, "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
