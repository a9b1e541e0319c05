"""Building from names: models (:func:`get`), networks (:func:`get_network`,
:func:`build_network`), and what a name accepts (:func:`spec`), on top of the lookup of
:mod:`gantransfer.registry` (the split of timm's ``_registry.py`` and ``_builder.py``/``_factory.py``).

Configs are built from plain values by the one config builder,
:func:`gantransfer.config.build_config` (used here, by checkpoints and by ``gtx train``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import build_config
from .registry import Kind, entry, load_class

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .model import GANModel

__all__ = ["FieldSpec", "PluginSpec", "build_network", "get", "get_network", "network_arguments",
           "spec"]


@dataclass(frozen=True)
class FieldSpec:
    """One configurable field of an architecture's ``Config`` or a network factory."""

    name: str
    type: str
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    required: bool = False


@dataclass(frozen=True)
class PluginSpec:
    """What is known about a registered name without building it (see :func:`spec`)."""

    name: str
    kind: str
    object: str
    distribution: str | None
    version: str | None
    summary: str
    fields: tuple[FieldSpec, ...]
    data_kind: str | None = None


def get(name: str, *, seed: int | None = None, **overrides: Any) -> GANModel:
    """Build the architecture ``name`` with its default config updated by ``overrides``.

    The model is returned on the CPU in fp32, in training mode. ``seed`` makes the initial
    weights reproducible: they are drawn from torch's CPU generator seeded with it (its state is
    restored afterwards, so nothing else changes); None draws them from the global generator as
    it stands. ``gtx train --seed S`` builds models with ``seed=S``.

    Overrides are plain values, as a TOML file or ``--set`` gives them
    (:func:`gantransfer.config.build_config`: lists become tuples where the field's default is one).

    Raises:
        UnknownPluginError, PluginLoadError: see :func:`gantransfer.registry.load_class`.
        TypeError: an override key is not a field of the architecture's ``Config``.
        ValueError: a value is out of range (the message says which and how to fix it).

    Example:
        >>> model = gantransfer.get("dcgan", image_size=32, seed=0)  # doctest: +SKIP
    """
    cls = load_class(name, kind="architecture")
    config = build_config(cls.Config, overrides, owner=f"architecture {name!r}")
    if seed is None:
        model = cls(config)
    else:
        import torch

        with torch.random.fork_rng(devices=[]):  # models are built on the CPU
            torch.random.default_generator.manual_seed(seed)
            model = cls(config)
    model.arch_name = name
    return model


def get_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the network registered as ``name`` (a generator or discriminator ``nn.Module``).

    Raises:
        UnknownPluginError, PluginLoadError: see :func:`gantransfer.registry.load_class`.
        TypeError: a keyword is not accepted by the factory (the message lists the valid ones).
    """
    factory = load_class(name, kind="network")
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without signatures: let the call report
        sig = None
    if sig is not None:
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        valid = [p.name for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown and not accepts_any:
            raise TypeError(
                f"network {name!r} does not accept {', '.join(map(repr, unknown))}. "
                f"Valid arguments: {', '.join(valid) or '(none)'}."
            )
    return factory(**kwargs)


def build_network(name: str, *, optional: Mapping[str, Any] | None = None,
                  overrides: Mapping[str, Any] | None = None, **required: Any) -> nn.Module:
    """Build network ``name`` with the settings an architecture offers it.

    ``required`` keywords (e.g. channel counts) are always passed. ``optional`` ones are passed
    only when the factory declares them (:func:`spec` fields), so a third-party network without,
    say, ``n_layers`` can still be chosen by name. ``overrides`` (the user's own keyword
    arguments, e.g. a config's ``discriminator_kwargs``) are passed as given and win.

    Raises: as :func:`get_network`.
    """
    return get_network(name, **network_arguments(name, optional=optional, overrides=overrides,
                                                 **required))


def network_arguments(name: str, *, optional: Mapping[str, Any] | None = None,
                      overrides: Mapping[str, Any] | None = None, **required: Any
                      ) -> dict[str, Any]:
    """The keyword arguments :func:`build_network` passes to network ``name`` (same rules)."""
    accepted = {f.name for f in spec(name, kind="network").fields}
    kwargs = {k: v for k, v in (optional or {}).items() if k in accepted}
    kwargs.update(required)
    kwargs.update(overrides or {})
    return kwargs


def spec(name: str, *, kind: Kind = "architecture") -> PluginSpec:
    """Describe ``name`` without building it: object path, config fields, distribution, summary."""
    obj = load_class(name, kind=kind)
    found = entry(name, kind=kind)
    summary = (inspect.getdoc(obj) or "").strip().splitlines()
    fields: list[FieldSpec] = []
    data_kind = None
    if kind == "architecture":
        data_kind = getattr(obj, "data_kind", None)
        for f in dataclasses.fields(obj.Config):
            if not f.init:
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            default = (
                None if required
                else f.default if f.default is not dataclasses.MISSING
                else f.default_factory() if callable(f.default_factory)  # (MISSING is not)
                else None
            )
            choices = f.metadata.get("choices")
            fields.append(
                FieldSpec(f.name, _type_name(f.type), default, f.metadata.get("help", ""),
                          tuple(choices) if choices else None, required)
            )
    else:
        try:
            params = list(inspect.signature(obj).parameters.values())
        except (TypeError, ValueError):
            params = []
        for p in params:
            if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                continue
            required = p.default is p.empty
            ann = "" if p.annotation is p.empty else _type_name(p.annotation)
            fields.append(FieldSpec(p.name, ann, None if required else p.default, "", None, required))
    return PluginSpec(
        name=name, kind=kind, object=found.value, distribution=found.distribution,
        version=found.version, summary=summary[0] if summary else "", fields=tuple(fields),
        data_kind=data_kind,
    )


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
