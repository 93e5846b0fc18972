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
    The per-frame values stay where the frames are (a GPU) until :meth:`result`, which copies them to
    the host once: no host round trip per frame or per batch.
    """

    def __init__(self, *, ms_ssim: bool = True) -> None:
        self._with_ms_ssim = ms_ssim
        self._size: tuple[int, int] | None = None
        self._frames = 0
        # per batch, (n,) float64 tensors on the frames' device
        self._mse: list[Tensor] = []
        self._ssim: list[Tensor] = []
        self._ms_ssim: list[Tensor] = []

    def __len__(self) -> int:
        return self._frames

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
        self._mse.append(mse_per_frame(pred, target).detach().double())
        self._ssim.append(ssim(pred, target).detach().double())
        if self._with_ms_ssim:
            self._ms_ssim.append(ms_ssim(pred, target).detach().double())
        self._frames += int(pred.shape[0])

    def result(self, *, reference: str | None = None, distorted: str | None = None) -> QualityReport:
        """The summary of all frames seen so far (InputError if there were none)."""
        if self._size is None or not self._frames:
            raise InputError("no frames were evaluated")
        height, width = self._size
        n = self._frames
        # one copy to the host of every per-frame value (the only synchronisation with a GPU)
        parts = [self._mse, self._ssim] + ([self._ms_ssim] if self._with_ms_ssim else [])
        values = torch.stack([torch.cat(p) for p in parts]).cpu()
        mse, ssim_values = values[0].tolist(), values[1].tolist()
        ms_ssim_values = values[2].tolist() if self._with_ms_ssim else []
        psnr = psnr_from_mse(torch.tensor(mse, dtype=torch.float64)).tolist()
        mean_mse = math.fsum(mse) / n
        settings = ms_ssim_settings(height, width) if self._with_ms_ssim else None
        return QualityReport(
            frames=n,
            height=height,
            width=width,
            psnr=math.fsum(psnr) / n,
            psnr_global=float(psnr_from_mse(torch.tensor(mean_mse, dtype=torch.float64))),
            mse=mean_mse,
            ssim=math.fsum(ssim_values) / n,
            ms_ssim=math.fsum(ms_ssim_values) / n if self._with_ms_ssim else None,
            psnr_per_frame=psnr,
            mse_per_frame=mse,
            ssim_per_frame=ssim_values,
            ms_ssim_per_frame=ms_ssim_values if self._with_ms_ssim else None,
            ssim_window=ssim_window(height, width),
            ms_ssim_window=None if settings is None else settings.win_size,
            ms_ssim_weights=None if settings is None else settings.weights,
            psnr_cap=PSNR_CAP_DB,
            reference=reference,
            distorted=distorted,
        )
