"""The PyTorch backend: a :class:`~gantransfer.inference.runner.Translator` for a model's
image-input target, and latent generation, in fp32 or bf16, eager or compiled.

Why the precision and compile rules are what they are (measured on a 2-core avx512_bf16 CPU,
torch 2.13, CycleGAN resnet_9blocks at 256x256): eager fp32 0.56-0.60 s/image, eager bf16
autocast 0.71 s/image (the casts cost more than the bf16 convolutions save), compiled fp32
0.53 s, compiled bf16 0.26 s. Compiling costs 8-30 s per input shape (a few seconds when
inductor's on-disk cache is warm). Hence on CPUs bf16 only pays when compiled
(:meth:`gantransfer.precision.Precision.resolve`), and compiling only pays for enough images per
shape (:func:`~gantransfer.inference.runner.resolve_compile`). (Compiled bf16 with the first
convolution kept in fp32, as run here: 0.260 s, 48.6 dB PSNR.)
"""

from __future__ import annotations

import copy
import logging
import math
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..precision import Precision, exact_float32
from ..targets import resolve_label
from .images import BUCKET_RELATIVE
from .runner import Translator, check_finite, resolve_compile

if TYPE_CHECKING:  # pragma: no cover
    from ..model import GANModel
    from ..targets import ExportSpec

__all__ = ["LabelBound", "generate", "label_tensor", "model_source", "resolve_target",
           "torch_translator"]

log = logging.getLogger(__name__)


def resolve_target(model: GANModel, target: str | None, *, kind: str) -> tuple[str, ExportSpec]:
    """The export target named ``target`` (or the first one whose input is ``kind``)."""
    targets = model.export_targets()
    if target is None:
        for name, spec in targets.items():
            if spec.input == kind:
                return name, spec
        raise ValueError(
            f"{type(model).__name__} has no {kind}-input target (targets: "
            f"{', '.join(f'{n} ({s.input})' for n, s in targets.items())})"
        )
    if target not in targets:
        raise ValueError(f"unknown target {target!r}; {type(model).__name__} has "
                         f"{', '.join(map(repr, targets))}")
    spec = targets[target]
    if spec.input != kind:
        raise ValueError(f"target {target!r} takes a {spec.input} input, not an {kind}; "
                         f"use {'generate' if spec.input == 'latent' else 'translate'}() instead")
    return target, spec


class LabelBound(nn.Module):
    """A conditional generator with its label fixed: ``forward(x) = net(x, labels)`` where every
    row gets label ``index``. What the translators run, so that padding, batching, bf16, compile
    and the memory probe see a one-input network."""

    def __init__(self, net: nn.Module, index: int) -> None:
        super().__init__()
        self.net = net
        self.index = int(index)

    def forward(self, x: Tensor) -> Tensor:
        labels = torch.full((x.shape[0],), self.index, dtype=torch.long, device=x.device)
        return self.net(x, labels)


def _bound_net(model: GANModel, spec: ExportSpec, label: str | int | None, *, what: str
               ) -> tuple[nn.Module, str]:
    """The target's net, bound to ``label`` for a conditional one; and a text for summaries."""
    net = model.nets[spec.net]
    if spec.labels is None and label is None:
        return net, ""
    if label is None:
        raise ValueError(f"{model_source(model)} is conditional: name a {what} (one of "
                         f"{', '.join(spec.labels or ())})")
    index = resolve_label(label, spec.labels, what=what, source=model_source(model))
    return LabelBound(net, index), f", {what} {spec.labels[index]!r}"  # type: ignore[index]


