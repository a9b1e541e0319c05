"""End to end: a tiny CycleGAN learns the built-in two-domain demo task through the Trainer.

The demo's B domain is a pointwise restyle of A (invert, swap red/green, contrast curve), and
``testB/x.png`` is the exact translation of ``testA/x.png``, so held-out PSNR measures learning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gantransfer
from gantransfer.data.demo import make_two_domain
from gantransfer.data.metrics import psnr

# The small config that learns the demo quickly (also the one suggested for `gtx demo`).
DEMO_CONFIG = dict(netG="resnet_6blocks", ngf=8, ndf=8, load_size=32, crop_size=32,
                   lambda_identity=0.0, lr=5e-4, n_epochs=1000, n_epochs_decay=0)
STEPS = 250


def _load_folder(folder: Path) -> torch.Tensor:
    images = [np.array(Image.open(f).convert("RGB")) for f in sorted(folder.glob("*.png"))]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.mark.slow
def test_tiny_cyclegan_beats_identity_on_held_out_demo_pairs(tmp_path):
    data = make_two_domain(tmp_path / "data", n_train=64, n_test=8, size=32, seed=0)
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", **DEMO_CONFIG)
    config = gantransfer.TrainConfig(steps=STEPS, batch_size=1, device="cpu", seed=0,
                                     log_every=25, sample_every=0, checkpoint_every=0,
                                     num_workers=0)
    run = tmp_path / "run"
    gantransfer.Trainer(model, gantransfer.DataConfig(root=data), config, run).fit()

    test_a, test_b = _load_folder(data / "testA"), _load_folder(data / "testB")
    model.eval()
    with torch.no_grad():
        fake_b = model.nets["g_ab"](test_a)
        fake_a = model.nets["g_ba"](test_b)
    baseline = psnr(test_a, test_b)  # "translation" that does nothing
    assert psnr(fake_b, test_b) >= baseline + 3.0
    assert psnr(fake_a, test_a) >= baseline + 3.0

    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first, last = lines[0]["losses"], lines[-1]["losses"]
    assert last["loss_cycle_A"] < first["loss_cycle_A"]
    assert last["loss_cycle_B"] < first["loss_cycle_B"]

    # the trained run reloads from its checkpoint alone and gives the same translation
    reloaded = gantransfer.load(run)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.nets["g_ab"](test_a), fake_b)
