"""Clips of T frames with two key-frames each (``batch_kind = "clips"``: D-NeRV).

D-NeRV (He et al., CVPR 2023, §3.1 and §4.1) cuts every video of a collection into consecutive clips
of T frames (``clip_length``, 8 in the paper) and conditions each clip on two key-frames, its first frame
and the first frame of the next clip. The layout follows the official code (spec §1.1), with 0-based
frame numbers inside video v of L frames:

* clip k holds frames kT … kT + T − 1; slots past the video's end repeat its last frame and are
  *padding*: they are rendered (the decoder sees whole clips) but neither trained on nor scored;
* its key-frames are the frames s = kT and e = min(L − 1, (k + 1)T) of the same video: the end
  key-frame of clip k is the start key-frame of clip k + 1, and the last clip's end key-frame is
  clamped to the video's last frame. A video of L frames has ⌈L/T⌉ + 1 distinct key-frames (one
  fewer when its last frame is itself a start key-frame); the key-frames of the whole collection are
  numbered 0 … K − 1 ("key-frame slots"), video after video;
* every frame f (padding: the clamped frame) gets the relative time t = f/(L − 1) in its *own* video
  (0 for a one-frame video), the input of the positional encoding, and the key-frame distance
  d = (f − s)/max(1, e − s) ∈ [0, 1], the weight of the end key-frame in the fusion (paper Eq. 4).

:class:`ClipLayout` computes all of this from the videos' frame counts alone (the model uses it to
decode any frame from its stored key-frames; :class:`ClipSampler` to make training batches), also at
fractional positions: a clip shifted by a fraction φ ∈ [0, 1) holds the positions kT + j + φ.

An epoch is one pass over the clips that hold at least one training frame, in the seeded per-epoch
order of :func:`~nervkit.data.sampling.epoch_batches` (``batch_size`` clips per iteration). A
:class:`ClipBatch` renders whole clips, but its ``target`` holds only the counted frames (inside their
video and among the training frames), and ``crop`` keeps the same frames of the prediction: padding is
out of the loss and of the batch PSNR exactly as the official code's ``frame_mask`` drops it (a weight
of 0 would still count the padded frames in the loss's mean and give them an MSE of 0).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Protocol

import torch

from ..errors import ModelError
from .batches import SamplingOptions, _group_mse, moved
from .frame_store import FrameStore
from .sampling import epoch_batches


@dataclass(frozen=True)
class ClipTable:
    """The slots of n clips: ``frames`` (n, T) the collection frame each slot shows (padding: the
    video's last frame), ``inside`` (n, T) False on padding, ``times`` (n, T) relative time t in the
    slot's video, ``distances`` (n, T) key-frame distance d, ``keys`` (n, 2) the key-frame slots (start,
    end) of each clip."""

    frames: torch.Tensor
    inside: torch.Tensor
    times: torch.Tensor
    distances: torch.Tensor
    keys: torch.Tensor


@dataclass(frozen=True)
class ClipLayout:
    """Clips and key-frames of a collection of videos of ``counts`` frames each (module docstring)."""

    counts: tuple[int, ...]
    clip_length: int

    def __post_init__(self) -> None:
        if self.clip_length < 1:
            raise ModelError(f"a clip needs at least one frame, got a clip length of {self.clip_length}")
        if not self.counts or min(self.counts) < 1:
            raise ModelError(f"every video needs at least one frame, got frame counts {list(self.counts)}")

    @cached_property
    def starts(self) -> tuple[int, ...]:
        """The collection frame where each video starts."""
        out, at = [], 0
        for n in self.counts:
            out.append(at)
            at += n
        return tuple(out)

    @property
    def num_frames(self) -> int:
        return sum(self.counts)

    @cached_property
    def clips(self) -> tuple[tuple[int, int], ...]:
        """(video, clip index k inside it) of every clip, video after video."""
        return tuple((v, k) for v, n in enumerate(self.counts) for k in range(math.ceil(n / self.clip_length)))

    @cached_property
    def first_clip(self) -> tuple[int, ...]:
        """The number of the first clip of each video."""
        out, at = [], 0
        for n in self.counts:
            out.append(at)
            at += math.ceil(n / self.clip_length)
        return tuple(out)

    @property
    def num_clips(self) -> int:
        return len(self.clips)

    @cached_property
    def key_frames(self) -> tuple[int, ...]:
        """The collection frame of every key-frame slot: for each video its frames 0, T, 2T, … and its
        last frame (once)."""
        out = []
        for start, n in zip(self.starts, self.counts):
            local = sorted({*range(0, n, self.clip_length), n - 1})
            out.extend(start + f for f in local)
        return tuple(out)

    @property
    def num_key_frames(self) -> int:
        return len(self.key_frames)

    @cached_property
    def _key_slot(self) -> dict[int, int]:
        return {frame: slot for slot, frame in enumerate(self.key_frames)}

    def clip_keys(self, clip: int) -> tuple[int, int]:
        """The key-frame slots (start, end) of ``clip``."""
        v, k = self.clips[clip]
        start, n, t = self.starts[v], self.counts[v], self.clip_length
        return self._key_slot[start + k * t], self._key_slot[start + min(n - 1, (k + 1) * t)]

    def table(self, clips: torch.Tensor | list[int], offsets: torch.Tensor | list[float] | None = None) -> ClipTable:
        """The :class:`ClipTable` of ``clips`` (clip numbers), each shifted by its fraction in ``offsets``
        (default 0: the clip's own frames), slot j of clip k then showing position kT + j + φ."""
        ids = [int(c) for c in torch.as_tensor(clips, dtype=torch.long).reshape(-1)]
        shift = [0.0] * len(ids) if offsets is None else [float(o) for o in torch.as_tensor(offsets).reshape(-1)]
        t = self.clip_length
        frames, inside, times, dists, keys = [], [], [], [], []
        for clip, phi in zip(ids, shift):
            if not 0 <= clip < self.num_clips:
                raise ModelError(f"clip {clip} is outside the {self.num_clips} clips")
            v, k = self.clips[clip]
            start, n = self.starts[v], self.counts[v]
            s, e = k * t, min(n - 1, (k + 1) * t)
            row_f, row_in, row_t, row_d = [], [], [], []
            for j in range(t):
                pos = k * t + j + phi
                row_in.append(pos <= n - 1)
                pos = min(pos, n - 1)
                row_f.append(start + math.floor(pos))
                row_t.append(pos / (n - 1) if n > 1 else 0.0)
                row_d.append((pos - s) / max(1, e - s))
            frames.append(row_f)
            inside.append(row_in)
            times.append(row_t)
            dists.append(row_d)
            keys.append(self.clip_keys(clip))
        return ClipTable(torch.tensor(frames, dtype=torch.long).reshape(-1, t),
                         torch.tensor(inside, dtype=torch.bool).reshape(-1, t),
                         torch.tensor(times, dtype=torch.float32).reshape(-1, t),
                         torch.tensor(dists, dtype=torch.float32).reshape(-1, t),
                         torch.tensor(keys, dtype=torch.long).reshape(-1, 2))

    def locate(self, positions: torch.Tensor | list[float]) -> tuple[list[int], list[int], list[float]]:
        """(clip, slot j, fraction φ) of each collection frame position (integer or fractional, in
        [0, N − 1]): the clip that shows it in slot j when shifted by φ. A position past a video's last
        frame belongs to that video (the last position of a video is its last frame)."""
        pos = [float(p) for p in torch.as_tensor(positions, dtype=torch.float64).reshape(-1)]
        clips, slots, fractions = [], [], []
        ends = [s + n for s, n in zip(self.starts, self.counts)]
        for p in pos:
            if not 0 <= p <= self.num_frames - 1:
                raise ModelError(f"frame position {p:g} is outside the {self.num_frames} frames")
            v = bisect.bisect_right(ends, math.floor(p))
            local = p - self.starts[v]
            whole = math.floor(local)
            k = whole // self.clip_length
            clips.append(self.first_clip[v] + k)
            slots.append(whole - k * self.clip_length)
            fractions.append(local - whole)
        return clips, slots, fractions


@dataclass
class ClipBatch:
    """A training batch of whole clips (``batch_kind = "clips"``, D-NeRV).

    ``clips`` (n,), and per slot (n, T): ``frames`` (collection frame indices), ``valid`` (counted: inside
    the video and a training frame), ``times`` (relative time t) and ``distances`` (key-frame distance
    d); ``keys`` (n, 2) the key-frame slots of each clip. The model renders all n·T slots; ``target``
    (m, 3, H, W) holds the m counted frames in slot order, ``weight`` their optional loss weights
    (m, 1, H, W), and :meth:`crop` keeps the same m frames of the prediction.
    """

    clips: torch.Tensor
    frames: torch.Tensor
    valid: torch.Tensor
    times: torch.Tensor
    distances: torch.Tensor
    keys: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> ClipBatch:
        return moved(self, device)

    @property
    def indices(self) -> torch.Tensor:
        """The collection frames of the counted slots, in the order of ``target``."""
        return self.frames[self.valid]

    def crop(self, pred: torch.Tensor) -> torch.Tensor:
        """The prediction of every slot (n·T, 3, H_out, W_out) → its counted frames at the true size."""
        keep = self.valid.reshape(-1)
        if pred.shape[0] != keep.numel():
            raise ModelError(f"a batch of {self.valid.shape[0]} clips of {self.valid.shape[1]} frames needs "
                             f"{keep.numel()} predicted frames, got {pred.shape[0]}")
        return pred[keep][..., : self.target.shape[-2], : self.target.shape[-1]]

    def mse(self, pred: torch.Tensor) -> torch.Tensor:
        """Mean squared error of each counted frame (``pred`` as :meth:`crop` returns it): (m,)."""
        return _group_mse((pred - self.target).square(), self.weight)


class ClipConsumer(Protocol):
    """What :class:`ClipSampler` reads from the model it makes batches for."""

    batch_kind: ClassVar[str]
    clip_layout: ClipLayout


class ClipSampler:
    """Batches of ``batch_size`` clips that hold at least one of ``train_indices`` (module docstring).

    The keys of :meth:`plan` are tensors of clip numbers.
    """

    description: ClassVar[str] = "clips"
    whole_frames: ClassVar[bool] = True

    def __init__(self, store: FrameStore, train_indices: list[int], layout: ClipLayout, batch_size: int, *,
                 seed: int, loss_mask: torch.Tensor | None = None, rank: int = 0, world_size: int = 1) -> None:
        if layout.num_frames != len(store):
            raise ModelError(f"the clips cover {layout.num_frames} frames but the store holds {len(store)}")
        self.store, self.layout = store, layout
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.loss_mask = None if loss_mask is None else loss_mask.to(torch.float32)
        self.training = torch.zeros(len(store), dtype=torch.bool)
        self.training[torch.as_tensor(list(train_indices), dtype=torch.long)] = True
        table = layout.table(list(range(layout.num_clips)))
        counted = (table.inside & self.training[table.frames]).any(1)
        self.train_clips = [int(c) for c in torch.nonzero(counted).reshape(-1)]
        self.batches_per_epoch = len(self.plan(0))

    @classmethod
    def for_model(cls, model: ClipConsumer, store: FrameStore, train_indices: list[int],
                  options: SamplingOptions) -> ClipSampler:
        return cls(store, train_indices, model.clip_layout, options.batch_size, seed=options.seed,
                   loss_mask=options.loss_mask, rank=options.rank, world_size=options.world_size)

    def plan(self, epoch: int) -> list[torch.Tensor]:
        return epoch_batches(self.train_clips, self.batch_size, epoch=epoch, seed=self.seed, rank=self.rank,
                             world_size=self.world_size)

    def load(self, clips: torch.Tensor) -> ClipBatch:
        """The clips of ``clips`` with their counted frames as targets (and their loss weights)."""
        table = self.layout.table(clips)
        valid = table.inside & self.training[table.frames]
        counted = table.frames[valid]
        weight = None
        if self.loss_mask is not None:
            rows = self.loss_mask if self.loss_mask.shape[0] == 1 else self.loss_mask[counted]
            weight = rows.expand(len(counted), -1, -1, -1)
        return ClipBatch(torch.as_tensor(clips, dtype=torch.long), table.frames, valid, table.times,
                         table.distances, table.keys, self.store.get(counted), weight)
