"""A network plugin: a multi-scale PatchGAN built from the registry's ``patchgan``.

Registered as ``multiscale_patchgan`` in the ``gantransfer.networks`` entry-point group, so any
architecture with a ``discriminator`` field can use it: ``--set discriminator=multiscale_patchgan``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gantransfer
from gantransfer.nn import SizeContract, size_contract

__all__ = ["MultiScalePatchGAN", "multiscale_patchgan"]


class MultiScalePatchGAN(nn.Module):
    """``scales`` PatchGANs; discriminator ``k`` sees the input average-pooled ``k`` times.

    Coarser scales see more of the image per logit (a larger effective receptive field) for the
    same cost per scale. The output is every scale's logit map flattened and concatenated,
    ``N×L`` raw logits, so any per-logit loss (BCE, least squares) applies unchanged.
    """

    def __init__(self, discriminators: list[nn.Module]) -> None:
        super().__init__()
        if not discriminators:
            raise ValueError("MultiScalePatchGAN needs at least one discriminator")
        self.scales = nn.ModuleList(discriminators)
        # Scale k sees the input halved k times (3x3 average pools, stride 2): the coarsest one
        # must still get the size its discriminator needs. The engine checks this before
        # training (a size contract, see gantransfer.nn.SizeContract).
        inner = max((size_contract(d) or SizeContract()).min_size for d in discriminators)
        self.size_contract = SizeContract(
            min_size=inner * 2 ** (len(discriminators) - 1),
            reason=f"multi-scale PatchGAN: its coarsest of {len(discriminators)} scales needs "
            f"{inner} px")

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        for k, d in enumerate(self.scales):
            if k:
                # count_include_pad=False: border pixels are not darkened by zero padding.
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(d(x).flatten(1))
        return torch.cat(outputs, 1)


def multiscale_patchgan(*, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                        norm: str = "instance", init: str = "normal", init_gain: float = 0.02,
                        scales: int = 2) -> MultiScalePatchGAN:
    """``scales`` registry ``patchgan`` discriminators at halving resolutions.

    Args:
        in_channels: channels of the judged image (pix2pix passes input + output channels).
        ndf, n_layers, norm, init, init_gain: passed to every ``patchgan``.
        scales: number of resolutions (1 is a plain PatchGAN with flattened output).

    Raises:
        ValueError: ``scales < 1``.
    """
    if scales < 1:
        raise ValueError(f"multiscale_patchgan scales must be >= 1, got {scales}")
    return MultiScalePatchGAN([
        gantransfer.get_network("patchgan", in_channels=in_channels, ndf=ndf, n_layers=n_layers,
                                norm=norm, init=init, init_gain=init_gain)
        for _ in range(scales)
    ])
