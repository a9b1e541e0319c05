"""Adversarial losses by name, label smoothing/noise, the WGAN-GP penalty and spectral norm.

Shared by the built-in architectures (CycleGAN, DCGAN) and open to plugins. Discriminators
return raw logits (or critic values); every loss is computed in fp32.

* ``vanilla``: the original GAN cross-entropy (Goodfellow et al. 2014) with the sigmoid folded
  into the loss; the generator side is the non-saturating ``-log σ(D(G(z)))``.
* ``lsgan``: least squares (Mao et al. 2017), regressing logits to 1 (real) or 0 (fake); the
  CycleGAN default.
* ``hinge``: D minimises ``relu(1 - D(x)) + relu(1 + D(G(z)))``, G minimises ``-D(G(z))``
  (Lim & Ye 2017; Miyato et al. 2018 with spectral normalisation).
* ``wgangp``: the Wasserstein critic loss (Arjovsky et al. 2017), ``-D(x)`` for real, ``+D(x)``
  for fake, to be paired with :func:`gradient_penalty` (Gulrajani et al. 2017).

Label smoothing/noise (Salimans et al. 2016; the DCGAN tutorial's U(0.9, 1.0) real and U(0, 0.1)
fake labels) changes the targets of the *discriminator's* loss only, and only for the two modes
that have targets (vanilla, lsgan).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GAN_MODES", "GANLoss", "gradient_penalty", "spectral_norm"]

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgangp")
_TARGET_MODES = ("vanilla", "lsgan")


class GANLoss:
    """``loss(logits, real, *, discriminator=False)``: the adversarial loss of ``logits`` against
    the label ``real`` (True: "this is real").

    ``discriminator=True`` marks D's own loss (in the D step): there hinge uses its margins and
    the label smoothing/noise applies. The generator's loss is ``loss(D(G(z)), True)``.

    Per element, with ``t`` the target (1/0, or the smoothed/noisy label for D):

    * vanilla: BCE-with-logits against ``t``.
    * lsgan:   ``(D(x) - t)^2``.
    * hinge:   D: ``relu(1 - D(x))`` real, ``relu(1 + D(x))`` fake; G: ``-D(x)``.
    * wgangp:  ``-D(x)`` real, ``+D(x)`` fake.

    The targets of D's loss: real ~ U(``real_label - label_noise``, ``real_label``), fake ~
    U(``fake_label``, ``fake_label + label_noise``), drawn per element from torch's global RNG
    (so exact resume holds); ``label_noise=0`` gives fixed targets (``real_label=0.9``: one-sided
    smoothing).

    Raises:
        ValueError: an unknown mode, labels outside [0, 1], a negative noise, or smoothing/noise
            asked of hinge or wgangp (they have no targets to smooth).
    """

    def __init__(self, mode: str, *, real_label: float = 1.0, fake_label: float = 0.0,
                 label_noise: float = 0.0) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {', '.join(GAN_MODES)}; got {mode!r}")
        if not (real_label - label_noise >= 0.0 and real_label <= 1.0
                and fake_label >= 0.0 and fake_label + label_noise <= 1.0 and label_noise >= 0):
            raise ValueError(
                f"labels must stay in [0, 1] with label_noise >= 0: real U({real_label - label_noise:g}"
                f", {real_label:g}), fake U({fake_label:g}, {fake_label + label_noise:g}); e.g. "
                "real_label=1, fake_label=0, label_noise=0.1")
        smoothed = (real_label, fake_label, label_noise) != (1.0, 0.0, 0.0)
        if smoothed and mode not in _TARGET_MODES:
            raise ValueError(f"label smoothing/noise needs a loss with targets (vanilla or lsgan); "
                             f"gan_mode {mode!r} has none: keep real_label=1, fake_label=0, "
                             "label_noise=0")
        self.mode = mode
        self.real_label, self.fake_label, self.label_noise = real_label, fake_label, label_noise

    @property
    def threshold(self) -> float:
        """The discriminator output that separates "real" from "fake" for this loss: 0.5 for
        lsgan (D regresses to 1 for real, 0 for fake), 0.0 for the logit/critic losses
        (vanilla, hinge, wgangp). Label smoothing does not move it (the point only has to lie
        between the real and the fake targets). The engine's adaptive augmentation counts
        ``sign(D(real) - threshold)``: pass it as ``ctx.discriminate(..., threshold=...)``."""
        return 0.5 if self.mode == "lsgan" else 0.0

    def target(self, logits: Tensor, real: bool, *, discriminator: bool = False) -> Tensor:
        """The target tensor (shape and device of ``logits``, fp32) of vanilla/lsgan."""
        if not discriminator:
            return torch.full_like(logits, 1.0 if real else 0.0, dtype=torch.float32)
        if real:
            low, high = self.real_label - self.label_noise, self.real_label
        else:
            low, high = self.fake_label, self.fake_label + self.label_noise
        if high == low:
            return torch.full_like(logits, low, dtype=torch.float32)
        return torch.rand(logits.shape, device=logits.device) * (high - low) + low

    def __call__(self, logits: Tensor, real: bool, *, discriminator: bool = False) -> Tensor:
        logits = logits.float()  # losses in fp32 even under autocast
        if self.mode == "wgangp":
            return -logits.mean() if real else logits.mean()
        if self.mode == "hinge":
            if not discriminator:
                return -logits.mean() if real else logits.mean()
            return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()
        target = self.target(logits, real, discriminator=discriminator)
        if self.mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, *,
                     weight: float = 10.0, extra: tuple[Any, ...] = ()) -> Tensor:
    """WGAN-GP penalty λ·E[(‖∇_x̂ D(x̂)‖₂ - 1)²] on x̂ = ε·real + (1-ε)·fake, ε ~ U[0, 1] per sample
    (Gulrajani et al. 2017, Eq. 3; λ = ``weight``, 10 in the paper).

    ``real`` and ``fake`` are ``N×C×H×W`` (``fake`` detached from the generator). The gradient
    is taken with ``create_graph=True`` so the penalty back-propagates into the discriminator's
    parameters: the discriminator must *not* be frozen here. ε comes from torch's global RNG.
    Computed in fp32 (double backward under fp16 autocast is fragile). ``extra`` inputs follow
    the images in the discriminator's call (a conditional D's labels: ``d(x̂, labels)``).
    Returns a scalar tensor.
    """
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        out = discriminator(mixed, *extra)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    # A small epsilon keeps the norm differentiable where the gradient is exactly zero.
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-12)
    return weight * ((norm - 1.0) ** 2).mean()


def spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every convolution and linear layer of
    ``net`` whose weight is trainable (a frozen pretrained trunk is left alone; in place;
    returns ``net``): each weight is divided by its largest singular value,
    estimated by one power iteration per training forward
    (``torch.nn.utils.parametrizations.spectral_norm``), which bounds D's Lipschitz constant.

    The power-iteration vectors are buffers, so checkpoints keep them and resume is exact.
    """
    from torch.nn.utils import parametrizations, parametrize

    for m in list(net.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Conv1d, nn.Conv3d)) and \
                m.weight.requires_grad and not parametrize.is_parametrized(m, "weight"):
            parametrizations.spectral_norm(m)
    return net
