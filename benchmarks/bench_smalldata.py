"""Small data, small compute: held-out quality of CycleGAN recipes on restyled photo patches, and
of DCGAN stabilisers on procedural shapes, at equal iterations and at equal CPU time.

    python benchmarks/bench_smalldata.py photo [--configs official,augment_tc,...]
        [--styles sepia,inverted,warm] [--seeds 0,1] [--steps 600] [--eval-every 100]
        [--json PATH]
    python benchmarks/bench_smalldata.py dcgan [--configs default,hinge_sn,...] [--seeds 0,1]
        [--steps 300] [--eval-every 100] [--json PATH]
    python benchmarks/bench_smalldata.py table PATH.json [PATH.json ...]

**photo** (needs ``pip install -e .[bench]``, i.e. scikit-image, whose wheel ships the photos: no
download). Colour photographs bundled with scikit-image are split by photo: patches of
``astronaut``, ``motorcycle_left``, ``rocket`` and ``hubble_deep_field`` train, patches of
``chelsea`` and ``coffee`` (never seen in training) are held out. Photos are downscaled 4x and
cut into 32x32 patches. Domain A is 150 training patches; domain B is 150 *other* training
patches restyled by a fixed, known filter (unpaired, as CycleGAN expects); the held-out patches
restyled by the same filter are the ground truth, so PSNR/SSIM of G_AB(held-out) can be computed.
Styles: ``sepia`` (the classic sepia matrix), ``inverted`` (the demo's: invert, swap R/G,
gamma 0.7), ``warm`` (channel gains 1.2/1.0/0.75, then a contrast S-curve). Every score is
printed beside two baselines: ``identity`` (the input itself) and ``colour transfer`` (Reinhard
et al. 2001 in RGB: each channel of the input matched to B's training mean and std; the
classical non-learned answer).

**dcgan**: the built-in shape data (``make_single``, 2,000 images, 32 px); samples from fixed
noise scored with :func:`gantransfer.data.metrics.statistics_distance` against 1,000 held-out
images (lower is better; two draws of the data score ~0.03), and with a feature distance: the
Fréchet distance of the features of a small CNN trained in the run to classify the labelled
shapes of ``make_classes`` (FID's recipe with a classifier that needs no download; two draws of
the data are printed as its floor).

Each run is one process-thread (``torch.set_num_threads(1)``); CPU seconds are the process's
CPU time spent training (evaluation excluded), so runs interleaved with other work on a loaded
machine still compare. ``table`` prints, per config, mean ± standard error over seeds and styles
at the last step (equal iterations) and at the CPU time the slowest config needs for its last
step... precisely: at the smallest final CPU time over all configs (equal CPU time, each run's
score read at its last evaluation within that time).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

# Files of scikit-image's wheel (skimage/data/), read directly: nothing is downloaded.
TRAIN_PHOTOS = ("astronaut.png", "motorcycle_left.png", "rocket.jpg", "hubble_deep_field.jpg")
TEST_PHOTOS = ("chelsea.png", "coffee.png")
SIZE = 32
N_TRAIN = 150
N_TEST = 48

# CycleGAN at 32 px. "official" is the official recipe's hyper-parameters (lsgan, lr 2e-4,
# identity 0.5, pool 50, batch 1, 3-layer PatchGAN, linear decay over the second half) at a
# width a 2-core CPU trains in a minute (resnet_6blocks, ngf = ndf = 16).
_BASE: dict[str, Any] = {"netG": "resnet_6blocks", "ngf": 16, "ndf": 16, "load_size": SIZE,
                         "crop_size": SIZE}
PHOTO_CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (model overrides, train overrides)
    "official": ({}, {}),
    "augment_tc": ({}, {"d_augment": "translation,cutout"}),
    "augment_ctc": ({}, {"d_augment": "color,translation,cutout"}),
    "no_identity": ({"lambda_identity": 0.0}, {}),
    "lr5e-4": ({"lr": 5e-4}, {}),
    "hinge_sn": ({"gan_mode": "hinge", "d_spectral_norm": True}, {}),
    "fast": ({"lambda_identity": 0.0, "lr": 5e-4}, {}),
    "fast_tc": ({"lambda_identity": 0.0, "lr": 5e-4}, {"d_augment": "translation,cutout"}),
    # The ResNet generator's residual blocks at full resolution (no stride-2 steps: the same
    # multiply-adds per block at ngf 16 as the official 1/4-resolution trunk at 4*ngf), without
    # and with instance norm (the demo's recipe, benchmarks/bench_demo.py).
    "full_res": ({"generator_kwargs": {"n_downsampling": 0}}, {}),
    "full_res_nonorm": ({"generator_kwargs": {"n_downsampling": 0}, "norm": "none"}, {}),
    "nonorm": ({"norm": "none"}, {}),
    # ADA (Karras et al. 2020): p from 0, adapted towards r_t = 0.6 every 4 steps. At batch 1
    # the default speed (10k images from p = 0 to 1) would barely move p in a short run; 1,000
    # lets it cross the whole range within the benchmark's budget.
    "ada_tc": ({}, {"d_augment": "translation,cutout", "d_augment_target": 0.6,
                    "d_augment_speed": 1000}),
}
DCGAN_CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({}, {}),
    "augment_ctc": ({}, {"d_augment": "color,translation,cutout"}),
    "augment_tc": ({}, {"d_augment": "translation,cutout"}),
    "hinge_sn": ({"gan_mode": "hinge", "d_spectral_norm": True}, {}),
    "tutorial": ({"label_noise": 0.1, "d_dropout": 0.3}, {}),
    "lsgan": ({"gan_mode": "lsgan"}, {}),
    "ada_tc": ({}, {"d_augment": "translation,cutout", "d_augment_target": 0.6}),
}


# -- data --------------------------------------------------------------------------------------
def _photo(name: str) -> np.ndarray:
    import skimage

    pil = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
    return np.asarray(pil.resize((pil.width // 4, pil.height // 4), Image.BICUBIC))


def _patches(names: tuple[str, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    photos = [_photo(x) for x in names]
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        p = photos[i % len(photos)]
        y, x = rng.integers(0, p.shape[0] - SIZE + 1), rng.integers(0, p.shape[1] - SIZE + 1)
        out[i] = p[y:y + SIZE, x:x + SIZE]
    return out


def _sepia(x: np.ndarray) -> np.ndarray:
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return np.clip(x @ m.T, 0, 1)


def _inverted(x: np.ndarray) -> np.ndarray:
    y = 1.0 - x
    return y[..., [1, 0, 2]] ** 0.7


def _warm(x: np.ndarray) -> np.ndarray:
    y = np.clip(x * np.array([1.2, 1.0, 0.75]), 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * y)  # contrast S-curve, fixed points 0, 0.5, 1


STYLES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sepia": _sepia, "inverted": _inverted, "warm": _warm}


def restyle(images: np.ndarray, style: str) -> np.ndarray:
    """uint8 N×H×W×3 -> the same restyled by the named filter (uint8)."""
    y = STYLES[style](images.astype(np.float64) / 255.0)
    return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)


def _write(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:04d}.png")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from gantransfer.data.metrics import psnr

    return float(np.mean([psnr(x, y) for x, y in zip(a, b, strict=True)]))


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=255)
                          for x, y in zip(a, b, strict=True)]))


def colour_transfer(images: np.ndarray, target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Reinhard-style transfer in RGB: each channel's mean/std moved from ``source``'s
    statistics to ``target``'s (both training sets), applied to ``images``."""
    x, t, s = (a.astype(np.float64) for a in (images, target, source))
    mu_s, sd_s = s.mean((0, 1, 2)), s.std((0, 1, 2)) + 1e-6
    mu_t, sd_t = t.mean((0, 1, 2)), t.std((0, 1, 2))
    return np.clip(np.round((x - mu_s) / sd_s * sd_t + mu_t), 0, 255).astype(np.uint8)


