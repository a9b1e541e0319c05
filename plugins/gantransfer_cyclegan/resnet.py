"""ResNet generator of CycleGAN (Johnson et al. 2016 layout, as in the official CycleGAN code).

Layer order and attribute names follow the official ``ResnetGenerator`` exactly, so an official
state dict loads with no renaming: one ``nn.Sequential`` named ``model``; each residual block
keeps its layers in a ``conv_block`` Sequential. For 9 blocks the weight keys are ``model.1``,
``model.4``, ``model.7``, ``model.{10..18}.conv_block.{1,5}``, ``model.19``, ``model.22``,
``model.26`` (11,378,179 parameters at ``ngf=64`` with instance norm).
"""

from __future__ import annotations

from torch import Tensor, nn

from gantransfer.nn import CONDITIONAL_NORMS, SizeContract, norm_layer, run_layers, uses_bias

from .unet import check_upsample, upsampling_layer

__all__ = ["ResnetBlock", "ResnetGenerator"]


class ResnetBlock(nn.Module):
    """``x + conv_block(x)`` with two reflection-padded 3×3 convs (same channel count).

    ``conv_block``: [0] ReflectionPad(1), [1] Conv3×3, [2] norm, [3] ReLU, ([4] Dropout(0.5) when
    ``dropout``), then ReflectionPad(1), Conv3×3, norm. With a conditional norm
    (``conditional_instance`` and ``n_labels``) the block takes ``(x, labels)``.
    """

    def __init__(self, dim: int, *, norm: str, dropout: bool, n_labels: int | None = None
                 ) -> None:
        super().__init__()
        self.takes_labels = norm in CONDITIONAL_NORMS
        make_norm, bias = norm_layer(norm, n_labels=n_labels), uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            make_norm(dim),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=bias),
            make_norm(dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.takes_labels:
            return x + run_layers(self.conv_block, x, labels)
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Image-to-image generator: 7×7 stem, ``n_downsampling`` stride-2 downsamplings (2, as in the
    official code), ``n_blocks`` residual blocks, as many transposed-conv upsamplings, 7×7 output
    conv and Tanh.

    Input ``N×in_channels×H×W`` in [-1, 1], H and W multiples of ``2**n_downsampling`` and at
    least 8 (the reflection pads at H/4 need 2 px); output ``N×out_channels×H×W`` in [-1, 1].

    ``upsample="resize"`` replaces the transposed convs by nearest ×2 + 3×3 conv (no
    checkerboard pattern; see :func:`~gantransfer_cyclegan.unet.upsampling_layer`).

    ``n_downsampling`` below 2 keeps more resolution in the residual blocks (as pix2pixHD's
    ``n_downsample_global``): for small images (32–64 px), where two halvings leave an 8×8 or
    16×16 trunk that blurs edges, at the price of more compute per block. 0 runs the whole
    network at full resolution.

    With ``norm="conditional_instance"`` and ``n_labels`` every norm layer is a
    :class:`~gantransfer.nn.ConditionalInstanceNorm2d` (a scale and shift per style, Dumoulin et
    al. 2017) and the generator is called ``g(x, labels)`` (``accepts_labels``).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, *, ngf: int = 64,
                 n_blocks: int = 9, norm: str = "instance", dropout: bool = False,
                 n_labels: int | None = None, n_downsampling: int = 2,
                 upsample: str = "transpose") -> None:
        super().__init__()
        self.accepts_labels = norm in CONDITIONAL_NORMS
        check_upsample(upsample)
        if isinstance(n_downsampling, bool) or n_downsampling not in (0, 1, 2, 3, 4):
            raise ValueError(f"n_downsampling must be an integer from 0 to 4, got "
                             f"{n_downsampling!r}")
        # k stride-2 steps need multiples of 2**k; ReflectionPad(1) at the bottleneck needs it
        # 2 px wide, and the 7x7 stem's ReflectionPad(3) needs 4 px: at least 8 px in all.
        # Checked before training, used to pad inputs at inference.
        divisor = 2**n_downsampling
        self.size_contract = SizeContract(
            divisor=divisor, min_size=max(8, 2 * divisor),
            reason=(f"ResNet generator: {n_downsampling} stride-2 steps need multiples of "
                    f"{divisor}, the reflection pads need at least {max(8, 2 * divisor)} px"
                    if n_downsampling else
                    "ResNet generator at full resolution: the reflection pads need 8 px"))
        # The same as plain attributes, for code written before contracts (ExportSpec readers).
        self.size_divisor, self.min_size = self.size_contract.divisor, self.size_contract.min_size
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        make_norm, bias = norm_layer(norm, n_labels=n_labels), uses_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(n_downsampling):  # downsampling: ngf -> 2ngf -> 4ngf (for 2 steps)
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        trunk = ngf * 2**n_downsampling
        layers += [ResnetBlock(trunk, norm=norm, dropout=dropout, n_labels=n_labels)
                   for _ in range(n_blocks)]
        for i in range(n_downsampling):  # upsampling: 4ngf -> 2ngf -> ngf (for 2 steps)
            mult = 2 ** (n_downsampling - i)
            layers += [
                upsampling_layer(ngf * mult, ngf * mult // 2, kind=upsample, bias=bias,
                                 kernel_size=3, output_padding=1),
                make_norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        # The output conv always has a bias: no norm follows it.
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, kernel_size=7, padding=0),
                   nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.accepts_labels:
            return run_layers(self.model, x, labels)
        return self.model(x)
