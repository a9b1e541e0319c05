"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with cycle consistency.

Nets (our names → official names):

* ``g_ab``: generator A→B (official ``G_A``), ``g_ba``: generator B→A (official ``G_B``);
* ``d_a``: judges domain **A** images, real A vs ``g_ba`` fakes (official ``D_B``);
* ``d_b``: judges domain **B** images, real B vs ``g_ab`` fakes (official ``D_A``).

Logged losses keep the official meaning for generators (``loss_G_A`` is the adversarial loss of
``g_ab``, ``loss_cycle_A`` = ‖G_BA(G_AB(A)) − A‖₁, ``loss_idt_A`` = ‖G_AB(B) − B‖₁) and our
domain naming for discriminators (``loss_D_A`` is ``d_a``'s loss, on domain A).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gantransfer
from gantransfer.model import ExportSpec, GANModel, StepContext
from gantransfer.nn import (
    GANLoss,
    LinearDecay,
    gradient_penalty,
    linear_decay_schedulers,
    spectral_norm,
)

from .config import CycleGANConfig
from .pool import ImagePool

__all__ = ["CycleGAN", "LinearDecay"]

log = logging.getLogger(__name__)

# An official checkpoint: a path to a .pth file or an already loaded state dict.
StateSource = str | os.PathLike[str] | Mapping[str, Tensor]



class CycleGAN(GANModel):
    """CycleGAN: two generators, two PatchGAN discriminators, cycle and identity L1 losses."""

    Config = CycleGANConfig
    data_kind = "unpaired"

    def __init__(self, config: CycleGANConfig) -> None:
        super().__init__(config)
        c = config
        gen = {"ngf": c.ngf, "norm": c.norm, "dropout": c.dropout, "init": c.init,
               "init_gain": c.init_gain}
        self.nets["g_ab"] = gantransfer.build_network(
            c.netG, optional=gen, overrides=c.generator_kwargs, in_channels=c.in_channels,
            out_channels=c.out_channels)
        self.nets["g_ba"] = gantransfer.build_network(
            c.netG, optional=gen, overrides=c.generator_kwargs, in_channels=c.out_channels,
            out_channels=c.in_channels)
        disc = {"ndf": c.ndf, "n_layers": c.n_layers_D, "norm": c.norm, "init": c.init,
                "init_gain": c.init_gain, "image_size": c.crop_size}
        self.nets["d_a"] = gantransfer.build_network(
            c.discriminator, optional=disc, overrides=c.discriminator_kwargs,
            in_channels=c.in_channels)
        self.nets["d_b"] = gantransfer.build_network(
            c.discriminator, optional=disc, overrides=c.discriminator_kwargs,
            in_channels=c.out_channels)
        if c.d_spectral_norm:
            spectral_norm(self.nets["d_a"])
            spectral_norm(self.nets["d_b"])
        self.gan_loss = GANLoss(c.gan_mode)
        self.pool_a = ImagePool(c.pool_size)  # fakes in domain A (G_BA outputs), for d_a
        self.pool_b = ImagePool(c.pool_size)  # fakes in domain B (G_AB outputs), for d_b

    @property
    def uses_identity(self) -> bool:
        """Identity loss needs a weight and images that fit both generators' inputs."""
        c = self.config
        return c.lambda_identity > 0 and c.in_channels == c.out_channels

    # -- optimisation (Adam with the config's lr and betas: GANModel's default) ---------------
    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"g": ["g_ab", "g_ba"], "d": ["d_a", "d_b"]}

    def make_schedulers(self, optimizers: dict[str, torch.optim.Optimizer], *,
                        steps_per_epoch: int) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        """Constant LR for ``n_epochs`` epochs, then linear decay per iteration to 0 at the end of
        ``n_epochs + n_epochs_decay`` epochs (see docs/cyclegan.md for how this differs from the
        official per-epoch rule)."""
        c = self.config
        return linear_decay_schedulers(optimizers, steps_per_epoch=steps_per_epoch,
                                       n_epochs=c.n_epochs, n_epochs_decay=c.n_epochs_decay)

    def train_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """One iteration in the official order: generators first (discriminators frozen), then
        both discriminators on real images and pooled fakes."""
        real_a, real_b = batch["A"], batch["B"]
        # The G step runs in its own method so that everything its graph holds (activations,
        # reconstructions, loss tensors) is released when it returns, before the D step, even
        # when ctx.optimize skips the backward (non-finite loss) that would otherwise free it.
        logs, fake_a, fake_b = self._generator_step(real_a, real_b, ctx)
        logs.update(self._discriminator_step(real_a, real_b, fake_a, fake_b, ctx))
        return logs  # detached scalar tensors: the trainer reads them once per log line

    def _generator_step(self, real_a: Tensor, real_b: Tensor, ctx: StepContext,
                        ) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Update both generators with the discriminators frozen (no D weight gradients).

        Returns detached loss values and the fakes ``G_BA(b)``, ``G_AB(a)``, detached and fp32
        (the image pools keep them; fp32 whatever the precision, so a checkpoint's pools do
        not depend on it).
        """
        c = self.config
        g_ab, g_ba, d_a, d_b = (self.nets[k] for k in ("g_ab", "g_ba", "d_a", "d_b"))
        zero = real_a.new_zeros(())
        # G: A→B (g_ab), F: B→A (g_ba).
        with ctx.frozen("d_a", "d_b"):
            with ctx.autocast():
                fake_b = g_ab(real_a)  # G(a)
                rec_a = g_ba(fake_b)  # F(G(a))
                fake_a = g_ba(real_b)  # F(b)
                rec_b = g_ab(fake_a)  # G(F(b))
                # Adversarial terms, Eq. 1: L_GAN(G, D_Y) with D_Y = d_b, L_GAN(F, D_X) with
                # D_X = d_a; the generators are trained to make D call their fakes real.
                loss_g_a = self.gan_loss(ctx.discriminate(d_b, fake_b)[0], True)
                loss_g_b = self.gan_loss(ctx.discriminate(d_a, fake_a)[0], True)
                # Cycle consistency, Eq. 2: λ_A‖F(G(a)) − a‖₁ + λ_B‖G(F(b)) − b‖₁ (fp32).
                loss_cycle_a = F.l1_loss(rec_a.float(), real_a.float()) * c.lambda_A
                loss_cycle_b = F.l1_loss(rec_b.float(), real_b.float()) * c.lambda_B
                # Identity, Sec. 5.2 (Taigman et al. 2017): λ_idt·λ_B‖G(b) − b‖₁ +
                # λ_idt·λ_A‖F(a) − a‖₁. Skipped (forwards included) when off or when the
                # domains' channel counts differ (G cannot take a B image then).
                if self.uses_identity:
                    loss_idt_a = F.l1_loss(g_ab(real_b).float(), real_b.float()) * (
                        c.lambda_B * c.lambda_identity)
                    loss_idt_b = F.l1_loss(g_ba(real_a).float(), real_a.float()) * (
                        c.lambda_A * c.lambda_identity)
                else:
                    loss_idt_a = loss_idt_b = zero
                loss_g = (loss_g_a + loss_g_b + loss_cycle_a + loss_cycle_b + loss_idt_a
                          + loss_idt_b)
            ctx.optimize("g", loss_g)
        logs = {"loss_G": loss_g, "loss_G_A": loss_g_a, "loss_G_B": loss_g_b,
                "loss_cycle_A": loss_cycle_a, "loss_cycle_B": loss_cycle_b,
                "loss_idt_A": loss_idt_a, "loss_idt_B": loss_idt_b}
        return ({k: v.detach() for k, v in logs.items()}, fake_a.detach().float(),
                fake_b.detach().float())

    def _discriminator_step(self, real_a: Tensor, real_b: Tensor, fake_a: Tensor,
                            fake_b: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        """Update both discriminators on real images and fakes from the history pools (Sec. 4);
        returns their detached losses."""
        c = self.config
        d_a, d_b = self.nets["d_a"], self.nets["d_b"]
        pooled_a = self.pool_a.query(fake_a)
        pooled_b = self.pool_b.query(fake_b)
        with ctx.autocast():
            loss_d_a = self._discriminator_loss(d_a, real_a, pooled_a, ctx)
            loss_d_b = self._discriminator_loss(d_b, real_b, pooled_b, ctx)
        loss_d = loss_d_a + loss_d_b
        if c.gan_mode == "wgangp":
            # Gulrajani et al. 2017, Eq. 3: + λ_gp E[(‖∇D(x̂)‖₂ − 1)²]; D is trainable here.
            loss_d = loss_d + gradient_penalty(d_a, real_a, pooled_a, weight=c.lambda_gp)
            loss_d = loss_d + gradient_penalty(d_b, real_b, pooled_b, weight=c.lambda_gp)
        ctx.optimize("d", loss_d)
        return {"loss_D_A": loss_d_a.detach(), "loss_D_B": loss_d_b.detach()}

    def _discriminator_loss(self, d: nn.Module, real: Tensor, fake: Tensor,
                            ctx: StepContext) -> Tensor:
        """0.5·(L(D(real), 1) + L(D(fake), 0)); the official code halves the D loss to slow D
        relative to G (Sec. 4). ``ctx.discriminate`` judges both batches in one forward where
        that is exact (instance/no norm) and separately with batch norm, so that D's fakes get
        the logits the G step will see."""
        real_logits, fake_logits = ctx.discriminate(d, real, fake, real=0,
                                                    threshold=self.gan_loss.threshold)
        return 0.5 * (self.gan_loss(real_logits, True, discriminator=True)
                      + self.gan_loss(fake_logits, False, discriminator=True))

    # -- inference ----------------------------------------------------------------------------
    def sample(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Rows real_A, fake_B, rec_A, real_B, fake_A, rec_B for ``{"A": ..., "B": ...}``."""
        real_a, real_b = inputs["A"], inputs["B"]
        fake_b = self.nets["g_ab"](real_a)
        fake_a = self.nets["g_ba"](real_b)
        return {"real_A": real_a, "fake_B": fake_b, "rec_A": self.nets["g_ba"](fake_b),
                "real_B": real_b, "fake_A": fake_a, "rec_B": self.nets["g_ab"](fake_a)}

    def export_targets(self) -> dict[str, ExportSpec]:
        """``a2b`` (``g_ab``) and ``b2a`` (``g_ba``). Size rules come from the generator: ResNet
        needs multiples of 4 and at least 8 px; U-Net multiples of 2**num_downs."""
        c = self.config
        return {name: self.image_target(net, in_channels=cin, out_channels=cout, direction=name,
                                        description=f"CycleGAN generator, {text}")
                for name, net, cin, cout, text in (
                    ("a2b", "g_ab", c.in_channels, c.out_channels, "domain A to domain B"),
                    ("b2a", "g_ba", c.out_channels, c.in_channels, "domain B to domain A"))}

    def data_defaults(self) -> dict[str, Any]:
        c = self.config
        return {"channels": c.in_channels, "channels_b": c.out_channels,
                "preprocess": "resize_and_crop", "load_size": c.load_size,
                "crop_size": c.crop_size, "flip": True}

    # -- state between steps --------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])

    # -- official checkpoints -------------------------------------------------------------------
    @classmethod
    def load_official(cls, *, g_a: StateSource | None = None, g_b: StateSource | None = None,
                      d_a: StateSource | None = None, d_b: StateSource | None = None,
                      **overrides: Any) -> CycleGAN:
        """Build a CycleGAN from official ``latest_net_{G_A,G_B,D_A,D_B}.pth`` files or state dicts.

        Official G_A (A→B) goes to ``g_ab``, G_B to ``g_ba``; official D_A judges domain B, so it
        goes to ``d_b``, and D_B to ``d_a``. Network options (netG, ngf, norm, channels, ndf,
        n_layers_D) are inferred from the weights; ``overrides`` (config fields) win. Nets not
        given keep their fresh initialisation. See :mod:`gantransfer_cyclegan.official`.

        Raises:
            ValueError: a state dict does not match the network the options describe.
            FileNotFoundError: a path does not exist.
        """
        from .official import build_official_model

        return build_official_model(cls, g_a=g_a, g_b=g_b, d_a=d_a, d_b=d_b, **overrides)
