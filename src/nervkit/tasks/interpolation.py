"""Frame interpolation, two ways.

**Held-out frames (the papers' protocol).** ``nervkit fit VIDEO --train-frames SPLIT`` trains on part
of the frames and scores the rest afterwards:

* ``all`` (default) — every frame trains, nothing is held out;
* ``even`` / ``odd`` — train on frames 0, 2, 4, … / 1, 3, 5, … (HNeRV ``--data_split 1_1_2``, DNeRV
  Table 6: even train, odd test);
* ``A:B`` — of every A + B consecutive frames the first A train and the next B are held out
  (E-NeRV's ``3:1``: frames 3, 7, 11, … are held out).

The model is built for the *whole* video (N frames), so an index-based method normalises t = i/N
over the full sequence before the split (E-NeRV supplement) and a held-out frame is decoded at its
own index (``"heldout_protocol": "index"``). A frame-conditioned method (HNeRV, DNeRV:
``frame_side_info``) cannot decode a frame it has no side information for; as in the HNeRV/DNeRV
papers the held-out frames go through the encoder(s): the trainer's ``refresh_side_info`` runs on
every frame of the video (``"heldout_protocol": "encoder"``). The training never sees a held-out
frame: the optimiser steps only on training frames, and the neighbours a method reads
(``FrameStore.neighbours``, DNeRV's frame differences) are the nearest *training* frames on either
side (:class:`SplitFrameStore`) — so for ``even`` a held-out frame's neighbours are its true
neighbours, and a training frame's are the training frames two apart. ``metrics.json`` holds
PSNR/SSIM/MS-SSIM of the training frames and of the held-out frames separately, against the
original video, beside the all-frame numbers.

**Synthesised in-between frames (practical).** ``nervkit interpolate RUN --factor F -o out.mp4``
decodes frames at the fractional positions 0, 1/F, 2/F, …, N − 1 (N + (N − 1)(F − 1) frames) with
:meth:`~nervkit.models.Representation.decode_at` and writes them at F × the frame rate: NeRV feeds the
continuous t to its network; HNeRV/DNeRV decode the stored per-frame embeddings linearly interpolated
between the two neighbouring frames; a method with neither blends the neighbouring decoded frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ..data import FrameStore
from ..errors import ConfigError
from ..render import render_to_file
from ..models import Representation

SPLIT_NAMES = ("all", "even", "odd")


@dataclass(frozen=True)
class FrameSplit:
    """A train / held-out split of frame positions: ``all``, ``even``, ``odd`` or ``A:B``."""

    spec: str

    @classmethod
    def parse(cls, spec: str | None) -> FrameSplit:
        text = (spec or "all").strip().lower()
        if text in SPLIT_NAMES:
            return cls(text)
        a, sep, b = text.partition(":")
        try:
            train, held = int(a), int(b)
        except ValueError:
            train = held = -1
        if not sep or train < 1 or held < 0:
            raise ConfigError(f"--train-frames {spec}: expected all, even, odd or A:B with A >= 1 "
                              "(e.g. 3:1 = every fourth frame held out)")
        return cls(f"{train}:{held}")

    def is_training(self, i: int) -> bool:
        if self.spec == "all":
            return True
        if self.spec in ("even", "odd"):
            return i % 2 == (0 if self.spec == "even" else 1)
        train, held = (int(v) for v in self.spec.split(":"))
        return i % (train + held) < train

    def indices(self, num_frames: int) -> tuple[list[int], list[int]]:
        """(training frames, held-out frames); ConfigError when no frame is left to train on."""
        train = [i for i in range(num_frames) if self.is_training(i)]
        held = [i for i in range(num_frames) if not self.is_training(i)]
        if not train:
            raise ConfigError(f"--train-frames {self.spec} leaves no training frame in a video of "
                              f"{num_frames} frame{'s' if num_frames != 1 else ''}")
        return train, held


@dataclass
class SplitFrameStore(FrameStore):
    """A frame store whose ``neighbours`` are the nearest *training* frames on either side within the
    frame's own video (a frame with none on a side is its own neighbour there), so neighbour-reading
    methods never see a held-out frame while training."""

    train_indices: tuple[int, ...] = ()

    @classmethod
    def wrap(cls, store: FrameStore, train_indices: list[int]) -> SplitFrameStore:
        values = {f.name: getattr(store, f.name) for f in fields(FrameStore)}
        return cls(**values, train_indices=tuple(sorted(train_indices)))

    def neighbour_indices(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """(n, 2): the previous and the next training frame of each of ``indices``."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        train = torch.tensor(self.train_indices, dtype=torch.long)
        before = torch.searchsorted(train, idx, right=False) - 1  # last training frame < i
        after = torch.searchsorted(train, idx, right=True)  # first training frame > i
        prev = torch.where(before >= 0, train[before.clamp(min=0)], idx)
        nxt = torch.where(after < len(train), train[after.clamp(max=len(train) - 1)], idx)
        first, last = self.video_bounds(idx)  # never a training frame of another video of a collection
        prev = torch.where(prev >= first, prev, idx)
        nxt = torch.where(nxt <= last, nxt, idx)
        return torch.stack([prev, nxt], dim=1)

    def neighbours(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        pairs = self.neighbour_indices(indices)
        return self.get(pairs.reshape(-1)).reshape(len(pairs), 2, *self.frames.shape[1:])


def heldout_protocol(model: Representation) -> str:
    """How a held-out frame is decoded: ``"encoder"`` (frame-conditioned) or ``"index"``."""
    return "encoder" if model.frame_side_info else "index"


#: the largest --factor: 1000 frames per source interval (25 fps -> 25,000 fps) is already beyond any display;
#: larger factors only ask for terabytes (positions are computed up front, frames written one by one)
MAX_FACTOR = 1000


def interpolation_positions(num_frames: int, factor: int) -> torch.Tensor:
    """0, 1/F, …, N − 1: N + (N − 1)(F − 1) fractional frame positions."""
    if isinstance(factor, bool) or not isinstance(factor, int) or not 1 <= factor <= MAX_FACTOR:
        raise ConfigError(f"--factor must be an integer from 1 to {MAX_FACTOR}, got {factor!r}")
    count = num_frames + (num_frames - 1) * (factor - 1)
    return torch.arange(count, dtype=torch.float64).div_(factor).to(torch.float32)


def write_interpolated(model: Representation, output: str | os.PathLike[str], *, factor: int, fps: float,
                       lossless: bool = False, crf: int = 12, batch_size: int = 8) -> dict[str, Any]:
    """Decode the in-between frames of ``model`` (see module docstring) into ``output`` at fps × factor."""
    positions = interpolation_positions(model.geometry.num_frames, factor)
    out_fps = fps * factor
    render_to_file(model, output, fps=out_fps, lossless=lossless, crf=crf, positions=positions,
                   batch_size=batch_size)
    return {"file": str(Path(output)), "frames": len(positions), "fps": out_fps, "factor": factor,
            "source_frames": model.geometry.num_frames, "method": model.method}
