"""Quality of a distorted video against its reference, streamed frame batch by frame batch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from nervkit.errors import ConfigError, InputError
from nervkit.metrics.accumulator import QualityAccumulator
from nervkit.metrics.report import QualityReport

if TYPE_CHECKING:
    from nervkit.io import FrameRange


def _to_batch(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB arrays -> ``(N, 3, H, W)`` float32 in [0, 1]."""
    array = np.stack(frames)  # (N, H, W, 3)
    batch = torch.from_numpy(array).to(device).permute(0, 3, 1, 2).float()
    return batch.div_(255.0)


def _count(iterator: Iterator[np.ndarray]) -> int:
    return sum(1 for _ in iterator)


def _count_error(reference: object, distorted: object, ref_count: int, dis_count: int) -> InputError:
    return InputError(
        f"frame counts differ: reference {reference} has {ref_count} frames, "
        f"distorted {distorted} has {dis_count}"
    )


def _size_error(
    reference: object, distorted: object, ref_size: tuple[int, ...], dis_size: tuple[int, ...]
) -> InputError:
    return InputError(
        f"frame sizes differ: reference {reference} is {ref_size[0]}x{ref_size[1]}, "
        f"distorted {distorted} is {dis_size[0]}x{dis_size[1]} (HxW; use --size HxW to resize both)"
    )


def evaluate_videos(
    reference: str | os.PathLike[str],
    distorted: str | os.PathLike[str],
    *,
    frames: FrameRange | None = None,
    size: tuple[int, int] | None = None,
    batch_size: int = 8,
    raw_size: tuple[int, int] | None = None,
    raw_pix_fmt: str = "yuv420p",
    ms_ssim: bool = True,
    device: str | torch.device | None = None,
    yuv: bool = True,
    vmaf: bool = False,
    fps: float | None = None,
) -> QualityReport:
    """PSNR / SSIM / MS-SSIM of ``distorted`` against ``reference`` (any input :mod:`nervkit.io` reads).

    Both are decoded in lockstep through :func:`nervkit.io.iter_frames` with the same ``frames``
    range, ``size = (H, W)``, ``raw_size`` and ``raw_pix_fmt`` (for ``.yuv`` inputs), ``batch_size``
    frames at a time, so memory stays bounded. Both are probed first, so an InputError for different
    (selected) frame counts, or different frame sizes when no ``size`` was given (``size`` resizes
    both), comes before any decoding. ``ms_ssim=False`` skips MS-SSIM; ``device`` (default CPU) is
    where the metrics are computed. Frames are compared as decoded 8-bit RGB scaled to [0, 1].

    ``yuv`` (default on) also converts both to 8-bit 4:2:0 (:func:`nervkit.io.yuv420_planes`, BT.601
    limited range) and reports the PSNR of Y, U and V (peak 255, per frame, capped like the RGB PSNR)
    and their 6:1:1 average ``(6 PSNR_Y + PSNR_U + PSNR_V) / 8``, an average of PSNRs (not of MSEs), per
    frame and over frames, as codec papers report. ``vmaf`` streams those planes into ffmpeg's libvmaf
    (:class:`nervkit.metrics.vmaf.VmafStream`, nothing written to disk but its log; ``fps`` defaults to
    the reference's rate); NervkitError if this ffmpeg has no libvmaf.
    """
    from nervkit.io import FrameRange, probe_video  # here: importing metrics needs no PyAV

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    dev = torch.device("cpu" if device is None else device)
    raw = {"raw_size": raw_size, "raw_pix_fmt": raw_pix_fmt}
    # fail before any decoding: compare the selected frame counts and (unless resizing) the sizes
    ref_info = probe_video(reference, **raw)
    dis_info = probe_video(distorted, **raw)
    selection = frames if frames is not None else FrameRange()
    ref_count = len(selection.resolve(ref_info.num_frames, source=ref_info.path))
    dis_count = len(selection.resolve(dis_info.num_frames, source=dis_info.path))
    if ref_count != dis_count:
        raise _count_error(reference, distorted, ref_count, dis_count)
    if size is None and ref_info.size != dis_info.size:
        raise _size_error(reference, distorted, ref_info.size, dis_info.size)

    from nervkit.io import yuv420_planes
    from nervkit.metrics.vmaf import VmafStream, check_vmaf

    out_size = size if size is not None else ref_info.size
    if vmaf:
        check_vmaf(*out_size)
    yuv_acc = _YuvAccumulator(dev) if (yuv or vmaf) else None
    accumulator = QualityAccumulator(ms_ssim=ms_ssim)
    stream = VmafStream(*out_size, fps=fps or ref_info.fps or 25.0) if vmaf else None
    extra: dict = {}
    try:
        count = _compare(reference, distorted, frames, size, raw, batch_size, dev, accumulator, yuv_acc, stream,
                         yuv420_planes)
        if count == 0:
            raise InputError(f"no frames to compare in {reference} and {distorted}")
        if yuv_acc is not None and yuv:
            extra["yuv_psnr_per_frame"] = yuv_acc.result()
        if stream is not None:
            extra["vmaf"], extra["vmaf_per_frame"] = stream.close()
            stream = None
    finally:
        if stream is not None:
            stream.abort()
    report = accumulator.result(reference=str(reference), distorted=str(distorted))
    for key, value in extra.items():
        setattr(report, key, value)
    return report


