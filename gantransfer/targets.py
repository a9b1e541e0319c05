"""What a generator takes and gives, said once: a model's export targets and every exported
ONNX file carry the same description.

* :class:`ExportSpec`: one generator of a model (``GANModel.export_targets()``): which net, what
  goes in (an image ``N×C×H×W`` in [-1, 1], or latent noise ``N×latent_dim``), what comes out,
  and the size rules of image inputs.
* :class:`OnnxMetadata`: an exported file's ``ExportSpec`` plus where the file came from
  (architecture, target, precision, version, training config...), stored as ``gantransfer.*``
  ``metadata_props`` in the file so that the file alone says how to run it (``docs/export.md``
  lists the keys). It *is* an ``ExportSpec``: the runtime, verification, quantisation and
  ``gtx bench`` read its fields directly, and :meth:`OnnxMetadata.from_spec` makes one from a
  target's spec.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["METADATA_PREFIX", "ExportSpec", "OnnxMetadata", "resolve_label"]

METADATA_PREFIX = "gantransfer."


@dataclass(frozen=True, kw_only=True)
class ExportSpec:
    """How one generator is exported and run for inference.

    ``input="image"``: the net maps ``N×in_channels×H×W`` in [-1, 1] to ``N×out_channels×H'×W'``
    in [-1, 1]; H and W must be multiples of ``size_divisor`` and at least ``min_size``.
    ``input="latent"``: the net maps ``N×latent_dim`` noise to images of ``image_size``.
    ``labels``: a conditional generator's label (class or style) names; the net then takes a
    second input, an int64 ``N`` tensor of label indexes into ``labels`` (``net(x, labels)``).
    """

    net: str  # key in model.nets
    input: Literal["image", "latent"] = "image"
    in_channels: int = 3  # image input channels (ignored for latents)
    out_channels: int = 3
    latent_dim: int | None = None  # required for input="latent"
    image_size: int | None = None  # output size of a latent generator
    size_divisor: int = 1  # H and W of image inputs must be multiples of this
    min_size: int = 1  # smallest H and W an image input may have (reflection pads need room)
    direction: str | None = None  # e.g. "a2b": which domain goes in, which comes out
    labels: tuple[str, ...] | None = None  # conditional nets: label names (index = input value)
    description: str = ""

    def __post_init__(self) -> None:
        if self.input not in ("image", "latent"):
            raise ValueError(f"ExportSpec.input must be 'image' or 'latent', got {self.input!r}")
        if self.input == "latent" and not self.latent_dim:
            raise ValueError("ExportSpec for a latent generator needs latent_dim")
        if self.size_divisor < 1 or self.min_size < 1:
            raise ValueError("ExportSpec.size_divisor and min_size must be >= 1")
        if self.labels is not None:
            if isinstance(self.labels, str) or not self.labels:
                raise ValueError("ExportSpec.labels must be a non-empty sequence of names (or "
                                 f"None for an unconditional net), got {self.labels!r}")
            object.__setattr__(self, "labels", tuple(str(n) for n in self.labels))


def resolve_label(value: str | int, names: Sequence[str] | None, *, what: str = "label",
                  source: str = "the model") -> int:
    """The index of label ``value`` (a name, or an index as int or digit string) in ``names``.

    Raises:
        ValueError: ``names`` is None (``source`` takes no label), an unknown name or an index
            out of range; the message lists the valid names and indexes.

    >>> resolve_label("monet", ["cezanne", "monet"])
    1
    """
    if not names:
        raise ValueError(f"{source} takes no {what}: it is not conditional (it was trained "
                         f"without labels); leave the {what} out")
    valid = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    if isinstance(value, str) and value in names:
        return list(names).index(value)
    index: int | None = None
    if isinstance(value, bool):
        index = None
    elif isinstance(value, int):
        index = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        index = int(value)
    if index is None:
        raise ValueError(f"unknown {what} {value!r} for {source}; valid {what}s: {valid}")
    if not 0 <= index < len(names):
        raise ValueError(f"{what} index {index} is out of range for {source}: it has "
                         f"{len(names)} {what}s ({valid})")
    return index


# ExportSpec fields under another name in the files (the file format came first), and fields
# that describe the model's side only and are not written.
_FILE_NAMES = {"input": "input_kind"}
_NOT_IN_FILES = ("net", "description")


@dataclass(frozen=True, kw_only=True)
class OnnxMetadata(ExportSpec):
    """An exported file's :class:`ExportSpec` (``input`` is stored as ``input_kind``) and where
    the file came from; what the runtime needs to know (see ``docs/export.md``)."""

    net: str = ""  # a file holds one graph: it names no net
    architecture: str | None = None
    target: str | None = None
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

    @property
    def input_kind(self) -> Literal["image", "latent"]:
        """``input`` under the name the file stores it by."""
        return self.input

    @classmethod
    def from_spec(cls, spec: ExportSpec, **provenance: Any) -> OnnxMetadata:
        """The metadata of a file exported from ``spec`` (``provenance``: ``architecture``,
        ``target``, ``precision``...)."""
        values = {f.name: getattr(spec, f.name) for f in dataclasses.fields(ExportSpec)}
        return cls(**{**values, **provenance})

    def to_props(self) -> dict[str, str]:
        """``{"gantransfer.<key>": str}`` for ONNX ``metadata_props`` (None values are left out)."""
        props = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or f.name in _NOT_IN_FILES:
                continue
            key = METADATA_PREFIX + _FILE_NAMES.get(f.name, f.name)
            if isinstance(value, tuple):  # label names: a JSON list
                props[key] = json.dumps(list(value))
            else:
                props[key] = (json.dumps(value, sort_keys=True) if isinstance(value, dict)
                              else str(value))
        return props

    @classmethod
    def from_props(cls, props: dict[str, str], **overrides: Any) -> OnnxMetadata:
        """Parse ``metadata_props``; ``overrides`` (e.g. ``size_divisor=4``, ``input_kind=
        "image"``) fill or replace keys.

        Raises ``ValueError`` naming the missing keys when the file has no gantransfer metadata
        and the overrides do not say what is needed, ``TypeError`` for unknown overrides.
        """
        fields = {_FILE_NAMES.get(f.name, f.name): f for f in dataclasses.fields(cls)
                  if f.name not in _NOT_IN_FILES}
        values: dict[str, Any] = {}
        for key, raw in props.items():
            if not key.startswith(METADATA_PREFIX):
                continue
            name = key[len(METADATA_PREFIX):]
            if name not in fields:
                continue  # a newer writer's key: ignore rather than fail
            kind = str(fields[name].type)
            if kind.startswith("dict"):
                values[name] = json.loads(raw)
            elif kind.startswith("tuple"):
                values[name] = tuple(json.loads(raw))
            elif kind.startswith("float"):
                values[name] = float(raw)
            elif kind.startswith("int"):
                values[name] = int(raw)
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise TypeError(f"unknown metadata option(s) {', '.join(unknown)}; valid: "
                            f"{', '.join(fields)}")
        if "input_kind" not in values:
            raise ValueError(
                "the ONNX file has no gantransfer metadata; say how to run it, e.g. "
                "input_kind='image', size_divisor=4 (and in_channels/out_channels if not 3), or "
                "input_kind='latent' (latent_dim is read from the input shape)"
            )
        return cls(**{fields[k].name: v for k, v in values.items()})
