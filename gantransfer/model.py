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

DataKind = Literal["single", "unpaired", "paired", "labelled"]


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
                     channel_groups: Sequence[int] | None = None, real: int | None = None,
                     threshold: float = 0.0) -> tuple[Any, ...]:
        """``d``'s output for each batch (a tensor or a tuple of ``d``'s arguments), every batch
        judged as if alone: one concatenated forward only where that is exact (no batch
        statistics), else one forward each. See :func:`gantransfer.nn.discriminate`.

        Call every discriminator through this, in the D step (``real, fake``) and in the G step
        (``fake``): it is where the engine applies what it does to discriminator inputs (the
        run's differentiable augmentation, ``TrainConfig.d_augment``, to the image of every
        batch, each op with the run's probability ``p``). Images stacked along the channels pass
        ``channel_groups`` (pix2pix: ``(C_in, C_out)``) so the parts share geometric transforms
        and get colour per part.

        In the D step, mark the batch of real training images: ``real`` is its index, and
        ``threshold`` the output that separates real from fake for the model's loss
        (``GANLoss.threshold``: 0 for logits and critics, 0.5 for lsgan). Adaptive augmentation
        (``TrainConfig.d_augment_target``, ADA) sets ``p`` from ``sign(D(real) - threshold)``
        over these outputs (the first head when ``d`` returns several). Only discriminator
        steps count: a call inside ``ctx.frozen(d)`` or ``torch.no_grad()`` records nothing, so
        passing ``real=`` in the G step too is harmless. Both keywords are optional; a model that
        never passes ``real=`` trains as before, and a run with ADA on tells it to.
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
        self.config: Any = config  # an instance of Config (its type is per subclass)
        self.nets = nn.ModuleDict()
        self.arch_name: str | None = None  # set by gantransfer.get / gantransfer.load

    # -- what every architecture implements ---------------------------------------------------
    def optimizer_groups(self) -> dict[str, list[str]]:
        """What the model optimizes, declared once: each optimizer group and the nets it updates,
        e.g. ``{"g": ["g_ab", "g_ba"], "d": ["d_a", "d_b"]}``. ``ctx.optimize(group, loss)``
        steps a group; :meth:`make_optimizers` builds one optimizer per group from this."""
        raise NotImplementedError

    def make_optimizer(self, group: str, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimizer of one group over its trainable ``params`` (the hook to override).

        Default: Adam with the config's ``lr`` and ``(beta1, beta2)`` (torch's 0.9 and 0.999
        for a config without them), the optimizer of DCGAN, CycleGAN and pix2pix. Override it
        for another optimizer or per-group settings (e.g. a two time-scale rule).

        Raises:
            TypeError: the config has no ``lr`` field (add one, or override this method).
        """
        c = self.config
        if not hasattr(c, "lr"):
            raise TypeError(f"{type(self).__name__}.Config has no 'lr' field for the default Adam "
                            "optimizer: add lr (and beta1/beta2) to the Config, or override "
                            "make_optimizer(group, params)")
        return torch.optim.Adam(params, lr=c.lr, betas=(getattr(c, "beta1", 0.9),
                                                        getattr(c, "beta2", 0.999)))

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per group of :meth:`optimizer_groups` (:meth:`make_optimizer`), over
        the trainable parameters of its nets only (frozen ones, e.g. a pretrained VGG trunk,
        stay out).

        Raises:
            ValueError: a group whose nets have no trainable parameter (e.g. a discriminator
                whose options freeze it entirely).
        """
        out: dict[str, torch.optim.Optimizer] = {}
        for group, names in self.optimizer_groups().items():
            params = [p for n in names for p in self.nets[n].parameters() if p.requires_grad]
            if not params:
                raise ValueError(
                    f"{type(self).__name__} optimizer group {group!r} ({', '.join(names)}) has "
                    "no trainable parameters; check the options of those networks (e.g. "
                    "discriminator_kwargs)")
            out[group] = self.make_optimizer(group, params)
        return out

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
        """The generators a user runs after training, e.g. ``{"a2b": self.image_target("g_ab",
        ...)}`` or a latent ``ExportSpec(net="g", input="latent", ...)``."""
        raise NotImplementedError

    def image_target(self, net: str, *, in_channels: int = 3, out_channels: int = 3,
                     **fields: Any) -> ExportSpec:
        """An image-input :class:`ExportSpec` for ``self.nets[net]`` whose size rules
        (``size_divisor``, ``min_size``) are the net's declared size contract
        (:func:`gantransfer.nn.size_contract`; any size when it declares none). ``fields`` are
        the other ExportSpec fields (``direction``, ``description``...)."""
        from .nn import SizeContract, size_contract

        sizes = size_contract(self.nets[net]) or SizeContract()
        return ExportSpec(net=net, input="image", in_channels=in_channels,
                          out_channels=out_channels, size_divisor=sizes.divisor,
                          min_size=sizes.min_size, **fields)

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

    @property
    def label_names(self) -> tuple[str, ...] | None:
        """The label (class or style) names of a conditional model, index = label value; None
        for an unconditional one. Read from the default export target's ``ExportSpec.labels``,
        which every export writes into the file (``OnnxModel.label_names`` is the same there)."""
        targets = self.export_targets()
        return targets[self.default_target()].labels if targets else None

    # -- inference helpers shared by every architecture ----------------------------------------
    @torch.no_grad()
    def translate(self, images: Any, *, direction: str | None = None,
                  style: str | int | None = None, **options: Any) -> Any:
        """Translate images with an image-input target (``direction`` names it, e.g. ``"a2b"``).

        ``images``: a PIL image, a HxWxC uint8 array, a CxHxW / NxCxHxW tensor in [-1, 1], or a
        list of those. The output mirrors the input type; any size works (inputs are padded to
        the generator's size divisor by reflection and cropped back). ``options`` go to
        :func:`gantransfer.inference.translate` (``batch_size``, ``precision``, ``compile``...).
        ``style`` (a name of :attr:`label_names`, or its index) is the target style of a
        multi-style generator; a missing or unknown one is a ``ValueError`` listing the names.
        """
        from .inference.dispatch import translate  # the layer above: see docs/architecture.md

        return translate(self, images, target=direction, style=style, **options)

    @torch.no_grad()
    def generate(self, n: int, *, target: str | None = None,
                 generator: torch.Generator | None = None, label: Any = None) -> Tensor:
        """Draw ``n`` images (N×C×H×W in [-1, 1]) from a latent-input target.

        ``label`` (class-conditional models): a name of :attr:`label_names` or an index for
        every image, a sequence of one per image, or None to cycle through the classes. An
        unknown name, an index out of range, or a label for an unconditional model is a
        ``ValueError`` listing the valid names.
        """
        from .inference.torch_backend import generate

        return generate(self, n, target=target, generator=generator, label=label)

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
