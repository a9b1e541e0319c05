"""Exponential moving average of the generator weights (Karras et al. 2018; Yazıcı et al. 2019).

The average is kept in fp32 as plain state dicts (one per net), so it is saved in checkpoints
as tensors and swapped into the model for sample grids and for :func:`gantransfer.load`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

__all__ = ["EMA"]


class EMA:
    """``ema = decay * ema + (1 - decay) * weights`` for the named nets of a model.

    Floating tensors (parameters and float buffers) are averaged; other buffers (e.g.
    BatchNorm's ``num_batches_tracked``) are copied.

    Args:
        nets: ``model.nets`` (a ModuleDict).
        names: the nets to average (``model.generator_names()``).
        decay: weight of the old average per update, in (0, 1).
    """

    def __init__(self, nets: nn.ModuleDict, names: Iterable[str], *, decay: float) -> None:
        self.decay = decay
        self.names = list(names)
        missing = [n for n in self.names if n not in nets]
        if missing:
            raise KeyError(f"EMA nets {missing} are not in model.nets ({list(nets)})")
        self.state: dict[str, dict[str, Tensor]] = {
            name: {k: _fp32_copy(v) for k, v in nets[name].state_dict().items()}
            for name in self.names
        }

    @torch.no_grad()
    def update(self, nets: nn.ModuleDict, names: Iterable[str]) -> None:
        """Move the average of each net in ``names`` (those EMA tracks) towards its weights."""
        for name in names:
            if name not in self.state:
                continue
            avg = self.state[name]
            for key, value in nets[name].state_dict().items():
                target = avg[key]
                if target.is_floating_point():
                    target.lerp_(value.detach().float(), 1.0 - self.decay)
                else:
                    target.copy_(value)

    def state_dict(self) -> dict[str, dict[str, Tensor]]:
        return self.state

    def load_state_dict(self, state: dict[str, dict[str, Tensor]]) -> None:
        """Copy a saved average in; its nets and keys must match the ones tracked."""
        if sorted(state) != sorted(self.state):
            raise ValueError(f"EMA state has nets {sorted(state)}, expected {sorted(self.state)}")
        for name, tensors in state.items():
            mine = self.state[name]
            if set(tensors) != set(mine):
                raise ValueError(f"EMA state for net {name!r} does not match the model's keys")
            for key, value in tensors.items():
                mine[key].copy_(value)

    @contextlib.contextmanager
    def applied(self, nets: nn.ModuleDict) -> Iterator[None]:
        """Inside the block the nets hold the averaged weights; the live weights come back after."""
        live = {n: {k: v.detach().clone() for k, v in nets[n].state_dict().items()}
                for n in self.names}
        try:
            for name in self.names:
                nets[name].load_state_dict(self.state[name])
            yield
        finally:
            for name in self.names:
                nets[name].load_state_dict(live[name])


def _fp32_copy(t: Tensor) -> Tensor:
    t = t.detach().clone()
    return t.float() if t.is_floating_point() else t
