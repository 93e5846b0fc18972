"""Streaming quality measurement over batches of frames."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nervkit.errors import InputError
from nervkit.metrics._checks import check_pair
from nervkit.metrics.multiscale import ms_ssim, ms_ssim_settings
from nervkit.metrics.psnr import PSNR_CAP_DB, mse_per_frame, psnr_from_mse
from nervkit.metrics.report import QualityReport
from nervkit.metrics.structural import ssim, ssim_window


class QualityAccumulator:
    """Collects per-frame MSE, PSNR, SSIM and MS-SSIM over batches; :meth:`result` summarises.

    Every frame is scored on its own, so the result does not depend on how the frames were batched.
    All batches must have the same frame size. With ``ms_ssim=False`` MS-SSIM is skipped (faster).
    """

    def __init__(self, *, ms_ssim: bool = True) -> None:
        self._with_ms_ssim = ms_ssim
        self._size: tuple[int, int] | None = None
        self._mse: list[float] = []
        self._ssim: list[float] = []
        self._ms_ssim: list[float] = []

    def __len__(self) -> int:
        return len(self._mse)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Score a batch ``(N, C, H, W)`` of predicted frames against their targets (floats in [0, 1])."""
        pred, target = check_pair(pred, target)
        size = (int(pred.shape[-2]), int(pred.shape[-1]))
        if self._size is None:
            # validates the size for SSIM / MS-SSIM before anything is recorded
            ssim_window(*size)
            if self._with_ms_ssim:
                ms_ssim_settings(*size)
            self._size = size
        elif size != self._size:
            raise InputError(
                f"frame size changed from {self._size[0]}x{self._size[1]} to {size[0]}x{size[1]} (HxW) "
                "between batches"
            )
        self._mse.extend(mse_per_frame(pred, target).double().tolist())
        self._ssim.extend(ssim(pred, target).double().tolist())
        if self._with_ms_ssim:
            self._ms_ssim.extend(ms_ssim(pred, target).double().tolist())

    def result(self, *, reference: str | None = None, distorted: str | None = None) -> QualityReport:
        """The summary of all frames seen so far (InputError if there were none)."""
        if self._size is None or not self._mse:
            raise InputError("no frames were evaluated")
        height, width = self._size
        n = len(self._mse)
        psnr = psnr_from_mse(torch.tensor(self._mse, dtype=torch.float64)).tolist()
        mean_mse = math.fsum(self._mse) / n
        settings = ms_ssim_settings(height, width) if self._with_ms_ssim else None
        return QualityReport(
            frames=n,
            height=height,
            width=width,
            psnr=math.fsum(psnr) / n,
            psnr_global=float(psnr_from_mse(torch.tensor(mean_mse, dtype=torch.float64))),
            mse=mean_mse,
            ssim=math.fsum(self._ssim) / n,
            ms_ssim=math.fsum(self._ms_ssim) / n if self._with_ms_ssim else None,
            psnr_per_frame=psnr,
            mse_per_frame=list(self._mse),
            ssim_per_frame=list(self._ssim),
            ms_ssim_per_frame=list(self._ms_ssim) if self._with_ms_ssim else None,
            ssim_window=ssim_window(height, width),
            ms_ssim_window=None if settings is None else settings.win_size,
            ms_ssim_weights=None if settings is None else settings.weights,
            psnr_cap=PSNR_CAP_DB,
            reference=reference,
            distorted=distorted,
        )
