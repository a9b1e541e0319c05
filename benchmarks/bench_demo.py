"""Which recipe should `gtx demo` use? Held-out PSNR/SSIM of CycleGAN recipes on the demo's own task.

    python benchmarks/bench_demo.py [--recipes unet_32,resnet_full,...] [--seeds 0,1,2]
        [--threads 1] [--json PATH]
    python benchmarks/bench_demo.py table PATH.json

The demo's data (``gantransfer.data.demo.make_two_domain``: 200 unpaired images per domain at
32 px, 16 held-out pairs whose B side is the exact restyling of the A side) are written once per
seed; each recipe trains through the library's Trainer exactly as ``gtx demo`` does (same data
options, batch 1) and its A->B generator is scored on the held-out pairs, next to the identity
baseline. PSNR here is over all held-out pixels at once (the MSE of the whole set); `gtx demo`
prints the mean of the per-image PSNRs, which reads a little higher for the same model (the
demo's seed-0 model: 26.56 dB per-image mean, 26.05 dB over the whole set). CPU seconds are the process's CPU time spent training (evaluation excluded), so recipes
compare by cost too; with ``--threads 1`` two invocations can run side by side on a 2-core machine.

``table`` prints, per recipe, mean ± standard error over seeds of PSNR, SSIM and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

# name: (model config, steps). Every recipe starts from the demo's data options and schedule
# shape (one third of the steps at full LR, then linear decay to 0; 200 images = 200 steps/epoch).
_COMMON: dict[str, Any] = {"lambda_identity": 0.0, "lr": 5e-4, "load_size": 32, "crop_size": 32,
                           "ndf": 8}
_FULL = {"netG": "resnet_6blocks", "generator_kwargs": {"n_downsampling": 0}}
RECIPES: dict[str, tuple[dict[str, Any], int, int]] = {  # name: (model config, steps, batch)
    # The demo recipe up to this benchmark (0.1.x): U-Net, ngf 8, 600 steps, batch 1.
    "unet_32": ({"netG": "unet_32", "ngf": 8}, 600, 1),
    "unet_32_ngf16": ({"netG": "unet_32", "ngf": 16}, 600, 1),
    "unet_32_1800": ({"netG": "unet_32", "ngf": 8}, 1800, 1),
    "unet_32_b8": ({"netG": "unet_32", "ngf": 8}, 600, 8),
    "unet_32_pixel": ({"netG": "unet_32", "ngf": 8, "discriminator": "pixel"}, 600, 1),
    "resnet_official": ({"netG": "resnet_6blocks", "ngf": 8}, 600, 1),
    # The ResNet generator with its residual blocks at half or full resolution.
    "resnet_half": ({"netG": "resnet_6blocks", "ngf": 8,
                     "generator_kwargs": {"n_downsampling": 1}}, 600, 1),
    "resnet_full": ({**_FULL, "ngf": 8}, 600, 1),
    "resnet_full_1800": ({**_FULL, "ngf": 8}, 1800, 1),
    "resnet_full_ngf16": ({**_FULL, "ngf": 16}, 600, 1),
    "resnet_full_ngf16_1800": ({**_FULL, "ngf": 16}, 1800, 1),
    "resnet_full_b8": ({**_FULL, "ngf": 8}, 600, 8),
    "resnet_full_pixel": ({**_FULL, "ngf": 8, "discriminator": "pixel"}, 600, 1),
    "resnet_full_pixel_b8": ({**_FULL, "ngf": 8, "discriminator": "pixel"}, 600, 8),
    "resnet_full_d1": ({**_FULL, "ngf": 8, "n_layers_D": 1}, 600, 1),
    # Resize-convolution instead of transposed convs (Odena et al. 2016: no checkerboard).
    "unet_32_resize": ({"netG": "unet_32", "ngf": 8,
                        "generator_kwargs": {"upsample": "resize"}}, 600, 1),
    "unet_32_resize_b8": ({"netG": "unet_32", "ngf": 8,
                           "generator_kwargs": {"upsample": "resize"}}, 600, 8),
    "unet_32_resize_ngf16": ({"netG": "unet_32", "ngf": 16,
                              "generator_kwargs": {"upsample": "resize"}}, 600, 1),
    "unet_32_resize_2400": ({"netG": "unet_32", "ngf": 8,
                             "generator_kwargs": {"upsample": "resize"}}, 2400, 1),
    "unet_32_2400": ({"netG": "unet_32", "ngf": 8}, 2400, 1),
    "unet_32_resize_2400_lr2e-4": ({"netG": "unet_32", "ngf": 8, "lr": 2e-4,
                                    "generator_kwargs": {"upsample": "resize"}}, 2400, 1),
    "unet_32_resize_ngf16_1800": ({"netG": "unet_32", "ngf": 16,
                                   "generator_kwargs": {"upsample": "resize"}}, 1800, 1),
    # Normalisation: instance norm removes each channel's mean and scale per image, which a
    # colour restyling must then rebuild from the skips.
    "unet_32_batchnorm_b8": ({"netG": "unet_32", "ngf": 8, "norm": "batch"}, 600, 8),
    "unet_32_nonorm": ({"netG": "unet_32", "ngf": 8, "norm": "none"}, 600, 1),
    "unet_32_nonorm_b8": ({"netG": "unet_32", "ngf": 8, "norm": "none"}, 600, 8),
    "unet_32_nonorm_2400": ({"netG": "unet_32", "ngf": 8, "norm": "none"}, 2400, 1),
    "unet_32_nonorm_resize_2400": ({"netG": "unet_32", "ngf": 8, "norm": "none",
                                    "generator_kwargs": {"upsample": "resize"}}, 2400, 1),
    "unet_32_nonorm_b8_1500": ({"netG": "unet_32", "ngf": 8, "norm": "none"}, 1500, 8),
    "resnet_full_nonorm_1800": ({**_FULL, "ngf": 8, "norm": "none"}, 1800, 1),
    "resnet_full_nonorm_ngf16": ({**_FULL, "ngf": 16, "norm": "none"}, 600, 1),
    "resnet_full_nonorm_ngf16_1800": ({**_FULL, "ngf": 16, "norm": "none"}, 1800, 1),
    "resnet_full_nonorm_3000": ({**_FULL, "ngf": 8, "norm": "none"}, 3000, 1),
    "resnet_full_nonorm": ({**_FULL, "ngf": 8, "norm": "none"}, 600, 1),
    "resnet_resize": ({"netG": "resnet_6blocks", "ngf": 8,
                       "generator_kwargs": {"upsample": "resize"}}, 600, 1),
    "resnet_half_resize": ({"netG": "resnet_6blocks", "ngf": 8,
                            "generator_kwargs": {"upsample": "resize", "n_downsampling": 1}},
                           600, 1),
    # A wider discriminator (ndf 32 against 8): textures inside flat shapes become visible to D.
    "unet_32_ndf32": ({"netG": "unet_32", "ngf": 8, "ndf": 32}, 600, 1),
    "unet_32_ndf32_b8": ({"netG": "unet_32", "ngf": 8, "ndf": 32}, 600, 8),
    "unet_32_ndf32_tc": ({"netG": "unet_32", "ngf": 8, "ndf": 32}, 600, 1),
    "resnet_full_ndf32": ({**_FULL, "ngf": 8, "ndf": 32}, 600, 1),
    "resnet_full_ndf32_tc": ({**_FULL, "ngf": 8, "ndf": 32}, 600, 1),
}

# Engine options of some recipes (TrainConfig fields).
TRAIN_OPTIONS: dict[str, dict[str, Any]] = {
    "unet_32_ndf32_tc": {"d_augment": "translation,cutout"},
    "resnet_full_ndf32_tc": {"d_augment": "translation,cutout"},
}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from gantransfer.data.metrics import psnr

    return psnr(a, b)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=255)
                          for x, y in zip(a, b, strict=True)]))


def _read(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


def run(recipes: list[str], seeds: list[int], json_path: str | None,
        images: str | None = None) -> list[dict[str, Any]]:
    import gantransfer
    from gantransfer.data import DataConfig
    from gantransfer.data import demo as demo_data
    from gantransfer.engine import TrainConfig, Trainer
    from gantransfer.pixels import from_uint8, to_uint8

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            root = Path(tmp) / f"data{seed}"
            demo_data.make_two_domain(root, n_train=200, n_test=16, size=32, seed=seed)
            test, truth = _read(root / "testA"), _read(root / "testB")
            test_t = from_uint8(torch.from_numpy(test).permute(0, 3, 1, 2).contiguous())
            identity = _psnr(test, truth)
            for name in recipes:
                model_cfg, steps, batch = RECIPES[name]
                per_epoch = -(-200 // batch)  # steps per epoch of 200 images
                total = -(-steps // per_epoch)
                epochs = max(1, total // 3)
                model = gantransfer.get("cyclegan", seed=seed, **{
                    **_COMMON, "n_epochs": epochs, "n_epochs_decay": max(0, total - epochs),
                    **model_cfg})
                config = TrainConfig(steps=steps, batch_size=batch, device="cpu", seed=seed,
                                     sample_every=0, checkpoint_every=0, log_every=steps,
                                     **TRAIN_OPTIONS.get(name, {}))
                data = DataConfig(root=str(root), load_size=32, crop_size=32)
                t0, w0 = time.process_time(), time.time()
                Trainer(model, data, config, Path(tmp) / f"{name}-{seed}").fit()
                cpu, wall = time.process_time() - t0, time.time() - w0
                with torch.no_grad():
                    out = to_uint8(model.nets["g_ab"].eval()(test_t)).permute(0, 2, 3, 1).numpy()
                row = {"recipe": name, "seed": seed, "steps": steps, "batch": batch, "cpu_s": round(cpu, 1),
                       "wall_s": round(wall, 1), "psnr": round(_psnr(out, truth), 3),
                       "ssim": round(_ssim(out, truth), 4), "identity_psnr": round(identity, 3),
                       "threads": torch.get_num_threads()}
                rows.append(row)
                if images:  # input | translated | truth, 4x nearest, as the demo's comparison
                    from gantransfer.demo import side_by_side

                    grid = side_by_side([list(r) for r in zip(test[:8], out[:8], truth[:8],
                                                              strict=True)])
                    Path(images).mkdir(parents=True, exist_ok=True)
                    grid.resize((grid.width * 4, grid.height * 4), Image.Resampling.NEAREST).save(
                        Path(images) / f"{name}-seed{seed}.png")
                print(f"{name:18s} seed {seed}: {row['psnr']:6.2f} dB  SSIM {row['ssim']:.3f}  "
                      f"{row['cpu_s']:6.1f} CPU s  {row['wall_s']:6.1f} s wall  (identity "
                      f"{identity:.2f} dB)", flush=True)
                if json_path:
                    Path(json_path).write_text(json.dumps(rows, indent=1))
    return rows


def _mean_se(values: list[float], digits: int = 2) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    se = statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    # A recipe run twice with the same seed gives the same numbers (the run is deterministic):
    # count it once.
    rows = list({(r["recipe"], r["seed"]): r for r in rows}.values())
    lines = ["| recipe | steps | batch | held-out PSNR (dB) | SSIM | CPU s | seeds |", "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["recipe"] for r in rows):
        sel = [r for r in rows if r["recipe"] == name]
        lines.append(f"| {name} | {sel[0]['steps']} | {sel[0].get('batch', 1)} | {_mean_se([r['psnr'] for r in sel])} | "
                     f"{_mean_se([r['ssim'] for r in sel], 3)} | "
                     f"{_mean_se([r['cpu_s'] for r in sel], 0)} | {len(sel)} |")
    ident = {r["seed"]: r["identity_psnr"] for r in rows}
    lines.append(f"| *identity baseline* | | | {statistics.fmean(ident.values()):.2f} | | | "
                 f"{len(ident)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["table"]:
        rows = [r for p in argv[1:] for r in json.loads(Path(p).read_text())]
        print(table(rows))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--images", help="folder for a comparison PNG per recipe and seed")
    args = parser.parse_args(argv)
    unknown = set(args.recipes.split(",")) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipes {sorted(unknown)}; known: {', '.join(RECIPES)}")
    torch.set_num_threads(args.threads)
    rows = run(args.recipes.split(","), [int(s) for s in args.seeds.split(",")], args.json,
               args.images)
    print(table(rows))


if __name__ == "__main__":
    main()
