"""A decoded clip held in memory: :class:`Video`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .info import VideoInfo


@dataclass
class Video:
    """Frames read by :func:`nervkit.io.read_video`.

    Attributes:
        frames: ``uint8`` tensor of shape ``(N, 3, H, W)``, RGB (after any resize).
        fps: frame rate of *these* frames: the source rate divided by the frame-range step, so that
            writing them at ``fps`` plays in real time.
        info: :class:`VideoInfo` of the source (its full length and original size).
        indices: source frame index of each of the ``N`` frames.
    """

    frames: torch.Tensor
    fps: float
    info: VideoInfo
    indices: list[int]

    def __len__(self) -> int:
        """Number of frames held."""
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """Frame size ``(H, W)`` of the held frames."""
        return (int(self.frames.shape[-2]), int(self.frames.shape[-1]))
