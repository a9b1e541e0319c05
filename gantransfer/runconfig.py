"""A run's full configuration from layered sources: run dir, TOML file, ``--set`` pairs, flags.

The TOML layout (also what a run directory's ``config.toml`` holds)::

    architecture = "cyclegan"

    [model]            # fields of the architecture's Config (`gtx info cyclegan`)
    ngf = 32

    [train]            # fields of TrainConfig
    steps = 2000
    batch_size = 1

    [data]             # fields of DataConfig
    root = "datasets/horse2zebra"
    crop_size = 128

Later sources override earlier ones. ``--set key=value`` takes a section prefix
(``model.ngf=32``, ``train.seed=3``, ``data.crop_size=128``); a bare key is looked up in the
model, train and data configs and must be unambiguous, except that a key naming both a model
field and a data field (an architecture's data default, such as ``crop_size``) sets both.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import parse_value, read_toml

__all__ = ["SECTIONS", "RunSpec", "field_names"]

SECTIONS = ("model", "train", "data")


@dataclass
class RunSpec:
    """Plain-data description of a training run (architecture + three config sections)."""

    architecture: str | None = None
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | Path) -> RunSpec:
        """Read a TOML config; unknown top-level keys are an error naming the file."""
        raw = read_toml(path)
        unknown = sorted(set(raw) - {"architecture", *SECTIONS})
        if unknown:
            raise ValueError(
                f"config file {path}: unknown key(s) {', '.join(map(repr, unknown))}; expected "
                "`architecture = \"...\"` and the tables [model], [train], [data]"
            )
        for section in SECTIONS:
            if not isinstance(raw.get(section, {}), dict):
                raise ValueError(f"config file {path}: `{section}` must be a table ([{section}])")
        return cls(raw.get("architecture"), dict(raw.get("model", {})),
                   dict(raw.get("train", {})), dict(raw.get("data", {})))

    def merged(self, other: RunSpec) -> RunSpec:
        """``other`` layered over this one (architecture must agree when both name one)."""
        if self.architecture and other.architecture and self.architecture != other.architecture:
            raise ValueError(
                f"architecture mismatch: {self.architecture!r} vs {other.architecture!r}; a run "
                "directory or config file trained with one architecture cannot be used with another"
            )
        out = copy.deepcopy(self)
        out.architecture = other.architecture or self.architecture
        for section in SECTIONS:
            getattr(out, section).update(copy.deepcopy(getattr(other, section)))
        return out

    def apply_sets(self, pairs: list[str], *, fields: dict[str, set[str]]) -> RunSpec:
        """Apply ``key=value`` pairs; ``fields`` maps each section to its valid field names."""
        out = copy.deepcopy(self)
        for pair in pairs:
            key, sep, text = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"--set expects KEY=VALUE, got {pair!r} (e.g. --set ngf=32)")
            section, dot, name = key.partition(".")
            if dot and section in SECTIONS:
                if name not in fields[section]:
                    raise ValueError(
                        f"--set {pair}: {section} has no field {name!r}; valid: "
                        f"{', '.join(sorted(fields[section]))}"
                    )
            else:
                name = key
                owners = [s for s in SECTIONS if key in fields[s]]
                if not owners:
                    valid = "; ".join(f"{s}: {', '.join(sorted(fields[s]))}" for s in SECTIONS)
                    raise ValueError(f"--set {pair}: no config field {key!r}. Valid fields — {valid}")
                if owners == ["model", "data"]:
                    # A model field that is a data default (e.g. CycleGAN's crop_size) means the
                    # same thing in both places: set both so they cannot disagree.
                    out.model[key] = out.data[key] = parse_value(text)
                    continue
                if len(owners) > 1:
                    raise ValueError(
                        f"--set {pair}: {key!r} is a field of {' and '.join(owners)}; prefix it, "
                        f"e.g. --set {owners[0]}.{key}=..."
                    )
                section = owners[0]
            getattr(out, section)[name] = parse_value(text)
        return out

    def to_plain(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "model": self.model, "train": self.train,
                "data": self.data}


def field_names(config_cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(config_cls) if f.init}
