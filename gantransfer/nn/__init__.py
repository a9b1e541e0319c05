"""Building blocks shared by several plugins: norm factory, weight init, size helpers,
adversarial losses, spectral norm, differentiable augmentation."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from ._augment import AUGMENT_POLICIES, diff_augment, parse_policy
from ._conditional import (
    ConcatLabels,
    ConditionalInstanceNorm2d,
    accepts_labels,
    check_labels,
    one_hot_planes,
    projection,
    run_layers,
)
from ._discriminate import discriminate, uses_batch_statistics
from ._losses import GAN_MODES, GANLoss, gradient_penalty, spectral_norm
from ._sizes import SizeContract, size_contract

__all__ = [
    "AUGMENT_POLICIES",
    "CONDITIONAL_NORMS",
    "GAN_MODES",
    "INITS",
    "NORMS",
    "ConcatLabels",
    "ConditionalInstanceNorm2d",
    "GANLoss",
    "LinearDecay",
    "SizeContract",
    "accepts_labels",
    "check_labels",
    "diff_augment",
    "discriminate",
    "gradient_penalty",
    "init_weights",
    "linear_decay_schedulers",
    "norm_layer",
    "one_hot_planes",
    "parse_policy",
    "projection",
    "run_layers",
    "size_contract",
    "spectral_norm",
    "uses_batch_statistics",
    "uses_bias",
]

# The choices of a config's ``norm`` and ``init`` fields (``field(..., choices=NORMS)``): what
# norm_layer and init_weights accept, defined once for every plugin.
NORMS = ("instance", "batch", "none")
INITS = ("normal", "xavier", "kaiming", "orthogonal")
# Norms whose layers take the labels (``takes_labels``): a network built with one is conditional.
CONDITIONAL_NORMS = ("conditional_instance",)


def norm_layer(kind: str, *, n_labels: int | None = None) -> Callable[[int], nn.Module]:
    """A factory ``channels -> norm module`` for ``kind`` in ``instance | batch | none`` (or
    ``conditional_instance`` with ``n_labels``).

    ``instance`` is ``InstanceNorm2d(affine=False, track_running_stats=False)`` as in the official
    CycleGAN code, so it has no parameters and no state-dict keys. ``batch`` is affine with running
    statistics. ``none`` is the identity. ``conditional_instance`` is
    :class:`ConditionalInstanceNorm2d`: instance norm with a scale and shift per label (its
    layers take ``(x, labels)``; see :func:`run_layers`).
    """
    if kind == "conditional_instance":
        if not n_labels or n_labels < 1:
            raise ValueError("norm 'conditional_instance' needs n_labels >= 1 (the number of "
                             "styles)")
        return functools.partial(ConditionalInstanceNorm2d, n_labels=n_labels)
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {kind!r}")


def uses_bias(kind: str) -> bool:
    """Whether a conv followed by this norm needs its own bias (BatchNorm has an affine shift)."""
    return kind != "batch"


@torch.no_grad()
def init_weights(net: nn.Module, *, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights with ``kind`` (``normal|xavier|kaiming|orthogonal``) and
    ``gain``; biases to 0; BatchNorm weights ~ N(1, gain), biases 0. Returns ``net``.

    These are the initialisations of DCGAN (Radford et al. 2015: N(0, 0.02)) and of the official
    CycleGAN code.
    """
    if kind not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {kind!r}")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


class LinearDecay:
    """LR factor per iteration for ``LambdaLR``: 1 for ``constant`` iterations, then linear to
    exactly 0 after ``decay`` more iterations (and 0 beyond). ``decay=0`` keeps the LR constant.

    The schedule of CycleGAN and pix2pix (Zhu et al. 2017; Isola et al. 2017), per iteration.
    A plain object (not a lambda) so ``LambdaLR.state_dict()`` stores its settings as data.
    """

    def __init__(self, constant: int, decay: int) -> None:
        self.constant, self.decay = int(constant), int(decay)

    def __call__(self, it: int) -> float:
        if self.decay <= 0 or it < self.constant:
            return 1.0
        return max(0.0, 1.0 - (it - self.constant) / self.decay)


def linear_decay_schedulers(optimizers: dict[str, torch.optim.Optimizer], *, steps_per_epoch: int,
                            n_epochs: int, n_epochs_decay: int
                            ) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """One ``LambdaLR`` with :class:`LinearDecay` per optimizer: the LR is constant for
    ``n_epochs`` epochs, then falls linearly per iteration to exactly 0 at the end of
    ``n_epochs + n_epochs_decay`` epochs. What ``make_schedulers`` of CycleGAN-style models
    returns.

    Raises:
        ValueError: ``steps_per_epoch`` < 1.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    constant, decay = n_epochs * steps_per_epoch, n_epochs_decay * steps_per_epoch
    return {name: torch.optim.lr_scheduler.LambdaLR(opt, LinearDecay(constant, decay))
            for name, opt in optimizers.items()}
