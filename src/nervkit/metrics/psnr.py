"""Mean squared error and PSNR per frame.

Definitions (frames are float tensors ``(N, C, H, W)``, values nominally in ``[0, data_range]``)::

    MSE_n  = mean over c, y, x of (pred[n, c, y, x] - target[n, c, y, x])**2
    PSNR_n = 10 * log10(data_range**2 / MSE_n)            # dB; = -10*log10(MSE_n) for data_range 1

The prediction is *not* rounded to 8 bits and not clamped: the metric measures exactly the tensor it
is given. Identical frames have MSE 0 and an infinite PSNR; nervkit caps PSNR at :data:`PSNR_CAP_DB`
(100 dB, i.e. an MSE of ``1e-10 * data_range**2``) so that reports, means and JSON stay finite.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nervkit.metrics._checks import check_pair

#: Upper bound on any PSNR nervkit reports, in dB (identical frames would otherwise give +inf).
PSNR_CAP_DB = 100.0


def _at_least_float32(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def mse_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of each frame, averaged over channels and pixels: shape ``(N,)``.

    Computed in at least float32 (half / bfloat16 inputs are upcast); differentiable.
    """
    pred, target = check_pair(pred, target)
    diff = _at_least_float32(pred) - _at_least_float32(target)
    return diff.pow(2).flatten(1).mean(dim=1)


def psnr_from_mse(mse: Tensor | float, data_range: float = 1.0, cap: float = PSNR_CAP_DB) -> Tensor:
    """PSNR in dB from MSE values: ``10*log10(data_range**2 / mse)``, capped at ``cap`` (for mse == 0)."""
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    mse = torch.as_tensor(mse)
    if not mse.is_floating_point():
        mse = mse.double()
    # clamp below so log10 never sees 0 (keeps gradients finite); the cap then bounds the value exactly
    floor = (data_range**2) * 10.0 ** (-cap / 10.0)
    value = 20.0 * math.log10(data_range) - 10.0 * torch.log10(mse.clamp_min(floor))
    return value.clamp(max=cap)


def psnr_per_frame(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """PSNR of each frame in dB, shape ``(N,)``; identical frames give :data:`PSNR_CAP_DB` (100 dB)."""
    return psnr_from_mse(mse_per_frame(pred, target), data_range=data_range)
