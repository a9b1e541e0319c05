"""The engine's :class:`~gantransfer.model.StepContext`: optimisation mechanics for train_step.

The model decides which losses drive which optimizer group and in which order; this class
decides how a step is taken: zero-grad, (scaled) backward, unscale, finiteness check, clipping,
optimizer step, EMA. Non-finite steps are skipped and counted, never applied.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..nn import discriminate, parse_policy
from ..precision import Precision
from . import distributed
from .ada import AugmentStrength
from .ema import EMA

if TYPE_CHECKING:
    from ..model import GANModel

__all__ = ["NORM_TYPES", "EngineContext", "TrainingDivergedError", "fp32_norms",
           "low_precision"]

log = logging.getLogger(__name__)


# Devices whose low-precision batch/instance norm kernels accumulate their statistics in fp32
# (measured on an H200, torch 2.11: the bf16 output equals the fp32 result rounded to bf16).
# There the fp32 casts of fp32_norms would only add kernels and Python hooks to a step that is
# often launch-bound; elsewhere (CPU's bf16 kernels are not exact) the norms get fp32 inputs.
_EXACT_NORM_DEVICES = frozenset({"cuda"})

# Below this gradient-scaler scale an overflow is counted as a non-finite step: the scaler has
# halved from 2**16 to under 1, so the gradients are non-finite whatever the scale.
_SCALER_FLOOR = 1.0

# Batch/instance/sync-batch norm (all _NormBase), group norm and layer norm.
NORM_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.GroupNorm,
                                           nn.LayerNorm)


def _autocasting(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # pragma: no cover - torch < 2.4 took no device argument
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled()


@contextlib.contextmanager
def fp32_norms(norms: Iterable[nn.Module], *, device_type: str) -> Iterator[None]:
    """Inside the block, while autocast is on, ``norms`` get their input cast to fp32.

    Why: torch's autocast leaves batch/instance norm off its fp32 list, so they would run in
    the input's dtype, and on CPU the bf16 kernels lose accuracy in the statistics (measured:
    a bf16 InstanceNorm of a conv output with mean 20 was off by ~9x the error of rounding its
    exact fp32 result to bf16). With an fp32 input the statistics, BatchNorm's running buffers
    and the output are fp32; the next convolution casts back to the low dtype itself, so the
    activations it saves for backward stay small. Casting the output back here instead was
    measured slower on CPU (one more pass over every normalised tensor) for ~3% less memory.
    The cost: each norm saves its fp32 input for backward (measured on a CycleGAN step at crop
    256: peak 2.6 GB against 2.1 GB with bf16 norms and 2.9 GB in fp32).

    The hook does nothing while autocast is off, so a region a model runs with autocast
    disabled (a gradient penalty, say) stays plain fp32. Returns nothing; raises nothing.
    """

    def to_fp32(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not _autocasting(device_type):
            return None
        return tuple(a.float() if isinstance(a, Tensor) and a.is_floating_point() else a
                     for a in args)

    handles = [m.register_forward_pre_hook(to_fp32) for m in norms]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def low_precision(norms: Iterable[nn.Module], *, device: torch.device,
                  dtype: torch.dtype) -> Iterator[None]:
    """``torch.autocast(device.type, dtype)`` with ``norms`` computing in fp32 (see
    :func:`fp32_norms`); what :meth:`EngineContext.autocast` returns for bf16 and fp16."""
    with torch.autocast(device.type, dtype=dtype), fp32_norms(norms, device_type=device.type):
        yield


class TrainingDivergedError(RuntimeError):
    """Too many consecutive steps had non-finite losses or gradients; training stopped."""


class EngineContext:
    """Implements the StepContext protocol for one run (built by the Trainer).

    Attributes read by models: ``step`` (steps completed before this one), ``epoch``, ``rank``,
    ``world_size``, ``device``. ``d_augment`` (names, empty = off) is the augmentation
    :meth:`discriminate` applies to every discriminator input, each op to each sample with
    probability ``augment.p`` (an :class:`~gantransfer.engine.ada.AugmentStrength`: fixed, or
    adapted by ADA from the real outputs :meth:`discriminate` records; ``None``: p = 1).
    Counters read by the trainer: ``skipped_this_step``, ``nonfinite_total``,
    ``optimizer_steps`` (per group, saved in checkpoints).
    """

    def __init__(
        self,
        model: GANModel,
        *,
        optimizers: dict[str, torch.optim.Optimizer],
        groups: dict[str, list[str]],
        scalers: dict[str, torch.amp.GradScaler],
        precision: Precision | str,
        device: torch.device,
        grad_clip: float | None,
        ema: EMA | None,
        rank: int = 0,
        world_size: int = 1,
        d_augment: str | Sequence[str] = (),
        augment: AugmentStrength | None = None,
    ) -> None:
        self.model = model
        self.optimizers = optimizers
        self.groups = groups
        self.scalers = scalers
        self.precision = Precision(precision)  # resolved by the Trainer (a name is accepted)
        self.device = device
        self.grad_clip = grad_clip
        self.ema = ema
        self.rank = rank
        self.world_size = world_size
        self.d_augment = parse_policy(d_augment)
        self.augment = augment
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
        grads = [p.grad for p in with_grad if p.grad is not None]  # (the same list, for mypy)
        norm = torch.nn.utils.get_total_norm(grads) if with_grad else None
        if norm is not None and not bool(torch.isfinite(norm)):
            for p in params:
                p.grad = None
            if scaler is not None:
                scale = float(scaler.get_scale())
                scaler.update()  # halves the scale, as scaler.step would have on an inf
                if scale > _SCALER_FLOOR:
                    # fp16 overflow of the *scaled* gradients: the scaler searching for its
                    # scale (it starts at 2**16), not divergence. Not counted, so the first
                    # steps of an fp16 run neither warn nor count towards max_nonfinite_steps.
                    log.debug("step %d: fp16 gradient overflow in group %r at scale %g; "
                              "scale halved, step skipped", self.step, group, scale)
                    return False
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
        """Mixed precision for the run's precision; a no-op context in fp32.

        bf16/fp16: ``torch.autocast`` (convolutions and matmuls in the low dtype); normalisation
        statistics are fp32: on CPU every norm layer gets an fp32 input inside the block (see
        :func:`fp32_norms`), on CUDA the kernels accumulate in fp32 themselves. Losses are the
        model's to keep in fp32 (``.float()`` on logits), though torch's autocast already runs
        mse/l1/BCE-with-logits in fp32.
        """
        dtype = self.precision.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        if self.device.type in _EXACT_NORM_DEVICES:
            return torch.autocast(self.device.type, dtype=dtype)
        # Looked up per call (cheap next to a step): a distributed run swaps BatchNorm layers
        # for SyncBatchNorm after this context is built.
        norms = [m for m in self.model.nets.modules() if isinstance(m, NORM_TYPES)]
        return low_precision(norms, device=self.device, dtype=dtype)

    def discriminate(self, d: nn.Module, *batches: Any,
                     channel_groups: Sequence[int] | None = None, real: int | None = None,
                     threshold: float = 0.0) -> tuple[Any, ...]:
        """``d`` on each batch as if alone, every image augmented with the run's ``d_augment``
        first, each op with probability ``augment.p`` (see :func:`gantransfer.nn.discriminate`;
        ``channel_groups`` for images stacked along the channels, e.g. pix2pix's ``(input,
        output)`` pairs).

        ``real``: the index of the batch of real training images (None: none). With adaptive
        augmentation on, ``sign(output - threshold)`` of that batch's output (the first head of
        a ``d`` that returns several) is counted, but only in a discriminator step: while
        gradients are enabled and ``d`` has trainable parameters (not inside
        ``ctx.frozen(d)``). ``threshold``: the output that separates real from fake for the
        model's loss (``GANLoss.threshold``: 0 for logits, 0.5 for lsgan).

        Raises:
            ValueError: ``real`` is not the index of one of ``batches`` (see also
                :func:`gantransfer.nn.discriminate`).
        """
        if real is not None and (isinstance(real, bool) or not isinstance(real, int)
                                 or not 0 <= real < len(batches)):
            raise ValueError(f"real={real!r} must be the index of the real batch among the "
                             f"{len(batches)} batch(es) given to discriminate (e.g. real=0)")
        p = self.augment.p if self.augment is not None else 1.0
        outputs = discriminate(d, *batches, augment=self.d_augment,
                               channel_groups=channel_groups, p=p)
        if (real is not None and self.augment is not None and self.augment.adaptive
                and torch.is_grad_enabled() and any(q.requires_grad for q in d.parameters())):
            out = outputs[real]
            self.augment.record(out[0] if isinstance(out, (tuple, list)) else out,
                                threshold=threshold)
        return outputs

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