# -- training ----------------------------------------------------------------------------------
def _evaluator(every: int, score: Callable[[Any], dict[str, float]]) -> Any:
    from gantransfer.engine import Callback

    class Evaluate(Callback):
        def __init__(self) -> None:
            self.points: list[dict[str, float]] = []
            self.eval_cpu = 0.0
            self.start = time.process_time()

        def on_step_end(self, trainer: Any, metrics: dict[str, float]) -> None:
            if trainer.step % every and trainer.step != trainer.total_steps:
                return
            t0 = time.process_time()
            with torch.no_grad():
                values = score(trainer.model)
            cpu = t0 - self.start - self.eval_cpu
            self.eval_cpu += time.process_time() - t0
            point = {"step": trainer.step, "cpu_s": round(cpu, 2), **values}
            if trainer.augment.logged:  # ADA: where the augmentation probability got to
                point["aug_p"] = round(trainer.augment.p, 4)
            self.points.append(point)

    return Evaluate()


def _train(arch: str, model_over: dict[str, Any], train_over: dict[str, Any], data: Any,
           run_dir: Path, *, steps: int, seed: int, batch: int, callback: Any) -> None:
    import gantransfer
    from gantransfer.engine import TrainConfig, Trainer

    model = gantransfer.get(arch, seed=seed, **model_over)
    config = TrainConfig(steps=steps, batch_size=batch, device="cpu", seed=seed,
                         num_workers=0, sample_every=0, checkpoint_every=0, log_every=steps,
                         **train_over)
    Trainer(model, data, config, run_dir, callbacks=[callback]).fit()