class _YuvAccumulator:
    """Per-frame PSNR of the Y, U, V planes (uint8, peak 255) on ``device``, copied to the host once."""

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._mse: list[torch.Tensor] = []

    def update(self, ref: tuple[np.ndarray, ...], dis: tuple[np.ndarray, ...]) -> None:
        self._mse.append(torch.stack([
            (torch.from_numpy(np.ascontiguousarray(d)).to(self._device).double()
             - torch.from_numpy(np.ascontiguousarray(r)).to(self._device).double()).square().mean()
            for r, d in zip(ref, dis)
        ]))

    def result(self) -> dict[str, list[float]]:
        from nervkit.metrics.psnr import psnr_from_mse

        psnr = psnr_from_mse(torch.stack(self._mse).cpu(), data_range=255.0)  # (frames, 3)
        y, u, v = (psnr[:, i].tolist() for i in range(3))
        return {"y": y, "u": u, "v": v, "yuv": [(6 * a + b + c) / 8 for a, b, c in zip(y, u, v)]}


def _compare(reference, distorted, frames, size, raw, batch_size, dev, accumulator, yuv_acc,  # type: ignore[no-untyped-def]
             stream, to_planes) -> int:
    """The lockstep loop: RGB metrics in batches, Y/U/V planes and VMAF frame by frame; returns the count."""
    from nervkit.io import iter_frames

    ref_iter = iter(iter_frames(reference, frames=frames, size=size, **raw))
    dis_iter = iter(iter_frames(distorted, frames=frames, size=size, **raw))
    ref_batch: list[np.ndarray] = []
    dis_batch: list[np.ndarray] = []
    count = 0
    while True:
        ref_frame = next(ref_iter, None)
        dis_frame = next(dis_iter, None)
        if ref_frame is None or dis_frame is None:
            if ref_frame is not None or dis_frame is not None:  # a source ended early (declared count wrong)
                ref_total = count + (0 if ref_frame is None else 1 + _count(ref_iter))
                dis_total = count + (0 if dis_frame is None else 1 + _count(dis_iter))
                raise _count_error(reference, distorted, ref_total, dis_total)
            break
        if ref_frame.shape != dis_frame.shape:
            raise _size_error(reference, distorted, ref_frame.shape[:2], dis_frame.shape[:2])
        count += 1
        if yuv_acc is not None:
            ref_planes, dis_planes = to_planes(ref_frame, what=str(reference)), to_planes(dis_frame, what=str(distorted))
            yuv_acc.update(ref_planes, dis_planes)
            if stream is not None:
                stream.feed(ref_planes, dis_planes)
        ref_batch.append(ref_frame)
        dis_batch.append(dis_frame)
        if len(ref_batch) == batch_size:
            accumulator.update(_to_batch(dis_batch, dev), _to_batch(ref_batch, dev))
            ref_batch, dis_batch = [], []
    if ref_batch:
        accumulator.update(_to_batch(dis_batch, dev), _to_batch(ref_batch, dev))
    return count
