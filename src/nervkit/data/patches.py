"""Patches of frames for patch-trained methods (``batch_kind = "patches"``: HiNeRV).

HiNeRV (Kwan et al., NeurIPS 2023, §3.4 "Training with patches") trains on square patches of the frames
rather than whole frames: the network's output frame (``model.output_size``) is tiled into a grid of
``ph × pw`` patches, and one epoch visits every (frame, patch) pair once, in an order drawn from a
generator seeded by (seed, epoch). A batch holds ``batch_size`` frames' worth of patches (144 patches
of 120×120 are one 1080p frame, the official recipe), so the official learning rate, which the code
scales by patches × patch area / frame area, applies as is at batch size 1. In distributed training
each process takes every world-th batch of the same order.

The model computes each patch exactly as it would appear in the whole frame (receptive-field padding
and masks, the model's business); the sampler only says where the patches lie. Where the output frame
is larger than the true frame (it is a multiple of the model's up-sampling factor), the pixels past
the true frame have target 0 and loss weight 0; a loss mask (inpainting) is cropped with the patch.

The patch size is the user's ``--patch-size`` (square), or the model's default
(``model.patch_shape(requested)`` checks and chooses: a patch must tile the output frame and hold whole
cells of the model's first grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import torch

from .batches import SamplingOptions, _group_mse, moved
from .frame_store import FrameStore
from .sampling import epoch_batches


@dataclass
class PatchBatch:
    """A training batch of patches (``batch_kind = "patches"``).

    ``indices``: (n,) frame of each patch; ``rows``, ``cols``: (n,) long top-left corner of each patch
    in the network's output frame; ``target``: (n, 3, ph, pw) float in [0, 1]; ``weight``: optional
    (n, 1, ph, pw) loss weights (0 past the true frame and in inpainting holes).
    """

    indices: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> PatchBatch:
        return moved(self, device)

    @property
    def patch_shape(self) -> tuple[int, int]:
        return self.target.shape[-2], self.target.shape[-1]

    def crop(self, pred: torch.Tensor) -> torch.Tensor:
        """The model renders exactly the patches: nothing to crop."""
        return pred

    def mse(self, pred: torch.Tensor) -> torch.Tensor:
        """Mean squared error of each patch over its counted pixels: (n,)."""
        return _group_mse((pred - self.target).square(), self.weight)


class PatchConsumer(Protocol):
    """What the patch sampler reads from its model."""

    output_size: tuple[int, int]

    def patch_shape(self, requested: int) -> tuple[int, int]: ...


def patch_origins(output_size: tuple[int, int], shape: tuple[int, int]) -> torch.Tensor:
    """Top-left corners (P, 2) of the ``shape`` patches that tile an ``output_size`` frame, row-major."""
    (height, width), (ph, pw) = output_size, shape
    ys, xs = torch.meshgrid(torch.arange(0, height, ph), torch.arange(0, width, pw), indexing="ij")
    return torch.stack([ys.reshape(-1), xs.reshape(-1)], 1)


class PatchSampler:
    """Seeded per-epoch orders of all (frame, patch) pairs of ``train_indices`` (see module docstring).

    The keys of :meth:`plan` are (k, 2) tensors of (frame index, patch number) rows.
    """

    description: ClassVar[str] = "patches"
    #: patches are images: image losses (SSIM, MS-SSIM) apply to them
    whole_frames: ClassVar[bool] = True

    def __init__(self, store: FrameStore, train_indices: list[int], shape: tuple[int, int],
                 output_size: tuple[int, int], *, batch_size: int, seed: int,
                 loss_mask: torch.Tensor | None = None, rank: int = 0, world_size: int = 1) -> None:
        self.store = store
        self.frames = torch.as_tensor(train_indices, dtype=torch.long)
        self.shape, self.output_size = shape, output_size
        self.origins = patch_origins(output_size, shape)
        self.per_batch = batch_size * len(self.origins)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.loss_mask = None if loss_mask is None else loss_mask.to(torch.float32)
        self.batches_per_epoch = len(self.plan(0))

    @classmethod
    def for_model(cls, model: PatchConsumer, store: FrameStore, train_indices: list[int],
                  options: SamplingOptions) -> PatchSampler:
        return cls(store, train_indices, model.patch_shape(options.patch_size), tuple(model.output_size),
                   batch_size=options.batch_size, seed=options.seed, loss_mask=options.loss_mask,
                   rank=options.rank, world_size=options.world_size)

    @staticmethod
    def check(model: PatchConsumer, options: SamplingOptions) -> None:
        """ConfigError when ``--patch-size`` does not suit ``model`` (the model's message names the sizes that do)."""
        model.patch_shape(options.patch_size)

    def plan(self, epoch: int) -> list[torch.Tensor]:
        """The (frame, patch) pairs in the frame sampler's seeded order and split (:func:`epoch_batches`)."""
        pairs = torch.cartesian_prod(self.frames, torch.arange(len(self.origins)))
        return [pairs[b] for b in epoch_batches(list(range(len(pairs))), self.per_batch, epoch=epoch, seed=self.seed,
                                                rank=self.rank, world_size=self.world_size)]

    def load(self, key: torch.Tensor) -> PatchBatch:
        """The patches of ``key`` ((frame, patch number) rows) with their targets and loss weights."""
        frames, numbers = key[:, 0], key[:, 1]
        rows, cols = self.origins[numbers, 0], self.origins[numbers, 1]
        (ph, pw), (oh, ow) = self.shape, self.output_size
        h, w = self.store.height, self.store.width
        unique, where = torch.unique(frames, return_inverse=True)
        frames_in = self.store.get(unique)  # on the training device when the store was moved there
        images = frames_in.new_zeros(len(unique), 3, oh, ow)
        images[:, :, :h, :w] = frames_in
        corners = list(zip(where.tolist(), rows.tolist(), cols.tolist()))

        def crops(maps: torch.Tensor) -> torch.Tensor:
            return torch.stack([maps[i, :, y:y + ph, x:x + pw] for i, y, x in corners])

        target = crops(images)
        weight = None
        if self.loss_mask is not None or (oh, ow) != (h, w):
            counted = frames_in.new_zeros(len(unique), 1, oh, ow)
            mask = self.loss_mask
            counted[:, :, :h, :w] = 1.0 if mask is None else (mask if mask.shape[0] == 1 else mask[unique])
            weight = crops(counted)
        device = frames_in.device
        return PatchBatch(frames.to(device), rows.to(device), cols.to(device), target, weight)
