"""DCGAN (Radford et al. 2015): image generation from N(0, I) noise, unconditional or
class-conditional (``n_classes > 0``: the generator takes noise and a label, the discriminator an
image and a label; see docs/dcgan.md).

The recipe is that of pytorch/examples/dcgan: Adam (lr 2e-4, β1 0.5), BCE on raw logits,
alternating one discriminator and one generator update per batch, non-saturating generator loss.
The discriminator is any registered network (``discriminator="vgg16"`` swaps in a pretrained
VGG feature stack); its output may be one logit per image or a patch map of logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

import gantransfer
from gantransfer.config import field
from gantransfer.factory import network_arguments
from gantransfer.model import ExportSpec, GANModel, StepContext
from gantransfer.nn import (
    GAN_MODES,
    ConcatLabels,
    GANLoss,
    accepts_labels,
    gradient_penalty,
    spectral_norm,
)

from .networks import G_CONDITIONINGS, IMAGE_SIZES, DCGANGenerator, check_image_size

D_CONDITIONINGS = ("projection", "concat")

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
    gan_mode: str = field(
        "vanilla", help="adversarial loss: vanilla (BCE, the paper's), lsgan, hinge, wgangp "
        "(Wasserstein + gradient penalty)", choices=GAN_MODES,
    )
    lambda_gp: float = field(10.0, help="gradient-penalty weight (gan_mode=wgangp)")
    real_label: float = field(
        1.0, help="target for real images in the D loss; 0.9 gives one-sided label smoothing"
    )
    # Class-conditional DCGAN (labelled data, DIR/<label>/*.png): docs/dcgan.md.
    n_classes: int = field(0, help="classes of a class-conditional DCGAN (0: unconditional); "
                                   "gtx train takes them from the labelled data folder")
    labels: list[str] = field(  # noqa: RUF009
        default_factory=list, help="class names, index = label (default: from the data, or "
                                   "0..n_classes-1)")
    g_conditioning: str = field(
        "concat", help="how G takes the label: concat (one-hot next to z, the tutorial's) or "
                       "embedding (a learned embedding multiplies z, AC-GAN's)",
        choices=G_CONDITIONINGS)
    d_conditioning: str = field(
        "projection", help="how D takes the label: projection (Miyato & Koyama 2018; D must "
                           "accept labels) or concat (one-hot planes as extra input channels, "
                           "any D)", choices=D_CONDITIONINGS)
    fake_label: float = field(0.0, help="target for fake images in the D loss (vanilla/lsgan)")
    label_noise: float = field(
        0.0, help="D's targets drawn per logit: real U(real_label - noise, real_label), fake "
        "U(fake_label, fake_label + noise); 0.1 = the tutorial's U(0.9, 1) and U(0, 0.1)",
    )
    d_dropout: float = field(
        0.0, help="dropout after each discriminator activation (the tutorial's 0.3; needs a "
        "discriminator that accepts dropout, e.g. dcgan_discriminator)",
    )
    d_spectral_norm: bool = field(
        False, help="spectral normalisation on the discriminator's conv/linear layers"
    )

    def __post_init__(self) -> None:
        check_image_size(self.image_size)
        if isinstance(self.labels, str):  # --set labels=a,b
            self.labels = [n.strip() for n in self.labels.split(",") if n.strip()]
        self.labels = [str(n) for n in self.labels]
        if not isinstance(self.n_classes, int) or self.n_classes < 0:
            raise ValueError(f"DCGAN n_classes must be an integer >= 0; got {self.n_classes!r}")
        if self.labels and not self.n_classes:
            self.n_classes = len(self.labels)
        if self.n_classes and not self.labels:
            self.labels = [str(k) for k in range(self.n_classes)]
        if len(self.labels) != self.n_classes:
            raise ValueError(f"DCGAN has {self.n_classes} classes but {len(self.labels)} label "
                             f"names ({', '.join(self.labels)}); give one name per class")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"DCGAN label names must be distinct; got {', '.join(self.labels)}")
        if self.n_classes == 1:
            raise ValueError("a class-conditional DCGAN needs at least 2 classes (n_classes=0 "
                             "trains an unconditional one)")
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
        if self.lambda_gp < 0:
            raise ValueError(f"DCGAN lambda_gp must be >= 0; got {self.lambda_gp!r}")
        if not 0.0 <= self.d_dropout < 1.0:
            raise ValueError(f"DCGAN d_dropout must be in [0, 1); got {self.d_dropout!r}")
        # Label ranges and modes without targets are checked where the loss is defined.
        GANLoss(self.gan_mode, real_label=self.real_label, fake_label=self.fake_label,
                label_noise=self.label_noise)
        if not isinstance(self.discriminator_kwargs, dict):
            raise TypeError(
                "DCGAN discriminator_kwargs must be a dict of keyword arguments; got "
                f"{type(self.discriminator_kwargs).__name__}"
            )




class DCGAN(GANModel):
    """DCGAN (Radford et al. 2015): noise -> images, with a pluggable discriminator."""

    Config = DCGANConfig
    data_kind = "single"

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__(config)
        c = config
        # Labelled batches ({"image", "label"}) for a class-conditional model.
        self.data_kind = "labelled" if c.n_classes else "single"  # type: ignore[misc]
        self.nets["g"] = DCGANGenerator(
            image_size=c.image_size, nz=c.nz, ngf=c.ngf, out_channels=c.channels,
            n_classes=c.n_classes, conditioning=c.g_conditioning,
        )
        self.nets["d"] = self._discriminator(c)
        if c.d_spectral_norm:
            spectral_norm(self.nets["d"])
        self.gan_loss = GANLoss(c.gan_mode, real_label=c.real_label, fake_label=c.fake_label,
                                label_noise=c.label_noise)

    @staticmethod
    def _discriminator(c: DCGANConfig) -> torch.nn.Module:
        """The registered discriminator, conditional when ``n_classes`` (projection: built with
        ``n_classes``, it must declare ``accepts_labels``; concat: any D, wrapped)."""
        concat = c.n_classes and c.d_conditioning == "concat"
        overrides = dict(c.discriminator_kwargs)
        if c.d_dropout > 0:
            accepted = {f.name for f in gantransfer.spec(c.discriminator, kind="network").fields}
            if "dropout" not in accepted:
                raise ValueError(f"DCGAN d_dropout needs a discriminator with a dropout "
                                 f"argument; {c.discriminator!r} has none (use "
                                 "dcgan_discriminator or set d_dropout=0)")
            overrides.setdefault("dropout", c.d_dropout)
        # The image format goes to any discriminator that takes it; the user's kwargs win.
        kwargs = network_arguments(
            c.discriminator, optional={"in_channels": c.channels + (c.n_classes if concat else 0),
                                       "image_size": c.image_size, "ndf": c.ndf},
            overrides=overrides)
        if concat:
            return ConcatLabels(gantransfer.get_network(c.discriminator, **kwargs), c.n_classes)
        if c.n_classes:
            accepted = {f.name for f in gantransfer.spec(c.discriminator, kind="network").fields}
            if "n_classes" in accepted:
                kwargs = {"n_classes": c.n_classes, **kwargs}
            net = gantransfer.get_network(c.discriminator, **kwargs)
            if not accepts_labels(net):
                raise ValueError(
                    f"discriminator {c.discriminator!r} does not accept labels, so it cannot be "
                    "a projection discriminator; use --set d_conditioning=concat (one-hot "
                    "planes, any D) or a D that does (dcgan_discriminator, vgg16, vgg19)")
            return net
        return gantransfer.get_network(c.discriminator, **kwargs)

    # -- optimisation (Adam with the config's lr and betas: GANModel's default) -------------
    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"g": ["g"], "d": ["d"]}

    def train_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """One D update then one G update (pytorch/examples order).

        D: ``L_D = L(D(x), real) + L(D(G(z)), fake)`` with the loss of ``gan_mode`` (BCE by
        default; D's targets smoothed/noisy as configured), plus the gradient penalty for
        ``wgangp``. The real and the fake batch are judged
        through ``ctx.discriminate``, which keeps them in separate forwards whenever D has
        BatchNorm (the default D does): a fakes-only batch must get the same logits in the G step
        as in the D step, or G trains against a function D never learned (DCGAN's "each batch all
        real or all fake").
        G: non-saturating ``L_G = L(D(G(z)), real)`` (Goodfellow et al. 2014, §3), with D
        frozen.
        """
        real = batch["image"]
        n = real.shape[0]
        g, d = self.nets["g"], self.nets["d"]
        z = torch.randn(n, self.config.nz, device=ctx.device)
        # Class-conditional: the fakes are drawn for the real batch's labels, and D judges each
        # image together with its label (real and fake batches still judged apart).
        y = batch["label"] if self.config.n_classes else None
        g_in = (z,) if y is None else (z, y)

        def judged(images: Tensor) -> Any:
            return images if y is None else (images, y)

        with ctx.autocast():
            fake = g(*g_in)
            real_logits, fake_logits = ctx.discriminate(d, judged(real), judged(fake.detach()),
                                                        real=0, threshold=self.gan_loss.threshold)
            loss_d = (self.gan_loss(real_logits, True, discriminator=True)
                      + self.gan_loss(fake_logits, False, discriminator=True))
        if self.config.gan_mode == "wgangp":
            loss_d = loss_d + gradient_penalty(d, real, fake, weight=self.config.lambda_gp,
                                               extra=() if y is None else (y,))
        ctx.optimize("d", loss_d)

        with ctx.frozen("d"):
            with ctx.autocast():
                (gen_logits,) = ctx.discriminate(d, judged(fake))
                loss_g = self.gan_loss(gen_logits, True)
            ctx.optimize("g", loss_g)

        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }

    # -- sampling and export -------------------------------------------------------------------
    def sample_inputs(self, batch: dict[str, Tensor], *, n: int,
                      generator: torch.Generator) -> Any:
        """Fixed noise ``n×nz`` drawn from ``generator`` (same images in every grid of a run);
        class-conditional: ``{"z", "labels"}``, the same ``n`` noise rows for every class."""
        z = torch.randn(n, self.config.nz, generator=generator,
                        device=getattr(generator, "device", None) or "cpu")
        k = self.config.n_classes
        if not k:
            return z
        return {"z": z.repeat(k, 1), "labels": torch.arange(k).repeat_interleave(n)}

    def sample(self, inputs: Any) -> dict[str, Tensor]:
        """One row of generated images, or one row per class (named by the class)."""
        g = self.nets["g"]
        if not self.config.n_classes:
            return {"generated": g(inputs.to(self.device))}
        images = g(inputs["z"].to(self.device), inputs["labels"].to(self.device))
        n = len(images) // self.config.n_classes
        return {name: images[k * n : (k + 1) * n] for k, name in enumerate(self.config.labels)}

    def export_targets(self) -> dict[str, ExportSpec]:
        c = self.config
        return {
            "generator": ExportSpec(
                net="g", input="latent", latent_dim=c.nz, image_size=c.image_size,
                out_channels=c.channels, labels=tuple(c.labels) if c.n_classes else None,
                description="DCGAN generator: N×nz noise -> images" + (
                    " of the class given by the label input" if c.n_classes else ""),
            )
        }

    def data_defaults(self) -> dict[str, Any]:
        # The DCGAN convention (torchvision Resize + CenterCrop): the shorter side to image_size,
        # then the centred square. Square images are simply resized; non-square ones keep their
        # proportions (resize_and_crop, the default before, squashed them to a square).
        size = self.config.image_size
        return {"channels": self.config.channels, "preprocess": "center_crop",
                "load_size": size, "crop_size": size, "flip": False}
