"""PatchGAN and 1×1 pixel discriminators, laid out like the official CycleGAN/pix2pix code.

* :class:`NLayerDiscriminator` (``patchgan``): Isola et al. 2017's Markovian discriminator; with
  ``n_layers=3`` each output logit sees a 70×70 input patch. Layers live in a Sequential named
  ``model`` (conv keys ``model.0, model.2, model.5, model.8, model.11`` for 3 layers).
* :class:`PixelDiscriminator` (``pixel``): 1×1 convs, one logit per pixel. Layers live in a
  Sequential named ``net`` (conv keys ``net.0, net.2, net.5``), as in the official code.

Both return raw logits ``N×1×H'×W'`` (the loss applies the sigmoid when it needs one).
"""

from __future__ import annotations

from torch import Tensor, nn

from gantransfer.nn import SizeContract, norm_layer, uses_bias

__all__ = ["NLayerDiscriminator", "PixelDiscriminator", "StyleDiscriminator"]


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4×4 convs, one stride-1 conv, a 1-channel stride-1 conv.

    Input ``N×in_channels×H×W`` with H, W at least ``size_contract.min_size`` (24 px for 3
    layers); output logits ``N×1×(H/2^n - 2)×(W/2^n - 2)`` (roughly).
    """

    def __init__(self, in_channels: int = 3, *, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"patchgan n_layers must be >= 1, got {n_layers}")
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        # The first conv has no norm after it, hence always a bias.
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=2, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=1, padding=1, bias=bias),
            make_norm(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)
        self.size_contract = SizeContract(
            min_size=_patchgan_min_size(n_layers), reason=f"PatchGAN discriminator with "
            f"{n_layers} stride-2 layers needs a logit map of at least 1x1")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _patchgan_min_size(n_layers: int) -> int:
    """The smallest side whose logit map is at least 1×1 and whose normalised maps have more
    than one value (instance norm needs that), following the convolutions' arithmetic:
    ``out = (in + 2*pad - kernel) // stride + 1`` with kernel 4 and padding 1."""
    def fits(side: int) -> bool:
        for _ in range(n_layers):  # stride-2 convs (the first has no norm; the rest have one)
            side = (side + 2 - 4) // 2 + 1
            if side < 1:
                return False
        # The stride-1 conv (side - 1) feeds a norm and the output conv, which both need at
        # least 2 px: one value per channel is no statistic, and the output would be 0x0.
        return side - 1 >= 2

    return next(side for side in range(1, 2 ** (n_layers + 3)) if fits(side))


class PixelDiscriminator(nn.Module):
    """1×1 PatchGAN ("PixelGAN"): judges each pixel's colour independently.

    Output logits ``N×1×H×W``. As in the official code the last conv's bias follows the norm
    rule (no bias with batch norm).
    """

    def __init__(self, in_channels: int = 3, *, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), uses_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=bias),
            make_norm(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=bias),
        )
        # A 1x1 image gives the norm layer one value per channel: instance norm refuses that.
        self.size_contract = SizeContract(
            min_size=1 if norm == "none" else 2,
            reason=f"pixel discriminator: its {norm} norm needs more than one pixel")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class StyleDiscriminator(nn.Module):
    """StarGAN's discriminator (Choi et al. 2018, §3.1): one trunk, two heads.

    The trunk is the PatchGAN's (:class:`NLayerDiscriminator` without its last convolution);
    ``D_src`` is that last convolution (a map of real/fake logits) and ``D_cls`` a 1×1
    convolution to ``n_labels`` logits averaged over the map (the auxiliary classifier of the
    style of an image). ``forward(x)`` returns ``(src N×1×h×w, cls N×n_labels)``.
    """

    def __init__(self, in_channels: int = 3, *, n_labels: int, ndf: int = 64, n_layers: int = 3,
                 norm: str = "none") -> None:
        super().__init__()
        if n_labels < 2:
            raise ValueError(f"a style discriminator needs n_labels >= 2, got {n_labels}")
        patch = NLayerDiscriminator(in_channels, ndf=ndf, n_layers=n_layers, norm=norm)
        self.trunk = patch.model[:-1]
        self.src = patch.model[-1]
        self.cls = nn.Conv2d(self.src.in_channels, n_labels, kernel_size=1)
        self.n_labels = n_labels
        self.size_contract = patch.size_contract

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.src(h), self.cls(h).mean(dim=(2, 3))
