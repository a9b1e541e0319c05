"""Adversarial losses and the WGAN-GP gradient penalty used by CycleGAN.

Discriminators return raw logits. ``lsgan`` (Mao et al. 2017) regresses them to 1 (real) or 0
(fake) with a mean squared error, the CycleGAN default (Zhu et al. 2017, Sec. 4 "Training
details"); ``vanilla`` is the original GAN cross-entropy (Goodfellow et al. 2014) with the sigmoid
folded into the loss; ``wgangp`` is the Wasserstein critic loss (Arjovsky et al. 2017) that must be
paired with :func:`gradient_penalty` (Gulrajani et al. 2017).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GAN_MODES", "GANLoss", "gradient_penalty"]

GAN_MODES = ("lsgan", "vanilla", "wgangp")


class GANLoss:
    """``loss(logits, real)``: the adversarial loss of ``logits`` against the label ``real``.

    * lsgan:   mean((D(x) - 1)^2) for real, mean(D(x)^2) for fake.
    * vanilla: BCE-with-logits against 1 or 0, i.e. -log σ(D(x)) / -log(1 - σ(D(x))).
    * wgangp:  -mean(D(x)) for real, +mean(D(x)) for fake (the critic maximises the gap).

    Raises ``ValueError`` for an unknown mode.
    """

    def __init__(self, mode: str) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {', '.join(GAN_MODES)}; got {mode!r}")
        self.mode = mode

    def __call__(self, logits: Tensor, real: bool) -> Tensor:
        logits = logits.float()  # losses in fp32 even under autocast
        if self.mode == "wgangp":
            return -logits.mean() if real else logits.mean()
        target = torch.full_like(logits, 1.0 if real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, *,
                     weight: float = 10.0) -> Tensor:
    """WGAN-GP penalty λ·E[(‖∇_x̂ D(x̂)‖₂ - 1)²] on x̂ = ε·real + (1-ε)·fake, ε ~ U[0, 1] per sample
    (Gulrajani et al. 2017, Eq. 3; λ = ``weight``, 10 in the paper).

    ``real`` and ``fake`` are ``N×C×H×W`` (``fake`` detached from the generator). The gradient
    is taken with ``create_graph=True`` so the penalty back-propagates into the discriminator's
    parameters: the discriminator must *not* be frozen here. ε comes from torch's global RNG.
    Computed in fp32 (double backward under fp16 autocast is fragile).
    """
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        out = discriminator(mixed)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    # A small epsilon keeps the norm differentiable where the gradient is exactly zero.
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-12)
    return weight * ((norm - 1.0) ** 2).mean()
