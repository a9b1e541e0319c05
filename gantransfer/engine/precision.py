"""Deprecated: precision moved to :mod:`gantransfer.precision` (one module for training,
translation and export). ``resolve_precision(requested, device)`` is
``Precision.resolve(requested, device, job="training")``. Removed in gantransfer 0.3."""

from __future__ import annotations

import torch

from .._deprecated import moved
from ..precision import ALLOWED, Precision

__all__ = ["PRECISIONS", "cpu_has_native_bf16", "native_bf16", "resolve_precision"]  # noqa: F822


_PRECISIONS = ALLOWED["training"]


def _resolve_precision(requested: str, device: torch.device) -> str:
    return Precision.resolve(requested, device, job="training")


__getattr__ = moved(__name__, {
    "PRECISIONS": (f"{__name__}:_PRECISIONS", "gantransfer.precision.ALLOWED['training']"),
    "resolve_precision": (f"{__name__}:_resolve_precision",
                          "gantransfer.precision.Precision.resolve(..., job='training')"),
    "cpu_has_native_bf16": "gantransfer.precision",
    "native_bf16": "gantransfer.precision",
})
