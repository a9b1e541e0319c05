"""Config helpers: documented dataclass fields, validation, plain-data and TOML round trips.

An architecture's ``Config`` is a ``@dataclass(kw_only=True)`` whose fields are declared with
:func:`field`, so that ``gtx info`` can show each field's meaning and allowed values::

    @dataclass(kw_only=True)
    class Config:
        nz: int = field(100, help="latent size (z dimension)")
        norm: str = field("batch", help="normalisation layer", choices=("batch", "none"))
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from ._deprecated import moved

T = TypeVar("T")

__all__ = [
    "build_config",
    "check_choices",
    "check_tables",
    "field",
    "parse_value",
    "read_toml",
    "to_plain",
    "write_toml",
]


def field(default: Any = dataclasses.MISSING, *, help: str = "", choices: tuple | None = None,
          default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a help text and optional allowed values (checked by check_choices)."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_choices(config: Any) -> None:
    """Raise ``ValueError`` for any field whose value is not among its declared ``choices``."""
    for f in dataclasses.fields(config):
        choices = f.metadata.get("choices")
        if choices is not None and getattr(config, f.name) not in choices:
            raise ValueError(
                f"{type(config).__qualname__}.{f.name} = {getattr(config, f.name)!r} is not "
                f"allowed; choose one of {', '.join(map(repr, choices))}"
            )


def check_tables(config: Any, *names: str, owner: str) -> None:
    """Raise ``ValueError`` for any of the fields ``names`` that is not a dict: keyword-argument
    tables such as an architecture's ``generator_kwargs``/``discriminator_kwargs`` (``owner``,
    e.g. ``"cyclegan"``, starts the message)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, dict):
            raise ValueError(f"{owner} {name} must be a table/dict of keyword arguments, got "
                             f"{type(value).__name__}")


def to_plain(obj: Any) -> Any:
    """Convert a dataclass (recursively) to plain data: dict, list, str, int, float, bool, None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"config value {obj!r} of type {type(obj).__name__} is not plain data")


def build_config(config_cls: type[T], values: Mapping[str, Any], *, owner: str = "") -> T:
    """Build a ``Config`` dataclass from plain values (keyword arguments, a TOML table, a
    checkpoint's stored config): the one config builder, the inverse of :func:`to_plain`.

    Lists become tuples where the field's default is a tuple (TOML and JSON have no tuples).
    Validation is the dataclass's own (``__post_init__``, :func:`check_choices`).

    Raises:
        TypeError: a key that is not a field; the message names ``owner`` (e.g. ``"architecture
            'cyclegan'"``), suggests close names and lists the valid fields.
        ValueError: a value the config refuses.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        close = {k: difflib.get_close_matches(k, fields, n=1) for k in unknown}
        hints = "".join(f" ({k!r}: did you mean {c[0]!r}?)" for k, c in close.items() if c)
        owner = owner or config_cls.__qualname__
        raise TypeError(
            f"unknown config field(s) {', '.join(map(repr, unknown))} for {owner}{hints}. "
            f"Valid fields: {', '.join(sorted(fields))}."
        )
    plain = {key: tuple(value) if isinstance(value, list)
             and isinstance(fields[key].default, tuple) else value
             for key, value in values.items()}
    return config_cls(**plain)


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` value with TOML rules, falling back to a plain string.

    ``"3"`` -> 3, ``"2e-4"`` -> 0.0002, ``"true"`` -> True, ``"[1, 2]"`` -> [1, 2],
    ``'{a = 1}'`` -> {"a": 1}, ``"vgg16"`` -> "vgg16".
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file; errors name the file and the position of the mistake."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from None


def _drop_none(obj: Any) -> Any:
    # TOML has no null: a missing key means "default", which is what None means in our configs.
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def write_toml(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write plain data as TOML atomically (``None`` values are omitted: TOML has no null)."""
    import tomli_w

    from ._io import atomic_write_bytes

    atomic_write_bytes(Path(path), tomli_w.dumps(_drop_none(data)).encode())


def _from_plain(config_cls: type[T], data: dict[str, Any]) -> T:
    return build_config(config_cls, data)


__getattr__ = moved(__name__, {
    "from_plain": (f"{__name__}:_from_plain", "gantransfer.config.build_config(cls, data)")})
