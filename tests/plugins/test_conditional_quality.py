"""Tests that judge the result: after a short CPU training on the procedural sets, the label is
really used.

* Class-conditional DCGAN on ``demo.make_classes`` (3 classes, 16 px): a classifier trained on
  *real* images (another draw of the set, never on samples) agrees with the requested label on
  >= 90 % of generated images; generating with the labels shuffled drops the agreement to chance.
* StarGAN on ``demo.make_styles`` (photo, invert, sepia; 16 px): for every style, held-out
  photos translated into it beat the identity baseline against that style's ground truth by a
  clear margin, and translating into any other style scores clearly worse than the right one.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import gantransfer
from gantransfer.data import DataConfig, build_dataset
from gantransfer.data import demo as demo_data
from gantransfer.data.metrics import psnr
from gantransfer.engine import TrainConfig, Trainer

SIZE = 16


def _train(model, root, *, steps: int, batch_size: int, run_dir) -> float:
    config = TrainConfig(steps=steps, batch_size=batch_size, device="cpu", seed=0,
                         log_every=50, sample_every=0, checkpoint_every=0, num_workers=0)
    start = time.perf_counter()
    Trainer(model, DataConfig(root=str(root), load_size=SIZE, crop_size=SIZE, flip=False),
            config, run_dir, callbacks=()).fit()
    return time.perf_counter() - start


def _classifier(root) -> nn.Module:
    """A small CNN trained on real labelled images only."""
    ds = build_dataset("labelled", DataConfig(root=str(root), load_size=SIZE, crop_size=SIZE,
                                              flip=False))
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    y = torch.tensor(ds.labels)
    torch.manual_seed(1)
    clf = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 3))
    opt = torch.optim.Adam(clf.parameters(), lr=1e-2)
    for _ in range(150):
        idx = torch.randint(0, len(x), (64,))
        loss = nn.functional.cross_entropy(clf(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert (clf(x).argmax(1) == y).float().mean() > 0.98, "the real classes are separable"
    return clf.eval()


@pytest.mark.slow
def test_conditional_dcgan_draws_the_requested_class(tmp_path):
    data = demo_data.make_classes(tmp_path / "train", n_per_class=128, size=SIZE, classes=3)
    clf = _classifier(demo_data.make_classes(tmp_path / "real", n_per_class=64, size=SIZE,
                                             classes=3, seed=1))
    torch.manual_seed(0)
    names = sorted(p.name for p in data.iterdir())
    model = gantransfer.get("dcgan", image_size=SIZE, ngf=16, ndf=16, nz=32, labels=names)
    seconds = _train(model, data, steps=300, batch_size=32, run_dir=tmp_path / "run")
    labels = torch.arange(3).repeat_interleave(64)
    with torch.no_grad():
        asked = clf(model.generate(len(labels), label=labels,
                                   generator=torch.Generator().manual_seed(5))).argmax(1)
        shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
        other = clf(model.generate(len(labels), label=shuffled,
                                   generator=torch.Generator().manual_seed(5))).argmax(1)
    agreement = (asked == labels).float().mean().item()
    chance = (other == labels).float().mean().item()
    print(f"conditional DCGAN: agreement {agreement:.3f}, with shuffled labels {chance:.3f}, "
          f"trained in {seconds:.0f} s")
    assert agreement >= 0.9
    assert chance <= 0.5  # chance is 1/3


def _images(folder) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB"))
                     for p in sorted(folder.glob("*.png"))])


@pytest.mark.slow
def test_stargan_translates_into_every_style_and_the_style_matters(tmp_path):
    root = demo_data.make_styles(tmp_path / "data", n_train=200, n_test=16, size=SIZE, styles=3)
    styles = sorted(p.name for p in (root / "train").iterdir())  # invert, photo, sepia
    torch.manual_seed(0)
    model = gantransfer.get("stargan", labels=styles, ngf=8, ndf=16, n_layers_D=2, lr=5e-4,
                            load_size=SIZE, crop_size=SIZE)
    seconds = _train(model, root / "train", steps=400, batch_size=8, run_dir=tmp_path / "run")
    photos = _images(root / "test" / "photo")
    translated = {s: np.stack(model.translate(list(photos), style=s)) for s in styles}
    report = []
    for target in (s for s in styles if s != "photo"):
        truth = _images(root / "test" / target)
        identity = psnr(photos, truth)
        scores = {s: psnr(translated[s], truth) for s in styles}
        report.append(f"{target}: right {scores[target]:.2f} dB, identity {identity:.2f} dB, "
                      + ", ".join(f"as {s} {v:.2f}" for s, v in scores.items() if s != target))
        assert scores[target] >= identity + 4.0, report[-1]
        wrong = max(v for s, v in scores.items() if s != target)
        assert scores[target] >= wrong + 2.0, report[-1]
    print(f"StarGAN ({seconds:.0f} s):", "; ".join(report))
