"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN.

Nets: ``g`` maps an input image (folder A) to an output image (folder B); ``d`` is a conditional
PatchGAN that judges the pair ``cat([input, output], dim=1)`` (Sec. 2.1: D observes the input).
Both come from gantransfer's network registry by name, so this package imports nothing but
gantransfer's public API.

Losses (Eq. 4): G minimises BCE(D(a, G(a)), real) + λ·‖b − G(a)‖₁ with λ = 100; D minimises
0.5·(BCE(D(a, b), real) + BCE(D(a, G(a)), fake)) (Sec. 3.3 halves D's objective).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import gantransfer
from gantransfer.model import ExportSpec, GANModel, StepContext
from gantransfer.nn import linear_decay_schedulers

from .config import Pix2PixConfig

__all__ = ["Pix2Pix"]


class Pix2Pix(GANModel):
    """pix2pix: U-Net generator, conditional PatchGAN, vanilla GAN loss + λ·L1 (paired data)."""

    Config = Pix2PixConfig
    data_kind = "paired"

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__(config)
        c = config
        self.nets["g"] = gantransfer.build_network(
            c.netG, optional={"ngf": c.ngf, "norm": c.norm, "dropout": c.dropout,
                              "init": c.init, "init_gain": c.init_gain,
                              "image_size": c.crop_size},
            in_channels=c.in_channels, out_channels=c.out_channels)
        # Conditional D: it sees the input and the (real or generated) output side by side.
        self.nets["d"] = gantransfer.build_network(
            c.discriminator, optional={"ndf": c.ndf, "n_layers": c.n_layers_D, "norm": c.norm,
                                       "init": c.init, "init_gain": c.init_gain,
                                       "image_size": c.crop_size},
            overrides=c.discriminator_kwargs, in_channels=c.in_channels + c.out_channels)

    # -- optimisation (Adam with the config's lr and betas: GANModel's default) ---------------
    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"g": ["g"], "d": ["d"]}

    def make_schedulers(self, optimizers: dict[str, torch.optim.Optimizer], *,
                        steps_per_epoch: int) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        """Constant LR for ``n_epochs`` epochs, then linear decay per iteration to 0 after
        ``n_epochs_decay`` more (the official code decays once per epoch)."""
        c = self.config
        return linear_decay_schedulers(optimizers, steps_per_epoch=steps_per_epoch,
                                       n_epochs=c.n_epochs, n_epochs_decay=c.n_epochs_decay)

    def train_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """One iteration in the official order: D on real and fake pairs, then G with D frozen."""
        c = self.config
        real_a, real_b = batch["A"], batch["B"]
        g, d = self.nets["g"], self.nets["d"]
        # D sees (input, output) stacked along the channels: an engine augmentation moves both
        # parts together and colours each part as one image.
        pairs = (real_a.shape[1], real_b.shape[1])
        with ctx.autocast():
            fake_b = g(real_a)
        # 1. Discriminator on real and fake pairs (Sec. 2.1: D observes the input). The fake is
        # detached: D's loss must not reach G's graph, which the G step reuses below.
        # ctx.discriminate keeps the two batches in separate forwards when D has BatchNorm (the
        # default), so the fake pairs get the same logits here as in the G step.
        with ctx.autocast():
            real_pair = torch.cat([real_a, real_b], 1)
            fake_pair = torch.cat([real_a, fake_b.detach().to(real_a.dtype)], 1)
            real_logits, fake_logits = ctx.discriminate(d, real_pair, fake_pair,
                                                        channel_groups=pairs, real=0)
            loss_d_real = _bce(real_logits.float(), True)
            loss_d_fake = _bce(fake_logits.float(), False)
            loss_d = 0.5 * (loss_d_real + loss_d_fake)
        ctx.optimize("d", loss_d)

        # 2. Generator: fool the (just updated, now frozen) D and stay close to the target.
        with ctx.frozen("d"), ctx.autocast():
            (pred_fake,) = ctx.discriminate(d, torch.cat([real_a, fake_b.to(real_a.dtype)], 1),
                                            channel_groups=pairs)
            loss_g_gan = _bce(pred_fake.float(), True)
            loss_g_l1 = F.l1_loss(fake_b.float(), real_b.float()) * c.lambda_L1
            loss_g = loss_g_gan + loss_g_l1
        ctx.optimize("g", loss_g)

        logs = {"loss_G": loss_g, "loss_G_GAN": loss_g_gan, "loss_G_L1": loss_g_l1,
                "loss_D": loss_d, "loss_D_real": loss_d_real, "loss_D_fake": loss_d_fake}
        return {k: float(v.detach()) for k, v in logs.items()}

    # -- inference ----------------------------------------------------------------------------
    def sample(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Rows real_A (input), fake_B (translation) and real_B (target)."""
        return {"real_A": inputs["A"], "fake_B": self.nets["g"](inputs["A"]),
                "real_B": inputs["B"]}

    def export_targets(self) -> dict[str, ExportSpec]:
        """``a2b``: the generator. Size rules come from it (U-Net 256: multiples of 256)."""
        c = self.config
        return {"a2b": self.image_target(
            "g", in_channels=c.in_channels, out_channels=c.out_channels, direction="a2b",
            description="pix2pix generator, input (A) to output (B)")}

    def data_defaults(self) -> dict[str, Any]:
        c = self.config
        return {"channels": c.in_channels, "channels_b": c.out_channels,
                "preprocess": "resize_and_crop", "load_size": c.load_size,
                "crop_size": c.crop_size, "flip": True}


def _bce(logits: Tensor, real: bool) -> Tensor:
    """Vanilla GAN loss: BCE with logits against an all-real or all-fake target map."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)
