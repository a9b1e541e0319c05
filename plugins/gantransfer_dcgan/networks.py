"""DCGAN generator and discriminator (Radford et al. 2015), as in pytorch/examples/dcgan.

Both networks are derived from ``image_size`` (a power of two from 16 to 256): the generator
starts from a 4×4 map and doubles it with stride-2 transposed convolutions until it reaches
``image_size``; the discriminator mirrors it. At 64 px, ``ngf = ndf = 64`` and 3 channels the
layers, widths and parameter counts are exactly those of pytorch/examples (generator 3,576,704,
discriminator 2,765,568 parameters). Widths grow ×2 per scale but are capped at 8× the base width,
so 128 and 256 px add cheap outer layers instead of 2048-channel ones.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from gantransfer.nn import check_labels, init_weights, projection

__all__ = ["G_CONDITIONINGS", "IMAGE_SIZES", "DCGANDiscriminator", "DCGANGenerator",
           "check_image_size"]

IMAGE_SIZES = (16, 32, 64, 128, 256)
_MAX_MULT = 8  # widest layer = 8 × base width, as in the 64 px original
# How a class-conditional generator takes its label: the tutorial's one-hot concatenated to z,
# or AC-GAN's learned embedding multiplied into z (Odena et al. 2017).
G_CONDITIONINGS = ("concat", "embedding")


def check_image_size(image_size: int) -> int:
    """Return the number of stride-2 scales between 4×4 and ``image_size``.

    Raises:
        ValueError: ``image_size`` is not one of 16, 32, 64, 128, 256.
    """
    if not isinstance(image_size, int) or image_size not in IMAGE_SIZES:
        raise ValueError(
            f"DCGAN image_size must be a power of two from 16 to 256 "
            f"({', '.join(map(str, IMAGE_SIZES))}); got {image_size!r}"
        )
    return int(math.log2(image_size)) - 2


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"DCGAN {name} must be a positive integer; got {value!r}")


def _widths(base: int, n_scales: int) -> list[int]:
    # Widths from the 4×4 end outward: base·min(2^k, 8) for k = n_scales-1 … 0.
    return [base * min(2**k, _MAX_MULT) for k in range(n_scales - 1, -1, -1)]


class DCGANGenerator(nn.Module):
    """DCGAN generator: ``N×nz`` (or ``N×nz×1×1``) noise -> ``N×C×S×S`` images in [-1, 1].

    Keyword-only arguments: ``image_size`` (S), ``nz`` (latent size, paper's z dimension),
    ``ngf`` (base width), ``out_channels`` (C, 1 or 3 for images). Convolutions have no bias
    because every one but the last is followed by BatchNorm (the last by Tanh, as in the
    reference). Weights start from N(0, 0.02).

    Raises:
        ValueError: an unsupported ``image_size`` or a non-positive width.
    """

    def __init__(self, *, image_size: int = 64, nz: int = 100, ngf: int = 64,
                 out_channels: int = 3, n_classes: int = 0, conditioning: str = "concat"
                 ) -> None:
        super().__init__()
        n_scales = check_image_size(image_size)
        _check_positive(nz=nz, ngf=ngf, out_channels=out_channels)
        if n_classes < 0 or conditioning not in G_CONDITIONINGS:
            raise ValueError(f"DCGANGenerator: n_classes must be >= 0 and conditioning one of "
                             f"{', '.join(G_CONDITIONINGS)}; got {n_classes!r}, {conditioning!r}")
        self.nz, self.image_size, self.out_channels = nz, image_size, out_channels
        # Class-conditional (n_classes > 0): called g(z, labels), see docs/dcgan.md.
        self.n_classes, self.conditioning = n_classes, conditioning
        self.accepts_labels = n_classes > 0
        z_width = nz + n_classes if n_classes and conditioning == "concat" else nz
        if n_classes and conditioning == "embedding":
            self.embedding = nn.Embedding(n_classes, nz)
        widths = _widths(ngf, n_scales)
        layers: list[nn.Module] = [
            # 1×1 -> 4×4
            nn.ConvTranspose2d(z_width, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for w_in, w_out in itertools.pairwise(widths):
            layers += [
                nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_weights(self, kind="normal", gain=0.02)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.nz or z.shape[2:] != (1, 1):
            raise ValueError(
                f"DCGANGenerator expects latents of shape N×{self.nz} or N×{self.nz}×1×1; "
                f"got {tuple(z.shape)}"
            )
        if self.n_classes:
            if labels is None:
                raise ValueError(f"this DCGANGenerator is class-conditional ({self.n_classes} "
                                 "classes): call it as g(z, labels)")
            labels = check_labels(labels, self.n_classes, batch=z.shape[0],
                                  owner="DCGANGenerator")
            if self.conditioning == "concat":  # the tutorial: one-hot label next to the noise
                one_hot = nn.functional.one_hot(labels, self.n_classes).to(z.dtype)
                z = torch.cat([z, one_hot[:, :, None, None]], dim=1)
            else:  # AC-GAN: the label's embedding scales the noise element-wise
                z = z * self.embedding(labels).to(z.dtype)[:, :, None, None]
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: ``N×C×S×S`` images in [-1, 1] -> ``N`` raw logits (no sigmoid).

    Keyword-only arguments: ``image_size`` (S), ``in_channels`` (C), ``ndf`` (base width),
    ``n_classes`` (> 0: a class-conditional projection discriminator, called ``d(x, labels)``),
    ``dropout`` (probability of the Dropout after every LeakyReLU; 0 = none, as in the paper;
    the TensorFlow DCGAN tutorial uses 0.3). Strided 4×4 convolutions with LeakyReLU(0.2),
    BatchNorm on all but the first, and a final 4×4 convolution to one logit. Weights start from
    N(0, 0.02).

    Raises:
        ValueError: an unsupported ``image_size``, a non-positive width or a dropout outside
            [0, 1).
    """

    def __init__(self, *, image_size: int = 64, in_channels: int = 3, ndf: int = 64,
                 n_classes: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        n_scales = check_image_size(image_size)
        _check_positive(ndf=ndf, in_channels=in_channels)
        if n_classes < 0:
            raise ValueError(f"DCGANDiscriminator n_classes must be >= 0; got {n_classes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DCGAN discriminator dropout must be in [0, 1); got {dropout!r}")
        # Class-conditional (n_classes > 0): a projection discriminator (Miyato & Koyama 2018),
        # called d(x, labels).
        self.n_classes = n_classes
        self.accepts_labels = n_classes > 0

        def drop() -> list[nn.Module]:
            return [nn.Dropout(dropout)] if dropout > 0 else []

        widths = _widths(ndf, n_scales)[::-1]  # ndf, 2·ndf, … (capped) from the image inward
        layers: list[nn.Module] = [
            # No BatchNorm on the input layer (Radford et al. 2015, §3).
            nn.Conv2d(in_channels, widths[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            *drop(),
        ]
        for w_in, w_out in itertools.pairwise(widths):
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                nn.LeakyReLU(0.2, inplace=True),
                *drop(),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))  # 4×4 -> 1×1 logit
        self.main = nn.Sequential(*layers)
        if n_classes:
            self.embedding = nn.Embedding(n_classes, widths[-1])  # V of Eq. 3
        init_weights(self, kind="normal", gain=0.02)
        if n_classes:
            nn.init.normal_(self.embedding.weight, 0.0, 0.02)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if not self.n_classes:
            return self.main(x).flatten()
        if labels is None:
            raise ValueError(f"this DCGANDiscriminator is class-conditional ({self.n_classes} "
                             "classes): call it as d(x, labels)")
        labels = check_labels(labels, self.n_classes, batch=x.shape[0], owner="DCGANDiscriminator")
        # Projection discriminator (Miyato & Koyama 2018, Eq. 3): D(x, y) = ψ(φ(x)) + y^T V φ(x),
        # φ(x) the 4×4 features before the last convolution, ψ that convolution.
        features = self.main[:-1](x)
        logits = self.main[-1](features).flatten()
        return logits + projection(features, labels, self.embedding).flatten(1).sum(1)
