"""Backward warping with a dense flow: the bilinear warp 𝒯 of D-NeRV (He et al., CVPR 2023, Eq. 3).

A flow F_{t→0} gives, for every pixel p of the frame at time t, the displacement (in pixels of the
current resolution, channel 0 along the width x, channel 1 along the height y) to where that pixel is
found in the key-frame; the warped key-frame is the key-frame sampled at p + F(p). Sampling is bilinear
with align_corners = True, and positions outside the image take the nearest border value (border
padding), as the official code's ``WarpKeyframe`` does (spec §1.2).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """𝒯(I, F): ``image`` (n, C, h, w) sampled at p + ``flow``(p), ``flow`` (n, 2, h, w) in pixels (x, y).

    The sample positions are normalised to [−1, 1] as 2·(p + F)/(size − 1) − 1 (align_corners = True; a
    side of one pixel divides by 1 instead of 0)."""
    n, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype).view(1, 1, w)
    x = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
    y = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
    grid = torch.stack([x, y], dim=-1)  # (n, h, w, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
