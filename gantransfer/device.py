"""Device names: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``, checked and resolved.

One rule for every command and API that takes a device (training, translation, generation,
export): ``auto`` is CUDA, then MPS, then the CPU; other names must exist here.
"""

from __future__ import annotations

import os
import re

import torch

__all__ = ["check_device_name", "resolve_device"]

# auto, cpu, mps, cuda (the current CUDA device) or cuda:N (the N-th visible one).
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(name: object, *, owner: str = "device") -> str:
    """Return ``name`` if it is ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``.

    Only the spelling is checked; :func:`resolve_device` checks that the device exists here.

    Raises:
        ValueError: another value, with the accepted spellings.
    """
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise ValueError(f"{owner} must be auto, cpu, cuda, cuda:N (N = 0, 1, ...) or mps, "
                         f"got {name!r}")
    return name


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; other names are checked for availability.

    ``cuda:N`` must name a visible CUDA device (``0 <= N < torch.cuda.device_count()``). A
    ``torch.device`` is checked the same way.

    Raises:
        ValueError: a name that is not a device (see :func:`check_device_name`).
        RuntimeError: the device is not available here; the message lists what is.
    """
    if isinstance(name, torch.device):
        name = str(name)
    check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = " (this torch is a CPU-only build)" if torch.version.cuda is None else ""
            raise RuntimeError(f"device {name!r} requested but CUDA is not available{build}; "
                               "use device 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        if ":" in name and int(name.partition(":")[2]) >= count:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            note = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
            raise RuntimeError(
                f"device {name!r} requested but {count} CUDA device(s) are visible{note}: "
                f"use one of {', '.join(f'cuda:{i}' for i in range(count))}")
    if name == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("device 'mps' requested but MPS is not available; use device='auto'")
    return torch.device(name)
