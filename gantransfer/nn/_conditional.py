"""Label-conditioned building blocks: the network contract for labels, conditional instance
normalisation, and the two ways a discriminator sees a label.

The contract (documented in docs/plugins.md, like the size contract): a network that takes a
label declares ``accepts_labels = True`` and is called ``net(x, labels)`` with ``labels`` an
int64 ``N`` tensor of class (or style) indexes. :func:`accepts_labels` is the one reader.
Inside a network, a layer that needs the labels declares ``takes_labels = True`` and
:func:`run_layers` passes them to it (a conditional norm, or a residual block holding one).

* :class:`ConditionalInstanceNorm2d`: instance norm whose scale and shift are chosen per label
  (Dumoulin et al. 2017, "A learned representation for artistic style", Eq. 5:
  ``z = γ_s · (x - μ) / σ + β_s``). One generator holds every style's γ_s, β_s.
* :class:`ConcatLabels`: any image discriminator made conditional the tutorial's way: the
  one-hot label tiled to the image size and concatenated as extra input channels (cGAN, Mirza &
  Osindero 2014; StarGAN's generator input, Choi et al. 2018, §3.1).
* :func:`projection`: the projection discriminator's label term (Miyato & Koyama 2018, Eq. 3):
  ``D(x, y) = ψ(φ(x)) + y^T V φ(x)``: an embedding of the label dotted with the features.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ConcatLabels",
    "ConditionalInstanceNorm2d",
    "accepts_labels",
    "check_labels",
    "one_hot_planes",
    "projection",
    "run_layers",
]


def accepts_labels(net: nn.Module) -> bool:
    """Whether ``net`` declares the label contract (``net(x, labels)``, ``accepts_labels``).

    DDP wrappers are looked through (``.module``)."""
    inner = getattr(net, "module", net)
    return bool(getattr(inner, "accepts_labels", False))


def check_labels(labels: Tensor, n_labels: int, *, batch: int, owner: str) -> Tensor:
    """``labels`` as an int64 ``N`` tensor; ValueError for another shape or dtype."""
    if labels.dim() != 1 or labels.shape[0] != batch or labels.is_floating_point():
        raise ValueError(f"{owner} expects int64 labels of shape ({batch},) in [0, {n_labels}); "
                         f"got {labels.dtype} {tuple(labels.shape)}")
    return labels.long()


def one_hot_planes(labels: Tensor, n_labels: int, *, height: int, width: int,
                   dtype: torch.dtype) -> Tensor:
    """``N×n_labels×height×width``: each row's one-hot label, tiled over the image."""
    planes = F.one_hot(labels.long(), n_labels).to(dtype)
    return planes[:, :, None, None].expand(-1, -1, height, width)


def run_layers(layers: Iterable[nn.Module], x: Tensor, labels: Tensor | None) -> Tensor:
    """Run ``layers`` in order, passing ``labels`` to the ones that declare ``takes_labels``."""
    for layer in layers:
        x = layer(x, labels) if getattr(layer, "takes_labels", False) else layer(x)
    return x


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm with a learned scale γ_s and shift β_s per label s (Dumoulin et al. 2017).

    ``forward(x, labels)``: ``x`` is ``N×C×H×W``, ``labels`` int64 ``N``. γ starts at 1 and β at
    0 for every label, so a fresh network behaves like plain (affine-free) instance norm.
    Parameters: ``2 × n_labels × C`` in one embedding table (``embedding.weight``).
    """

    takes_labels = True

    def __init__(self, channels: int, n_labels: int) -> None:
        super().__init__()
        if n_labels < 1:
            raise ValueError(f"a conditional norm needs n_labels >= 1, got {n_labels}")
        self.channels, self.n_labels = channels, n_labels
        self.norm = nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
        self.embedding = nn.Embedding(n_labels, 2 * channels)
        with torch.no_grad():
            self.embedding.weight[:, :channels].fill_(1.0)
            self.embedding.weight[:, channels:].zero_()

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            raise ValueError(f"ConditionalInstanceNorm2d({self.channels}) needs the labels: call "
                             "the network as net(x, labels)")
        gamma, beta = self.embedding(labels.long()).to(x.dtype).chunk(2, dim=1)
        return self.norm(x) * gamma[:, :, None, None] + beta[:, :, None, None]


class ConcatLabels(nn.Module):
    """A discriminator (or generator) that sees the label as tiled one-hot input channels.

    ``net`` must take ``in_channels + n_labels`` channels; ``forward(x, labels)`` concatenates
    the one-hot planes to ``x`` and runs it. The size contract of ``net`` is kept.
    """

    accepts_labels = True

    def __init__(self, net: nn.Module, n_labels: int) -> None:
        super().__init__()
        if n_labels < 1:
            raise ValueError(f"ConcatLabels needs n_labels >= 1, got {n_labels}")
        self.net, self.n_labels = net, n_labels
        contract = getattr(net, "size_contract", None)
        if contract is not None:
            self.size_contract = contract

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        labels = check_labels(labels, self.n_labels, batch=x.shape[0], owner="ConcatLabels")
        planes = one_hot_planes(labels, self.n_labels, height=x.shape[2], width=x.shape[3],
                                dtype=x.dtype)
        return self.net(torch.cat([x, planes], dim=1))


def projection(features: Tensor, labels: Tensor, embedding: nn.Embedding) -> Tensor:
    """The projection term ``y^T V φ(x)`` (Miyato & Koyama 2018, Eq. 3) for every location.

    ``features`` ``N×C×H×W`` (φ(x) before pooling), ``embedding`` ``n_labels × C`` (V). Returns
    ``N×1×H×W``: a discriminator with one logit per image sums (or averages) it, a patch
    discriminator adds it to its logit map.
    """
    v = embedding(labels.long()).to(features.dtype)  # N×C
    return (features * v[:, :, None, None]).sum(dim=1, keepdim=True)
