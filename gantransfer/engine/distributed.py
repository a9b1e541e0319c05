"""Data-parallel training on torch.distributed for every architecture (DDP through torchrun).

The Trainer calls :func:`init_from_env` when it is launched by ``torchrun`` (``WORLD_SIZE`` > 1
in the environment) and wraps each trainable net of ``model.nets`` in its own
DistributedDataParallel with :class:`NetWrapper` for the duration of ``fit``. Model code never
sees the difference: it still calls ``self.nets[name]``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import inspect
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["NetWrapper", "PeerFailedError", "all_gather_objects", "all_reduce_mean", "any_rank",
           "barrier", "control_group", "init_from_env", "is_peer_failure", "max_over_ranks",
           "param_digest", "sum_over_ranks"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0
# Bound on the collectives of the Ctrl-C path (agreeing on the RNG states to save): every rank
# is alive and at the same step boundary there, so anything slower means a peer is gone.
CONTROL_TIMEOUT_S = 20.0

# What gloo/nccl say when a peer process died or stopped answering. A rank whose collective
# fails like this is a casualty of another rank's failure, not its cause.
_PEER_LOST_MARKERS = ("connection closed by peer", "connection reset by peer", "broken pipe",
                      "timed out", "collective operation timeout", "remote process exited",
                      "communicator was aborted")


class PeerFailedError(RuntimeError):
    """This rank stops because another rank failed (that rank raises the real error)."""


def _dist() -> Any:
    return torch.distributed


def is_active() -> bool:
    """True when a process group with more than one process is initialised."""
    d = _dist()
    return d.is_available() and d.is_initialized() and d.get_world_size() > 1


def init_from_env(device: torch.device, *, timeout_s: float | None = None) -> tuple[bool, torch.device]:
    """Initialise the default process group from torchrun's environment, if launched by it.

    Does nothing when ``WORLD_SIZE`` is unset or 1, or when a group already exists. The backend is
    nccl for CUDA and gloo otherwise; on CUDA the device becomes ``cuda:LOCAL_RANK``.
    ``timeout_s`` (default ``GANTRANSFER_DIST_TIMEOUT`` or 600 s) bounds every collective, so a
    rank that died makes the others fail instead of hanging forever.

    Returns: ``(created, device)``: whether this call created the group (the caller then owns
    its teardown), and the device this rank trains on.

    Raises:
        RuntimeError: torch.distributed is unavailable in this torch build.
    """
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    d = _dist()
    if world <= 1 or (d.is_available() and d.is_initialized()):
        return False, device
    if not d.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} asks for distributed training, but this torch "
                           "build has no torch.distributed; install a build with it")
    if timeout_s is None:
        timeout_s = float(os.environ.get("GANTRANSFER_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {}
    if device.type == "cuda":
        kwargs["device_id"] = device  # binds the communicator to this rank's GPU up front
    d.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    log.info("rank %d/%d initialised %s on %s", d.get_rank(), d.get_world_size(), backend, device)
    return True, device


def barrier() -> None:
    """Wait for every rank (no-op outside a distributed run)."""
    if is_active():
        _dist().barrier()


def all_reduce_mean(values: dict[str, float], *, device: torch.device) -> dict[str, float]:
    """Average ``values`` over ranks; every rank must pass the same keys."""
    if not is_active() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    _dist().all_reduce(t)
    t /= _dist().get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def any_rank(flag: bool, *, device: torch.device) -> bool:
    """True on every rank when ``flag`` is True on any rank (keeps per-rank decisions in step)."""
    if not is_active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    _dist().all_reduce(t, op=_dist().ReduceOp.MAX)
    return bool(t.item() > 0)


def max_over_ranks(value: int, *, device: torch.device) -> int:
    """The largest of every rank's ``value`` (on every rank); ``value`` outside DDP."""
    if not is_active():
        return value
    t = torch.tensor([float(value)], device=device)
    _dist().all_reduce(t, op=_dist().ReduceOp.MAX)
    return int(t.item())


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of every rank's ``values`` (same shape and dtype on every rank, on
    this rank's device), in place, returned; ``values`` itself outside a distributed run.
    Integer tensors sum exactly, whatever the order the ranks' parts arrive in."""
    if is_active():
        _dist().all_reduce(values)
    return values


