"""Plugin registry: architectures and networks discovered through Python entry points.

Two entry-point groups feed it (DESIGN §2):

* ``gantransfer.architectures`` names :class:`~gantransfer.model.GANModel` subclasses,
  looked up with :func:`get`;
* ``gantransfer.networks`` names generator/discriminator factories, looked up with
  :func:`get_network` and by config fields such as ``discriminator="patchgan"``.

The built-in plugins shipped in the ``gantransfer`` distribution register through the very same
groups; this module never imports a plugin by name. Listing imports nothing; a plugin module is
imported the first time one of its names is used.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import fnmatch
import importlib
import importlib.metadata as md
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ARCHITECTURES",
    "BUILTIN_DISTRIBUTION",
    "NETWORKS",
    "EntryStatus",
    "FieldSpec",
    "PluginConflictError",
    "PluginLoadError",
    "PluginSpec",
    "UnknownPluginError",
    "build_network",
    "get",
    "get_network",
    "list",
    "load_class",
    "name_of",
    "refresh",
    "register",
    "spec",
    "status",
    "unregister",
]

log = logging.getLogger(__name__)

ARCHITECTURES = "gantransfer.architectures"
NETWORKS = "gantransfer.networks"
BUILTIN_DISTRIBUTION = "gantransfer"

Kind = Literal["architecture", "network"]
_GROUPS: dict[str, str] = {"architecture": ARCHITECTURES, "network": NETWORKS}


class PluginLoadError(ImportError):
    """A plugin's entry point could not be imported or does not name what its group expects."""


class UnknownPluginError(LookupError):
    """No architecture or network is registered under the requested name."""

    def __str__(self) -> str:  # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else ""


