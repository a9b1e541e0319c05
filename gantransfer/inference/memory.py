"""How much memory a translation needs, and how much the machine has: checked before running.

A fully convolutional generator's activations grow with the pixel count, so the need is
measured once per generator on a small probe image and scaled: forward hooks on the leaf modules
track which outputs are alive at once (residual and skip connections keep some alive), and their
peak, per pixel, times :data:`PEAK_FACTOR`, covers what the hooks do not see (oneDNN's reordered
copies of inputs and outputs, convolution scratch space). Measured on a CPU (torch 2.13, fp32,
batch 1, peak RSS of a fresh process):

==================  ============  ===================  ============
generator           hooks' peak   measured peak         estimate
==================  ============  ===================  ============
resnet_9blocks      574 B/px      907-1022 B/px         1436 B/px
unet_256            268 B/px      510-656 B/px          670 B/px
==================  ============  ===================  ============

So a 4000x3000 photo through the default CycleGAN generator needs about 11 GB (16 GB
estimated): the estimate errs on the safe side. bf16 and compiled runs need less.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

__all__ = ["PEAK_FACTOR", "activation_bytes_per_pixel", "available_memory"]

log = logging.getLogger(__name__)

PEAK_FACTOR = 2.5
_PROBE_SIDE = 64


def activation_bytes_per_pixel(net: nn.Module, *, channels: int, divisor: int, min_size: int,
                               device: torch.device) -> float:
    """Estimated peak bytes per input pixel of one image through ``net`` (eval, no grad).

    Runs ``net`` once on a small probe image (the smallest size >= 64 px it accepts) on
    ``device``. The caller puts the model in eval mode.
    """
    import torch

    side = max(_PROBE_SIDE, min_size)
    side = -(-side // max(divisor, 1)) * max(divisor, 1)
    x = torch.zeros(1, channels, side, side, device=device)
    live: dict[int, int] = {}
    peak = 0

    def hook(_module: object, _inputs: object, out: object) -> None:
        nonlocal peak
        if not isinstance(out, torch.Tensor):
            return
        storage = out.untyped_storage()
        key = storage.data_ptr()
        if key in live:  # an in-place op (ReLU(inplace=True)) or a view: nothing new
            return
        live[key] = storage.nbytes()
        peak = max(peak, sum(live.values()))
        weakref.finalize(out, live.pop, key, None)

    leaves = [m for m in net.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return PEAK_FACTOR * (peak + x.nbytes) / (side * side)


def available_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device``, or None when it cannot be told.

    CUDA: the driver's free memory. CPU: ``MemAvailable`` of /proc/meminfo (Linux), lowered to
    what a cgroup memory limit leaves (containers, Kubernetes, SLURM); psutil elsewhere if it is
    installed.
    """
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    found = _meminfo_available()
    if found is None:
        try:
            import psutil  # optional
        except ImportError:
            return None
        found = int(psutil.virtual_memory().available)
    cgroup = _cgroup_room()
    return min(found, cgroup) if cgroup is not None else found


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cgroup_room() -> int | None:
    """Room left under a cgroup v2 memory limit (``memory.max - memory.current``), if any."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((base / "memory.current").read_text().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None
