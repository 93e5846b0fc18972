"""Quality metrics for predicted / decoded frames: PSNR, SSIM and MS-SSIM.

Frames are float tensors ``(N, 3, H, W)`` in [0, 1], RGB. PSNR is ``-10*log10(MSE)`` over RGB with no
8-bit rounding of the prediction, capped at 100 dB (:mod:`.psnr`); SSIM follows Wang et al. 2004 with
a Gaussian window of sigma 1.5 (:mod:`.structural`); MS-SSIM follows Wang et al. 2003 with a documented rule
for frames too small for the default 5 scales (:mod:`.multiscale`). :class:`QualityAccumulator` streams
batches into a :class:`QualityReport`; :func:`evaluate_videos` compares two videos on disk.
"""

from nervkit.metrics.accumulator import QualityAccumulator
from nervkit.metrics.evaluate import evaluate_videos
from nervkit.metrics.multiscale import MsSsimSettings, ms_ssim, ms_ssim_settings
from nervkit.metrics.psnr import PSNR_CAP_DB, mse_per_frame, psnr_from_mse, psnr_per_frame
from nervkit.metrics.report import QualityReport
from nervkit.metrics.structural import ssim, ssim_window

__all__ = [
    "PSNR_CAP_DB",
    "MsSsimSettings",
    "QualityAccumulator",
    "QualityReport",
    "evaluate_videos",
    "ms_ssim",
    "ms_ssim_settings",
    "mse_per_frame",
    "psnr_from_mse",
    "psnr_per_frame",
    "ssim",
    "ssim_window",
]
