"""DataConfig: where images come from and how they are preprocessed.

Every option may be left as ``None`` meaning "use the model's ``data_defaults()``, then the
library default"; :meth:`DataConfig.resolved` fills them in that order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import field

__all__ = ["LIBRARY_DEFAULTS", "PREPROCESS_MODES", "DataConfig"]

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none",
                    "center_crop")

# Defaults of the official CycleGAN code (load 286, random crop 256, flip on, RGB).
LIBRARY_DEFAULTS: dict[str, Any] = {
    "preprocess": "resize_and_crop",
    "load_size": 286,
    "crop_size": 256,
    "flip": True,
    "channels": 3,
}

_RESOLVABLE = ("preprocess", "load_size", "crop_size", "flip", "channels", "channels_b")


@dataclass(kw_only=True)
class DataConfig:
    """Data options shared by the CLI, config files and Python.

    ``channels_b`` is the channel count of domain B for unpaired/paired data (defaults to
    ``channels``).
    """

    root: str | Path = dataclasses.field(
        metadata={"help": "dataset folder (layout depends on the model's data kind)"})
    phase: str = field("train", help="subfolder phase for two-domain data: trainA/B or testA/B")
    preprocess: str | None = field(None, help="resize/crop mode", choices=(None, *PREPROCESS_MODES))
    load_size: int | None = field(None, help="size images are scaled to before cropping (px)")
    crop_size: int | None = field(None, help="size of the random crop fed to the model (px)")
    flip: bool | None = field(None, help="random horizontal flip with probability 0.5")
    channels: int | None = field(None, help="channels of (domain A) images: 1 or 3", choices=(None, 1, 3))
    channels_b: int | None = field(None, help="channels of domain B images: 1 or 3", choices=(None, 1, 3))
    skip_bad_images: bool = field(False, help="skip (and count) unreadable files instead of failing")
    # Labelled data (conditional models): DIR/<label>/*.png, or a CelebA folder and attributes.
    attributes: list[str] | None = field(  # noqa: RUF009
        None, help="labelled data from CelebA's attribute table: the attributes that are the "
                   "classes, e.g. Black_Hair,Blond_Hair (root holds img_align_celeba/ and "
                   "list_attr_celeba.txt)")
    min_per_class: int = field(100, help="labelled data: warn about classes with fewer images")
    drop_small_classes: bool = field(
        False, help="labelled data: leave out classes under min_per_class (default: keep them, "
                    "with a warning)")

    def __post_init__(self) -> None:
        if self.preprocess is not None and self.preprocess not in PREPROCESS_MODES:
            raise ValueError(f"DataConfig.preprocess = {self.preprocess!r} is not a known mode; "
                             f"choose one of {', '.join(PREPROCESS_MODES)}")
        for name in ("load_size", "crop_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"DataConfig.{name} must be a positive integer, got {value!r}")
        for name in ("channels", "channels_b"):
            value = getattr(self, name)
            if value is not None and value not in (1, 3):
                raise ValueError(f"DataConfig.{name} must be 1 or 3, got {value!r}")
        if isinstance(self.attributes, str):  # "--set attributes=A,B" from a command line
            self.attributes = [a.strip() for a in self.attributes.split(",") if a.strip()]
        if self.attributes is not None and not self.attributes:
            raise ValueError("DataConfig.attributes must name at least one attribute, e.g. "
                             "Black_Hair,Blond_Hair")
        if not isinstance(self.min_per_class, int) or self.min_per_class < 0:
            raise ValueError(f"DataConfig.min_per_class must be an integer >= 0, got "
                             f"{self.min_per_class!r}")
        if not str(self.phase):
            raise ValueError("DataConfig.phase must not be empty (e.g. 'train' or 'test')")

    def resolved(self, defaults: dict[str, Any] | None = None) -> DataConfig:
        """A copy with every ``None`` option filled: this config, then ``defaults``, then library.

        Args:
            defaults: the model's ``data_defaults()`` (keys among preprocess, load_size,
                crop_size, flip, channels, channels_b); unknown keys raise ``KeyError``.

        Returns:
            A new DataConfig with no ``None`` left (``channels_b`` falls back to ``channels``).
        """
        defaults = dict(defaults or {})
        unknown = set(defaults) - set(_RESOLVABLE)
        if unknown:
            raise KeyError(f"unknown data default(s) {sorted(unknown)}; allowed: {list(_RESOLVABLE)}")
        values: dict[str, Any] = {}
        for name in _RESOLVABLE:
            value = getattr(self, name)
            if value is None:
                value = defaults.get(name)
            if value is None:
                value = LIBRARY_DEFAULTS.get(name)
            values[name] = value
        if values["channels_b"] is None:
            values["channels_b"] = values["channels"]
        return dataclasses.replace(self, **values)
