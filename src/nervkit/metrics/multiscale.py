"""MS-SSIM (multi-scale structural similarity) of frames, with a rule for small frames.

Definition (Wang, Simoncelli & Bovik, "Multiscale structural similarity for image quality
assessment", Asilomar 2003): the frames are compared at M scales, each half the size of the previous
one (2x2 average pooling); at scales 1..M-1 only the contrast-structure term ``cs_j`` is kept, at the
coarsest scale M the full SSIM term, and ``MS-SSIM = prod_j relu(cs_j)**w_j * relu(ssim_M)**w_M``.
The per-channel values are averaged. Defaults: M = 5, weights ``(0.0448, 0.2856, 0.3001, 0.2363,
0.1333)``, Gaussian window 11 with sigma 1.5, data range 1 -- identical to
``pytorch_msssim.ms_ssim(X, Y, data_range=1)``, whose computation this module reproduces step by step
(including its zero-padded average pooling of odd sizes).

Small frames. ``pytorch_msssim`` requires the smaller side to exceed ``(win_size - 1) * 2**4`` (160 px
for the 11 window). :func:`ms_ssim_settings` picks, for a frame whose smaller side is ``s``:

1. ``s > 160``: the defaults (window 11, 5 scales, default weights) -- exactly ``pytorch_msssim``;
2. ``32 < s <= 160``: keep 5 scales and shrink the window to the largest odd size ``w >= 3`` with
   ``s > (w - 1) * 16`` (e.g. 5 for 90 px, 3 for 64 px);
3. ``s <= 32``: window 3 and drop the coarsest scales, keeping the largest ``M`` with
   ``s > 2 * 2**(M - 1)`` (e.g. 3 scales for 16 px, 1 scale -- plain SSIM -- for 3 or 4 px); the
   first ``M`` default weights are renormalised to sum to 1.

So the coarsest scale is always at least as large as the window. Frames below 3 px raise InputError.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nervkit.errors import ConfigError, InputError
from nervkit.metrics._checks import check_frame_size, check_pair
from nervkit.metrics.structural import DEFAULT_WINDOW, MIN_SIDE, WINDOW_SIGMA

#: Per-scale weights of Wang et al. (2003), finest scale first (also pytorch_msssim's defaults).
DEFAULT_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Stabilising constants K1, K2 (C1 = (K1*L)**2, C2 = (K2*L)**2 with data range L = 1).
K1, K2 = 0.01, 0.03


@dataclass(frozen=True)
class MsSsimSettings:
    """Window size and per-scale weights (finest scale first) used for MS-SSIM."""

    win_size: int
    weights: tuple[float, ...]

    @property
    def scales(self) -> int:
        """Number of scales (``len(weights)``)."""
        return len(self.weights)


def ms_ssim_settings(height: int, width: int, max_window: int = DEFAULT_WINDOW) -> MsSsimSettings:
    """MS-SSIM window and weights for ``height`` x ``width`` frames (rule in the module docstring), the
    window at most ``max_window`` (HiNeRV's loss uses 5×5 windows)."""
    check_frame_size(height, width, MIN_SIDE, "MS-SSIM")
    side = min(height, width)
    full = len(DEFAULT_WEIGHTS)
    # largest odd window w <= 11 with side > (w - 1) * 2**(scales - 1), for the full 5 scales
    for win in range(max_window, 2, -2):
        if side > (win - 1) * 2 ** (full - 1):
            return MsSsimSettings(win, DEFAULT_WEIGHTS)
    win = 3
    scales = full - 1
    while scales > 1 and not side > (win - 1) * 2 ** (scales - 1):
        scales -= 1
    kept = DEFAULT_WEIGHTS[:scales]
    total = sum(kept)
    return MsSsimSettings(win, tuple(w / total for w in kept))


def _gaussian_window(size: int, channels: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=torch.float)
    coords -= size // 2
    g = torch.exp(-(coords**2) / (2 * WINDOW_SIGMA**2))
    g /= g.sum()
    return g.reshape(1, 1, 1, size).repeat(channels, 1, 1, 1).to(device=device, dtype=dtype)


def _blur(x: Tensor, win: Tensor) -> Tensor:
    """Separable Gaussian blur, valid convolution, one channel at a time (rows, then columns)."""
    channels = x.shape[1]
    x = F.conv2d(x, win.transpose(2, 3), groups=channels)
    return F.conv2d(x, win, groups=channels)


def _ssim_and_cs(x: Tensor, y: Tensor, win: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel SSIM and contrast-structure term, each ``(N, C)``."""
    c1 = K1**2
    c2 = K2**2
    mu1 = _blur(x, win)
    mu2 = _blur(y, win)
    mu1_sq = mu1.pow(2)
    mu2_sq = mu2.pow(2)
    mu1_mu2 = mu1 * mu2
    sigma1_sq = _blur(x * x, win) - mu1_sq
    sigma2_sq = _blur(y * y, win) - mu2_sq
    sigma12 = _blur(x * y, win) - mu1_mu2
    cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
    ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def _check_settings_fit(settings: MsSsimSettings, height: int, width: int) -> None:
    if settings.win_size < 1 or settings.win_size % 2 == 0 or not settings.weights:
        raise ConfigError(
            f"MS-SSIM needs an odd window and at least one weight, got window {settings.win_size} "
            f"and {len(settings.weights)} weights"
        )
    side = min(height, width)
    for _ in range(settings.scales - 1):
        side = (side + 1) // 2
    if side < settings.win_size:
        raise InputError(
            f"frames of {height}x{width} (HxW) are too small for MS-SSIM with window {settings.win_size} "
            f"and {settings.scales} scales"
        )


def ms_ssim(
    pred: Tensor, target: Tensor, *, per_frame: bool = True, settings: MsSsimSettings | None = None
) -> Tensor:
    """MS-SSIM of ``pred`` against ``target`` (``(N, C, H, W)`` floats in [0, 1]).

    Returns ``(N,)`` per-frame values (mean over channels), or their mean with ``per_frame=False``.
    Uses ``settings`` if given, else :func:`ms_ssim_settings` for the frame size. Differentiable (like
    ``pytorch_msssim``, the gradient is not finite where a scale's contrast-structure term is exactly 0).
    """
    pred, target = check_pair(pred, target)
    height, width = pred.shape[-2], pred.shape[-1]
    if settings is None:
        settings = ms_ssim_settings(height, width)
    else:
        _check_settings_fit(settings, height, width)
    win = _gaussian_window(settings.win_size, pred.shape[1], pred.dtype, pred.device)
    weights = pred.new_tensor(settings.weights)
    x, y = pred, target
    terms = []
    for level in range(settings.scales):
        ssim_c, cs = _ssim_and_cs(x, y, win)
        if level < settings.scales - 1:
            terms.append(torch.relu(cs))
            padding = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=padding)
            y = F.avg_pool2d(y, kernel_size=2, padding=padding)
    terms.append(torch.relu(ssim_c))
    stacked = torch.stack(terms, dim=0)  # (scales, N, C)
    values = torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)
    return values if per_frame else values.mean()
