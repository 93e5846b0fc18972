"""Frames of one video as uint8, in memory or memory-mapped from a cache file.

Training reads random frames every iteration, so the decoded video must be random-access. A short
or small video is held in memory (N×3×H×W uint8, 4× smaller than float); a video that does not fit
the memory budget is decoded once, streaming, into a cache file beside the run and memory-mapped,
so the operating system pages frames in and out and a long 1080p video never sits in RAM at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..io import FrameRange, iter_frames, probe_video


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (fallback 4 GiB)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


@dataclass
class FrameStore:
    """uint8 frames (N, 3, H, W) with the source's fps and the source frame index of each."""

    frames: torch.Tensor
    fps: float
    source_indices: list[int] = field(default_factory=list)
    source_size: tuple[int, int] = (0, 0)
    memory_mapped: bool = False

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[2]

    @property
    def width(self) -> int:
        return self.frames.shape[3]

    def get(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """Float frames in [0, 1] at ``indices`` (n, 3, H, W)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.frames[idx].to(torch.float32).div_(255.0)

    def neighbours(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """The previous and the next frame of each of ``indices``: float (n, 2, 3, H, W) in [0, 1].

        The first frame is its own previous frame and the last its own next one (so their outer
        frame differences are zero); a one-frame video is its own neighbour on both sides.
        """
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        last = len(self) - 1
        pairs = torch.stack([(idx - 1).clamp(0, last), (idx + 1).clamp(0, last)], dim=1)
        return self.get(pairs.reshape(-1)).reshape(len(idx), 2, *self.frames.shape[1:])

    @classmethod
    def from_tensor(cls, frames: torch.Tensor, fps: float = 25.0) -> FrameStore:
        """From frames (N, 3, H, W): uint8, or float in [0, 1]."""
        if frames.dtype != torch.uint8:
            frames = (frames.clamp(0, 1) * 255.0).round().to(torch.uint8)
        n, _, h, w = frames.shape
        return cls(frames.contiguous(), fps, list(range(n)), (h, w))


def load_frames(
    path: str | os.PathLike[str],
    *,
    frames: FrameRange | None = None,
    size: tuple[int, int] | None = None,
    raw_size: tuple[int, int] | None = None,
    raw_fps: float = 25.0,
    memory_budget: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> FrameStore:
    """Decode ``path`` (frame range, resize) into a :class:`FrameStore`.

    Frames are kept in memory when they take less than ``memory_budget`` bytes (default: a third
    of the available memory), otherwise streamed into ``cache_dir/frames.u8`` and memory-mapped.
    """
    info = probe_video(path, raw_size=raw_size, raw_fps=raw_fps)
    selected = (frames or FrameRange()).resolve(info.num_frames)
    h, w = size if size else (info.height, info.width)
    n = len(selected)
    nbytes = n * 3 * h * w
    budget = memory_budget if memory_budget is not None else available_memory_bytes() // 3
    mapped = nbytes > budget
    if mapped:
        if cache_dir is None:
            raise InputError(
                f"{path}: {n} frames of {h}x{w} need {nbytes / 2**30:.1f} GiB, more than the memory "
                "budget, and no cache folder was given"
            )
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        array: np.ndarray = np.lib.format.open_memmap(
            Path(cache_dir) / "frames.npy", mode="w+", dtype=np.uint8, shape=(n, 3, h, w)
        )
    else:
        array = np.empty((n, 3, h, w), dtype=np.uint8)
    count = 0
    for i, frame in enumerate(iter_frames(path, frames=frames, size=size, raw_size=raw_size, raw_fps=raw_fps)):
        if i >= n:
            break
        array[i] = frame.transpose(2, 0, 1)
        count += 1
    if count != n:
        raise InputError(f"{path}: expected {n} frames but only {count} could be decoded (truncated?)")
    if mapped:
        array.flush()  # type: ignore[attr-defined]
    return FrameStore(torch.from_numpy(array), info.fps, list(selected), (info.height, info.width), mapped)
