"""Quality of decoded frames against their reference: PSNR, SSIM, MS-SSIM (nervkit.metrics) and VMAF.

PSNR/SSIM/MS-SSIM are nervkit's own (:class:`~nervkit.metrics.QualityAccumulator`, RGB, frames in
[0, 1]; the same code scores the neural methods). PSNR here is the mean of per-frame PSNR.

VMAF comes from ffmpeg's ``libvmaf`` filter with the built-in ``vmaf_v0.6.1`` model, read from its JSON
log (pooled mean over frames). VMAF is defined on the luma plane of YUV video, so both the reference
and the distorted frames, which nervkit holds as RGB, are converted to 8-bit ``yuv420p`` with nervkit's
one conversion (:func:`nervkit.io.yuv420_planes`: swscale, BT.601, limited range; the planes ``eval``'s
Y/U/V PSNRs use) and streamed to libvmaf frame by frame (:class:`nervkit.metrics.vmaf.VmafStream`: no
temporary copy of either video on disk). Both sides go through the
same conversion, so identical RGB input gives identical YUV and VMAF ≈ 100: every frame scores 100 except the
first, whose temporal (motion) feature is 0 by definition and which scores about 97.4 on the test clip,
so the pooled mean of identical 4-frame clips is about 99.4 (it approaches 100 for longer clips). Converting the
codec's decoded RGB back to YUV is a small extra round trip, accepted so that codecs and neural
methods (which only produce RGB) are measured identically.

Small frames: libvmaf runs on frames as small as 24×24 (checked with this build; 16×16 makes ffmpeg
fail without a message, so frames under :data:`VMAF_MIN_SIDE` pixels on a side are refused with a clear
error) but the model was trained on 1080p viewing, so VMAF of tiny frames is a sanity
number, not a perceptual one. If this ffmpeg has no libvmaf filter, :func:`vmaf_score` raises
:class:`~nervkit.errors.NervkitError` and :func:`measure_quality` records ``vmaf=None`` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from nervkit.bench.codecs import as_rgb_frames
from nervkit.errors import InputError
from nervkit.io.ffmpeg import has_filter
from nervkit.io.writer import yuv420_planes
from nervkit.metrics import QualityAccumulator
from nervkit.metrics.vmaf import VMAF_MIN_SIDE, VMAF_MODEL, VmafStream


@dataclass
class QualityPoint:
    """Mean quality of one decoded clip; ``vmaf`` is None when not measured (``vmaf_note`` says why)."""

    frames: int
    psnr: float
    ssim: float
    ms_ssim: float | None
    vmaf: float | None
    vmaf_note: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    if reference.shape != distorted.shape:
        raise InputError(
            f"decoded frames {tuple(distorted.shape)} do not match the reference {tuple(reference.shape)} (N, H, W, 3)"
        )


def vmaf_score(
    reference: np.ndarray,
    distorted: np.ndarray,
    *,
    fps: float = 25.0,
    model: str = VMAF_MODEL,
    threads: int | None = None,
) -> tuple[float, list[float]]:
    """VMAF (pooled mean, per-frame list) of ``distorted`` vs ``reference`` RGB uint8 ``(N, H, W, 3)``,
    streamed frame by frame to libvmaf (:class:`nervkit.metrics.vmaf.VmafStream`, no temporary video)."""
    reference, distorted = as_rgb_frames(reference), as_rgb_frames(distorted)
    _check_pair(reference, distorted)
    stream = VmafStream(*reference.shape[1:3], fps=fps, model=model, threads=threads)
    try:
        for ref, dist in zip(reference, distorted):
            stream.feed(yuv420_planes(ref, what="VMAF"), yuv420_planes(dist, what="VMAF"))
    except BaseException:
        stream.abort()
        raise
    return stream.close()


def measure_quality(
    reference: np.ndarray | torch.Tensor,
    distorted: np.ndarray | torch.Tensor,
    *,
    vmaf: bool = True,
    ms_ssim: bool = True,
    fps: float = 25.0,
    batch: int = 16,
    device: str | torch.device = "cpu",
) -> QualityPoint:
    """PSNR/SSIM/MS-SSIM (nervkit.metrics) and optionally VMAF of RGB uint8 frames ``(N, H, W, 3)``.

    ``device``: where the frames are scored (a GPU makes 720p MS-SSIM cheap)."""
    reference, distorted = as_rgb_frames(reference), as_rgb_frames(distorted)
    _check_pair(reference, distorted)
    acc = QualityAccumulator(ms_ssim=ms_ssim)
    for start in range(0, len(reference), batch):
        ref = torch.from_numpy(reference[start : start + batch]).to(device).permute(0, 3, 1, 2).float().div_(255)
        dist = torch.from_numpy(distorted[start : start + batch]).to(device).permute(0, 3, 1, 2).float().div_(255)
        acc.update(dist, ref)
    report = acc.result()
    score, note = None, None
    if vmaf:
        if not has_filter("libvmaf"):
            note = "this ffmpeg has no libvmaf filter"
        elif min(reference.shape[1:3]) < VMAF_MIN_SIDE:
            note = f"frames smaller than {VMAF_MIN_SIDE} pixels on a side"
        else:
            score, _ = vmaf_score(reference, distorted, fps=fps)
    else:
        note = "not requested"
    return QualityPoint(
        frames=report.frames,
        psnr=float(report.psnr),
        ssim=float(report.ssim),
        ms_ssim=None if report.ms_ssim is None else float(report.ms_ssim),
        vmaf=None if score is None or math.isnan(score) else score,
        vmaf_note=note,
    )
