"""Old import paths that keep working for one release, with a ``DeprecationWarning``.

A module whose names moved sets its module-level ``__getattr__`` to :func:`moved`::

    __getattr__ = moved(__name__, {"translate_files": "gantransfer.inference.pipeline"})

Accessing ``old.translate_files`` (``from old import translate_files`` too) then warns, naming
the new place, and returns the object from there: the very same object, so ``isinstance`` checks
and monkeypatching of the new module keep working. The new module is imported by name, when a
name is first used: a shim is not part of the layering (docs/architecture.md) and may point
anywhere.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["REMOVED_IN", "moved"]

REMOVED_IN = "0.3"


def moved(old_module: str, names: Mapping[str, str | tuple[str, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``names`` from their new modules, with a warning.

    Args:
        old_module: the shim's ``__name__``.
        names: old name -> ``"new.module"`` (same name there), ``"new.module:new_name"``, or
            ``(target, replacement)`` where ``replacement`` is what the warning tells users to
            write instead (for a name whose replacement is not a plain rename).
    """

    def __getattr__(name: str) -> Any:
        try:
            entry = names[name]
        except KeyError:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}") from None
        target, instead = entry if isinstance(entry, tuple) else (entry, "")
        module_name, _, new_name = target.partition(":")
        new_name = new_name or name
        instead = instead or f"{module_name}.{new_name}"
        warnings.warn(
            f"{old_module}.{name} is deprecated: use {instead} (the old path is removed in "
            f"gantransfer {REMOVED_IN})",
            DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module_name), new_name)

    return __getattr__
