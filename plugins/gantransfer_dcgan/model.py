"""DCGAN (Radford et al. 2015): unconditional image generation from N(0, I) noise.

The recipe is that of pytorch/examples/dcgan: Adam (lr 2e-4, β1 0.5), BCE on raw logits,
alternating one discriminator and one generator update per batch, non-saturating generator loss.
The discriminator is any registered network (``discriminator="vgg16"`` swaps in a pretrained
VGG feature stack); its output may be one logit per image or a patch map of logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import gantransfer
from gantransfer.config import field
from gantransfer.model import ExportSpec, GANModel, StepContext

from .networks import IMAGE_SIZES, DCGANGenerator, check_image_size

__all__ = ["DCGAN", "DCGANConfig"]


@dataclass(kw_only=True)
class DCGANConfig:
    """Hyperparameters of :class:`DCGAN` (defaults: Radford et al. 2015 / pytorch/examples)."""

    image_size: int = field(
        64, help="output image side in pixels; a power of two from 16 to 256", choices=IMAGE_SIZES
    )
    channels: int = field(3, help="image channels: 1 (grayscale) or 3 (RGB)", choices=(1, 3))
    nz: int = field(100, help="latent size (paper's z dimension)")
    ngf: int = field(64, help="generator base width (channels of its last hidden layer)")
    ndf: int = field(64, help="discriminator base width (passed when the network accepts ndf)")
    lr: float = field(2e-4, help="Adam learning rate for both networks")
    beta1: float = field(0.5, help="Adam β1 (momentum); the paper lowers it from 0.9 to 0.5")
    beta2: float = field(0.999, help="Adam β2")
    discriminator: str = field(
        "dcgan_discriminator", help="registered network used as discriminator (e.g. vgg16)"
    )
    # gantransfer.config.field returns a dataclasses.field, which ruff cannot see.
    discriminator_kwargs: dict = field(  # noqa: RUF009
        default_factory=dict,
        help="extra keyword arguments for the discriminator factory; they override the "
             "in_channels/image_size/ndf the model passes",
    )
    real_label: float = field(
        1.0, help="target for real images in the D loss; 0.9 gives one-sided label smoothing"
    )

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if self.channels not in (1, 3):
            raise ValueError(f"DCGAN channels must be 1 or 3; got {self.channels!r}")
        for name in ("nz", "ngf", "ndf"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DCGAN {name} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"DCGAN lr must be > 0; got {self.lr!r}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"DCGAN {name} must be in [0, 1); got {value!r}")
        if not 0.0 < self.real_label <= 1.0:
            raise ValueError(f"DCGAN real_label must be in (0, 1]; got {self.real_label!r}")
        if not isinstance(self.discriminator_kwargs, dict):
            raise TypeError(
                "DCGAN discriminator_kwargs must be a dict of keyword arguments; got "
                f"{type(self.discriminator_kwargs).__name__}"
            )


def _bce(logits: Tensor, target: float) -> Tensor:
    # BCE with logits on every element (one logit per image or a patch map), in fp32 for
    # stability under autocast.
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class DCGAN(GANModel):
    """DCGAN (Radford et al. 2015): noise -> images, with a pluggable discriminator."""

    Config = DCGANConfig
    data_kind = "single"

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        c = config
        self.nets["g"] = DCGANGenerator(
            image_size=c.image_size, nz=c.nz, ngf=c.ngf, out_channels=c.channels
        )
        # The image format goes to any discriminator that takes it; the user's kwargs win.
        self.nets["d"] = gantransfer.build_network(
            c.discriminator, optional={"in_channels": c.channels, "image_size": c.image_size,
                                       "ndf": c.ndf}, overrides=c.discriminator_kwargs)

    # -- optimisation (Adam with the config's lr and betas: GANModel's default) -------------
    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"g": ["g"], "d": ["d"]}

    def train_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """One D update then one G update (pytorch/examples order).

        D: ``L_D = BCE(D(x), y_real) + BCE(D(G(z)), 0)``. The real and the fake batch are judged
        through ``ctx.discriminate``, which keeps them in separate forwards whenever D has
        BatchNorm (the default D does): a fakes-only batch must get the same logits in the G step
        as in the D step, or G trains against a function D never learned (DCGAN's "each batch all
        real or all fake").
        G: non-saturating ``L_G = BCE(D(G(z)), 1)`` (Goodfellow et al. 2014, §3), with D frozen.
        """
        real = batch["image"]
        n = real.shape[0]
        g, d = self.nets["g"], self.nets["d"]
        z = torch.randn(n, self.config.nz, device=ctx.device)

        with ctx.autocast():
            fake = g(z)
            real_logits, fake_logits = ctx.discriminate(d, real, fake.detach())
            loss_d = _bce(real_logits, self.config.real_label) + _bce(fake_logits, 0.0)
        ctx.optimize("d", loss_d)

        with ctx.frozen("d"):
            with ctx.autocast():
                (gen_logits,) = ctx.discriminate(d, fake)
                loss_g = _bce(gen_logits, 1.0)
            ctx.optimize("g", loss_g)

        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }

    # -- sampling and export -------------------------------------------------------------------
    def sample_inputs(self, batch: dict[str, Tensor], *, n: int,
                      generator: torch.Generator) -> Tensor:
        """Fixed noise ``n×nz`` drawn from ``generator`` (same images in every grid of a run)."""
        return torch.randn(n, self.config.nz, generator=generator,
                           device=getattr(generator, "device", None) or "cpu")

    def sample(self, inputs: Tensor) -> dict[str, Tensor]:
        return {"generated": self.nets["g"](inputs.to(self.device))}

    def export_targets(self) -> dict[str, ExportSpec]:
        c = self.config
        return {
            "generator": ExportSpec(
                net="g", input="latent", latent_dim=c.nz, image_size=c.image_size,
                out_channels=c.channels, description="DCGAN generator: N×nz noise -> images",
            )
        }

    def data_defaults(self) -> dict[str, Any]:
        # The DCGAN convention (torchvision Resize + CenterCrop): the shorter side to image_size,
        # then the centred square. Square images are simply resized; non-square ones keep their
        # proportions (resize_and_crop, the default before, squashed them to a square).
        size = self.config.image_size
        return {"channels": self.config.channels, "preprocess": "center_crop",
                "load_size": size, "crop_size": size, "flip": False}
