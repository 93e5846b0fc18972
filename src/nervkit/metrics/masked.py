"""Quality inside a region of each frame (e.g. the holes of an inpainting mask).

Definitions, for frames ``(N, C, H, W)`` in [0, 1] and a region ``(N or 1, 1, H, W)`` (True = inside):

* ``MSE_n`` = mean over the C channels and the region's pixels of frame n of (pred − target)²; PSNR_n =
  −10·log10(MSE_n), capped at 100 dB like every nervkit PSNR. ``psnr`` is the mean of PSNR_n over the
  frames whose region is not empty; ``psnr_global`` is the PSNR of all region pixels of all frames
  pooled (Σ squared errors / Σ values).
* ``SSIM_n`` = the mean of the local SSIM map (the same Gaussian window and constants as
  :func:`nervkit.metrics.ssim`, valid convolution) over the window centres that lie in the region;
  frames with no such centre are left out. With the whole frame as the region it equals
  :func:`nervkit.metrics.ssim`.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch
from torch import Tensor

from nervkit.errors import InputError
from nervkit.metrics._checks import check_pair
from nervkit.metrics.psnr import PSNR_CAP_DB, psnr_from_mse
from nervkit.metrics.structural import WINDOW_SIGMA, ssim_window


def _region(region: Tensor, pred: Tensor) -> Tensor:
    n, _, h, w = pred.shape
    if region.dim() != 4 or region.shape[1] != 1 or region.shape[0] not in (1, n) or tuple(region.shape[2:]) != (h, w):
        raise InputError(f"a region shaped {tuple(region.shape)} does not fit frames shaped {tuple(pred.shape)}")
    return region.to(device=pred.device, dtype=torch.bool).expand(n, 1, h, w)


def masked_mse_per_frame(pred: Tensor, target: Tensor, region: Tensor) -> tuple[Tensor, Tensor]:
    """(sum of squared errors, number of values) of each frame inside ``region``: two (N,) tensors."""
    pred, target = check_pair(pred, target)
    inside = _region(region, pred)
    sq = (pred.double() - target.double()).square() * inside
    return sq.flatten(1).sum(1), inside.flatten(1).sum(1).double() * pred.shape[1]


def ssim_map(pred: Tensor, target: Tensor) -> Tensor:
    """Local SSIM (N, C, H − win + 1, W − win + 1), as :func:`nervkit.metrics.ssim` averages it."""
    pred, target = check_pair(pred, target)
    impl = importlib.import_module("pytorch_msssim.ssim")
    win_size = ssim_window(pred.shape[-2], pred.shape[-1])
    win = impl._fspecial_gauss_1d(win_size, WINDOW_SIGMA).repeat([pred.shape[1], 1, 1, 1])
    win = win.to(pred.device, dtype=pred.dtype)
    c1, c2 = 0.01**2, 0.03**2
    blur = lambda x: impl.gaussian_filter(x, win)  # noqa: E731
    mu1, mu2 = blur(pred), blur(target)
    s11 = blur(pred * pred) - mu1.square()
    s22 = blur(target * target) - mu2.square()
    s12 = blur(pred * target) - mu1 * mu2
    return ((2 * mu1 * mu2 + c1) / (mu1.square() + mu2.square() + c1)) * ((2 * s12 + c2) / (s11 + s22 + c2))


def masked_ssim_per_frame(pred: Tensor, target: Tensor, region: Tensor) -> Tensor:
    """Mean local SSIM at the window centres inside ``region``, per frame (NaN where there is none)."""
    pred, target = check_pair(pred, target)
    inside = _region(region, pred)
    smap = ssim_map(pred, target).double()
    win = ssim_window(pred.shape[-2], pred.shape[-1])
    r = win // 2
    centres = inside[..., r : r + smap.shape[-2], r : r + smap.shape[-1]]
    count = centres.flatten(1).sum(1).double() * smap.shape[1]
    total = (smap * centres).flatten(1).sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


class RegionAccumulator:
    """Streams batches into PSNR / SSIM inside a region (see the module docstring)."""

    def __init__(self) -> None:
        # per batch, (3, n) float64 tensors (squared-error sums, value counts, SSIM) on the frames' device,
        # copied to the host once, by :meth:`result`
        self._batches: list[Tensor] = []

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor, region: Tensor) -> None:
        sse, count = masked_mse_per_frame(pred, target, region)
        self._batches.append(torch.stack([sse, count, masked_ssim_per_frame(pred, target, region)]))

    def result(self) -> dict[str, Any]:
        """``frames`` (with a non-empty region), ``values`` inside, ``psnr``, ``psnr_global``, ``ssim``,
        ``per_frame`` (None for frames with an empty region)."""
        values = torch.cat(self._batches, 1).cpu() if self._batches else torch.zeros(3, 0, dtype=torch.float64)
        sses, counts, ssims = (row.tolist() for row in values)
        psnr: list[float | None] = []
        for sse, count in zip(sses, counts):
            psnr.append(float(psnr_from_mse(torch.tensor(sse / count, dtype=torch.float64))) if count else None)
        valid = [p for p in psnr if p is not None]
        ssim = [None if math.isnan(s) else s for s in ssims]
        ssim_valid = [s for s in ssim if s is not None]
        total = math.fsum(counts)
        return {
            "frames": len(valid),
            "values": int(total),
            "psnr": math.fsum(valid) / len(valid) if valid else None,
            "psnr_global": float(psnr_from_mse(torch.tensor(math.fsum(sses) / total, dtype=torch.float64))) if total else None,
            "ssim": math.fsum(ssim_valid) / len(ssim_valid) if ssim_valid else None,
            "psnr_cap_db": PSNR_CAP_DB,
            "per_frame": {"psnr": psnr, "ssim": ssim},
        }