def all_gather_objects(obj: Any, *, group: Any = None) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` outside a distributed run.

    ``group``: the process group to use (default: the world group).
    """
    if not is_active():
        return [obj]
    out: list[Any] = [None] * _dist().get_world_size()
    _dist().all_gather_object(out, obj, group=group)
    return out


def control_group(*, timeout_s: float = CONTROL_TIMEOUT_S) -> Any:
    """A gloo group over all ranks whose collectives give up after ``timeout_s``.

    For the few small exchanges that must never hang (the Ctrl-C checkpoint), whatever the
    training backend: gloo works on CPU objects under nccl too. Every rank must call this at the
    same point (torch's rule for creating groups). Returns None outside a distributed run.
    """
    if not is_active():
        return None
    return _dist().new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))


def is_peer_failure(exc: BaseException) -> bool:
    """True when ``exc`` says a collective failed because another rank died or stopped answering.

    Used to tell the rank that failed first (its own exception) from the ranks that merely lost
    contact with it, so the user is shown the real cause. Distributed errors of torch
    (``DistError``) and gloo/nccl messages about closed connections or timeouts count.
    """
    if isinstance(exc, PeerFailedError):
        return True
    dist_error = getattr(_dist(), "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(m in text for m in _PEER_LOST_MARKERS)


def param_digest(module: nn.Module) -> str:
    """sha256 of every parameter's name and bytes: equal digests mean identical weights."""
    h = hashlib.sha256()
    for name, p in module.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class NetWrapper:
    """Swaps ``model.nets`` entries for DDP wrappers and back.

    Each trainable net gets its own DistributedDataParallel, so a GAN can update G and D in turn
    (one reducer per net, each synchronising exactly when its own loss is backpropagated). Nets
    without trainable parameters are left alone (DDP has nothing to reduce for them).

    No buffer broadcast at each forward (``broadcast_buffers=False``, or
    ``forward_sync_buffers=False`` where torch has it): with it, DDP overwrites every rank's
    buffers with rank 0's at each forward. GAN steps call D several times (real, fake, then again for G's loss) before a
    backward, and those in-place buffer writes bump version counters of tensors saved for backward
    (the classic "modified by an inplace operation" error), and would silently throw away each
    rank's BatchNorm statistics anyway. Parameters stay identical on all ranks without it (DDP
    broadcasts them once at construction and averages gradients); BatchNorm running statistics
    are per-rank (rank 0's are the ones saved) unless ``sync_batchnorm`` is on, which makes the
    batch statistics, and so the running ones, global.

    Raises:
        ValueError: ``sync_batchnorm`` on a CPU device (torch's SyncBatchNorm needs GPUs).
    """

    def __init__(self, nets: nn.ModuleDict, *, device: torch.device,
                 sync_batchnorm: bool = False) -> None:
        if sync_batchnorm and device.type == "cpu":
            # Checked here, not at the first forward: torch's SyncBatchNorm only runs on
            # accelerators and would fail mid-step, on every rank, with a less helpful message.
            raise ValueError("sync_batchnorm needs GPUs: torch's SyncBatchNorm does not run on "
                             "the CPU; set sync_batchnorm = false for CPU runs (BatchNorm "
                             "statistics are then per rank, rank 0's are saved)")
        self.nets = nets
        self.originals: dict[str, nn.Module] = dict(nets.items())
        self.wrappers: dict[str, DistributedDataParallel] = {}
        # Newer torch splits broadcast_buffers: forward_sync_buffers=False still syncs buffers
        # once at construction (wanted: every rank starts equal) but not at every forward.
        params = inspect.signature(DistributedDataParallel.__init__).parameters
        _no_forward_sync: dict[str, Any] = ({"forward_sync_buffers": False} if "forward_sync_buffers" in params
                            else {"broadcast_buffers": False})
        ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
        for name, net in self.originals.items():
            if not any(p.requires_grad for p in net.parameters()):
                continue
            if sync_batchnorm:
                # convert_sync_batchnorm returns a new module only when the net itself is a BN
                # layer; children are swapped in place so the original object keeps its params.
                converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
                if converted is not net:
                    self.originals[name] = net = converted
            # A process group per net: each reducer's all-reduces then travel on their own
            # communicator, so buckets of two same-shaped nets (CycleGAN's two generators) can
            # never be matched across ranks by issue order. new_group is called in the same order
            # on every rank (the ModuleDict order), as torch requires.
            group = _dist().new_group()
            self.wrappers[name] = DistributedDataParallel(net, device_ids=ids, process_group=group,
                                                          **_no_forward_sync)
        self.active = False

    def wrap(self) -> None:
        """Put the DDP wrappers into ``nets``."""
        for name, w in self.wrappers.items():
            self.nets[name] = w
        self.active = True

    def unwrap(self) -> None:
        """Put the original modules back (idempotent)."""
        for name, net in self.originals.items():
            self.nets[name] = net
        self.active = False

    def names_of(self, items: Iterable[str | nn.Module]) -> list[str]:
        """Names of the wrapped nets among ``items`` (names, wrappers or original modules)."""
        out = []
        for item in items:
            for name, w in self.wrappers.items():
                if item == name or item is w or item is self.originals[name]:
                    out.append(name)
        return out

    @contextlib.contextmanager
    def unwrapped(self, names: Iterable[str] | None = None) -> Iterator[None]:
        """Inside the block ``nets[name]`` is the plain module (all wrapped nets by default).

        Used for state_dict (no ``module.`` prefixes), sampling, export, and for frozen nets:
        a forward through a DDP wrapper whose parameters do not get gradients would leave its
        reducer waiting for them, so frozen nets are called directly instead.
        """
        if not self.active:
            yield
            return
        chosen = list(self.wrappers) if names is None else list(names)
        for name in chosen:
            self.nets[name] = self.originals[name]
        try:
            yield
        finally:
            for name in chosen:
                self.nets[name] = self.wrappers[name]
