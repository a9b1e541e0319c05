"""Tiny models and checkpoints for the reliability tests of issue 12 (not a test module)."""

from __future__ import annotations

from pathlib import Path

import torch

import gantransfer
from gantransfer.config import to_plain
from gantransfer.engine.checkpoint import save_checkpoint


def tiny_cyclegan(seed: int = 0) -> gantransfer.GANModel:
    """A CycleGAN with 4 filters and 6 resnet blocks: real layers, milliseconds per image."""
    torch.manual_seed(seed)
    return gantransfer.get("cyclegan", ngf=4, ndf=4, netG="resnet_6blocks")


def save_model(model: gantransfer.GANModel, path: Path, *, name: str = "cyclegan") -> Path:
    """``model`` as a gantransfer checkpoint at ``path`` (step 0, no EMA)."""
    save_checkpoint({"architecture": name, "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0}, path)
    return path
