"""The public conformance suite (gantransfer.testing) over every registered architecture.

Built-ins and installed plugins (the pix2pix example) get exactly the checks a third-party
author runs; unknown architectures run with their defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from _toy import ToyGAN
from torch import Tensor

import gantransfer
from gantransfer.testing import (
    CHECKS,
    Check,
    check_augmented_discriminator,
    check_exact_resume,
    check_train_steps,
)

# Overrides that keep each known architecture tiny enough for a CPU test.
TINY: dict[str, dict[str, object]] = {
    "dcgan": {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8},
    "cyclegan": {"netG": "resnet_6blocks", "ngf": 4, "ndf": 4, "n_layers_D": 2,
                 "load_size": 16, "crop_size": 16},
    "pix2pix": {"netG": "resnet_6blocks", "ngf": 4, "ndf": 4, "n_layers_D": 2,
                 "load_size": 16, "crop_size": 16},
    "stargan": {"labels": ["a", "b"], "ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 16,
                "crop_size": 16},
}

ARCHITECTURES = gantransfer.list()


def test_every_known_builtin_is_registered() -> None:
    # The parametrization below would silently shrink if a plugin failed to register.
    assert {"dcgan", "cyclegan"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_conformance(name: str, check: Check, tmp_path: Path) -> None:
    check(name, TINY.get(name, {}), tmp_path)


class _ForgetfulToy(ToyGAN):
    """Keeps a step counter outside get_extra_state, so a resumed run forgets it."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.calls = 0

    def train_step(self, batch: dict[str, Tensor], ctx: Any) -> dict[str, Any]:
        self.calls += 1
        # The real images shift with the forgotten counter: after a restart they are wrong.
        return super().train_step({"image": batch["image"] * 0.5 + 0.1 * self.calls}, ctx)

    def data_defaults(self) -> dict[str, Any]:
        return {"preprocess": "resize_and_crop", "load_size": 8, "crop_size": 8, "flip": False}


def test_exact_resume_check_catches_state_outside_the_checkpoint(tmp_path: Path) -> None:
    gantransfer.register("forgetful_toy", _ForgetfulToy)
    try:
        check_train_steps("forgetful_toy", {}, tmp_path / "a")  # an honest model otherwise
        with pytest.raises(AssertionError, match="differs"):
            check_exact_resume("forgetful_toy", {}, tmp_path / "b")
    finally:
        gantransfer.unregister("forgetful_toy")


def test_augmentation_check_catches_a_discriminator_called_directly(tmp_path: Path) -> None:
    # ToyGAN calls self.nets["d"](x) itself, so the engine's augmentation never reaches it.
    gantransfer.register("direct_d_toy", _ForgetfulToy)
    try:
        with pytest.raises(AssertionError, match=r"ctx\.discriminate"):
            check_augmented_discriminator("direct_d_toy", {}, tmp_path)
    finally:
        gantransfer.unregister("direct_d_toy")


class _UnmarkedToy(_ForgetfulToy):
    """Calls D through ctx.discriminate (so d_augment reaches it) but never marks the real batch,
    so adaptive augmentation has nothing to measure."""

    def train_step(self, batch: dict[str, Tensor], ctx: Any) -> dict[str, Any]:
        real, d = batch["image"], self.nets["d"]
        z = torch.randn(real.shape[0], self.config.nz)
        fake = self.nets["g"](z)
        real_logits, fake_logits = ctx.discriminate(d, real, fake.detach())
        ctx.optimize("d", F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean())
        with ctx.frozen("d"):
            (gen_logits,) = ctx.discriminate(d, fake)
            ctx.optimize("g", F.softplus(-gen_logits).mean())
        return {}


def test_augmentation_check_asks_for_the_real_batch_mark(tmp_path: Path) -> None:
    gantransfer.register("unmarked_toy", _UnmarkedToy)
    try:
        with pytest.raises(AssertionError, match=r"unmarked_toy.*real=0"):
            check_augmented_discriminator("unmarked_toy", {}, tmp_path)
    finally:
        gantransfer.unregister("unmarked_toy")