class PluginConflictError(LookupError):
    """Two third-party distributions register the same name; neither is used silently."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class _Entry:
    """One usable name: from an entry point (``ep`` set) or registered in-process (``obj`` set)."""

    name: str
    kind: str
    value: str  # "module:attr", or "<in-process>"
    distribution: str | None
    version: str | None
    ep: md.EntryPoint | None = None
    obj: Any = None

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION


@dataclass(frozen=True)
class EntryStatus:
    """What `gtx plugins` shows for one entry point (or in-process registration)."""

    name: str
    kind: str
    value: str
    distribution: str | None
    version: str | None
    state: Literal["ok", "broken", "shadowed", "conflict", "not loaded"]
    detail: str = ""


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


class _Registry:
    """Entry-point discovery with a cache; thread-safe, refreshed on demand."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, _Entry]] | None = None
        self._rejected: builtins.list[EntryStatus] = []
        self._conflicts: dict[tuple[str, str], builtins.list[_Entry]] = {}
        self._local: dict[str, dict[str, _Entry]] = {"architecture": {}, "network": {}}
        self._loaded: dict[tuple[str, str], Any] = {}
        self._errors: dict[tuple[str, str], PluginLoadError] = {}

    # -- discovery -------------------------------------------------------------------------
    def refresh(self) -> None:
        with self._lock:
            self._entries = None
            self._rejected = []
            self._conflicts = {}
            self._loaded = {k: v for k, v in self._loaded.items() if k[1] in self._local[k[0]]}
            self._errors = {}

    def _discover(self) -> dict[str, dict[str, _Entry]]:
        with self._lock:
            if self._entries is not None:
                return self._entries
            entries: dict[str, dict[str, _Entry]] = {}
            rejected: builtins.list[EntryStatus] = []
            conflicts: dict[tuple[str, str], builtins.list[_Entry]] = {}
            for kind, group in _GROUPS.items():
                found: dict[str, _Entry] = {}
                for ep in md.entry_points(group=group):
                    dist = getattr(ep, "dist", None)
                    entry = _Entry(
                        name=ep.name,
                        kind=kind,
                        value=ep.value,
                        distribution=dist.metadata["Name"] if dist is not None else None,
                        version=dist.version if dist is not None else None,
                        ep=ep,
                    )
                    other = found.get(ep.name)
                    if other is None:
                        found[ep.name] = entry
                    elif other.builtin and not entry.builtin:
                        rejected.append(_shadowed(entry, other))
                    elif entry.builtin and not other.builtin:
                        rejected.append(_shadowed(other, entry))
                        found[ep.name] = entry
                    elif other.distribution != entry.distribution:
                        conflicts.setdefault((kind, ep.name), [other]).append(entry)
                for _kind, name in conflicts:
                    if _kind == kind:
                        found.pop(name, None)
                entries[kind] = found
            for status in rejected:
                log.warning(
                    "%s %r from %s %s is not used: %s",
                    status.kind,
                    status.name,
                    status.distribution,
                    status.version,
                    status.detail,
                )
            self._entries, self._rejected, self._conflicts = entries, rejected, conflicts
            return entries

    def entries(self, kind: str) -> dict[str, _Entry]:
        found = dict(self._discover()[_check_kind(kind)])
        found.update(self._local[kind])
        return found

    # -- loading ---------------------------------------------------------------------------
    def load(self, name: str, kind: str) -> Any:
        kind = _check_kind(kind)
        with self._lock:
            key = (kind, name)
            if key in self._loaded:
                return self._loaded[key]
            if key in self._errors:
                raise self._errors[key]
            entries = self.entries(kind)
            if name not in entries:
                self._discover()
                if key in self._conflicts:
                    dists = ", ".join(
                        f"{e.distribution} {e.version} ({e.value})" for e in self._conflicts[key]
                    )
                    raise PluginConflictError(
                        f"{kind} {name!r} is registered by several distributions: {dists}. "
                        "Uninstall all but one of them."
                    )
                raise UnknownPluginError(_unknown_message(name, kind, sorted(entries)))
            entry = entries[name]
            if entry.obj is not None:
                obj = entry.obj
            else:
                try:
                    obj = entry.ep.load()
                except Exception as exc:
                    err = PluginLoadError(
                        f"{kind} plugin {name!r} = {entry.value!r} from distribution "
                        f"{entry.distribution} {entry.version} failed to import: "
                        f"{type(exc).__name__}: {exc}. Other plugins are unaffected; "
                        f"reinstall or fix {entry.distribution}, or uninstall it."
                    )
                    err.__cause__ = exc
                    self._errors[key] = err
                    raise err from exc
                problem = _check_object(obj, kind)
                if problem:
                    err = PluginLoadError(
                        f"{kind} plugin {name!r} = {entry.value!r} from distribution "
                        f"{entry.distribution} {entry.version}: {problem}"
                    )
                    self._errors[key] = err
                    raise err
            self._loaded[key] = obj
            return obj

    def register(self, name: str, obj: Any, kind: str) -> None:
        kind = _check_kind(kind)
        problem = _check_object(obj, kind)
        if problem:
            raise TypeError(f"cannot register {kind} {name!r}: {problem}")
        with self._lock:
            if name in self.entries(kind):
                where = self.entries(kind)[name]
                raise ValueError(
                    f"{kind} {name!r} is already registered (by {where.distribution or 'this process'}"
                    f", {where.value}); choose another name or unregister it first"
                )
            module = getattr(obj, "__module__", "?")
            qual = getattr(obj, "__qualname__", type(obj).__name__)
            self._local[kind][name] = _Entry(
                name=name, kind=kind, value=f"{module}:{qual}", distribution=None,
                version=None, obj=obj,
            )

    def unregister(self, name: str, kind: str) -> None:
        kind = _check_kind(kind)
        with self._lock:
            if name not in self._local[kind]:
                raise UnknownPluginError(f"{kind} {name!r} was not registered in-process")
            del self._local[kind][name]
            self._loaded.pop((kind, name), None)

    def status(self) -> builtins.list[EntryStatus]:
        self._discover()
        out: builtins.list[EntryStatus] = []
        for kind in _GROUPS:
            for name, entry in sorted(self.entries(kind).items()):
                key = (kind, name)
                state, detail = "not loaded", ""
                try:
                    self.load(name, kind)
                    state = "ok"
                except PluginLoadError as exc:
                    state, detail = "broken", str(exc.__cause__ or exc)
                out.append(
                    EntryStatus(name, kind, entry.value, entry.distribution, entry.version,
                                state, detail)  # type: ignore[arg-type]
                )
                del key
        out.extend(self._rejected)
        for (kind, name), group_entries in sorted(self._conflicts.items()):
            for e in group_entries:
                out.append(
                    EntryStatus(name, kind, e.value, e.distribution, e.version, "conflict",
                                "registered by several distributions; none is used")
                )
        return out

    def name_of(self, obj: Any, kind: str) -> str | None:
        for name, entry in self.entries(kind).items():
            if entry.obj is obj or self._loaded.get((kind, name)) is obj:
                return name
        return None


