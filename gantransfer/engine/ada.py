"""Adaptive strength of the discriminator augmentation (ADA, Karras et al. 2020, Sec. 3).

``TrainConfig.d_augment`` names the augmentations; :class:`AugmentStrength` holds ``p``, the
probability with which :meth:`EngineContext.discriminate` applies each of them to each sample.
``p`` is fixed at ``d_augment_p`` unless ``d_augment_target`` > 0, which turns on ADA's
feedback loop:

* the overfitting heuristic ``r_t = E[sign(D(x_real) - threshold)]`` (the paper's Eq. 1 uses
  ``sign(D_train)`` on logits) is accumulated over every output a discriminator gives for the
  batch a model marks as real (``ctx.discriminate(d, real, fake, real=0, threshold=...)``) in
  its discriminator steps (calls where D is trainable, not inside ``ctx.frozen(d)``);
* every ``d_augment_interval`` steps, ``p ← clamp(p + sign(r_t - target) · N / speed, 0, 1)``
  with ``N`` the training images of the interval (all ranks) and ``speed`` =
  ``d_augment_speed``: the images over which ``p`` can go from 0 to 1. ``p`` starts at 0.

A D that is confident on the real images (``r_t`` above the target, 0.6 in the paper) is
overfitting: more augmentation; one that is not gets less.

Costs: the signs are summed into an int64 tensor on the device (no host sync per step); it is
read once per interval. Under DDP the sums of all ranks are added before ``r_t`` is formed, so
``p`` is the same on every rank. Exact resume: ``p`` and the partial sums of the running interval
are part of the checkpoint (:meth:`AugmentStrength.state_dict`), and ``p`` only ever moves by
plain float arithmetic on exact integer counts, so a run split by a resume gives the same ``p``
as a straight one.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from . import distributed

__all__ = ["AugmentStrength"]

log = logging.getLogger(__name__)


class AugmentStrength:
    """``p`` for the run's ``d_augment``: fixed, or adapted by ADA when ``target`` > 0.

    Args:
        policy: the augmentation names (empty: no augmentation; ``p`` is then irrelevant).
        p: the fixed probability (ignored, and starting at 0, when ``target`` > 0).
        target: ADA's target for ``r_t`` in (0, 1); 0 turns adaptation off.
        interval: steps between adjustments of ``p``.
        speed: images over which ``p`` can go from 0 to 1.
        device: where the per-step sums are kept.
        arch: the architecture's name, for error messages.

    Attributes: ``p`` (the current probability), ``adaptive`` (ADA on), ``r_t`` (the latest
    heuristic, None before the first adjustment).
    """

    def __init__(self, policy: tuple[str, ...], *, p: float = 1.0, target: float = 0.0,
                 interval: int = 4, speed: int = 10_000, device: torch.device | str = "cpu",
                 arch: str | None = None) -> None:
        self.policy = policy
        self.adaptive = target > 0
        self.fixed_p = float(p)
        self.p = 0.0 if self.adaptive else self.fixed_p
        self.target, self.interval, self.speed = float(target), int(interval), int(speed)
        self.device = torch.device(device)
        self.arch = arch
        self.r_t: float | None = None
        self._reset()
        self._recorded = False  # any real output ever counted (the error check)

    def _reset(self) -> None:
        self._signs: Tensor | None = None  # int64 on the device: sum of sign(D(real) - t)
        self._count = 0  # outputs counted (known on the host: numel, no sync)
        self._images = 0  # training images of this interval on this rank

    @property
    def logged(self) -> bool:
        """Whether ``p`` is worth a metric (``aug_p``): augmentation on and ``p`` not fixed at 1."""
        return bool(self.policy) and (self.adaptive or self.p != 1.0)

    def record(self, output: Tensor, *, threshold: float) -> None:
        """Count ``sign(output - threshold)`` over every element of a discriminator's output on
        real images (a D step's). Nothing is read from the device. No-op when not adaptive."""
        if not self.adaptive:
            return
        out = output.detach()
        signs = (out > threshold).sum() - (out < threshold).sum()  # int64, exact; NaN counts 0
        self._signs = signs if self._signs is None else self._signs + signs
        self._count += out.numel()

    def end_step(self, *, step: int, images: int) -> None:
        """After step ``step`` (1-based count of completed steps) of ``images`` training images
        on this rank; adjusts ``p`` when ``step`` closes an interval. Every rank must call it
        at every step (the adjustment is a collective under DDP).

        Raises:
            ValueError: ADA is on and a whole interval passed without a single real output
                recorded since the start of the run (the model does not mark its real batch).
        """
        if not self.adaptive:
            return
        self._images += images
        if step % self.interval:
            return
        signs = self._signs if self._signs is not None else torch.zeros(
            (), dtype=torch.int64, device=self.device)
        sums = torch.stack([signs.to(self.device, torch.int64),
                            torch.tensor(self._count, dtype=torch.int64, device=self.device),
                            torch.tensor(self._images, dtype=torch.int64, device=self.device)])
        total_signs, count, n_images = distributed.sum_over_ranks(sums).tolist()
        if count == 0:
            if not self._recorded:
                raise ValueError(
                    f"adaptive augmentation (d_augment_target={self.target:g}) found no "
                    f"discriminator output on real images in {step} steps of "
                    f"{self.arch or 'this model'}: its train_step must mark the batch of real "
                    "training images in the discriminator step, e.g. "
                    "ctx.discriminate(d, real, fake, real=0, threshold=gan_loss.threshold), or "
                    "turn adaptive augmentation off (d_augment_target=0)")
            return  # no D step in this interval (a model that updates D less often): wait
        self._recorded = True
        self.r_t = total_signs / count
        direction = (self.r_t > self.target) - (self.r_t < self.target)
        self.p = min(max(self.p + direction * n_images / self.speed, 0.0), 1.0)
        self._reset()

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self, *, gather: bool = True, group: Any = None) -> dict[str, Any]:
        """Plain data for a checkpoint: ``p`` and the running interval's partial sums.

        Under DDP (``gather`` True; every rank must call it) the partial sums are those of all
        ranks added together, so that :meth:`load_state_dict` on rank 0 alone carries them on
        exactly; ``gather=False`` saves this rank's own (a resume then continues approximately).
        """
        signs = int(self._signs) if self._signs is not None else 0
        local = (signs, self._count, self._images)
        parts = distributed.all_gather_objects(local, group=group) if gather else [local]
        signs, count, images = (sum(x) for x in zip(*parts, strict=True))
        return {"adaptive": self.adaptive, "p": self.p, "r_t": self.r_t, "signs": signs,
                "count": count, "images": images, "recorded": self._recorded}

    def load_state_dict(self, state: dict[str, Any] | None, *, rank: int = 0) -> None:
        """Restore what :meth:`state_dict` saved; the partial sums go to rank 0 only (they are
        every rank's together). A checkpoint without adaptive state (ADA was off, or an older
        gantransfer) leaves ADA starting afresh at 0; with ADA off now, ``p`` stays fixed."""
        if not self.adaptive:
            return
        if not state or not state.get("adaptive"):
            log.info("adaptive augmentation starts at p = 0: the checkpoint has no ADA state")
            return
        self.p, self.r_t = float(state["p"]), state.get("r_t")
        self._recorded = bool(state["recorded"])
        self._reset()
        if rank == 0:
            self._signs = torch.tensor(int(state["signs"]), dtype=torch.int64,
                                       device=self.device)
            self._count, self._images = int(state["count"]), int(state["images"])
