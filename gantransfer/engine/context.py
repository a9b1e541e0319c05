"""The engine's :class:`~gantransfer.model.StepContext`: optimisation mechanics for train_step.

The model decides which losses drive which optimizer group and in which order; this class
decides how a step is taken: zero-grad, (scaled) backward, unscale, finiteness check, clipping,
optimizer step, EMA. Non-finite steps are skipped and counted, never applied.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from . import distributed
from .ema import EMA

__all__ = ["EngineContext", "TrainingDivergedError"]

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """Too many consecutive steps had non-finite losses or gradients; training stopped."""


class EngineContext:
    """Implements the StepContext protocol for one run (built by the Trainer).

    Attributes read by models: ``step`` (steps completed before this one), ``epoch``, ``rank``,
    ``world_size``, ``device``. Counters read by the trainer: ``skipped_this_step``,
    ``nonfinite_total``, ``optimizer_steps`` (per group, saved in checkpoints).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        optimizers: dict[str, torch.optim.Optimizer],
        groups: dict[str, list[str]],
        scalers: dict[str, torch.amp.GradScaler],
        precision: str,
        device: torch.device,
        grad_clip: float | None,
        ema: EMA | None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.model = model
        self.optimizers = optimizers
        self.groups = groups
        self.scalers = scalers
        self.precision = precision
        self.device = device
        self.grad_clip = grad_clip
        self.ema = ema
        self.rank = rank
        self.world_size = world_size
        self.step = 0
        self.epoch = 0
        self.skipped_this_step = False
        self.nonfinite_total = 0
        self.optimizer_steps = {g: 0 for g in optimizers}
        # Set by the Trainer while the nets are DDP-wrapped (a distributed run), else None.
        self.wrapper: distributed.NetWrapper | None = None
        self._params = {
            g: [p for name in nets for p in model.nets[name].parameters()]
            for g, nets in groups.items()
        }

    # -- StepContext -----------------------------------------------------------------------
    def optimize(self, group: str, loss: Tensor) -> bool:
        """Zero the group's grads, backward, unscale, check, clip, step, EMA; False if skipped."""
        if group not in self.optimizers:
            raise KeyError(
                f"optimizer group {group!r} is unknown; the model defines {sorted(self.optimizers)}"
            )
        opt = self.optimizers[group]
        params = self._params[group]
        finite = bool(torch.isfinite(loss.detach()).all())
        if self.world_size > 1:
            # Every rank must make the same choice: a rank that skips the backward would leave
            # the others waiting in DDP's gradient all-reduce.
            finite = not distributed.any_rank(not finite, device=self.device)
        if not finite:
            # No backward: a NaN loss would poison the grads of every net it touches.
            return self._skip(group, "loss")
        for p in params:
            p.grad = None
        scaler = self.scalers.get(group)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)  # records the scaler's inf check for update()
        else:
            loss.backward()
        with_grad = [p for p in params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in with_grad]) if with_grad else None
        if norm is not None and not bool(torch.isfinite(norm)):
            if scaler is not None:
                scaler.update()  # halves the scale, as scaler.step would have on an inf
            for p in params:
                p.grad = None
            return self._skip(group, "gradient")
        if self.grad_clip is not None and norm is not None:
            torch.nn.utils.clip_grads_with_norm_(with_grad, self.grad_clip, norm)  # takes params
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        self.optimizer_steps[group] += 1
        if self.ema is not None:
            with self._plain_nets():  # the EMA tracks the plain modules' state_dict keys
                self.ema.update(self.model.nets, self.groups[group])
        return True

    @contextlib.contextmanager
    def frozen(self, *nets: str | nn.Module) -> Iterator[None]:
        """Parameters of ``nets`` (names in model.nets or modules) get requires_grad False inside."""
        modules = [self.model.nets[n] if isinstance(n, str) else n for n in nets]
        params = [p for m in modules for p in m.parameters()]
        before = [p.requires_grad for p in params]
        # Under DDP the frozen nets are called unwrapped inside the block: their wrapper would
        # otherwise expect gradients that never come. Nets outside the block keep their wrapper,
        # so the gradient sync of the net being trained still happens.
        names = self.wrapper.names_of(nets) if self.wrapper is not None else []
        try:
            for p in params:
                p.requires_grad_(False)
            with self._plain_nets(names):
                yield
        finally:
            for p, flag in zip(params, before, strict=True):
                p.requires_grad_(flag)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Autocast to bf16/fp16 for the run's precision; a no-op context in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    # -- internals -------------------------------------------------------------------------
    def _plain_nets(self, names: list[str] | None = None) -> contextlib.AbstractContextManager[None]:
        if self.wrapper is None:
            return contextlib.nullcontext()
        return self.wrapper.unwrapped(names)

    def _skip(self, group: str, what: str) -> bool:
        self.skipped_this_step = True
        self.nonfinite_total += 1
        log.warning("step %d: non-finite %s in optimizer group %r; step skipped",
                    self.step, what, group)
        return False
