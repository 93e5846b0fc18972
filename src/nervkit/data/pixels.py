"""Random pixel samples for coordinate-based methods (``batch_kind = "pixels"``: NVP).

NVP trains on (frame, pixel) pairs drawn uniformly with replacement, frame and pixel independently
(spec §2.1). Here an "epoch" is ``pixels_per_epoch`` samples (default: as many as the training
frames have pixels), split into ``pixels_per_batch``-sample iterations. Iteration ``i`` of epoch ``e`` on rank ``r`` draws from a
generator seeded by (seed, e, i, r), so a resumed run sees exactly the samples it would have seen.
Targets are gathered from the uint8 frame store (in memory or memory-mapped) without a copy of the
video. With an inpainting mask the hole pixels get loss weight 0.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from .batches import BatchConsumer, PixelBatch, SamplingOptions
from .frame_store import FrameStore


class PixelSampler:
    """Seeded uniform (frame, pixel) samples of ``train_indices`` (see module docstring).

    The keys of :meth:`plan` are ``(epoch, iteration)`` pairs.
    """

    description: ClassVar[str] = "pixel samples"
    whole_frames: ClassVar[bool] = False

    def __init__(self, store: FrameStore, train_indices: list[int], pixels_per_batch: int, *, seed: int,
                 loss_mask: torch.Tensor | None = None, rank: int = 0, world_size: int = 1,
                 pixels_per_epoch: int = 0) -> None:
        self.store = store
        self.frames = torch.as_tensor(train_indices, dtype=torch.long)
        self.per_rank = max(1, pixels_per_batch // world_size)
        self.seed, self.rank = seed, rank
        self.loss_mask = None if loss_mask is None else loss_mask.to(torch.float32)
        total = pixels_per_epoch or len(train_indices) * store.height * store.width
        self.batches_per_epoch = max(1, math.ceil(total / pixels_per_batch))

    @classmethod
    def for_model(cls, model: BatchConsumer, store: FrameStore, train_indices: list[int],
                  options: SamplingOptions) -> PixelSampler:
        return cls(store, train_indices, options.pixels_per_batch, seed=options.seed, loss_mask=options.loss_mask,
                   rank=options.rank, world_size=options.world_size, pixels_per_epoch=options.pixels_per_epoch)

    def plan(self, epoch: int) -> list[tuple[int, int]]:
        return [(epoch, i) for i in range(self.batches_per_epoch)]

    def load(self, key: tuple[int, int]) -> PixelBatch:
        return self.batch(*key)

    def batch(self, epoch: int, iteration: int) -> PixelBatch:
        """The samples of ``iteration`` in ``epoch`` (0-based) for this rank."""
        g = torch.Generator().manual_seed(((self.seed * 1_000_003 + epoch) * 1_000_033 + iteration) * 131 + self.rank)
        n, h, w = self.per_rank, self.store.height, self.store.width
        frames = self.frames[torch.randint(len(self.frames), (n,), generator=g)]
        pixel = torch.randint(h * w, (n,), generator=g)
        flat = self.store.frames.view(len(self.store), 3, h * w)
        target = torch.stack([flat[frames, c, pixel] for c in range(3)], 1).to(torch.float32).div_(255.0)
        weight = None
        if self.loss_mask is not None:
            mask = self.loss_mask.view(self.loss_mask.shape[0], h * w)
            weight = mask[frames if mask.shape[0] > 1 else torch.zeros_like(frames), pixel].to(torch.float32)
        return PixelBatch(frames, pixel // w, pixel % w, target, weight)
