"""Which frames each iteration trains on (``batch_kind = "frames"``).

The frame order of epoch e is a permutation drawn from a generator seeded with (seed, e), so a run
resumed at epoch e sees exactly the batches an uninterrupted run would have seen. In distributed
training each process takes every world-th batch of the same permutation. :class:`FrameSampler`
turns those frame indices into :class:`~nervkit.data.batches.FrameBatch` es: the frames as targets,
the loss mask rows of those frames as weights, and the neighbouring frames when the model declares
``needs_neighbours`` (DNeRV's frame differences).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from .batches import BatchConsumer, FrameBatch, SamplingOptions
from .frame_store import FrameStore


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


class FrameSampler:
    """Batches of whole frames of ``train_indices`` in the seeded per-epoch order of :func:`epoch_batches`.

    The keys of :meth:`plan` are the frame-index tensors themselves.
    """

    description: ClassVar[str] = "frames"
    whole_frames: ClassVar[bool] = True

    def __init__(self, store: FrameStore, train_indices: list[int], batch_size: int, *, seed: int,
                 loss_mask: torch.Tensor | None = None, neighbours: bool = False, rank: int = 0,
                 world_size: int = 1) -> None:
        self.store = store
        self.train_indices = list(train_indices)
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.loss_mask = None if loss_mask is None else loss_mask.to(torch.float32)
        self.neighbours = neighbours
        self.batches_per_epoch = len(self.plan(0))

    @classmethod
    def for_model(cls, model: BatchConsumer, store: FrameStore, train_indices: list[int],
                  options: SamplingOptions) -> FrameSampler:
        return cls(store, train_indices, options.batch_size, seed=options.seed, loss_mask=options.loss_mask,
                   neighbours=model.needs_neighbours, rank=options.rank, world_size=options.world_size)

    def plan(self, epoch: int) -> list[torch.Tensor]:
        return epoch_batches(self.train_indices, self.batch_size, epoch=epoch, seed=self.seed, rank=self.rank,
                             world_size=self.world_size)

    def load(self, indices: torch.Tensor) -> FrameBatch:
        """The frames at ``indices`` with their loss weights (and neighbours, when asked for)."""
        weight = None
        if self.loss_mask is not None:
            rows = self.loss_mask if self.loss_mask.shape[0] == 1 else self.loss_mask[indices]
            weight = rows.expand(len(indices), -1, -1, -1)
        neighbours = self.store.neighbours(indices) if self.neighbours else None
        return FrameBatch(indices, self.store.get(indices), weight, neighbours)