def torch_translator(model: GANModel, *, target: str | None = None, precision: str = "fp32",
                     compile: str | bool = "off", bucket: int | None = None,
                     images: int | None = None, compile_options: dict[str, Any] | None = None,
                     style: str | int | None = None) -> Translator:
    """A :class:`Translator` for ``model``'s image-input ``target`` (default: the first).

    Args:
        precision: ``fp32``, ``bf16`` (autocast on the model's device, output cast to float32;
            the first convolution stays float32, see :func:`_with_fp32_input_conv`) or
            ``auto`` (:meth:`gantransfer.precision.Precision.resolve`, ``job="translation"``).
        compile: ``off``, ``on`` or ``auto`` (see :func:`~gantransfer.inference.runner.
            resolve_compile`); a failing or missing torch.compile falls back to eager with one
            warning.
        bucket: the :func:`~gantransfer.inference.images.bucket_size` step: default
            ``BUCKET_RELATIVE`` (padding under 1/8 of
            each side) when compiled, else 1 (no padding beyond the generator's divisor, which
            keeps eager results exactly as before).
        images: how many images the call will translate (for ``compile="auto"``).
        compile_options: keyword arguments for ``torch.compile`` (e.g. ``{"mode": ...}``).
        style: the target style (name or index) of a multi-style generator; required for one,
            refused for an unconditional one (the error lists the valid names).

    The translator's ``translate`` (and :func:`~gantransfer.inference.pipeline.translate_files`)
    put the model in eval mode for the run; a direct call on a padded batch does not. Raises
    ``ValueError`` for bad options or a latent/unknown target.
    """
    from .memory import activation_bytes_per_pixel

    _, spec = resolve_target(model, target, kind="image")
    net, style_text = _bound_net(model, spec, style, what="style")
    plain = net
    device = model.device
    want_compile = resolve_compile(compile, device, images=images)
    chosen = Precision.resolve(precision, device, job="translation", compiled=want_compile)
    if chosen is Precision.BF16:
        net = _with_fp32_input_conv(net, in_channels=spec.in_channels)
    eager = _forward(net, device, chosen)
    forward = eager
    if want_compile:
        try:
            forward = torch.compile(eager, dynamic=False, **(compile_options or {}))
        except Exception as exc:  # e.g. a Python or platform torch.compile does not support
            log.warning("torch.compile is unavailable (%s: %s); running eager",
                        type(exc).__name__, exc)
            want_compile = False
    if bucket is None:
        bucket = BUCKET_RELATIVE if want_compile else 1
    if chosen is Precision.FP32 and device.type == "cuda":
        # fp32 means IEEE float32 on a GPU too, not TF32: the same pixels (to 1 uint8 level) as
        # the CPU and the fp32 ONNX export. Outside the compiled function: dynamo need not trace
        # the flag changes.
        forward, eager = true_float32(forward, device), true_float32(eager, device)
    text = (f"{precision_text(chosen, device)}, {'compiled' if want_compile else 'eager'}"
            f"{style_text}")
    if bucket == BUCKET_RELATIVE:
        text += ", sizes bucketed (padding < 1/8 of each side)"
    elif math.lcm(spec.size_divisor, bucket) > spec.size_divisor:
        text += f", sizes bucketed to multiples of {math.lcm(spec.size_divisor, bucket)} px"
    return Translator(forward, channels=spec.in_channels, divisor=spec.size_divisor,
                      min_size=spec.min_size, bucket=bucket, compiled=want_compile,
                      fallback=eager, device=device, description=text,
                      evaluating=model.evaluating,
                      memory_probe=lambda: activation_bytes_per_pixel(
                          plain, channels=spec.in_channels, divisor=spec.size_divisor,
                          min_size=spec.min_size, device=device),
                      source=model_source(model))


def true_float32(fn: Callable[[Tensor], Tensor], device: torch.device
                 ) -> Callable[[Tensor], Tensor]:
    """``fn`` run under :func:`~gantransfer.precision.exact_float32` (TF32 off on CUDA, the
    previous flags restored after each call)."""
    def run(x: Tensor) -> Tensor:
        with exact_float32(device):
            return fn(x)
    return run


def precision_text(precision: Precision, device: torch.device) -> str:
    """How the translator's summary names its precision: ``fp32 (TF32 off)`` on CUDA, where
    fp32 could otherwise mean TF32 convolutions; the name elsewhere."""
    if precision is Precision.FP32 and device.type == "cuda":
        return "fp32 (TF32 off)"
    return str(precision)


def model_source(model: Any) -> str:
    """How errors name a model: the checkpoint it was loaded from, else its architecture."""
    path = getattr(model, "checkpoint_path", None)
    if path is not None:
        return f"checkpoint {path}"
    return f"the {getattr(model, 'arch_name', None) or type(model).__name__} model"