def _shadowed(entry: _Entry, builtin: _Entry) -> EntryStatus:
    return EntryStatus(
        entry.name, entry.kind, entry.value, entry.distribution, entry.version, "shadowed",
        f"the name is taken by the built-in {builtin.value}; third-party plugins may not replace "
        "built-ins, register it under another name",
    )


def _check_kind(kind: str) -> str:
    if kind not in _GROUPS:
        raise ValueError(f"kind must be 'architecture' or 'network', got {kind!r}")
    return kind


def _check_object(obj: Any, kind: str) -> str | None:
    if kind == "architecture":
        from .model import GANModel

        if not (isinstance(obj, type) and issubclass(obj, GANModel)):
            return f"expected a GANModel subclass, got {obj!r}"
        if not dataclasses.is_dataclass(getattr(obj, "Config", None)):
            return f"{obj.__name__}.Config must be a dataclass"
    elif not callable(obj):
        return f"expected a callable network factory, got {obj!r}"
    return None


def _unknown_message(name: str, kind: str, available: builtins.list[str]) -> str:
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
    msg = f"unknown {kind} {name!r}."
    if close:
        msg += f" Did you mean {' or '.join(repr(c) for c in close)}?"
    msg += f" Available: {', '.join(available) if available else '(none installed)'}."
    if kind == "architecture":
        msg += " Run `gtx plugins` to see broken or shadowed plugins."
    return msg


_REGISTRY = _Registry()


# -- public API ---------------------------------------------------------------------------------
def list(pattern: str | None = None, *, kind: Kind = "architecture") -> builtins.list[str]:
    """Names registered for ``kind``, sorted; ``pattern`` is a shell-style filter (``"resnet*"``).

    Imports no plugin module.
    """
    names = sorted(_REGISTRY.entries(kind))
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def load_class(name: str, *, kind: Kind = "architecture") -> Any:
    """The class (architecture) or factory (network) registered as ``name``, imported on first use.

    Raises:
        UnknownPluginError: nothing is registered under ``name`` (the message suggests close names).
        PluginLoadError: the plugin module failed to import (chained to the cause).
    """
    return _REGISTRY.load(name, kind)


def get(name: str, *, seed: int | None = None, **overrides: Any):
    """Build the architecture ``name`` with its default config updated by ``overrides``.

    The model is returned on the CPU in fp32, in training mode. ``seed`` makes the initial
    weights reproducible: they are drawn from torch's CPU generator seeded with it (its state is
    restored afterwards, so nothing else changes); None draws them from the global generator as
    it stands. ``gtx train --seed S`` builds models with ``seed=S``.

    Raises:
        UnknownPluginError, PluginLoadError: see :func:`load_class`.
        TypeError: an override key is not a field of the architecture's ``Config``.
        ValueError: a value is out of range (the message says which and how to fix it).

    Example:
        >>> model = gantransfer.get("dcgan", image_size=32, seed=0)  # doctest: +SKIP
    """
    cls = load_class(name, kind="architecture")
    config = make_config(cls.Config, overrides, owner=f"architecture {name!r}")
    if seed is None:
        model = cls(config)
    else:
        import torch

        with torch.random.fork_rng(devices=[]):  # models are built on the CPU
            torch.random.default_generator.manual_seed(seed)
            model = cls(config)
    model.arch_name = name
    return model


