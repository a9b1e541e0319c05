"""Calling a discriminator on real and fake batches without letting them see each other.

Why this exists: a network whose layers normalise with the statistics of the whole batch
(BatchNorm in training mode) gives a fake image a different logit when it shares a forward with
real images than when it is judged alone. A GAN step that scores ``cat([real, fake])`` in the D
update but ``fake`` alone in the G update trains D on one function and G against another; with
BatchNorm, D then learns to call a fakes-only batch real and G gets no gradient (DCGAN collapsed
to grey noise this way). The DCGAN practice is "each batch all real or all fake" (Radford et al.
2015; pytorch/examples/dcgan runs D on real and fake separately).

For per-sample normalisation (instance norm, layer norm, group norm, none) one forward over the
concatenation is exactly two separate forwards, so it is kept there: one larger batch is faster.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._augment import diff_augment, parse_policy

__all__ = ["discriminate", "uses_batch_statistics"]

Batch = Tensor | Sequence[Tensor]


def uses_batch_statistics(net: nn.Module) -> bool:
    """Whether ``net``'s output for one sample depends on the other samples of its batch.

    True when a batch-norm layer (BatchNorm1d/2d/3d, SyncBatchNorm, lazy variants) normalises
    with batch statistics in its current mode: in training mode, or in any mode without running
    statistics. A network (or any submodule) can declare the answer itself with a boolean
    attribute ``batch_dependent`` (e.g. a minibatch-standard-deviation layer, which no type check
    can recognise); ``batch_dependent = True`` anywhere wins.
    """
    for m in net.modules():
        declared = getattr(m, "batch_dependent", None)
        if declared is True:
            return True
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (
                m.training or not m.track_running_stats):
            return True
    return False


def _as_args(batch: Batch) -> tuple[Tensor, ...]:
    return (batch,) if isinstance(batch, Tensor) else tuple(batch)


def discriminate(d: nn.Module, *batches: Batch, augment: str | Sequence[str] | None = None,
                 channel_groups: Sequence[int] | None = None, p: float = 1.0
                 ) -> tuple[Tensor, ...]:
    """``d``'s output for each batch, every one computed as if ``d`` saw that batch alone.

    Each batch is a tensor (the image batch) or a sequence of tensors passed to ``d`` as
    positional arguments (e.g. ``(images, labels)`` for a conditional discriminator). When ``d``
    has no batch statistics (:func:`uses_batch_statistics`) the batches are concatenated along
    dim 0 and judged in one forward, which is exactly equivalent; otherwise each batch gets its
    own forward. Tensors of a later batch are cast to the dtype of the first batch's tensors
    (fakes from an autocast generator next to fp32 real images).

    ``augment`` names differentiable augmentations (:func:`gantransfer.nn.diff_augment`, e.g.
    ``"color,translation,cutout"``) applied to the image of every batch, real and fake alike,
    before ``d`` sees it; in a tuple batch only the first tensor (the image) is augmented, the
    rest (labels) pass unchanged. ``channel_groups`` describes images stacked along the channels
    (pix2pix's ``(input, output)`` pairs: ``(3, 3)``); see :func:`diff_augment`. ``p`` is the
    probability that each augmentation is applied to each sample (1: always, as DiffAugment).

    Returns:
        One output per batch, in order (for a ``d`` that returns a tuple of heads, one tuple
        per batch).

    Raises:
        ValueError: no batches, batches with different numbers of arguments, an unknown
            augmentation name, or ``p`` outside [0, 1].

    Example::

        real_logits, fake_logits = discriminate(d, real, fake.detach())
    """
    if not batches:
        raise ValueError("discriminate needs at least one batch")
    args = [_as_args(b) for b in batches]
    arity = len(args[0])
    if any(len(a) != arity for a in args):
        raise ValueError("every batch passed to discriminate must have the same number of "
                         f"arguments; got {[len(a) for a in args]}")
    policy = parse_policy(augment)
    if policy:
        args = [(diff_augment(a[0], policy, channel_groups=channel_groups, p=p), *a[1:])
                for a in args]
    first = args[0]
    args = [first] + [tuple(t.to(f.dtype) if t.is_floating_point() and f.is_floating_point()
                            else t for t, f in zip(a, first, strict=True)) for a in args[1:]]
    if len(args) == 1 or uses_batch_statistics(d):
        return tuple(d(*a) for a in args)
    sizes = [a[0].shape[0] for a in args]
    out = d(*(torch.cat(parts, 0) for parts in zip(*args, strict=True)))
    if isinstance(out, Tensor):
        return tuple(out.split(sizes, 0))
    # Several heads (e.g. adversarial logits and class logits): split each the same way.
    heads = [o.split(sizes, 0) for o in out]
    return tuple(type(out)(h[i] for h in heads) for i in range(len(sizes)))
