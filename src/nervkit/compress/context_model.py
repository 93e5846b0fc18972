"""A checkerboard context model for latent grids and per-frame embeddings, where neighbouring values are
correlated.

The values of a grid (the last two dims of an NVP latent image / volume or of a per-frame embedding) are
split into a checkerboard (He et al., "Checkerboard Context Model for Efficient Learned Image Compression",
CVPR 2021): the **anchors** (row + column even) are coded first with the channel's own entropy model
(mean μ_c, scale b_c); every other value is coded with a mean and scale predicted from its four anchor
neighbours, already decoded — a masked 3×3 convolution whose taps see only anchors. With the anchors
normalised, ``a = (q − μ_c) / b_c`` (0 outside the grid), and ``s_h, s_v`` the means of the horizontal and
vertical neighbours, ``m_h, m_v`` the means of their magnitudes::

    μ = μ_c + b_c · (w₀ s_h + w₁ s_v)                log₂ b = log₂ b_c + w₂ + w₃ m_h + w₄ m_v

The five taps ``w`` are learned with the rate (on a 1/256 grid, straight-through) and stored as integers in
the file. The same arithmetic runs in float64 NumPy in the encoder and the decoder (element-wise, in one
fixed order), so both derive the same parameters; training uses the same formula in torch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: number of taps and the resolution of their stored integers
TAPS, TAP_RES = 5, 256
#: the storage kinds a context model serves (the grid is their last two dims)
CONTEXT_KINDS = ("per_frame", "latent_image", "latent_video")


def context_applies(kind: str, shape: tuple[int, ...]) -> bool:
    """Whether a tensor of storage kind ``kind`` and ``shape`` has a grid to take context from."""
    return kind in CONTEXT_KINDS and len(shape) >= 3 and shape[-1] >= 2 and shape[-2] >= 2


def anchor_mask(shape: tuple[int, ...]) -> np.ndarray:
    """True at the anchors (row + column even) of the last two dims, broadcast to ``shape``."""
    h, w = shape[-2], shape[-1]
    grid = (np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0
    return np.broadcast_to(grid, shape)


def anchor_mask_torch(shape: torch.Size | tuple[int, ...], device: torch.device) -> torch.Tensor:
    """:func:`anchor_mask` as a torch tensor on ``device``."""
    h, w = shape[-2], shape[-1]
    grid = (torch.arange(h, device=device)[:, None] + torch.arange(w, device=device)[None, :]) % 2 == 0
    return torch.broadcast_to(grid, tuple(shape))


def _neighbours_torch(a: torch.Tensor) -> tuple[torch.Tensor, ...]:
    p = F.pad(a, (1, 1, 1, 1))
    return p[..., 1:-1, :-2], p[..., 1:-1, 2:], p[..., :-2, 1:-1], p[..., 2:, 1:-1]  # left, right, up, down


def context_params_torch(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, taps: torch.Tensor,
                         anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, scale) of every value of ``y`` (codes or their surrogate): the channel's at the anchors, the
    predicted ones elsewhere (module docstring); differentiable."""
    scale = torch.broadcast_to(scale, y.shape)
    a = torch.where(anchors, (y - mean) / scale, torch.zeros_like(y))
    left, right, up, down = _neighbours_torch(a)
    s_h, s_v = (left + right) / 2, (up + down) / 2
    m_h, m_v = (left.abs() + right.abs()) / 2, (up.abs() + down.abs()) / 2
    mu = mean + scale * (taps[0] * s_h + taps[1] * s_v)
    b = scale * torch.exp2(torch.clamp(taps[2] + taps[3] * m_h + taps[4] * m_v, -8.0, 8.0))
    return torch.where(anchors, torch.broadcast_to(mean, y.shape), mu), torch.where(anchors, scale, b)


def context_params_numpy(q: np.ndarray, mean: float, scale: np.ndarray, tap_ints: np.ndarray) -> tuple[np.ndarray,
                                                                                                        np.ndarray]:
    """float64 (mean, scale) of every value of the int codes ``q`` from the anchors alone (the non-anchor
    values of ``q`` are not read), as the encoder and the decoder compute them."""
    taps = np.asarray(tap_ints, dtype=np.float64) / TAP_RES
    anchors = anchor_mask(q.shape)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), q.shape)
    a = np.where(anchors, (q.astype(np.float64) - mean) / scale, 0.0)
    pad = [(0, 0)] * (q.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(a, pad)
    left, right, up, down = p[..., 1:-1, :-2], p[..., 1:-1, 2:], p[..., :-2, 1:-1], p[..., 2:, 1:-1]
    s_h, s_v = (left + right) / 2, (up + down) / 2
    m_h, m_v = (np.abs(left) + np.abs(right)) / 2, (np.abs(up) + np.abs(down)) / 2
    mu = mean + scale * (taps[0] * s_h + taps[1] * s_v)
    b = scale * np.exp2(np.clip(taps[2] + taps[3] * m_h + taps[4] * m_v, -8.0, 8.0))
    return np.where(anchors, mean, mu), np.where(anchors, scale, b)
