"""Which frames each iteration trains on.

The frame order of epoch e is a permutation drawn from a generator seeded with (seed, e), so a run
resumed at epoch e sees exactly the batches an uninterrupted run would have seen. In distributed
training each process takes every world-th batch of the same permutation.
"""

from __future__ import annotations

import torch


def epoch_batches(
    indices: list[int],
    batch_size: int,
    *,
    epoch: int,
    seed: int,
    shuffle: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> list[torch.Tensor]:
    """Batches of frame indices for ``epoch`` (0-based); the last batch may be smaller."""
    order = torch.as_tensor(indices, dtype=torch.long)
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = order[torch.randperm(len(order), generator=g)]
    batches = list(order.split(batch_size))
    if world_size > 1:
        usable = len(batches) - len(batches) % world_size or len(batches)
        batches = batches[rank:usable:world_size]
    return batches

