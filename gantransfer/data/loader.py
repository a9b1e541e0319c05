"""DataLoader settings that suit the machine: worker count, persistent workers, pinned memory."""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["loader_kwargs", "recommended_workers"]


def _usable_cpus() -> int:
    # The affinity mask is what this process may use (containers, taskset), not the host total.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def recommended_workers() -> int:
    """``min(4, usable CPUs - 1)``: leave a core for the training loop; 0 on a single core.

    Decoding small images is cheap, and more than four workers rarely helps a single GPU.
    """
    return max(0, min(4, _usable_cpus() - 1))


def loader_kwargs(device: torch.device | str, num_workers: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``torch.utils.data.DataLoader`` on ``device``.

    Args:
        device: where batches go; pinned memory is used only for CUDA (it only speeds up
            host-to-GPU copies, and costs memory elsewhere).
        num_workers: worker processes; ``None`` picks :func:`recommended_workers`.

    Returns:
        ``{"num_workers", "persistent_workers", "pin_memory"}``; workers persist across epochs
        when there are any (re-forking them each epoch is slow for short epochs).

    Raises:
        ValueError: a negative ``num_workers``.
    """
    workers = recommended_workers() if num_workers is None else int(num_workers)
    if workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    return {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": torch.device(device).type == "cuda",
    }
