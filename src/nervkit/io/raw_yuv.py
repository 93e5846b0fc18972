"""Reading headerless raw YUV files (``.yuv``).

A ``.yuv`` file is a plain concatenation of frames, each the planes of one picture (Y, then U and V,
or Y alone for ``gray``), 8 bits per sample, chroma planes rounded up for odd sizes as FFmpeg does.
Nothing in the file says its size, rate or format, so those come from the caller (``raw_size``,
``raw_fps``, ``raw_pix_fmt``). The frame count is ``file size / bytes per frame``, which must be whole.

Frames are yielded as ``av.VideoFrame`` objects built from the planes, so that they are converted to
RGB by exactly the same FFmpeg code as decoded video (see :mod:`nervkit.io.reader`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import av
import numpy as np

from ..errors import ConfigError, InputError
from .info import KIND_RAW_YUV, VideoInfo
from .pixfmt import RAW_PIX_FMTS
from .size import check_size

#: File suffix that marks a raw YUV input.
RAW_SUFFIX = ".yuv"


def is_raw_yuv(path: str) -> bool:
    """True if ``path`` names a raw YUV file (by its ``.yuv`` suffix, any case)."""
    return os.path.splitext(str(path))[1].lower() == RAW_SUFFIX


def _plane_layout(width: int, height: int, pix_fmt: str) -> list[tuple[int, int]]:
    """(row bytes, rows) of each plane of one frame."""
    frame = av.VideoFrame(width, height, pix_fmt)
    return [(plane.width, plane.height) for plane in frame.planes]


def frame_bytes(size: tuple[int, int], pix_fmt: str) -> int:
    """Bytes of one ``size = (H, W)`` frame in ``pix_fmt`` (one of :data:`RAW_PIX_FMTS`)."""
    return sum(w * h for w, h in _plane_layout(size[1], size[0], pix_fmt))


def probe_raw_yuv(path: str, raw_size: tuple[int, int] | None, raw_fps: float, raw_pix_fmt: str) -> VideoInfo:
    """:class:`VideoInfo` of a raw ``.yuv`` file; ``ConfigError`` for missing/invalid options."""
    if raw_size is None:
        raise ConfigError(
            f"{path} is raw YUV without a header: pass its frame size with --size HxW (e.g. --size 1080x1920)"
        )
    height, width = check_size(raw_size, f"raw frame size for {path}")
    if raw_pix_fmt not in RAW_PIX_FMTS:
        raise ConfigError(
            f"unsupported pixel format {raw_pix_fmt} in {path} "
            f"(raw .yuv input supports {', '.join(RAW_PIX_FMTS)})"
        )
    if (
        not isinstance(raw_fps, (int, float))
        or isinstance(raw_fps, bool)
        or not math.isfinite(raw_fps)
        or raw_fps <= 0
    ):
        raise ConfigError(f"invalid frame rate {raw_fps!r} for {path}: must be a positive number")
    try:
        total = os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    per_frame = frame_bytes((height, width), raw_pix_fmt)
    if total == 0:
        raise InputError(f"{path} is empty (0 bytes): no frames")
    if total % per_frame:
        raise InputError(
            f"{path} is not a whole number of {height}x{width} {raw_pix_fmt} frames: {total} bytes is "
            f"{total / per_frame:.3f} frames of {per_frame} bytes "
            "(wrong --size or pixel format, or a truncated file?)"
        )
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        num_frames=total // per_frame,
        fps=float(raw_fps),
        pix_fmt=raw_pix_fmt,
        kind=KIND_RAW_YUV,
    )


def planes_to_frame(data: bytes, width: int, height: int, pix_fmt: str) -> av.VideoFrame:
    """Build an ``av.VideoFrame`` from one frame's worth of packed plane bytes."""
    frame = av.VideoFrame(width, height, pix_fmt)
    offset = 0
    for plane in frame.planes:
        rows = np.frombuffer(data, np.uint8, plane.width * plane.height, offset).reshape(
            plane.height, plane.width
        )
        offset += plane.width * plane.height
        padded = np.zeros((plane.height, plane.line_size), np.uint8)  # FFmpeg planes have padded lines
        padded[:, : plane.width] = rows
        plane.update(padded)
    return frame


def iter_raw_yuv_frames(path: str, info: VideoInfo, indices: range) -> Iterator[av.VideoFrame]:
    """Read the frames whose index is in ``indices`` (seeking directly to each)."""
    per_frame = frame_bytes((info.height, info.width), info.pix_fmt)
    try:
        with open(path, "rb") as f:
            for index in indices:
                f.seek(index * per_frame)
                data = f.read(per_frame)
                if len(data) != per_frame:
                    raise InputError(f"{path} is truncated: frame {index} is incomplete")
                yield planes_to_frame(data, info.width, info.height, info.pix_fmt)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