def make_config(config_cls: type, values: dict[str, Any], *, owner: str) -> Any:
    """Instantiate a ``Config`` dataclass from plain values, with errors that list valid fields."""
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        close = {k: difflib.get_close_matches(k, fields, n=1) for k in unknown}
        hints = "".join(f" ({k!r}: did you mean {c[0]!r}?)" for k, c in close.items() if c)
        raise TypeError(
            f"unknown config field(s) {', '.join(map(repr, unknown))} for {owner}{hints}. "
            f"Valid fields: {', '.join(sorted(fields))}."
        )
    return config_cls(**values)


def get_network(name: str, **kwargs: Any):
    """Build the network registered as ``name`` (a generator or discriminator ``nn.Module``).

    Raises:
        UnknownPluginError, PluginLoadError: see :func:`load_class`.
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
                  overrides: Mapping[str, Any] | None = None, **required: Any):
    """Build network ``name`` with the settings an architecture offers it.

    ``required`` keywords (e.g. channel counts) are always passed. ``optional`` ones are passed
    only when the factory declares them (:func:`spec` fields), so a third-party network without,
    say, ``n_layers`` can still be chosen by name. ``overrides`` (the user's own keyword
    arguments, e.g. a config's ``discriminator_kwargs``) are passed as given and win.

    Raises: as :func:`get_network`.
    """
    accepted = {f.name for f in spec(name, kind="network").fields}
    kwargs = {k: v for k, v in (optional or {}).items() if k in accepted}
    kwargs.update(required)
    kwargs.update(overrides or {})
    return get_network(name, **kwargs)


def spec(name: str, *, kind: Kind = "architecture") -> PluginSpec:
    """Describe ``name`` without building it: object path, config fields, distribution, summary."""
    obj = load_class(name, kind=kind)
    entry = _REGISTRY.entries(kind)[name]
    summary = (inspect.getdoc(obj) or "").strip().splitlines()
    fields: builtins.list[FieldSpec] = []
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
                else f.default_factory()  # type: ignore[misc]
            )
            choices = f.metadata.get("choices")
            fields.append(
                FieldSpec(f.name, _type_name(f.type), default, f.metadata.get("help", ""),
                          tuple(choices) if choices else None, required)
            )
    else:
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            params = []
        for p in params:
            if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                continue
            required = p.default is p.empty
            ann = "" if p.annotation is p.empty else _type_name(p.annotation)
            fields.append(FieldSpec(p.name, ann, None if required else p.default, "", None, required))
    return PluginSpec(
        name=name, kind=kind, object=entry.value, distribution=entry.distribution,
        version=entry.version, summary=summary[0] if summary else "", fields=tuple(fields),
        data_kind=data_kind,
    )


def register(name: str, obj: Any = None, *, kind: Kind = "architecture") -> Callable[[Any], Any] | Any:
    """Register ``obj`` under ``name`` in this process (notebooks, tests).

    Usable directly, ``register("toy", ToyGAN)``, or as a decorator, ``@register("toy")``.
    A name that is already taken (by an entry point or an earlier call) raises ``ValueError``.
    """
    if obj is None:
        def decorator(o: Any) -> Any:
            _REGISTRY.register(name, o, kind)
            return o

        return decorator
    _REGISTRY.register(name, obj, kind)
    return obj


def unregister(name: str, *, kind: Kind = "architecture") -> None:
    """Remove an in-process registration made with :func:`register`."""
    _REGISTRY.unregister(name, kind)


def refresh() -> None:
    """Forget discovered entry points (after installing a plugin or changing ``sys.path``)."""
    _REGISTRY.refresh()
    importlib.invalidate_caches()


def status() -> builtins.list[EntryStatus]:
    """Every entry point and in-process registration with its state; tries to import each."""
    return _REGISTRY.status()


def name_of(obj: Any, *, kind: Kind = "architecture") -> str | None:
    """The registered name of an already-loaded class or factory, or None."""
    return _REGISTRY.name_of(obj, kind)


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
