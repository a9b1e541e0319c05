"""The model contract (DESIGN §3): what an architecture computes; the engine decides how it runs.

A plugin subclasses :class:`GANModel`, declares a ``Config`` dataclass and a ``data_kind``, builds
its networks into ``self.nets`` and implements ``train_step`` with the engine's
:class:`StepContext`. Everything else (devices, precision, checkpoints, resume, logging, samples,
schedules, DDP, export) comes from the library.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from .config import check_choices
from .targets import ExportSpec

if TYPE_CHECKING:  # pragma: no cover
    from .nn import SizeContract

__all__ = ["ExportSpec", "GANModel", "StepContext"]

DataKind = Literal["single", "unpaired", "paired"]


@runtime_checkable
class StepContext(Protocol):
    """What the engine hands to :meth:`GANModel.train_step` (implemented by the Trainer)."""

    step: int  # optimisation steps completed before this one (0-based)
    epoch: int
    rank: int
    world_size: int
    device: torch.device

    def optimize(self, group: str, loss: Tensor) -> bool:
        """Zero-grad, backward (scaled for fp16), unscale, clip, step the group's optimizer, EMA.

        Returns False when the step was skipped because the loss or gradients were not finite.
        """
        ...

    def frozen(self, *nets: str | nn.Module) -> contextlib.AbstractContextManager[None]:
        """Inside the block the named nets' parameters get no gradients (e.g. D during the G step)."""
        ...

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Mixed-precision autocast for the run's precision (a no-op in fp32)."""
        ...

    def discriminate(self, d: nn.Module, *batches: Any,
                     channel_groups: Sequence[int] | None = None) -> tuple[Any, ...]:
        """``d``'s output for each batch (a tensor or a tuple of ``d``'s arguments), every batch
        judged as if alone: one concatenated forward only where that is exact (no batch
        statistics), else one forward each. See :func:`gantransfer.nn.discriminate`.

        Call every discriminator through this, in the D step (``real, fake``) and in the G step
        (``fake``): it is where the engine applies what it does to discriminator inputs (the
        run's differentiable augmentation, ``TrainConfig.d_augment``, to the image of every
        batch). Images stacked along the channels pass ``channel_groups`` (pix2pix: ``(C_in,
        C_out)``) so the parts share geometric transforms and get colour per part.
        """
        ...


class GANModel(nn.Module):
    """Base class of every architecture.

    Subclasses set ``Config`` (a ``@dataclass(kw_only=True)``; config == constructor) and
    ``data_kind``, create their networks in ``self.nets`` (always call them through
    ``self.nets[name]``: the engine may wrap entries for distributed training), and implement
    the methods below that raise ``NotImplementedError``.

    State kept between steps (image pools, counters) belongs in :meth:`get_extra_state` /
    :meth:`set_extra_state` as tensors and plain data, so checkpoints resume exactly.
    """

    Config: ClassVar[type]
    data_kind: ClassVar[DataKind] = "single"

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError(
                f"{type(self).__name__} expects a {self.Config.__qualname__}, got "
                f"{type(config).__name__}; build models with gantransfer.get(name, **overrides)"
            )
        check_choices(config)
        self.config = config
        self.nets = nn.ModuleDict()
        self.arch_name: str | None = None  # set by gantransfer.get / gantransfer.load

    # -- what every architecture implements ---------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[str]]:
        """Map each optimizer group to the nets it updates, e.g. ``{"g": ["g_ab", "g_ba"]}``."""
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per group of :meth:`optimizer_groups`, over trainable parameters only."""
        raise NotImplementedError

    def make_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], *, steps_per_epoch: int
    ) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        """LR schedulers keyed like the optimizers; the engine steps them once per iteration."""
        return {}

    def train_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Any]:
        """One iteration on a batch already on the device; return detached scalars to log."""
        raise NotImplementedError

    def sample(self, inputs: Any) -> dict[str, Tensor]:
        """Images for a sample grid (called in eval mode without grad): ``{row_name: N×C×H×W}``.

        ``inputs`` is whatever :meth:`sample_inputs` returned; outputs are in [-1, 1].
        """
        raise NotImplementedError

    def export_targets(self) -> dict[str, ExportSpec]:
        """The generators a user runs after training, e.g. ``{"a2b": ExportSpec(net="g_ab")}``."""
        raise NotImplementedError

    # -- defaults a plugin may override --------------------------------------------------------
    def data_defaults(self) -> dict[str, Any]:
        """Defaults for the data pipeline: ``channels`` (and ``channels_b`` for two domains),
        ``preprocess``, ``load_size``, ``crop_size``, ``flip``. The user's options win."""
        return {}

    def training_size_contract(self) -> SizeContract:
        """The image sizes (H and W) this model can train on, checked by the engine against the
        data options (``crop_size``...) before anything is written.

        By default every net's declared contract combined (see :mod:`gantransfer.nn`'s
        ``SizeContract``): multiples of the least common multiple of their divisors, at least
        the largest minimum; nets that declare nothing accept any size. Override it when a net
        sees inputs of another size than the training images (e.g. a discriminator on
        downsampled images).
        """
        from .nn import SizeContract, size_contract

        # Nets with the same rule are named together ("g_ab, g_ba: ResNet generator: ...").
        groups: dict[tuple[SizeContract, str], list[str]] = {}
        for name, net in self.nets.items():
            declared = size_contract(net)
            if declared is not None:
                key = (declared, declared.reason or type(net).__name__)
                groups.setdefault(key, []).append(name)
        out = SizeContract()
        for (declared, reason), names in groups.items():
            out = out.combine(dataclasses.replace(declared, reason=f"{', '.join(names)}: {reason}"))
        return out

    def sample_inputs(self, batch: dict[str, Tensor], *, n: int, generator: torch.Generator) -> Any:
        """Fixed inputs for every sample grid of a run: by default the first ``n`` items of a batch.

        Latent models override this to draw fixed noise from ``generator``.
        """
        return {k: v[:n] for k, v in batch.items() if isinstance(v, Tensor)}

    def generator_names(self) -> list[str]:
        """Nets used at inference (the ones exported and, when enabled, averaged by EMA)."""
        return sorted({spec.net for spec in self.export_targets().values()})

    def default_target(self) -> str:
        """The export target used when none is named (the first one)."""
        return next(iter(self.export_targets()))

    # -- inference helpers shared by every architecture ----------------------------------------
    @torch.no_grad()
    def translate(self, images: Any, *, direction: str | None = None, **options: Any) -> Any:
        """Translate images with an image-input target (``direction`` names it, e.g. ``"a2b"``).

        ``images``: a PIL image, a HxWxC uint8 array, a CxHxW / NxCxHxW tensor in [-1, 1], or a
        list of those. The output mirrors the input type; any size works (inputs are padded to
        the generator's size divisor by reflection and cropped back). ``options`` go to
        :func:`gantransfer.inference.translate` (``batch_size``, ``precision``, ``compile``...).
        """
        from .inference.dispatch import translate  # the layer above: see docs/architecture.md

        return translate(self, images, target=direction, **options)

    @torch.no_grad()
    def generate(self, n: int, *, target: str | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` images (N×C×H×W in [-1, 1]) from a latent-input target."""
        from .inference.torch_backend import generate

        return generate(self, n, target=target, generator=generator)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode inside the block, the previous mode restored after."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")
