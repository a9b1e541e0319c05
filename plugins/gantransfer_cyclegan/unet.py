"""U-Net generator of pix2pix/CycleGAN, laid out like the official code.

The net is built recursively from the innermost block outwards. Every block keeps its layers in
a Sequential named ``model``, and the nested block sits inside it, so keys read
``model.model.1.model.3.model.1.weight``: the generator's ``model`` is the outermost block, whose
``model`` is [0] down-conv, [1] next block, [2] ReLU, [3] up-conv (with bias), [4] Tanh. Other
blocks: [0] LeakyReLU(0.2), [1] down-conv, [2] down-norm, [3] next block, [4] ReLU, [5] up-conv,
[6] up-norm (+ [7] Dropout(0.5) in the ``ngf*8`` middle blocks when ``dropout``); the innermost
block has no down-norm and no nested block: [0] LeakyReLU, [1] down-conv, [2] ReLU, [3] up-conv,
[4] up-norm.

Skip connections: a non-outermost block returns ``cat([LeakyReLU(x), block(x)])``. The official
code concatenates ``x`` *after* its in-place LeakyReLU has overwritten it, so the skip carries
``LeakyReLU(x)``, not ``x``; we reproduce that explicitly (without in-place ops) so official
weights give the official output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gantransfer.nn import SizeContract, norm_layer, uses_bias

__all__ = ["UPSAMPLING", "UnetGenerator", "UnetSkipBlock", "check_upsample", "upsampling_layer"]

UPSAMPLING = ("transpose", "resize")


def check_upsample(kind: str) -> None:
    """Raise ValueError naming the choices unless ``kind`` is one of :data:`UPSAMPLING` (for a
    generator to call up front: one that never upsamples would otherwise accept any name)."""
    if kind not in UPSAMPLING:
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {kind!r}")


def upsampling_layer(in_channels: int, out_channels: int, *, kind: str, bias: bool,
                     kernel_size: int = 4, output_padding: int = 0) -> nn.Module:
    """A ×2 upsampling conv: ``"transpose"`` (a stride-2 transposed conv, the official layers)
    or ``"resize"`` (nearest-neighbour ×2 then a 3×3 conv, Odena et al. 2016: every output pixel
    gets the same number of kernel taps, so no checkerboard pattern is built in).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=kernel_size, stride=2,
                                  padding=1, output_padding=output_padding, bias=bias)
    check_upsample(kind)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1,
                                   bias=bias))


class UnetSkipBlock(nn.Module):
    """One U-Net level: down-sample, run ``submodule``, up-sample, concatenate the skip."""

    def __init__(self, outer_nc: int, inner_nc: int, *, in_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False, norm: str = "instance", dropout: bool = False,
                 upsample: str = "transpose") -> None:
        super().__init__()
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        in_nc = outer_nc if in_nc is None else in_nc
        down_conv = nn.Conv2d(in_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            if submodule is None:
                raise ValueError("the outermost U-Net block needs a submodule")
            layers: list[nn.Module] = [
                down_conv,
                submodule,
                nn.ReLU(True),
                # Followed by Tanh, not a norm: always a bias.
                upsampling_layer(inner_nc * 2, outer_nc, kind=upsample, bias=True),
                nn.Tanh(),
            ]
        elif innermost:
            layers = [
                nn.LeakyReLU(0.2),
                down_conv,  # no norm at the bottleneck (a 1×1 map has no instance statistics)
                nn.ReLU(True),
                upsampling_layer(inner_nc, outer_nc, kind=upsample, bias=bias),
                make_norm(outer_nc),
            ]
        else:
            if submodule is None:
                raise ValueError("a middle U-Net block needs a submodule")
            layers = [
                nn.LeakyReLU(0.2),
                down_conv,
                make_norm(inner_nc),
                submodule,
                nn.ReLU(True),
                upsampling_layer(inner_nc * 2, outer_nc, kind=upsample, bias=bias),
                make_norm(outer_nc),
            ]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        # Official semantics: the skip is LeakyReLU(x) (see the module docstring).
        x = self.model[0](x)
        y = x
        for layer in self.model[1:]:
            y = layer(y)
        return torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (7 for 128 px, 8 for 256 px inputs).

    Input ``N×in_channels×H×W`` with H, W multiples of ``2**num_downs`` (the bottleneck is 1×1
    at the smallest size); output ``N×out_channels×H×W`` in [-1, 1]. ``dropout`` puts
    Dropout(0.5) in the ``num_downs - 5`` middle blocks of width ``8*ngf``. ``upsample``:
    ``"transpose"`` (official) or ``"resize"`` (see :func:`upsampling_layer`).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, *, num_downs: int = 8,
                 ngf: int = 64, norm: str = "instance", dropout: bool = False,
                 upsample: str = "transpose") -> None:
        super().__init__()
        check_upsample(upsample)
        if num_downs < 5:
            raise ValueError(f"U-Net num_downs must be >= 5, got {num_downs}")
        # Every level halves the size down to a 1×1 bottleneck.
        side = 2**num_downs
        self.size_contract = SizeContract(
            divisor=side, min_size=side, reason=f"U-Net generator: {num_downs} stride-2 levels "
            f"down to a 1x1 bottleneck need multiples of {side}")
        # The same as plain attributes, for code written before contracts (ExportSpec readers).
        self.size_divisor, self.min_size = side, side
        up = {"norm": norm, "upsample": upsample}
        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True, **up)
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, dropout=dropout, **up)
        # Widths shrink from 8ngf to ngf towards the image.
        block = UnetSkipBlock(ngf * 4, ngf * 8, submodule=block, **up)
        block = UnetSkipBlock(ngf * 2, ngf * 4, submodule=block, **up)
        block = UnetSkipBlock(ngf, ngf * 2, submodule=block, **up)
        self.model = UnetSkipBlock(out_channels, ngf, in_nc=in_channels, submodule=block,
                                   outermost=True, **up)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
