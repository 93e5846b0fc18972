"""Pieces shared by the frame-conditioned ("hybrid") methods, HNeRV and DNeRV.

Both decode a small per-frame embedding with a stack of up-sampling blocks whose kernels grow and
whose widths shrink stage by stage (HNeRV paper §3.2; DNeRV appendix Table 8; spec §1.2):

* kernel of stage i (0-based): k_i = min(k_min + 2i, k_max) — 1, 3, 5, 5, 5 for k_min 1, k_max 5;
* width of stage i+1: C_{i+1} = C_i / r, *rounded* with a lower bound (HNeRV: round, at least 12) or
  *floored* with no bound (DNeRV: ⌊C_i / 1.2⌋) — :func:`~nervkit.models.sizing.stage_widths`;
* frames are padded bottom/right (edge pixels repeated) to the network size before the encoders, and
  the decoded frames are cropped back (``Representation.crop``).

The shared base of the two modules and configs is :mod:`nervkit.models.frame_conditioned`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import UpsampleBlock


def kernel_sizes(stages: int, kernel_min: int, kernel_max: int) -> list[int]:
    """Kernel of each decoder stage: k_i = min(k_min + 2i, k_max)."""
    return [min(kernel_min + 2 * i, kernel_max) for i in range(stages)]


def upsample_stages(channels: int, strides: tuple[int, ...], kernels: list[int], widths: list[int], *,
                    activation: str, norm: str = "none") -> list[UpsampleBlock]:
    """The decoder blocks: conv k_i×k_i → PixelShuffle(s_i) → norm → activation, C_i → C_{i+1}."""
    blocks, width = [], channels
    for stride, kernel, out in zip(strides, kernels, widths):
        blocks.append(UpsampleBlock(width, out, stride, kernel_size=kernel, activation=activation, norm=norm))
        width = out
    return blocks


def module_size(module: nn.Module | None) -> int:
    """Parameters of ``module`` (0 for a dropped one, e.g. an encoder after ``load_stored``)."""
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def pad_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pad (…, H, W) frames bottom/right to ``size`` by repeating the edge pixels."""
    dh, dw = size[0] - frames.shape[-2], size[1] - frames.shape[-1]
    if not dh and not dw:
        return frames
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])  # replicate padding wants (n, C, H, W)
    return F.pad(flat, (0, dw, 0, dh), mode="replicate").reshape(*lead, frames.shape[-3], *size)


def index_batches(count: int, batch_size: int) -> Iterator[list[int]]:
    """Consecutive index lists [0, b), [b, 2b), … covering ``count`` frames (side-info refresh)."""
    for start in range(0, count, batch_size):
        yield list(range(start, min(start + batch_size, count)))
