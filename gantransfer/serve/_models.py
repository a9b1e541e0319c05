"""The models a server offers: each source opened once, with the facts the page and the API show.

A SOURCE (a run directory, a checkpoint, an ``.onnx`` file, or a model already loaded in Python)
is opened by :func:`gantransfer.inference.open_source` and run by the translator that
:func:`gantransfer.inference.translator` (the one dispatcher) builds for it, exactly what
``gtx translate`` runs (precision, torch.compile, ONNX and int8 all behind it). This module only
adds what a server needs on top: one :class:`Opened` per image target, a short id, JSON-ready
facts (architecture, target, precision, styles) and the style rule.

Styles: a model may offer named styles (multi-style / conditional models). They are read from an
attribute ``styles`` of the loaded model (PyTorch) or of its file's metadata (ONNX); no model
has one yet, so today every :class:`Opened` has ``styles == ()`` and asking one for a style is a
:class:`StyleError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..inference import Translator

__all__ = ["Opened", "StyleError", "open_models"]


class StyleError(ValueError):
    """A request named a style the model does not offer (the message lists the valid ones)."""


@dataclass
class Opened:
    """A model ready to translate images.

    ``id`` is a short name for URLs and menus (letters, digits, ``.``, ``_``, ``-``);
    ``translator`` runs padded batches; ``info`` holds JSON-ready facts about the model (no
    server paths: only the source's file name); ``styles`` the styles it offers (a multi-style
    model's label names; empty for the others).
    """

    id: str
    translator: Translator
    info: dict[str, Any]
    styles: tuple[str, ...] = ()
    description: str = ""
    # One translator per style, for models that offer styles.
    style_translators: dict[str, Translator] = field(default_factory=dict)

    def check_style(self, style: str | None) -> str | None:
        """The style a request runs with: ``style`` itself, or None for a model without styles
        (the first style when ``style`` is None and the model has some).

        Raises:
            StyleError: ``style`` is given but the model has no styles, or is not one of them.
        """
        if not self.styles:
            if style is not None:
                raise StyleError(f"model {self.id!r} has no styles; leave the style out")
            return None
        if style is None:
            return self.styles[0]
        if style not in self.styles:
            raise StyleError(f"model {self.id!r} has no style {style!r}; its styles: "
                             f"{', '.join(self.styles)}")
        return style

    def runner(self, style: str | None) -> Translator:
        """The translator for a style returned by :meth:`check_style`."""
        return self.translator if style is None else self.style_translators[style]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:64] or "model"


def _base_name(path: Path) -> str:
    """A model's name from its source: the run folder's name for a run directory or a checkpoint
    inside ``RUN/checkpoints/``, else the file's stem."""
    if path.is_dir():
        return path.resolve().name
    if path.parent.name == "checkpoints":
        return path.resolve().parent.parent.name
    return path.stem


def _styles(model: Any) -> tuple[str, ...]:
    """The styles a multi-style model offers (its label names; the same property on a
    GANModel and an OnnxModel), empty for the others."""
    return tuple(str(s) for s in (getattr(model, "label_names", None) or ()))


def _onnx_info(model: Any) -> dict[str, Any]:
    m = model.metadata
    info = {"kind": "onnx", "source": Path(model.path).name, "architecture": m.architecture,
            "target": m.target, "direction": m.direction, "precision": m.precision,
            "in_channels": m.in_channels, "out_channels": m.out_channels,
            "size_divisor": m.size_divisor, "min_size": m.min_size,
            "providers": list(model.providers), "version": m.version,
            "exported_at": m.exported_at}
    if m.psnr_db is not None:
        info["int8_psnr_db"] = m.psnr_db
    return info


def _torch_info(model: Any, target: str, translator: Translator, source: str | None
                ) -> dict[str, Any]:
    spec = model.export_targets()[target]
    return {"kind": "pytorch", "source": source, "architecture": model.arch_name,
            "target": target, "direction": spec.direction,
            "precision": translator.description.split(",")[0],
            "in_channels": spec.in_channels, "out_channels": spec.out_channels,
            "size_divisor": spec.size_divisor, "min_size": spec.min_size,
            "device": str(model.device)}


def _image_targets(model: Any, target: str | None) -> list[str]:
    from ..inference.torch_backend import resolve_target

    if target is not None:
        return [resolve_target(model, target, kind="image")[0]]
    names = [n for n, s in model.export_targets().items() if s.input == "image"]
    if not names:
        resolve_target(model, None, kind="image")  # raises, naming the targets it has
    return names


def open_models(source: Any, *, name: str | None = None, target: str | None = None,
                device: str = "auto", providers: str = "auto", precision: str = "auto",
                compile: str = "off", ema: bool | None = None) -> list[Opened]:
    """Open ``source`` and return one :class:`Opened` per image-input target it offers.

    Args:
        source: a run directory, a checkpoint, an ``.onnx`` file (path or string), or a loaded
            GANModel, OnnxModel or Translator.
        name: the id to use (default: from the source's name). A PyTorch model with several
            image targets (CycleGAN's ``a2b`` and ``b2a``) gives ``NAME-a2b``, ``NAME-b2a``.
        target: only this target (PyTorch sources; an ONNX file holds one).
        device, providers, precision, compile, ema: as for ``gtx translate`` (PyTorch device and
            precision, onnxruntime providers). ``compile="auto"`` counts no images, so it means
            off: a server sees sizes it cannot predict.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: a model without an image-input target (a latent generator), a bad target
            or option.
        CheckpointError, OnnxLoadError: the file cannot be loaded (from the loaders).
    """
    from ..inference import Source, Translator, open_source, translator
    from ..inference.sources import locate

    described: str | None = None
    if isinstance(source, (str, os.PathLike)):
        # A path, or a pretrained name / hf:// source already downloaded (the resolver; it
        # never downloads, and names the download command for one that is not).
        path = locate(source)
        if not path.exists():
            raise FileNotFoundError(f"model source {path} does not exist: give a run directory, "
                                    "a checkpoint (.pt), an .onnx file or a downloaded "
                                    "pretrained name (gtx weights list)")
        opened: Source | None = open_source(path, device=device, providers=providers, ema=ema)
        # Only the file's name: the API shows descriptions, and must not reveal server paths.
        given = Path(source)
        described = str(source) if given != path else path.name
        base = str(source).rsplit("/", 1)[-1] if given != path else _base_name(path)
    else:
        opened = None if isinstance(source, Translator) else open_source(source)
        base = type(source).__name__
        if opened is not None and opened.kind == "torch":
            base = source.arch_name or base
        elif opened is not None:
            base = Path(source.path).stem
    base = _slug(name or base)
    if opened is None:
        return [Opened(base, source, {"kind": "translator", "in_channels": source.channels,
                                      "size_divisor": source.divisor,
                                      "min_size": source.min_size},
                       description=source.description)]
    model = opened.model
    if opened.kind == "torch":
        model.eval()  # served models stay in eval mode (the server owns them)
        targets = _image_targets(model, target)
        out = []
        styles = _styles(model)
        for t in targets:
            runner = translator(model, target=t, precision=precision, compile=compile,
                                style=styles[0] if styles else None)
            ident = base if len(targets) == 1 else f"{base}-{_slug(t)}"
            source_name = Path(source).name if isinstance(source, (str, os.PathLike)) else None
            out.append(Opened(ident, runner, _torch_info(model, t, runner, source_name),
                              styles=styles,
                              style_translators={
                                  s: translator(model, target=t, precision=precision,
                                                compile=compile, style=s) for s in styles},
                              description=f"{described or 'PyTorch'} ({model.arch_name} {t}): "
                                          f"{runner.description} on {model.device}"))
        return out
    # The ONNX rules (its own target only, its exported precision) are the dispatcher's.
    styles = _styles(model)
    runner = translator(model, target=target, style=styles[0] if styles else None)
    return [Opened(base, runner, _onnx_info(model), styles=styles,
                   style_translators={s: translator(model, target=target, style=s)
                                      for s in styles},
                   description=f"{described or Path(model.path).name}: {runner.description}")]
