"""Does gantransfer's DCGAN learn as well as a plain pytorch/examples-style loop?

    python benchmarks/bench_dcgan_quality.py [--at 500,2000,8000] [--seeds 0,1] [--size 32]
                                             [--width 32] [--batch 64] [--images 20000]
                                             [--json PATH]

Both sides train the same networks (``dcgan_generator``/``dcgan_discriminator`` from the
registry, same initial weights per seed) with the same hyper-parameters (Adam 2e-4, β 0.5/0.999,
BCE on logits, one D then one G update per batch) on the same procedurally drawn shape images
(``gantransfer.data.demo.make_single``). The plain loop is written as pytorch/examples/dcgan
writes it: D on the real batch, D on the detached fake batch, step; G against D(fake), step.
gantransfer runs through its Trainer (``gantransfer.get("dcgan")``).

At each ``--at`` iteration count both generators draw 1,000 samples from the same fixed noise,
scored by :func:`gantransfer.data.metrics.statistics_distance` against 1,000 held-out images
(lower is better; two independent draws of the data score ~0.03; an untrained generator ~45).
Prints one row per seed and checkpoint and the mean per side; seconds are wall time of the
training so far on this machine (the two sides run one after the other, so they share its load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import gantransfer
from gantransfer.data.demo import make_single
from gantransfer.data.metrics import statistics_distance
from gantransfer.pixels import from_uint8


def load_folder(folder: Path, limit: int | None = None) -> torch.Tensor:
    files = sorted(folder.glob("*.png"))[:limit]
    arrays = np.stack([np.array(Image.open(p).convert("RGB")) for p in files])
    return from_uint8(torch.from_numpy(arrays).permute(0, 3, 1, 2))


def score(g: torch.nn.Module, z: torch.Tensor, real: torch.Tensor) -> float:
    was = g.training
    g.eval()
    with torch.no_grad():
        out = statistics_distance(real, g(z))
    g.train(was)
    return out


def plain_loop(images: torch.Tensor, *, size: int, width: int, batch: int, seed: int,
               at: list[int], z_eval: torch.Tensor,
               real: torch.Tensor) -> Iterator[dict[str, Any]]:
    """pytorch/examples/dcgan's loop over an in-memory dataset; yields a row at each of ``at``."""
    torch.manual_seed(seed)
    g = gantransfer.get_network("dcgan_generator", image_size=size, nz=100, ngf=width)
    d = gantransfer.get_network("dcgan_discriminator", image_size=size, ndf=width)
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    order = torch.Generator().manual_seed(seed)
    it, start = 0, time.perf_counter()
    while it < at[-1]:
        perm = torch.randperm(len(images), generator=order)
        for k in range(0, len(perm) - batch + 1, batch):
            real_batch = images[perm[k:k + batch]]
            # (1) D: maximise log D(x) + log(1 - D(G(z)))
            d.zero_grad()
            out_real = d(real_batch)
            err_real = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            err_real.backward()
            fake = g(torch.randn(batch, 100))
            out_fake = d(fake.detach())
            err_fake = F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
            err_fake.backward()
            opt_d.step()
            # (2) G: maximise log D(G(z))
            g.zero_grad()
            out = d(fake)
            F.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
            opt_g.step()
            it += 1
            if it in at:
                seconds = time.perf_counter() - start
                yield {"side": "plain loop", "seed": seed, "iteration": it,
                       "distance": score(g, z_eval, real), "seconds": seconds}
                start = time.perf_counter() - seconds  # the pause to score is not training
            if it >= at[-1]:
                break


def gantransfer_runs(data: Path, *, size: int, width: int, batch: int, seed: int,
                     at: list[int], z_eval: torch.Tensor, real: torch.Tensor,
                     work: Path) -> Iterator[dict[str, Any]]:
    """gantransfer's Trainer, continued with ``resume="auto"`` from one checkpoint to the next
    (resume is exact, so this equals one uninterrupted run); yields a row at each of ``at``."""
    torch.manual_seed(seed)
    run = work / f"gantransfer_{seed}"
    elapsed = 0.0
    model = gantransfer.get("dcgan", image_size=size, ngf=width, ndf=width)
    for steps in at:
        config = gantransfer.TrainConfig(steps=steps, batch_size=batch, device="cpu",
                                         num_workers=0, log_every=100, sample_every=0,
                                         checkpoint_every=0, seed=seed, precision="fp32")
        start = time.perf_counter()
        gantransfer.Trainer(model, gantransfer.DataConfig(root=str(data)), config, run,
                            callbacks=[]).fit(resume="auto")
        elapsed += time.perf_counter() - start
        yield {"side": "gantransfer", "seed": seed, "iteration": steps,
               "distance": score(model.nets["g"], z_eval, real), "seconds": elapsed}
        model = gantransfer.load(run)  # the next fit resumes from the checkpoint just written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--at", default="500,2000,8000")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    at = sorted(int(x) for x in args.at.split(","))
    seeds = [int(x) for x in args.seeds.split(",")]
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_single(work / "train", n=args.images, size=args.size, seed=0)
        real = load_folder(make_single(work / "held_out", n=1000, size=args.size, seed=1))
        images = load_folder(data)
        z_eval = torch.randn(1000, 100, generator=torch.Generator().manual_seed(12345))
        for seed in seeds:
            # The two sides advance in turns, checkpoint by checkpoint, so an interrupted run
            # still has both sides' numbers at the earlier iteration counts.
            sides = [gantransfer_runs(data, size=args.size, width=args.width, batch=args.batch,
                                      seed=seed, at=at, z_eval=z_eval, real=real, work=work),
                     plain_loop(images, size=args.size, width=args.width, batch=args.batch,
                                seed=seed, at=at, z_eval=z_eval, real=real)]
            for _ in at:
                for side in sides:
                    r = next(side)
                    rows.append(r)
                    print(f"{r['side']:12s} seed {r['seed']} it {r['iteration']:6d} "
                          f"distance {r['distance']:8.3f}  {r['seconds']:7.1f} s", flush=True)
                    write_json(args, rows)
    print("\nmean statistics distance (lower is better) over seeds", seeds)
    print(f"{'iterations':>10s} {'gantransfer':>14s} {'plain loop':>14s}")
    for it in at:
        cells = []
        for side in ("gantransfer", "plain loop"):
            vals = [r["distance"] for r in rows if r["side"] == side and r["iteration"] == it]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):7.2f} ± {sd:4.2f}")
        print(f"{it:>10d} {cells[0]:>14s} {cells[1]:>14s}")
    write_json(args, rows)


def write_json(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "load_average": list(os.getloadavg()), "rows": rows},
                                        indent=1))


if __name__ == "__main__":
    main()
