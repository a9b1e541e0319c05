"""The built-in demo: train on procedurally generated data, translate held-out images, score them.

``run_demo`` is what `gtx demo` calls. The CycleGAN demo learns a fixed restyling between two
generated domains, so the translation can be scored against ground truth (PSNR), next to the
identity baseline (the input itself compared with the ground truth). The StarGAN demo does the
same for every style of the K-style set with one generator; the class-conditional DCGAN demo
draws one sample-grid row per class.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DEMO_CONFIGS", "DemoResult", "run_demo", "side_by_side"]

log = logging.getLogger(__name__)

# Tiny configs that learn the built-in data in minutes on a 2-core CPU (measured, see docs).
DEMO_CONFIGS: dict[str, dict] = {
    # The demo's domain B is close to a negative of A, so the identity loss (which pulls G
    # towards leaving images unchanged) is switched off; 200 images per domain = 200 steps per
    # epoch: 5 epochs at full LR, then linear decay to 0 over 10 more. The ResNet generator runs
    # at full resolution (n_downsampling 0: no stride-2 steps, so no 8x8 trunk to blur 32 px
    # shapes; the same multiply-adds per block as the official layout) and without
    # normalisation (instance norm removes each image's channel means, which a colour restyling
    # must then rebuild). benchmarks/bench_demo.py, 3 seeds: 26.38 ± 0.23 dB on held-out images
    # at 3000 steps against 20.38 ± 0.13 dB for the previous recipe (unet_32, instance norm,
    # 600 steps); with instance norm the same generator scored 18.5 dB (docs/cyclegan.md).
    "cyclegan": {
        "model": {"netG": "resnet_6blocks", "ngf": 8, "ndf": 8, "norm": "none",
                  "generator_kwargs": {"n_downsampling": 0}, "lambda_identity": 0.0,
                  "lr": 5e-4, "n_epochs": 5, "n_epochs_decay": 10, "load_size": 32,
                  "crop_size": 32},
        "data": {"load_size": 32, "crop_size": 32, "size": 32, "n": 200},
        "train": {"steps": 3000, "batch_size": 1, "sample_every": 1000, "checkpoint_every": 1000,
                  "log_every": 250},
    },
    "dcgan": {
        "model": {"image_size": 32, "ngf": 32, "ndf": 32},
        "data": {"load_size": 32, "crop_size": 32, "size": 32, "n": 1024},
        "train": {"steps": 600, "batch_size": 32, "sample_every": 200, "checkpoint_every": 300,
                  "log_every": 50},
    },
    # Class-conditional DCGAN on the 3-class set (demo.make_classes): one grid row per class
    # (300 steps of this config: 94 % label agreement, measured).
    "dcgan_conditional": {
        "architecture": "dcgan",
        "model": {"image_size": 16, "ngf": 16, "ndf": 16, "nz": 32, "n_classes": 3},
        "data": {"load_size": 16, "crop_size": 16, "size": 16, "n": 128},
        "train": {"steps": 400, "batch_size": 32, "sample_every": 200, "checkpoint_every": 200,
                  "log_every": 50},
    },
    # StarGAN on the style set (demo.make_styles: photo, invert, sepia), scored per style
    # against ground truth; the config of tests/plugins/test_conditional_quality.py, trained
    # longer (400 steps: +10.2 and +5.1 dB over identity, measured).
    "stargan": {
        "model": {"ngf": 8, "ndf": 16, "n_layers_D": 2, "lr": 5e-4, "load_size": 16,
                  "crop_size": 16},
        "data": {"load_size": 16, "crop_size": 16, "size": 16, "n": 200, "flip": False,
                 "styles": 3},
        "train": {"steps": 600, "batch_size": 8, "sample_every": 200, "checkpoint_every": 300,
                  "log_every": 50},
    },
}


@dataclass
class DemoResult:
    run_dir: Path
    samples: list[Path]
    comparison: Path | None = None
    psnr_model: float | None = None
    psnr_identity: float | None = None
    extra: dict = field(default_factory=dict)


def side_by_side(rows: Sequence[Sequence[np.ndarray]], *, gap: int = 2) -> Image.Image:
    """A grid image from rows of HxWx3 uint8 arrays of equal size (white gaps)."""
    h, w = rows[0][0].shape[:2]
    ncols = max(len(r) for r in rows)
    canvas = np.full(((h + gap) * len(rows) - gap, (w + gap) * ncols - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            canvas[i * (h + gap): i * (h + gap) + h, j * (w + gap): j * (w + gap) + w] = img
    return Image.fromarray(canvas)


def run_demo(out_dir: str | Path, *, architecture: str = "cyclegan", steps: int | None = None,
             device: str = "cpu", precision: str = "fp32", seed: int = 0,
             callbacks: Sequence = (), export_onnx: bool = True,
             overwrite: bool = False) -> DemoResult:
    """Generate built-in data under ``out_dir/data``, train into ``out_dir/run``, evaluate.

    Returns the run directory, sample grids, and for CycleGAN a comparison PNG
    (input | translated | ground truth per held-out image) with PSNRs against ground truth.

    Raises:
        OutputExistsError: ``out_dir`` has outputs of an earlier demo and ``overwrite`` is
            False (nothing is written). With ``overwrite`` the data and result files are
            replaced and the earlier run is moved aside (``run.replaced-...``), not deleted.
    """
    import gantransfer
    from gantransfer.data import DataConfig
    from gantransfer.data import demo as demo_data
    from gantransfer.data.metrics import psnr
    from gantransfer.engine import TrainConfig, Trainer
    from gantransfer.inference.pipeline import save_image

    from ._outputs import select_outputs

    if architecture not in DEMO_CONFIGS:
        raise ValueError(f"the demo runs {', '.join(DEMO_CONFIGS)}, not {architecture!r}")
    cfg = DEMO_CONFIGS[architecture]
    out_dir = Path(out_dir)
    data_dir, run_dir = out_dir / "data", out_dir / "run"
    comparison = out_dir / "comparison.png"
    onnx_path = out_dir / ("demo_styles.onnx" if architecture == "stargan" else "demo_a2b.onnx")
    select_outputs([data_dir, run_dir, comparison, onnx_path],
                   existing="overwrite" if overwrite else "error", what="demo output")
    size = cfg["data"]["size"]
    train_dir = data_dir
    if architecture == "cyclegan":
        demo_data.make_two_domain(data_dir, n_train=cfg["data"]["n"], n_test=16, size=size, seed=seed)
    elif architecture == "stargan":
        demo_data.make_styles(data_dir, n_train=cfg["data"]["n"], n_test=16, size=size,
                              styles=cfg["data"]["styles"], seed=seed)
        train_dir = data_dir / "train"
    elif architecture == "dcgan_conditional":
        demo_data.make_classes(data_dir, n_per_class=cfg["data"]["n"], size=size, seed=seed)
    else:
        demo_data.make_single(data_dir, n=cfg["data"]["n"], size=size, seed=seed)
    log.info("built-in %s data written to %s", architecture, data_dir)

    model_config = dict(cfg["model"])
    if architecture in ("stargan", "dcgan_conditional"):  # labels = the class folders
        model_config["labels"] = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    model = gantransfer.get(cfg.get("architecture", architecture), seed=seed, **model_config)
    train = dict(cfg["train"], device=device, precision=precision, seed=seed)
    if steps is not None:
        train["steps"] = steps
        train["checkpoint_every"] = max(1, min(train["checkpoint_every"], steps))
        train["sample_every"] = max(1, min(train["sample_every"], steps))
    data = DataConfig(root=str(train_dir), load_size=cfg["data"]["load_size"],
                      crop_size=cfg["data"]["crop_size"], flip=cfg["data"].get("flip"))
    trainer = Trainer(model, data, TrainConfig(**train), run_dir, callbacks=list(callbacks))
    trainer.fit(overwrite=overwrite)
    samples = sorted((run_dir / "samples").glob("*.png"))
    result = DemoResult(run_dir=run_dir, samples=samples)
    if architecture == "stargan":
        _score_styles(result, data_dir / "test", comparison=comparison,
                      onnx_path=onnx_path if export_onnx else None)
        return result
    if architecture != "cyclegan":
        return result

    # Score held-out translation against ground truth (testB/x.png is testA/x.png restyled).
    trained = gantransfer.load(run_dir)
    rows, scores, baseline = [], [], []
    for path in sorted((data_dir / "testA").glob("*.png")):
        real_a = np.asarray(Image.open(path).convert("RGB"))
        truth = np.asarray(Image.open(data_dir / "testB" / path.name).convert("RGB"))
        fake_b = np.asarray(trained.translate(Image.fromarray(real_a), direction="a2b"))
        scores.append(psnr(fake_b, truth))
        baseline.append(psnr(real_a, truth))
        rows.append([real_a, fake_b, truth])
    grid = side_by_side(rows[:8])
    # Upscaled without smoothing so the small demo images are easy to inspect.
    save_image(grid.resize((grid.width * 4, grid.height * 4), Image.Resampling.NEAREST), comparison)
    result.comparison = comparison
    result.psnr_model = float(np.mean(scores))
    result.psnr_identity = float(np.mean(baseline))

    # Deployment path: export the A->B generator to a verified ONNX file and run it.
    if export_onnx:
        exported = gantransfer.export_onnx(trained, onnx_path, target="a2b")
        result.extra["onnx"] = exported[0].path
        result.extra["onnx_error"] = exported[0].worst_error
    return result


def _score_styles(result: DemoResult, test_dir: Path, *, comparison: Path,
                  onnx_path: Path | None) -> None:
    """StarGAN demo: every held-out photo translated into every style, scored against that
    style's ground truth (``test/<style>/x.png``) next to the identity baseline; a comparison
    PNG (photo, then translated | truth per style) and a verified ONNX file."""
    import gantransfer
    from gantransfer.data.metrics import psnr
    from gantransfer.inference.pipeline import save_image

    trained = gantransfer.load(result.run_dir)
    photos = sorted((test_dir / "photo").glob("*.png"))
    inputs = [np.asarray(Image.open(p).convert("RGB")) for p in photos]
    rows: list[list[np.ndarray]] = [[x] for x in inputs]
    per_style: dict[str, tuple[float, float]] = {}
    for style in trained.label_names or ():
        if style == "photo":
            continue
        truths = [np.asarray(Image.open(test_dir / style / p.name).convert("RGB")) for p in photos]
        fakes = [np.asarray(img) for img in trained.translate(
            [Image.fromarray(x) for x in inputs], style=style)]
        per_style[style] = (psnr(np.stack(fakes), np.stack(truths)),
                            psnr(np.stack(inputs), np.stack(truths)))
        for row, fake, truth in zip(rows, fakes, truths, strict=True):
            row += [fake, truth]
    grid = side_by_side(rows[:8])
    save_image(grid.resize((grid.width * 4, grid.height * 4), Image.Resampling.NEAREST), comparison)
    result.comparison = comparison
    result.extra["per_style"] = per_style
    result.psnr_model = float(np.mean([m for m, _ in per_style.values()]))
    result.psnr_identity = float(np.mean([i for _, i in per_style.values()]))
    if onnx_path is not None:
        exported = gantransfer.export_onnx(trained, onnx_path)
        result.extra["onnx"] = exported[0].path
        result.extra["onnx_error"] = exported[0].worst_error
