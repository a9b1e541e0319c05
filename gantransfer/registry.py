"""Plugin lookup: names -> entry points -> objects (building them is :mod:`gantransfer.factory`).

Entry-point groups feed it (DESIGN §2, docs/plugins.md):

* ``gantransfer.architectures`` names :class:`~gantransfer.model.GANModel` subclasses (built by
  :func:`gantransfer.get`);
* ``gantransfer.networks`` names generator/discriminator factories (built by
  :func:`gantransfer.get_network` and by config fields such as ``discriminator="patchgan"``);
* ``gantransfer.commands`` names functions ``register(app)`` that add a plugin's own ``gtx``
  commands (:func:`command_entry_points`; only the CLI loads them).

The built-in plugins shipped in the ``gantransfer`` distribution register through the very same
groups; this module never imports a plugin by name. Listing imports nothing; a plugin module is
imported the first time one of its names is used. As in timm's ``_registry.py``, this module only
maps names to what they name; configs, models and networks are built in ``factory.py``.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import fnmatch
import importlib
import importlib.metadata as md
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._deprecated import moved

__all__ = [
    "ARCHITECTURES",
    "BUILTIN_DISTRIBUTION",
    "COMMANDS",
    "NETWORKS",
    "Entry",
    "EntryStatus",
    "PluginConflictError",
    "PluginLoadError",
    "UnknownPluginError",
    "command_entry_points",
    "entry",
    "list",
    "load_class",
    "name_of",
    "refresh",
    "register",
    "status",
    "unregister",
]

log = logging.getLogger(__name__)

ARCHITECTURES = "gantransfer.architectures"
NETWORKS = "gantransfer.networks"
COMMANDS = "gantransfer.commands"
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
class Entry:
    """One usable name: from an entry point (``ep`` set) or registered in-process (``obj`` set);
    ``value`` is ``"module:attr"``, ``distribution``/``version`` the package that provides it."""

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


class _Registry:
    """Entry-point discovery with a cache; thread-safe, refreshed on demand."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, Entry]] | None = None
        self._rejected: builtins.list[EntryStatus] = []
        self._conflicts: dict[tuple[str, str], builtins.list[Entry]] = {}
        self._local: dict[str, dict[str, Entry]] = {"architecture": {}, "network": {}}
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

    def _discover(self) -> dict[str, dict[str, Entry]]:
        with self._lock:
            if self._entries is not None:
                return self._entries
            entries: dict[str, dict[str, Entry]] = {}
            rejected: builtins.list[EntryStatus] = []
            conflicts: dict[tuple[str, str], builtins.list[Entry]] = {}
            for kind, group in _GROUPS.items():
                found: dict[str, Entry] = {}
                for ep in md.entry_points(group=group):
                    dist = getattr(ep, "dist", None)
                    entry = Entry(
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

    def entries(self, kind: str) -> dict[str, Entry]:
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
            if entry.obj is not None or entry.ep is None:  # registered in-process
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
            self._local[kind][name] = Entry(
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


def _shadowed(entry: Entry, builtin: Entry) -> EntryStatus:
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


def entry(name: str, *, kind: Kind = "architecture") -> Entry:
    """The registration of ``name``: where it points and which distribution provides it (the
    object is not imported).

    Raises:
        UnknownPluginError: nothing is registered under ``name``.
    """
    entries = _REGISTRY.entries(kind)
    if name not in entries:
        raise UnknownPluginError(_unknown_message(name, kind, sorted(entries)))
    return entries[name]


def command_entry_points() -> builtins.list[md.EntryPoint]:
    """The ``gantransfer.commands`` entry points (nothing is imported): those of the
    ``gantransfer`` distribution (the built-in plugins) first, then the others by name, so a
    built-in command keeps its name when a third-party plugin offers the same one."""
    def order(ep: md.EntryPoint) -> tuple[bool, str]:
        dist = getattr(ep, "dist", None)
        name = dist.metadata["Name"] if dist is not None else None
        return name != BUILTIN_DISTRIBUTION, ep.name

    return sorted(md.entry_points(group=COMMANDS), key=order)


# Building moved to gantransfer.factory (and the config builder to gantransfer.config).
__getattr__ = moved(__name__, {
    **dict.fromkeys(("get", "get_network", "build_network", "spec", "PluginSpec", "FieldSpec"),
                    "gantransfer.factory"),
    "make_config": ("gantransfer.config:build_config", "gantransfer.config.build_config"),
})
