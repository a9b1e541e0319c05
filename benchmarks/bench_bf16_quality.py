"""Does bf16 training reach the quality of fp32 training? CycleGAN on the built-in data.

    python benchmarks/bench_bf16_quality.py [--precisions fp32,bf16] [--steps 600] [--seed 0]
                                            [--device cpu] [--out DIR] [--json PATH]

Runs the built-in CycleGAN demo (``gantransfer.demo``: resnet_6blocks, ngf 8, 32 px, 600 steps,
procedurally generated domains with a known ground-truth translation) once per precision, from
the same seed, hence the same data, order and initial weights. Each trained model translates
the 16 held-out images in fp32 (so only the training precision differs) and is scored by PSNR
against the ground truth, as ``gtx demo`` does. Prints both PSNRs, the difference to the first
precision (the target: within 0.3 dB), the training times, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gantransfer.demo import DEMO_CONFIGS, run_demo

TOLERANCE_DB = 0.3


def run_one(out: Path, *, precision: str, steps: int, seed: int, device: str) -> dict[str, Any]:
    """Train and score one demo run; PSNRs in dB, time in seconds (training and scoring)."""
    torch.manual_seed(seed)  # run_demo builds the model first: same initial weights per run
    start = time.perf_counter()
    result = run_demo(out, architecture="cyclegan", steps=steps, device=device,
                      precision=precision, seed=seed, export_onnx=False)
    return {"precision": precision, "psnr_db": result.psnr_model,
            "psnr_identity_db": result.psnr_identity, "seconds": time.perf_counter() - start,
            "run_dir": str(result.run_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="the first is the reference (fp16 needs --device cuda)")
    parser.add_argument("--steps", type=int, default=DEMO_CONFIGS["cyclegan"]["train"]["steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        rows = [run_one(root / p, precision=p, steps=args.steps, seed=args.seed,
                        device=args.device) for p in precisions]
    ref = rows[0]
    for r in rows:
        r["delta_db"] = r["psnr_db"] - ref["psnr_db"]
        r["speedup_vs_ref"] = ref["seconds"] / r["seconds"]
    ok = all(abs(r["delta_db"]) <= TOLERANCE_DB for r in rows)
    print(f"CycleGAN demo, {args.steps} steps, seed {args.seed}, device {args.device}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"{'precision':>9}  {'PSNR dB':>8}  {'delta dB':>8}  {'identity dB':>11}  "
          f"{'seconds':>8}  {'x ' + ref['precision']:>8}")
    for r in rows:
        print(f"{r['precision']:>9}  {r['psnr_db']:8.2f}  {r['delta_db']:+8.2f}  "
              f"{r['psnr_identity_db']:11.2f}  {r['seconds']:8.1f}  {r['speedup_vs_ref']:8.2f}")
    print(f"{'PASS' if ok else 'FAIL'}: every precision within {TOLERANCE_DB} dB of "
          f"{ref['precision']}")
    if args.json:
        result = {"benchmark": "bf16_quality", "steps": args.steps, "seed": args.seed,
                  "device": args.device, "torch": torch.__version__,
                  "tolerance_db": TOLERANCE_DB, "within_tolerance": ok, "rows": rows}
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
