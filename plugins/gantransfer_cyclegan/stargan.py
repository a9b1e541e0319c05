"""StarGAN (Choi et al. 2018): one generator translating images into any of N styles.

``G(x, s)`` maps an image to target style ``s``. The style enters every norm layer as a
per-style scale and shift (conditional instance normalisation, Dumoulin et al. 2017: the
tutorial's ``Embedding(n_styles, ...)`` that multiplies and shifts features, done at every
layer), or, as in the StarGAN paper, as tiled one-hot channels next to the image
(``style_input="onehot"``). The generator is a registered one (``resnet_6blocks``...) built
with a conditional norm: the CycleGAN networks' blocks, not a copy. The discriminator has an
adversarial output ``D_src`` and an auxiliary style classifier ``D_cls``.

Losses (paper's equation numbers), with ``c`` the source style of ``x`` and ``c'`` a target:

* Eq. 1, adversarial: least squares (Mao et al. 2017, as our CycleGAN) by default; the paper's
  WGAN-GP is ``gan_mode="wgangp"``.
* Eq. 2, ``L_cls^r = E[-log D_cls(c | x)]``: D learns to classify real images' styles.
* Eq. 3, ``L_cls^f = E[-log D_cls(c' | G(x, c'))]``: G makes images D classifies as ``c'``.
* Eq. 4, ``L_rec = E[||x - G(G(x, c'), c)||_1]``: translating back restores the input.
* Eq. 5, ``L_D = -L_adv + λ_cls L_cls^r``; Eq. 6, ``L_G = L_adv + λ_cls L_cls^f + λ_rec L_rec``
  (λ_cls = 1, λ_rec = 10 as in the paper). An optional identity term ``λ_id ||G(x, c) - x||_1``
  (CycleGAN's, not in the paper) keeps colours of the source style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import gantransfer
from gantransfer.config import check_tables, field
from gantransfer.model import ExportSpec, GANModel, StepContext
from gantransfer.nn import INITS, ConcatLabels, accepts_labels, size_contract

from .losses import GAN_MODES, GANLoss, gradient_penalty

__all__ = ["STYLE_INPUTS", "StarGAN", "StarGANConfig"]

STYLE_INPUTS = ("cin", "onehot")


@dataclass(kw_only=True)
class StarGANConfig:
    """Hyperparameters of :class:`StarGAN` (defaults: Choi et al. 2018 where they apply)."""

    labels: list[str] = field(  # noqa: RUF009  (a default_factory field)
        default_factory=list, help="style names, index = style (gtx train takes them from the "
                                   "labelled data folder: one folder per style)")
    style_input: str = field(
        "cin", help="how G takes the style: cin (conditional instance norm: a scale and shift "
                    "per style in every norm layer) or onehot (StarGAN's tiled one-hot input "
                    "channels, with norm)", choices=STYLE_INPUTS)
    netG: str = field("resnet_6blocks", help="generator network (registry name; cin needs one "
                                             "that takes norm='conditional_instance')")
    ngf: int = field(64, help="generator filters in the first conv layer")
    generator_kwargs: dict[str, Any] = field(  # noqa: RUF009  (a default_factory field)
        default_factory=dict, help="extra keyword arguments for the generator factory, e.g. "
        "{n_downsampling = 0} for a full-resolution ResNet generator on small images")
    norm: str = field("instance", help="generator norm with style_input=onehot",
                      choices=("instance", "batch", "none"))
    discriminator: str = field("stargan_discriminator", help="discriminator (registry name): "
                               "returns (real/fake logits, style logits)")
    ndf: int = field(64, help="discriminator filters in the first conv layer")
    n_layers_D: int = field(3, help="discriminator stride-2 layers")
    discriminator_kwargs: dict[str, Any] = field(  # noqa: RUF009  (a default_factory field)
        default_factory=dict, help="extra keyword arguments for the discriminator factory")
    init: str = field("normal", help="weight initialisation", choices=INITS)
    init_gain: float = field(0.02, help="scale of the weight initialisation")
    channels: int = field(3, help="image channels (1 or 3)", choices=(1, 3))
    gan_mode: str = field("lsgan", help="adversarial loss (Eq. 1)", choices=GAN_MODES)
    lambda_cls: float = field(1.0, help="λ_cls, weight of the style classification losses "
                                        "(Eq. 5, 6)")
    lambda_rec: float = field(10.0, help="λ_rec, weight of the reconstruction loss (Eq. 4, 6)")
    lambda_id: float = field(0.0, help="weight of ||G(x, c) - x||_1 for x in its own style c "
                                       "(CycleGAN's identity loss; 0 = off, as in the paper)")
    lambda_gp: float = field(10.0, help="WGAN-GP gradient-penalty weight (gan_mode=wgangp)")
    lr: float = field(1e-4, help="Adam learning rate (the paper's)")
    beta1: float = field(0.5, help="Adam β1")
    beta2: float = field(0.999, help="Adam β2")
    load_size: int = field(143, help="images are resized to this before cropping")
    crop_size: int = field(128, help="training crop size")

    def __post_init__(self) -> None:
        if isinstance(self.labels, str):  # --set labels=a,b
            self.labels = [n.strip() for n in self.labels.split(",") if n.strip()]
        self.labels = [str(n) for n in self.labels]
        if len(self.labels) < 2:
            raise ValueError(
                f"StarGAN needs at least 2 style names (labels=[...]); got {self.labels!r}. "
                "gtx train takes them from the data folder (one sub-folder per style)")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"StarGAN style names must be distinct; got {self.labels}")
        for name in ("ngf", "ndf", "n_layers_D", "load_size", "crop_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"StarGAN {name} must be a positive integer; got {value!r}")
        for name in ("lambda_cls", "lambda_rec", "lambda_id", "lambda_gp"):
            if getattr(self, name) < 0:
                raise ValueError(f"StarGAN {name} must be >= 0; got {getattr(self, name)!r}")
        if self.crop_size > self.load_size:
            raise ValueError(f"crop_size {self.crop_size} > load_size {self.load_size}; set "
                             f"load_size >= crop_size")
        check_tables(self, "generator_kwargs", "discriminator_kwargs", owner="StarGAN")


class StarGAN(GANModel):
    """StarGAN: one generator G(x, style) for N styles, a D with a style classifier."""

    Config = StarGANConfig
    data_kind = "labelled"

    def __init__(self, config: StarGANConfig) -> None:
        super().__init__(config)
        c = config
        k = len(c.labels)
        gen = {"ngf": c.ngf, "init": c.init, "init_gain": c.init_gain}
        if c.style_input == "cin":
            takes = {f.name for f in gantransfer.spec(c.netG, kind="network").fields}
            g = gantransfer.build_network(
                c.netG, optional=gen, overrides=c.generator_kwargs, in_channels=c.channels,
                out_channels=c.channels, norm="conditional_instance",
                n_labels=k) if "n_labels" in takes else None
            if g is None or not accepts_labels(g):
                raise ValueError(f"generator {c.netG!r} does not take a style with "
                                 "norm='conditional_instance' (n_labels); use --set "
                                 "style_input=onehot, or a ResNet generator")
        else:  # StarGAN's input: the one-hot style as extra channels of the image
            g = ConcatLabels(gantransfer.build_network(
                c.netG, optional={**gen, "norm": c.norm}, overrides=c.generator_kwargs,
                in_channels=c.channels + k, out_channels=c.channels), k)
        self.nets["g"] = g
        disc = {"ndf": c.ndf, "n_layers": c.n_layers_D, "init": c.init,
                "init_gain": c.init_gain, "image_size": c.crop_size}
        self.nets["d"] = gantransfer.build_network(
            c.discriminator, optional=disc, overrides=c.discriminator_kwargs,
            in_channels=c.channels, n_labels=k)
        self.gan_loss = GANLoss(c.gan_mode)

    # -- optimisation -------------------------------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"g": ["g"], "d": ["d"]}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {group: torch.optim.Adam(
            [p for n in names for p in self.nets[n].parameters() if p.requires_grad],
            lr=c.lr, betas=(c.beta1, c.beta2)) for group, names in self.optimizer_groups().items()}

    def train_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """One D update, then one G update (the paper's order, n_critic = 1)."""
        c = self.config
        g, d = self.nets["g"], self.nets["d"]
        x, c_org = batch["image"], batch["label"]
        k = len(c.labels)
        # A target style other than the source for every image, from torch's global RNG.
        c_trg = (c_org + torch.randint(1, k, c_org.shape, device=c_org.device)) % k

        with ctx.autocast():
            fake = g(x, c_trg)
            # real=0: ADA counts the first head (real/fake), not the classifier.
            (src_real, cls_real), (src_fake, _) = ctx.discriminate(
                d, x, fake.detach(), real=0, threshold=self.gan_loss.threshold)
            loss_d_adv = self.gan_loss(src_real, True) + self.gan_loss(src_fake, False)  # Eq. 1
            loss_d_cls = F.cross_entropy(cls_real.float(), c_org)  # Eq. 2
            loss_d = loss_d_adv + c.lambda_cls * loss_d_cls  # Eq. 5
            if c.gan_mode == "wgangp":
                # On the real/fake head only (the classifier is not a critic).
                loss_d = loss_d + gradient_penalty(
                    lambda images: d(images)[0], x, fake.detach(),  # type: ignore[arg-type]
                    weight=c.lambda_gp)
        ctx.optimize("d", loss_d)

        with ctx.frozen("d"), ctx.autocast():
            ((src_gen, cls_gen),) = ctx.discriminate(d, fake)
            loss_g_adv = self.gan_loss(src_gen, True)  # Eq. 1, G's side
            loss_g_cls = F.cross_entropy(cls_gen.float(), c_trg)  # Eq. 3
            loss_rec = F.l1_loss(g(fake, c_org).float(), x.float())  # Eq. 4
            loss_g = loss_g_adv + c.lambda_cls * loss_g_cls + c.lambda_rec * loss_rec  # Eq. 6
            loss_id = x.new_zeros(())
            if c.lambda_id > 0:
                loss_id = F.l1_loss(g(x, c_org).float(), x.float())
                loss_g = loss_g + c.lambda_id * loss_id
        ctx.optimize("g", loss_g)
        logs = {"loss_D": loss_d, "loss_D_cls": loss_d_cls, "loss_G": loss_g,
                "loss_G_cls": loss_g_cls, "loss_rec": loss_rec, "loss_id": loss_id}
        return {k: float(v.detach()) for k, v in logs.items()}

    # -- sampling and export -------------------------------------------------------------------
    def sample_inputs(self, batch: dict[str, Tensor], *, n: int, generator: torch.Generator
                      ) -> dict[str, Tensor]:
        return {"image": batch["image"][:n], "label": batch["label"][:n]}

    def sample(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """The inputs, then one row per style: every input translated into that style."""
        x = inputs["image"].to(self.device)
        rows = {"input": x}
        for k, name in enumerate(self.config.labels):
            labels = torch.full((len(x),), k, dtype=torch.long, device=x.device)
            rows[name] = self.nets["g"](x, labels)
        return rows

    def export_targets(self) -> dict[str, ExportSpec]:
        c = self.config
        sizes = size_contract(self.nets["g"])
        return {"translate": ExportSpec(
            net="g", in_channels=c.channels, out_channels=c.channels,
            size_divisor=sizes.divisor if sizes else 1, min_size=sizes.min_size if sizes else 1,
            labels=tuple(c.labels), direction="x2style",
            description="StarGAN generator: image and target style -> image in that style")}

    def data_defaults(self) -> dict[str, Any]:
        c = self.config
        return {"channels": c.channels, "preprocess": "resize_and_crop",
                "load_size": c.load_size, "crop_size": c.crop_size, "flip": True}
