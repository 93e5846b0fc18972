"""Quality of decoded frames against their reference: PSNR, SSIM, MS-SSIM (nervkit.metrics) and VMAF.

PSNR/SSIM/MS-SSIM are nervkit's own (:class:`~nervkit.metrics.QualityAccumulator`, RGB, frames in
[0, 1]; the same code scores the neural methods). PSNR here is the mean of per-frame PSNR.

VMAF comes from ffmpeg's ``libvmaf`` filter with the built-in ``vmaf_v0.6.1`` model, read from its JSON
log (pooled mean over frames). VMAF is defined on the luma plane of YUV video, so both the reference
and the distorted frames, which nervkit holds as RGB, are converted to 8-bit ``yuv420p`` by ffmpeg with
the one conversion of :mod:`nervkit.bench.codecs` (BT.601, limited range). Both sides go through the
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

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from nervkit.bench.codecs import RGB_TO_YUV, as_rgb_frames
from nervkit.errors import InputError, NervkitError
from nervkit.io.ffmpeg import has_filter, run_ffmpeg
from nervkit.metrics import QualityAccumulator

VMAF_MODEL = "vmaf_v0.6.1"
#: Smallest frame side libvmaf is given (16 fails in libvmaf, 24 works).
VMAF_MIN_SIDE = 24


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


def _filter_path(path: Path) -> str:
    """``path`` escaped for an ffmpeg filter option value (inside single quotes)."""
    return "'" + str(path).replace("\\", "/").replace("'", "'\\''").replace(":", "\\:") + "'"


def vmaf_score(
    reference: np.ndarray,
    distorted: np.ndarray,
    *,
    fps: float = 25.0,
    model: str = VMAF_MODEL,
    threads: int | None = None,
) -> tuple[float, list[float]]:
    """VMAF (pooled mean, per-frame list) of ``distorted`` vs ``reference`` RGB uint8 ``(N, H, W, 3)``."""
    if not has_filter("libvmaf"):
        raise NervkitError("VMAF needs ffmpeg's libvmaf filter, which this ffmpeg lacks")
    reference, distorted = as_rgb_frames(reference), as_rgb_frames(distorted)
    _check_pair(reference, distorted)
    n, height, width, _ = reference.shape
    if min(height, width) < VMAF_MIN_SIDE:
        raise NervkitError(f"VMAF needs frames of at least {VMAF_MIN_SIDE} pixels on a side, got {height}x{width} (HxW)")
    with tempfile.TemporaryDirectory(prefix="nervkit-vmaf-") as folder:
        folder_path = Path(folder)
        ref_path, dist_path, log_path = folder_path / "ref.rgb", folder_path / "dist.rgb", folder_path / "vmaf.json"
        ref_path.write_bytes(reference.tobytes())
        dist_path.write_bytes(distorted.tobytes())
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", f"{fps:g}"]
        n_threads = threads if threads is not None else max(1, min(8, os.cpu_count() or 1))
        graph = (
            f"[0:v]{RGB_TO_YUV},format=yuv420p[dist];"
            f"[1:v]{RGB_TO_YUV},format=yuv420p[ref];"
            f"[dist][ref]libvmaf=model=version={model}:log_fmt=json:n_threads={n_threads}"
            f":log_path={_filter_path(log_path)}"
        )
        run_ffmpeg(
            ["-hide_banner", "-nostdin", "-loglevel", "error", *raw, "-i", str(dist_path), *raw, "-i", str(ref_path),
             "-lavfi", graph, "-f", "null", "-"],
            what=f"measuring VMAF ({model})",
        )
        try:
            log = json.loads(log_path.read_text())
            per_frame = [float(frame["metrics"]["vmaf"]) for frame in log["frames"]]
            pooled = float(log["pooled_metrics"]["vmaf"]["mean"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NervkitError(f"cannot read libvmaf's JSON log: {exc}") from exc
    if len(per_frame) != n:
        raise NervkitError(f"libvmaf scored {len(per_frame)} of {n} frames")
    return pooled, per_frame


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
