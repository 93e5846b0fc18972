"""SSIM (structural similarity) of frames, via :func:`pytorch_msssim.ssim`.

Definition (Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 2004): with local statistics taken under a Gaussian window
(sigma 1.5), ``SSIM = mean over pixels of
(2*mu_x*mu_y + C1)(2*sigma_xy + C2) / ((mu_x**2 + mu_y**2 + C1)(sigma_x**2 + sigma_y**2 + C2))``
with ``C1 = (0.01*L)**2``, ``C2 = (0.03*L)**2`` and data range ``L = 1``. Each channel is scored on
its own (valid convolution, no padding) and the channel scores are averaged, exactly as
``pytorch_msssim.ssim(X, Y, data_range=1, win_size=ssim_window(H, W))`` does.
"""

from __future__ import annotations

import pytorch_msssim
from torch import Tensor

from nervkit.metrics._checks import check_frame_size, check_pair

#: Gaussian window used for frames whose smaller side is at least this many pixels.
DEFAULT_WINDOW = 11
#: Standard deviation of the Gaussian window (pixels).
WINDOW_SIGMA = 1.5
#: Smallest frame side SSIM accepts (the smallest window used is 3x3).
MIN_SIDE = 3


def ssim_window(height: int, width: int) -> int:
    """Gaussian window size for SSIM on ``height`` x ``width`` frames.

    11 (the standard size) when both sides are at least 11 px; otherwise the largest odd size that
    fits in the smaller side (e.g. 9 for 10 px), never below 3. Raises InputError below 3 px.
    """
    check_frame_size(height, width, MIN_SIDE, "SSIM")
    side = min(height, width)
    if side >= DEFAULT_WINDOW:
        return DEFAULT_WINDOW
    return side if side % 2 == 1 else side - 1


def ssim(pred: Tensor, target: Tensor, *, per_frame: bool = True) -> Tensor:
    """SSIM of ``pred`` against ``target`` (``(N, C, H, W)`` floats in [0, 1]).

    Returns a ``(N,)`` tensor of per-frame SSIM (mean over channels), or with ``per_frame=False``
    their mean as a scalar. Differentiable, so ``1 - ssim(pred, target, per_frame=False)`` is a
    valid training loss; for frames of 11 px and more it equals ``pytorch_msssim.ssim(pred, target,
    data_range=1)`` exactly.
    """
    pred, target = check_pair(pred, target)
    win = ssim_window(pred.shape[-2], pred.shape[-1])
    values = pytorch_msssim.ssim(
        pred, target, data_range=1.0, size_average=False, win_size=win, win_sigma=WINDOW_SIGMA
    )
    return values if per_frame else values.mean()
