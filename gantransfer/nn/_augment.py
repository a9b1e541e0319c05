"""Differentiable augmentation of discriminator inputs (DiffAugment, Zhao et al. 2020).

With little data a discriminator memorises the real images and its gradient stops telling the
generator anything useful. DiffAugment applies the same *kind* of random transform to real and
fake images every time D sees them, in the D step and in the G step; the transforms are
differentiable, so G's gradient flows through them. D then never sees an un-augmented image and
cannot learn the augmentation as a cue for "real" (which augmenting only the real images would
teach it).

Policies (names as in the paper's reference code, per sample independent draws):

* ``color``: brightness + U(-0.5, 0.5), saturation × U(0, 2) around the per-pixel channel mean,
  contrast × U(0.5, 1.5) around the image mean;
* ``translation``: a shift of up to 1/8 of the side in each axis, zero-padded (mid-grey in [-1, 1]);
* ``cutout``: one square of half the side set to zero, at a random place.

Images with several parts stacked along the channels (pix2pix's ``cat([input, output], 1)``)
are described by ``channel_groups`` (e.g. ``(3, 3)``): geometry (translation, cutout) is drawn
once per sample and applied to all channels, so the parts stay aligned; colour is computed per
part (saturation mixes only one part's channels, contrast uses that part's own mean) with the
same random strengths for every part of a sample, so the colour relation between input and
output is kept.

Strength (ADA, Karras et al. 2020): with a probability ``p`` < 1 each named augmentation is
applied to each sample independently with probability ``p`` (a per-sample Bernoulli mask,
``torch.where(mask, op(x), x)``, drawn just before that op's own random numbers). ``p = 1`` draws
no mask, so it makes exactly the random draws (and gives exactly the images) of the code before
``p`` existed; ``p = 0`` returns the images unchanged and draws nothing. The engine's adaptive
strength (``TrainConfig.d_augment_target``) moves ``p`` during training; see
:mod:`gantransfer.engine.ada`.

Every random number comes from torch's global RNG on the images' device, which the engine seeds
from the run's seed and saves in checkpoints, so resumed runs stay bit-exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AUGMENT_POLICIES", "diff_augment", "parse_policy"]

AUGMENT_POLICIES = ("color", "translation", "cutout")

TRANSLATION_RATIO = 0.125  # the paper's default: shifts up to 1/8 of the image side
CUTOUT_RATIO = 0.5  # the paper's default: a square of half the image side


def parse_policy(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"color,translation"`` (or a sequence of names, or ``None``/``""``) -> a tuple of names.

    Raises:
        ValueError: an unknown or repeated name (the message lists the known ones).
    """
    if spec is None:
        return ()
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [
        str(s).strip() for s in spec]
    names = [n for n in names if n and n != "none"]
    unknown = [n for n in names if n not in AUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; expected a "
                         f"comma-separated subset of {','.join(AUGMENT_POLICIES)} (or empty)")
    if len(set(names)) != len(names):
        raise ValueError(f"augmentation names repeat in {spec!r}; give each once")
    return tuple(names)


def _uniform(x: Tensor, low: float, high: float) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * (high - low) + low


def _color(x: Tensor, groups: Sequence[int]) -> Tensor:
    brightness = _uniform(x, -0.5, 0.5)
    saturation = _uniform(x, 0.0, 2.0)
    contrast = _uniform(x, 0.5, 1.5)
    parts = []
    for part in x.split(list(groups), dim=1):
        part = part + brightness
        mean = part.mean(dim=1, keepdim=True)
        part = (part - mean) * saturation + mean
        mean = part.mean(dim=(1, 2, 3), keepdim=True)
        parts.append((part - mean) * contrast + mean)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _translation(x: Tensor, groups: Sequence[int]) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(n, device=x.device),
                                torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    # Index into the image padded by one zero pixel: a shifted-out index lands on the padding.
    gy = torch.clamp(gy + dy + 1, 0, h + 1)
    gx = torch.clamp(gx + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[gb, gy, gx].permute(0, 3, 1, 2).contiguous()


def _cutout(x: Tensor, groups: Sequence[int]) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(n, device=x.device),
                                torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx + ox - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gy, gx] = 0
    return x * mask.unsqueeze(1)


_OPS: dict[str, Callable[[Tensor, Sequence[int]], Tensor]] = {
    "color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: Tensor, policy: str | Sequence[str] | None, *,
                 channel_groups: Sequence[int] | None = None, p: float = 1.0) -> Tensor:
    """``x`` (``N×C×H×W``, values in [-1, 1]) with the named augmentations applied in the order
    color, translation, cutout, each drawn independently per sample from torch's global RNG.

    Differentiable in ``x`` (every op is arithmetic, indexing or ``torch.where``), so a
    generator's gradient flows through it. ``channel_groups`` splits the channels into parts
    stacked along dim 1 (sizes summing to C; default one part): geometry is shared by the parts,
    colour is computed per part with the same strengths. ``p`` in [0, 1] is the probability that
    each op is applied to each sample (one Bernoulli draw per sample and op, for all parts of a
    sample together); ``p = 1`` draws no mask (the draws of an unmasked run), ``p = 0`` returns
    ``x`` itself. An empty policy returns ``x`` itself and draws nothing.

    Raises:
        ValueError: an unknown policy name, ``x`` not 4-D, groups not summing to C, or ``p``
            outside [0, 1].
    """
    names = parse_policy(policy)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"the augmentation probability p must be in [0, 1]; got {p!r}")
    if not names or p == 0.0:
        return x
    if x.dim() != 4:
        raise ValueError(f"diff_augment needs N×C×H×W images; got shape {tuple(x.shape)}")
    groups = tuple(channel_groups) if channel_groups else (x.shape[1],)
    if sum(groups) != x.shape[1] or any(g < 1 for g in groups):
        raise ValueError(f"channel_groups {groups} must be positive and sum to the image's "
                         f"{x.shape[1]} channels")
    for name in AUGMENT_POLICIES:  # a fixed order, whatever order the user wrote
        if name not in names:
            continue
        if p == 1.0:  # no mask: the same random draws as before p existed
            x = _OPS[name](x, groups)
            continue
        # ADA's per-sample, per-op Bernoulli(p), drawn before the op's own numbers.
        apply = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
        x = torch.where(apply, _OPS[name](x, groups), x)
    return x
