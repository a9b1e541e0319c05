"""The ``gantransfer.*`` metadata stored in every exported ONNX file.

The file alone says how to run it: what goes in (image or latent), the value range, channel order
and layout, the size divisor and minimum size, and where it came from (architecture, target,
training config). Values are strings in ONNX ``metadata_props``; :class:`OnnxMetadata` parses them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["METADATA_PREFIX", "OnnxMetadata"]

METADATA_PREFIX = "gantransfer."


@dataclass(frozen=True, kw_only=True)
class OnnxMetadata:
    """What the runtime needs to know about an exported generator (see ``docs/export.md``)."""

    input_kind: str  # "image" | "latent"
    in_channels: int = 3
    out_channels: int = 3
    size_divisor: int = 1
    min_size: int = 1
    latent_dim: int | None = None
    image_size: int | None = None
    architecture: str | None = None
    target: str | None = None
    direction: str | None = None
    value_range: str = "[-1,1]"
    channel_order: str = "RGB"
    layout: str = "NCHW"
    precision: str = "fp32"  # "fp32" | "fp16" | "int8"
    psnr_db: float | None = None  # int8 only: PSNR vs fp32 on the calibration images
    heldout_psnr_db: float | None = None  # int8 only: the same on held-out images
    quantization: dict[str, Any] | None = None  # int8 only: how it was quantised
    version: str | None = None  # gantransfer version that wrote the file
    exported_at: str | None = None
    config: dict[str, Any] | None = None  # the architecture's config as plain data

    def to_props(self) -> dict[str, str]:
        """``{"gantransfer.<key>": str}`` for ONNX ``metadata_props`` (None values are left out)."""
        props = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            props[METADATA_PREFIX + f.name] = (
                json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
            )
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], **overrides: Any) -> OnnxMetadata:
        """Parse ``metadata_props``; ``overrides`` (e.g. ``size_divisor=4``) fill or replace keys.

        Raises ``ValueError`` naming the missing keys when the file has no gantransfer metadata
        and the overrides do not say what is needed.
        """
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in props.items():
            if not key.startswith(METADATA_PREFIX):
                continue
            name = key[len(METADATA_PREFIX):]
            if name not in types:
                continue  # a newer writer's key: ignore rather than fail
            kind = str(types[name])
            if kind.startswith("dict"):
                values[name] = json.loads(raw)
            elif kind.startswith("float"):
                values[name] = float(raw)
            elif kind.startswith("int"):
                values[name] = int(raw)
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise TypeError(f"unknown metadata option(s) {', '.join(unknown)}; valid: "
                            f"{', '.join(types)}")
        if "input_kind" not in values:
            raise ValueError(
                "the ONNX file has no gantransfer metadata; say how to run it, e.g. "
                "input_kind='image', size_divisor=4 (and in_channels/out_channels if not 3), or "
                "input_kind='latent' (latent_dim is read from the input shape)"
            )
        return cls(**values)
