"""A seeded, resumable, shardable sampler that yields ``(index, sample_seed)`` dataset keys.

Every random choice of the data pipeline is a pure function of these keys (see the data
contract), so the batch sequence of a run depends only on ``(seed, epoch, position)``: a resumed
run that starts mid-epoch sees exactly the samples an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["ResumableSampler", "mix_seed"]

_MASK64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """Hash integers into one well-spread seed in ``[0, 2**63)`` (splitmix64 finaliser).

    Adjacent inputs (epoch 3 and 4, position 10 and 11) give unrelated outputs, unlike
    ``seed + epoch`` which would reuse streams across runs with neighbouring seeds.
    """
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (int(v) & _MASK64)) & _MASK64
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
    return x >> 1


class ResumableSampler(Sampler[tuple[int, int]]):
    """Per-epoch permutation from ``(seed, epoch)``; yields ``(index, sample_seed)`` keys.

    Args:
        size: number of items in the dataset.
        seed: run seed.
        shuffle: permute indices each epoch (else natural order).
        rank, world_size: this process takes every ``world_size``-th key starting at ``rank``
            of the epoch's order (the tail that does not divide evenly is dropped so that all
            ranks see the same number of samples).

    ``set_epoch(e)`` selects the epoch, ``set_position(p)`` makes the next iterator skip the
    first ``p`` keys of this rank's slice (``p`` = samples this rank already consumed).
    ``sample_seed`` depends on ``(seed, epoch, global position)``, so two epochs crop/flip the
    same image differently and the result does not depend on how many workers load it.
    """

    def __init__(self, size: int, *, seed: int, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1) -> None:
        if size < 1:
            raise ValueError("the dataset is empty: no samples to train on")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0

    @property
    def num_samples(self) -> int:
        """Keys this rank yields in a whole epoch."""
        return self.size // self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_position(self, position: int) -> None:
        if not 0 <= position <= self.num_samples:
            raise ValueError(f"position {position} is outside the epoch (0..{self.num_samples})")
        self.position = position

    def order(self) -> list[int]:
        """The dataset indices of the current epoch in order, before sharding."""
        if not self.shuffle:
            return list(range(self.size))
        gen = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        return torch.randperm(self.size, generator=gen).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order()[: self.num_samples * self.world_size]
        for local in range(self.position, self.num_samples):
            pos = self.rank + local * self.world_size  # global position in the epoch
            yield order[pos], mix_seed(self.seed, self.epoch, pos)

    def __len__(self) -> int:
        return self.num_samples - self.position
