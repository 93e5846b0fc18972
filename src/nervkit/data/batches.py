"""Training batches, and the protocol of the samplers that make them (one sampler per batch kind).

A method declares the kind of batch it trains on (``Representation.batch_kind``); the sampler of that
kind (:mod:`nervkit.data.samplers`) turns the frame store into batches, and the trainer runs the same
step on every kind::

    pred = batch.crop(net(batch))
    loss = loss_fn(pred, batch.target, batch.weight)

Every batch type has

* ``target``: what the prediction is compared with (float in [0, 1]);
* ``weight``: loss weights (1 = counted, 0 = not: inpainting holes), ``None`` when every value counts.
  It has the target's leading dimensions and broadcasts over the rest (a frame mask (n, 1, H, W)
  over RGB, a pixel weight (n,) over the three channels);
* ``to(device)``, ``crop(pred)`` (the prediction at the target's size) and ``mse(pred)`` (the mean
  squared error over the counted values, one value per PSNR group: per frame for frames, one for a
  batch of pixel samples).

A sampler (:class:`Sampler`) splits training into epochs: ``plan(epoch)`` lists the keys of the
epoch's batches (cheap: nothing is read), ``load(key)`` reads one batch. Both depend on the seed and
the epoch only, so a run resumed at any (epoch, iteration) sees exactly the batches an uninterrupted
run would have seen. Nothing here knows a method: samplers read the declarations they need
(``batch_kind``, ``needs_neighbours``) from the model they are made for (:class:`BatchConsumer`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import torch


def _move(t: torch.Tensor | None, device: torch.device | str) -> torch.Tensor | None:
    return None if t is None else t.to(device, non_blocking=True)


_B = TypeVar("_B")


def moved(batch: _B, device: torch.device | str) -> _B:
    """A batch dataclass with every tensor field on ``device`` (None fields stay None)."""
    return dataclasses.replace(batch, **{f.name: _move(getattr(batch, f.name), device)  # type: ignore[type-var]
                                         for f in dataclasses.fields(batch)})  # type: ignore[arg-type]


def _group_mse(err: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``err`` (G, ...) over all but the first dimension, counting weighted values: (G,)."""
    if weight is None:
        return err.flatten(1).mean(1)
    w = weight.reshape(*weight.shape, *[1] * (err.dim() - weight.dim())).expand_as(err)
    return (err * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1)


@dataclass
class FrameBatch:
    """A training/evaluation batch of whole frames (``batch_kind = "frames"``).

    ``indices``: (n,) frame indices in the fitted video. ``frames``: (n, 3, H, W) float targets in
    [0, 1] at the true size (frame-conditioned methods also read them as input). ``weight``: optional
    (n, 1, H, W) loss weights (1 = counted). ``neighbours``: (n, 2, 3, H, W) the previous and the next
    frame of each (an edge frame is its own missing neighbour), given only to models that declare
    ``needs_neighbours`` (DNeRV's frame differences).
    """

    indices: torch.Tensor
    frames: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    neighbours: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> FrameBatch:
        return moved(self, device)

    @property
    def target(self) -> torch.Tensor:
        assert self.frames is not None, "this batch carries no target frames"
        return self.frames

    @property
    def mask(self) -> torch.Tensor | None:
        """The loss weights under their former name (``weight``)."""
        return self.weight

    def crop(self, pred: torch.Tensor) -> torch.Tensor:
        """The network output (n, 3, H_out, W_out) cropped (top-left) to the frames' true size."""
        return pred[..., : self.target.shape[-2], : self.target.shape[-1]]

    def mse(self, pred: torch.Tensor) -> torch.Tensor:
        """Mean squared error of each frame over its counted pixels: (n,)."""
        return _group_mse((pred - self.target).square(), self.weight)


@dataclass
class PixelBatch:
    """A training batch of single pixels (``batch_kind = "pixels"``, e.g. NVP).

    ``frames``, ``rows``, ``cols``: (n,) long coordinates of each sample; ``target``: (n, 3) float RGB
    in [0, 1]; ``weight``: optional (n,) loss weights (0 = not counted: inpainting holes).
    """

    frames: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> PixelBatch:
        return moved(self, device)

    def crop(self, pred: torch.Tensor) -> torch.Tensor:
        """Pixel predictions (n, 3) have nothing to crop."""
        return pred

    def mse(self, pred: torch.Tensor) -> torch.Tensor:
        """Mean squared error over all counted samples, as one group: (1,)."""
        weight = None if self.weight is None else self.weight[None]
        return _group_mse((pred - self.target).square()[None], weight)


#: every batch type (a new batch kind adds its type here)
Batch = FrameBatch | PixelBatch  # and the kinds of their own files: ClipBatch (clips.py), PatchBatch (patches.py)


class BatchConsumer(Protocol):
    """What a sampler may read from the model it makes batches for (a ``Representation``)."""

    batch_kind: ClassVar[str]
    needs_neighbours: ClassVar[bool]


@dataclass(frozen=True)
class SamplingOptions:
    """How batches are drawn; the same for every kind, each sampler uses the fields it needs."""

    seed: int
    batch_size: int = 1  # frames per batch
    pixels_per_batch: int = 65536  # pixel samples per batch (over all processes)
    pixels_per_epoch: int = 0  # pixel samples per epoch (0 = as many as the training frames have pixels)
    patch_size: int = 0  # side of the square patches of patch-trained methods (0 = the method's default)
    loss_mask: torch.Tensor | None = None  # loss weights (1 or N, 1, H, W), 1 = counted
    rank: int = 0
    world_size: int = 1


class Sampler(Protocol):
    """Makes the batches of one batch kind (see the module docstring)."""

    #: how the batches are described in messages ("frames", "pixel samples")
    description: ClassVar[str]
    #: True when batches hold whole frames, so that image losses (SSIM, MS-SSIM) apply
    whole_frames: ClassVar[bool]
    #: batches in every epoch (on this process)
    batches_per_epoch: int

    def plan(self, epoch: int) -> Sequence[Any]:
        """The keys of the batches of ``epoch`` (0-based), in training order."""
        ...

    def load(self, key: Any) -> Batch:
        """The batch of one key of :meth:`plan` (on the CPU)."""
        ...