def run_photo(args: argparse.Namespace) -> list[dict[str, Any]]:
    from gantransfer.data import DataConfig
    from gantransfer.pixels import from_uint8, to_uint8

    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(1234)  # the data are the same for every config and seed
    a_train = _patches(TRAIN_PHOTOS, N_TRAIN, rng)
    b_source = _patches(TRAIN_PHOTOS, N_TRAIN, rng)
    test = _patches(TEST_PHOTOS, N_TEST, rng)
    test_t = from_uint8(torch.from_numpy(test).permute(0, 3, 1, 2).contiguous())
    for style in args.styles:
        b_train = restyle(b_source, style)
        truth = restyle(test, style)
        base = {"identity_psnr": _psnr(test, truth), "identity_ssim": _ssim(test, truth)}
        ct = colour_transfer(test, b_train, a_train)
        base.update(colour_psnr=_psnr(ct, truth), colour_ssim=_ssim(ct, truth))
        print(f"[{style}] identity {base['identity_psnr']:.2f} dB / SSIM "
              f"{base['identity_ssim']:.3f}; colour transfer {base['colour_psnr']:.2f} dB / "
              f"{base['colour_ssim']:.3f}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "data"
            _write(root / "trainA", a_train)
            _write(root / "trainB", b_train)
            data = DataConfig(root=str(root), load_size=SIZE, crop_size=SIZE)

            def score(model: Any, truth: np.ndarray = truth) -> dict[str, float]:
                out = to_uint8(model.nets["g_ab"](test_t)).permute(0, 2, 3, 1).numpy()
                return {"psnr": _psnr(out, truth), "ssim": _ssim(out, truth)}

            for name in args.configs:
                model_over, train_over = PHOTO_CONFIGS[name]
                steps = args.steps
                # The official schedule: constant LR for the first half, linear decay to 0.
                half = max(1, steps // 2 // N_TRAIN)
                model_over = {**_BASE, "n_epochs": half, "n_epochs_decay": half, **model_over}
                for seed in args.seeds:
                    cb = _evaluator(args.eval_every, score)
                    t0 = time.time()
                    _train("cyclegan", model_over, train_over, data,
                           Path(tmp) / f"{name}-{seed}", steps=steps, seed=seed, batch=1,
                           callback=cb)
                    row = {"task": "photo", "style": style, "config": name, "seed": seed,
                           "wall_s": round(time.time() - t0, 1), "load": _load(),
                           "points": cb.points, **base}
                    rows.append(row)
                    last = cb.points[-1]
                    print(f"[{style}] {name:12s} seed {seed}: {last['psnr']:.2f} dB SSIM "
                          f"{last['ssim']:.3f} after {last['step']} steps, {last['cpu_s']:.0f} "
                          f"CPU s (load {row['load']})", flush=True)
                    _save(args.json, rows)
    return rows


class _Features:
    """A small CNN trained to tell the 4 labelled shape classes of
    :func:`gantransfer.data.demo.make_classes` apart (disc/box/ring and hue); the 64 channels of
    its global-average-pooled last conv are the features of a Fréchet distance, FID's recipe with
    a classifier that can be trained here instead of Inception (whose weights need a download).
    It sees shapes and colours, where :func:`statistics_distance` sees only colour and layout
    statistics."""

    def __init__(self, root: Path) -> None:
        from torch import nn

        from gantransfer.data.demo import make_classes

        make_classes(root, n_per_class=256, size=SIZE, classes=4, seed=7)
        folders = sorted(p for p in root.iterdir() if p.is_dir())
        x = torch.cat([torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB"))
                                                  for f in sorted(d.glob("*.png"))]))
                       for d in folders]).permute(0, 3, 1, 2).float() / 127.5 - 1
        y = torch.arange(len(folders)).repeat_interleave(len(x) // len(folders))
        g = torch.Generator().manual_seed(3)
        torch.manual_seed(3)
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        head = nn.Linear(64, len(folders))
        opt = torch.optim.Adam([*self.trunk.parameters(), *head.parameters()], lr=3e-3)
        for _ in range(300):
            idx = torch.randint(0, len(x), (64,), generator=g)
            loss = nn.functional.cross_entropy(head(self.trunk(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            self.accuracy = float((head(self.trunk(x)).argmax(1) == y).float().mean())
        self.trunk.eval()

    @torch.no_grad()
    def distance(self, real: np.ndarray, fake: np.ndarray) -> float:
        """Fréchet distance of the features of two ``N×3×H×W`` uint8 image sets."""
        from gantransfer.data.metrics import frechet_distance

        def feats(images: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(images).float() / 127.5 - 1
            return torch.cat([self.trunk(b) for b in t.split(250)]).double().numpy()

        fr, ff = feats(real), feats(fake)
        return frechet_distance(fr.mean(0), np.cov(fr, rowvar=False), ff.mean(0),
                                np.cov(ff, rowvar=False))


def run_dcgan(args: argparse.Namespace) -> list[dict[str, Any]]:
    from gantransfer.data import DataConfig
    from gantransfer.data.demo import make_single
    from gantransfer.data.metrics import statistics_distance
    from gantransfer.pixels import to_uint8

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        make_single(Path(tmp) / "train", n=2000, size=SIZE, seed=0)
        make_single(Path(tmp) / "held", n=1000, size=SIZE, seed=99)
        held = np.stack([np.asarray(Image.open(p).convert("RGB"))
                         for p in sorted((Path(tmp) / "held").glob("*.png"))]).transpose(0, 3, 1, 2)
        data = DataConfig(root=str(Path(tmp) / "train"), load_size=SIZE, crop_size=SIZE)
        noise = torch.randn(1000, 64, generator=torch.Generator().manual_seed(5))
        features = _Features(Path(tmp) / "classes")
        other = np.stack([np.asarray(Image.open(p).convert("RGB"))
                          for p in sorted((Path(tmp) / "train").glob("*.png"))[:1000]]
                         ).transpose(0, 3, 1, 2)
        print(f"[dcgan] feature classifier: {features.accuracy:.3f} training accuracy; "
              f"feature distance of two draws of the real data {features.distance(held, other):.3f}"
              f", statistics distance {statistics_distance(held, other):.3f}", flush=True)

        def score(model: Any) -> dict[str, float]:
            model.nets["g"].eval()
            out = to_uint8(model.nets["g"](noise)).numpy()  # N×3×H×W uint8
            model.nets["g"].train()
            return {"stat_dist": float(statistics_distance(held, out)),
                    "feat_dist": float(features.distance(held, out))}

        for name in args.configs:
            model_over, train_over = DCGAN_CONFIGS[name]
            model_over = {"image_size": SIZE, "ngf": 32, "ndf": 32, "nz": 64, **model_over}
            for seed in args.seeds:
                cb = _evaluator(args.eval_every, score)
                t0 = time.time()
                _train("dcgan", model_over, train_over, data, Path(tmp) / f"{name}-{seed}",
                       steps=args.steps, seed=seed, batch=32, callback=cb)
                row = {"task": "dcgan", "style": "shapes", "config": name, "seed": seed,
                       "wall_s": round(time.time() - t0, 1), "load": _load(),
                       "points": cb.points}
                rows.append(row)
                last = cb.points[-1]
                print(f"[dcgan] {name:12s} seed {seed}: distance {last['stat_dist']:.3f}, feature "
                      f"distance {last['feat_dist']:.3f} after "
                      f"{last['step']} steps, {last['cpu_s']:.0f} CPU s (load {row['load']})",
                      flush=True)
                _save(args.json, rows)
    return rows


def _load() -> float:
    try:
        return round(float(Path("/proc/loadavg").read_text().split()[0]), 1)
    except OSError:  # not Linux
        return float("nan")


def _save(path: str | None, rows: list[dict[str, Any]]) -> None:
    if path:
        Path(path).write_text(json.dumps(rows, indent=1))


# -- tables ------------------------------------------------------------------------------------
def _mean_se(values: list[float]) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{m:.2f} ± {se:.2f}"


def _at_cpu(points: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    within = [p for p in points if p["cpu_s"] <= budget + 1e-9]
    return within[-1] if within else points[0]


def _paired_gain(rows: list[dict[str, Any]], config: str, key: str) -> str:
    """Mean ± s.e. of (config - first config) over the (style, seed) runs both have: the gain
    with the style-to-style spread taken out, which is what the seed noise must be compared to."""
    ref_name = rows[0]["config"]
    ref = {(r["style"], r["seed"]): r["points"][-1][key] for r in rows if r["config"] == ref_name}
    diffs = [r["points"][-1][key] - ref[(r["style"], r["seed"])] for r in rows
             if r["config"] == config and (r["style"], r["seed"]) in ref]
    return _mean_se(diffs) if config != ref_name else "-"


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown tables: per task, config rows; mean ± s.e. over (style, seed) runs of the score
    gain over the identity baseline (photo) or of the distance (dcgan), at equal iterations and
    at equal CPU time; plus each style's PSNR."""
    out = []
    for task in sorted({r["task"] for r in rows}):
        rs = [r for r in rows if r["task"] == task]
        configs = list(dict.fromkeys(r["config"] for r in rs))
        styles = list(dict.fromkeys(r["style"] for r in rs))
        budget = min(max(p["cpu_s"] for p in r["points"]) for r in rs)
        key = "psnr" if task == "photo" else "stat_dist"
        if task == "photo":
            head = ["config", *[f"{s} PSNR (dB)" for s in styles], "SSIM (all)",
                    "PSNR, equal iterations", f"PSNR at {budget:.0f} CPU s",
                    f"gain over {rs[0]['config']} (paired)", "CPU s", "runs"]
        else:
            head = ["config", "distance, equal iterations", f"distance at {budget:.0f} CPU s",
                    f"change against {rs[0]['config']} (paired)"]
            feat = all("feat_dist" in r["points"][-1] for r in rs)
            if feat:
                head += ["feature distance, equal iterations",
                         f"feature distance at {budget:.0f} CPU s",
                         f"change against {rs[0]['config']} (paired)"]
            head += ["CPU s", "runs"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in configs:
            cr = [r for r in rs if r["config"] == c]
            last = [r["points"][-1][key] for r in cr]
            timed = [_at_cpu(r["points"], budget)[key] for r in cr]
            cpu = statistics.median(r["points"][-1]["cpu_s"] for r in cr)
            cells = [c]
            if task == "photo":
                cells += [_mean_se([r["points"][-1]["psnr"] for r in cr if r["style"] == s])
                          for s in styles]
                cells.append(_mean_se([r["points"][-1]["ssim"] for r in cr]))
            cells += [_mean_se(last), _mean_se(timed), _paired_gain(rs, c, key)]
            if task != "photo" and feat:
                cells += [_mean_se([r["points"][-1]["feat_dist"] for r in cr]),
                          _mean_se([_at_cpu(r["points"], budget)["feat_dist"] for r in cr]),
                          _paired_gain(rs, c, "feat_dist")]
            cells += [f"{cpu:.0f}", str(len(cr))]
            out.append("| " + " | ".join(cells) + " |")
        if task == "photo":
            for base in ("identity", "colour"):
                cells = [f"*{base} baseline*"]
                for s in styles:
                    r = next(r for r in rs if r["style"] == s)
                    cells.append(f"{r[f'{base}_psnr']:.2f}")
                first = {r["style"]: r for r in rs}
                cells.append(f"{statistics.fmean(r[f'{base}_ssim'] for r in first.values()):.3f}")
                cells.append(f"{statistics.fmean(r[f'{base}_psnr'] for r in first.values()):.2f}")
                out.append("| " + " | ".join([*cells, "", "", "", ""]) + " |")
        loads = [r["load"] for r in rs]
        out.append(f"\nload average during the runs: median {statistics.median(loads):.1f}, "
                   f"max {max(loads):.1f}\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=("photo", "dcgan", "table"))
    p.add_argument("paths", nargs="*", help="JSON files (table)")
    p.add_argument("--configs", default=None)
    p.add_argument("--styles", default="sepia,inverted,warm")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.task == "table":
        rows = [r for path in args.paths for r in json.loads(Path(path).read_text())]
        print(table(rows))
        return
    torch.set_num_threads(1)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.styles = args.styles.split(",")
    known = PHOTO_CONFIGS if args.task == "photo" else DCGAN_CONFIGS
    args.configs = args.configs.split(",") if args.configs else list(known)
    unknown = [c for c in args.configs if c not in known]
    if unknown:
        sys.exit(f"unknown configs {unknown}; known: {', '.join(known)}")
    args.steps = args.steps or (600 if args.task == "photo" else 300)
    rows = run_photo(args) if args.task == "photo" else run_dcgan(args)
    print(table(rows))


if __name__ == "__main__":
    main()
