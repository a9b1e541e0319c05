"""unet_32: the U-Net for 32 px images (the demo's generator)."""

from __future__ import annotations

import torch

import gantransfer
from gantransfer.nn import size_contract


def test_unet_32_maps_32px_images_and_declares_its_size_rule() -> None:
    g = gantransfer.get_network("unet_32", ngf=4)
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0  # Tanh output
    rule = size_contract(g)
    assert rule is not None and (rule.divisor, rule.min_size) == (32, 32)
    assert rule.accepts(32) and rule.accepts(64) and not rule.accepts(48)
    assert rule.problem(16, 32) is not None