class _Float32(nn.Module):
    """Runs the wrapped layer in float32 inside a bf16 autocast region (parameters shared)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.inner(x.float())


_FP32_FIRST: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def _with_fp32_input_conv(net: nn.Module, *, in_channels: int) -> nn.Module:
    """A view of ``net`` whose first convolution runs in float32 under bf16 autocast.

    Rounding the *image* to bf16 (8 significant bits: about a quarter of an 8-bit grey level off
    near +-1) is the largest bf16 error: for a random resnet_9blocks at 256x256, compiled, keeping
    the first convolution in fp32 raised PSNR against fp32 from 43.8 to 48.6 dB at 1 % of the
    time (0.260 vs 0.257 s/image; fp32 eager 0.585 s). The last convolution in fp32 too added
    0.1 dB for 10 % more time, so it stays bf16. The first convolution is the first one in
    module order that takes ``in_channels``; none leaves ``net`` as is.

    The view shares every parameter and layer with ``net`` (only the containers on the path to
    the convolution are shallow-copied), so it follows weight updates; it is cached per ``net``
    so that compiled code keyed on it is reused.
    """
    cached = _FP32_FIRST.get(net)
    if cached is not None:
        return cached
    first = next(((n, m) for n, m in net.named_modules()
                  if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
    if first is None or first[1].in_channels != in_channels:
        view = net
    elif first[0] == "":  # the net is a single convolution
        view = _Float32(net)
    else:
        view = _replace(net, {first[0]}, "")
    _FP32_FIRST[net] = view
    return view


def _replace(module: nn.Module, targets: set[str], prefix: str) -> nn.Module:
    new = copy.copy(module)  # shares parameters, buffers and hooks; gets its own child table
    new._modules = dict(module._modules)
    for name, child in module._modules.items():
        if child is None:
            continue
        full = f"{prefix}{name}"
        if full in targets:
            new._modules[name] = _Float32(child)
        elif any(t.startswith(full + ".") for t in targets):
            new._modules[name] = _replace(child, targets, full + ".")
    return new


def _forward(net: torch.nn.Module, device: torch.device, precision: Precision
             ) -> Callable[[Tensor], Tensor]:
    dtype = precision.autocast_dtype
    if dtype is not None:
        def run(x: Tensor) -> Tensor:
            with torch.autocast(device.type, dtype=dtype):
                y = net(x.to(device))
            return y.float()
    else:
        def run(x: Tensor) -> Tensor:
            return net(x.to(device)).float()
    return run


def label_tensor(label: Any, n: int, names: tuple[str, ...] | None, *, source: str,
                 what: str = "label") -> Tensor | None:
    """The int64 ``n`` labels for a conditional generator (None for an unconditional one).

    ``label``: a name or index (every image), a sequence of ``n`` names/indexes or an int tensor
    (one per image), or None: labels cycle through every class (``i % K``).

    Raises:
        ValueError: a label for a model without labels, an unknown name, an index out of range,
            or a sequence whose length is not ``n``.
    """
    if names is None:
        if label is not None:  # raises: the model takes no label
            resolve_label(0, None, what=what, source=source)
        return None
    if label is None:
        return torch.arange(n) % len(names)
    if isinstance(label, Tensor):
        label = label.tolist()
    if isinstance(label, (list, tuple)):
        if len(label) != n:
            raise ValueError(f"got {len(label)} {what}s for {n} images; give one {what} or {n}")
        return torch.tensor([resolve_label(v, names, what=what, source=source) for v in label],
                            dtype=torch.long)
    return torch.full((n,), resolve_label(label, names, what=what, source=source),
                      dtype=torch.long)


@torch.no_grad()
def generate(model: GANModel, n: int, *, target: str | None = None,
             generator: torch.Generator | None = None, batch_size: int = 64,
             latents: Tensor | None = None, label: Any = None) -> Tensor:
    """Draw ``n`` images (``NxCxHxW`` float32 in [-1, 1], on the model's device) from a latent
    target. The noise is drawn on the CPU from ``generator`` so a seed gives the same images on
    every device; ``latents`` (``N x latent_dim``) gives the noise directly (``n`` is then
    ignored), as for ``OnnxModel.generate``. Runs in eval mode, restoring the model's mode
    afterwards. Raises :class:`~gantransfer.inference.runner.NonFiniteOutputError` (naming
    the checkpoint) when the output holds NaN or inf.

    A class-conditional generator takes ``label`` (see :func:`label_tensor`: a name or index for
    every image, one per image, or None to cycle through the classes); an unconditional one
    refuses a label."""
    _, spec = resolve_target(model, target, kind="latent")
    if latents is not None:
        z, n = latents.float().cpu(), len(latents)
    elif n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    else:
        z = torch.randn(n, int(spec.latent_dim or 0), generator=generator)
    net = model.nets[spec.net]
    labels = label_tensor(label, n, spec.labels, source=model_source(model))
    with model.evaluating():
        if labels is None:
            parts = [net(z[i : i + batch_size].to(model.device)).float()
                     for i in range(0, n, batch_size)]
        else:
            parts = [net(z[i : i + batch_size].to(model.device),
                         labels[i : i + batch_size].to(model.device)).float()
                     for i in range(0, n, batch_size)]
    out = torch.cat(parts)
    check_finite(out, source=model_source(model))
    return out
