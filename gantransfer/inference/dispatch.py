"""The one dispatcher: a loaded model to what runs it, whatever the model is.

:func:`translator` is the one place that chooses between the backends for image translation:
a PyTorch model goes to :func:`~gantransfer.inference.torch_backend.torch_translator`, an
:class:`~gantransfer.inference.onnx_backend.OnnxModel` to
:func:`~gantransfer.inference.onnx_backend.onnx_translator`, a
:class:`~gantransfer.inference.runner.Translator` is used as it is.
:func:`latent_generator` does the same for latent (noise-input) generators. ``gtx translate``,
``gtx generate``, ``GANModel.translate``, :func:`~gantransfer.inference.pipeline.translate_files`
and the benchmarks all come through here.

What comes in is already loaded: turning a run directory, a checkpoint or an ``.onnx`` path into
a model is :func:`gantransfer.inference.sources.open_source`, the step before this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .onnx_backend import OnnxModel, onnx_translator
from .runner import Translator
from .torch_backend import generate, resolve_target, torch_translator

if TYPE_CHECKING:  # pragma: no cover
    from ..model import GANModel

__all__ = ["latent_generator", "translate", "translator"]


def _is_torch_model(model: Any) -> bool:
    # GANModel by its contract, not by class: this module is below gantransfer.model, whose
    # translate() comes here.
    return hasattr(model, "export_targets") and hasattr(model, "nets")


def translator(model: GANModel | OnnxModel | Translator, *, target: str | None = None,
               precision: str = "fp32", compile: str | bool = "off", bucket: int | None = None,
               images: int | None = None, compile_options: dict[str, Any] | None = None,
               style: str | int | None = None) -> Translator:
    """A :class:`~gantransfer.inference.runner.Translator` for ``model``'s image target.

    Args:
        model: a :class:`~gantransfer.GANModel`, an ``OnnxModel`` (``gantransfer.onnx.load``) or
            a Translator (returned as it is; the other options are then ignored).
        target: the image-input export target (default: the model's first); for an ONNX file,
            None or the file's own target/direction.
        precision: ``fp32``, ``bf16`` or ``auto`` (:class:`gantransfer.precision.Precision`,
            ``job="translation"``). An ONNX file runs at its exported precision: only ``fp32``
            and ``auto`` are accepted for it.
        compile: ``off``, ``on`` or ``auto`` (PyTorch models; ``off``/``auto`` for ONNX files).
        bucket: the shape-bucket step (see :func:`~gantransfer.inference.images.bucket_size`;
            None: relative when compiled, else 1).
        images: how many images the job translates (``compile="auto"`` needs it).
        compile_options: keyword arguments for ``torch.compile``.
        style: the style (name or index) of a multi-style generator (PyTorch or ONNX); the
            translator runs every image in that style.

    Raises:
        ValueError: bad options, a latent or unknown target, options an ONNX file does not
            take, a missing/unknown/out-of-range style, or a style for an unconditional model
            (the message lists the valid names). TypeError: another kind of model.
    """
    if isinstance(model, Translator):
        if style is not None:
            raise ValueError("a Translator runs one fixed style; pass the model itself with "
                             "style=")
        return model
    if isinstance(model, OnnxModel):
        return onnx_translator(model, target=target, precision=precision, compile=compile,
                               bucket=bucket, style=style)
    if _is_torch_model(model):
        return torch_translator(model, target=target, precision=precision, compile=compile,
                                bucket=bucket, images=images, compile_options=compile_options,
                                style=style)
    raise TypeError(f"cannot translate with a {type(model).__name__}: expected a GANModel, an "
                    "OnnxModel (gantransfer.onnx.load) or a Translator")


def _count(images: Any) -> int:
    items = images if isinstance(images, (list, tuple)) else [images]
    return sum(int(i.shape[0]) if isinstance(i, Tensor) and i.ndim == 4 else 1 for i in items)


@torch.no_grad()
def translate(model: GANModel | OnnxModel | Translator, images: Any, *,
              target: str | None = None, batch_size: int | None = None,
              precision: str = "fp32", compile: str | bool = "off", bucket: int | None = None,
              compile_options: dict[str, Any] | None = None, style: str | int | None = None
              ) -> Any:
    """Translate ``images`` with ``model``'s image-input target (default: the first one);
    ``style`` names the target style of a multi-style generator.

    Runs in eval mode (the model's mode is restored afterwards) on the model's device. See
    :mod:`gantransfer.inference.images` for accepted inputs; any image size works
    (reflect-padded to the generator's size divisor and cropped back).

    ``batch_size`` None is the measured default for the model's device (1 on CPUs, where
    batching gave no gain and up to 29 % loss; 8 on CUDA; see
    :func:`gantransfer.inference.defaults.default_batch_size`). ``precision`` (``fp32``,
    ``bf16``, ``auto``), ``compile`` (``off``, ``on``, ``auto``) and ``bucket`` choose the fast
    paths of :func:`translator` (docs/inference.md); the defaults run fp32 eager, exactly as
    before. To translate many times with a compiled model, build one :func:`translator` and call
    its ``translate`` so compiled code is reused.

    Raises:
        ValueError: an unknown or latent target, or an unknown precision/compile value.
    """
    runner = translator(model, target=target, precision=precision, compile=compile,
                        bucket=bucket, images=_count(images), compile_options=compile_options,
                        style=style)
    return runner.translate(images, batch_size=batch_size)  # None: runner.batch_size


def latent_generator(model: GANModel | OnnxModel, *, target: str | None = None
                     ) -> tuple[int, Callable[..., Tensor]]:
    """``(latent size, run)`` for ``model``'s latent target: ``run(z, label=None)`` turns
    ``N x latent`` noise into ``NxCxHxW`` images in [-1, 1] on the CPU (PyTorch models in eval
    mode). ``label`` is what :func:`~gantransfer.inference.torch_backend.label_tensor` takes
    (a conditional generator's class for every image, one per image, or None: all classes).

    Raises:
        ValueError: the model has no latent target (an ONNX file that translates images), or an
            unknown target.
    """
    if isinstance(model, OnnxModel):
        if model.metadata.input_kind != "latent":
            raise ValueError(f"{model.path.name} translates images; use translate(images)")

        def run_onnx(z: Tensor, label: Any = None) -> Tensor:
            return model.generate(len(z), latents=z, label=label)

        return int(model.metadata.latent_dim or 0), run_onnx
    _, spec = resolve_target(model, target, kind="latent")

    def run_torch(z: Tensor, label: Any = None) -> Tensor:
        return generate(model, len(z), target=target, latents=z, label=label).cpu()

    return int(spec.latent_dim or 0), run_torch
