"""Reading videos: :func:`probe_video`, :func:`iter_frames` and :func:`read_video`.

Three kinds of input are read, chosen by the path:

* a folder: its PNG/JPEG/BMP frames in natural name order (:mod:`nervkit.io.frame_folder`);
* a file ending in ``.yuv``: headerless raw YUV; ``raw_size``, ``raw_fps`` and ``raw_pix_fmt`` describe
  it (:mod:`nervkit.io.raw_yuv`); these options are ignored for every other kind, except that
  ``raw_fps`` is also the rate of frame folders and of containers that declare none;
* anything else: a container FFmpeg opens (mp4, mkv, mov, webm, avi, y4m, ...) decoded with PyAV
  (:mod:`nervkit.io.container`).

Colour convention. YUV -> RGB conversion happens in exactly one place, :func:`frame_to_rgb`:
FFmpeg's swscale through PyAV, ``frame.to_ndarray(format="rgb24")``, which is also what
``frame.to_image()`` uses (so frames equal those the official baselines extracted with PyAV). Raw YUV
frames are wrapped in an ``av.VideoFrame`` and go through the same call. With PyAV's defaults swscale
uses BT.601 coefficients and limited ("TV", 16-235) range, or full range for the ``yuvj*`` pixel
formats; colour tags in the stream (e.g. BT.709) are not applied, exactly as in ``to_image()``. Image
frames in a folder are decoded by Pillow (see :mod:`nervkit.io.frame_folder`). Alpha is dropped;
formats deeper than 8 bits are reduced to 8-bit RGB by swscale.

Errors. Every problem with the input is a one-line :class:`~nervkit.errors.InputError` (or
:class:`~nervkit.errors.ConfigError` for options) naming the problem and the path; no PyAV exception
escapes. Nothing here prints.

Truncated input. Every kind is checked against what it promises, so a cut-off file is refused rather
than read in part: a container against its declared frame count or duration (see
:mod:`nervkit.io.container` for the rule per container kind and its tolerance), with a message such
as ``PATH is truncated or corrupt: the container declares 60 frames (2.40 s at 25 fps) but only 21
could be decoded``; a ``.yuv`` file must be a whole number of frames; an image in a frame folder
that does not decode (cut or damaged) names the file. Frame ranges: the truncation error applies
whenever the selected range reaches past the frames that could be decoded, including every range
without a stop (``A:``, "to the end"); a range with a stop that lies entirely within the decodable
frames of a truncated container (e.g. ``0:20`` of a file of which 21 frames decode) is read, and
``VideoInfo.num_frames`` is then the decodable count. The range is checked at probe time, before
any frame is read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import av
import numpy as np
import torch

from ..errors import ConfigError, InputError
from .averrors import translate_av_errors
from .container import iter_container_frames, probe_container
from .frame_folder import iter_folder_frames, probe_frame_folder
from .frame_range import FrameRange
from .info import KIND_FRAME_FOLDER, KIND_RAW_YUV, VideoInfo
from .raw_yuv import is_raw_yuv, iter_raw_yuv_frames, probe_raw_yuv
from .resize import resize_frame
from .size import check_size
from .video import Video


def frame_to_rgb(frame: av.VideoFrame, path: str) -> np.ndarray:
    """The one colour conversion: an ``av.VideoFrame`` in any supported format to ``(H, W, 3)`` uint8 RGB."""
    with translate_av_errors(f"cannot convert a {frame.format.name} frame of {path} to RGB"):
        rgb = frame.to_ndarray(format="rgb24")
    return np.ascontiguousarray(rgb)


def _check_fps(fps: object, name: str) -> float:
    """Validate a positive finite frame rate option and return it as a float."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ConfigError(f"invalid {name} {fps!r}: must be a positive number")
    return float(fps)


def probe_video(
    path: str | os.PathLike[str],
    *,
    frames: FrameRange | None = None,
    raw_size: tuple[int, int] | None = None,
    raw_fps: float = 25.0,
    raw_pix_fmt: str = "yuv420p",
) -> VideoInfo:
    """Describe the video at ``path`` (container file, ``.yuv`` file or frame folder) without reading it all.

    ``raw_size = (H, W)`` and ``raw_pix_fmt`` are needed for ``.yuv`` files; ``raw_fps`` is the rate of
    raw files and frame folders and the fallback for containers that declare none. The frame count is
    the declared one (checked against the packets present) or counted by decoding; a container that
    holds fewer frames than it declares raises ``InputError("PATH is truncated or corrupt: ...")``.
    ``frames`` is the range the caller will read: a truncated container is accepted when that range
    lies entirely within the frames that could be decoded, and ``num_frames`` is then their count (see
    :mod:`nervkit.io.container`).
    """
    path_str = os.fspath(path)
    if frames is not None and not isinstance(frames, FrameRange):
        raise ConfigError(f"frames must be a FrameRange, got {frames!r}; use FrameRange.parse('A:B')")
    raw_fps = _check_fps(raw_fps, "raw_fps")
    if not os.path.exists(path_str):
        raise InputError(f"no such file or folder: {path_str}")
    if not os.access(path_str, os.R_OK):
        raise InputError(f"cannot read {path_str}: permission denied")
    if os.path.isdir(path_str):
        return probe_frame_folder(path_str, raw_fps)
    if is_raw_yuv(path_str):
        return probe_raw_yuv(path_str, raw_size, raw_fps, raw_pix_fmt)
    return probe_container(path_str, raw_fps, frames)


def _iter_rgb(info: VideoInfo, indices: range, size: tuple[int, int] | None) -> Iterator[np.ndarray]:
    """Yield the ``indices`` frames of a probed source as RGB arrays, resized to ``size``."""
    path = info.path
    if info.kind == KIND_FRAME_FOLDER:
        source: Iterator = iter_folder_frames(path, info, indices)
    elif info.kind == KIND_RAW_YUV:
        source = iter_raw_yuv_frames(path, info, indices)
    else:
        source = iter_container_frames(path, info, indices)
    try:
        for item in source:
            rgb = item if isinstance(item, np.ndarray) else frame_to_rgb(item, path)
            yield rgb if size is None or size == rgb.shape[:2] else resize_frame(rgb, size)
    finally:
        source.close()  # type: ignore[attr-defined]  # release the decoder now, not at garbage collection


def _select(
    path: str | os.PathLike[str], frames: FrameRange | None, size: tuple[int, int] | None, raw: dict
) -> tuple[VideoInfo, range, tuple[int, int] | None]:
    """Validate the options, probe the source and resolve the frame range."""
    if frames is not None and not isinstance(frames, FrameRange):
        raise ConfigError(f"frames must be a FrameRange, got {frames!r}; use FrameRange.parse('A:B')")
    if size is not None:
        size = check_size(size, "target size")
    info = probe_video(path, frames=frames, **raw)
    indices = (frames or FrameRange()).resolve(info.num_frames, source=info.path)
    return info, indices, size


def iter_frames(
    path: str | os.PathLike[str],
    *,
    frames: FrameRange | None = None,
    size: tuple[int, int] | None = None,
    raw_size: tuple[int, int] | None = None,
    raw_fps: float = 25.0,
    raw_pix_fmt: str = "yuv420p",
) -> Iterator[np.ndarray]:
    """Stream the frames of ``path`` as ``(H, W, 3)`` uint8 RGB arrays, one at a time.

    ``frames`` selects source frames (default: all); ``size = (h, w)`` resizes each frame with
    :func:`~nervkit.io.resize.resize_frame`. The source is probed first, so bad input and a range past
    the end raise before the first frame. Only one decoded frame is held at a time.
    """
    info, indices, size = _select(
        path, frames, size, dict(raw_size=raw_size, raw_fps=raw_fps, raw_pix_fmt=raw_pix_fmt)
    )
    return _iter_rgb(info, indices, size)


def read_video(
    path: str | os.PathLike[str],
    *,
    frames: FrameRange | None = None,
    size: tuple[int, int] | None = None,
    raw_size: tuple[int, int] | None = None,
    raw_fps: float = 25.0,
    raw_pix_fmt: str = "yuv420p",
) -> Video:
    """Read the selected frames of ``path`` into a :class:`Video` (``uint8`` tensor ``(N, 3, H, W)``).

    Arguments as for :func:`iter_frames`. ``Video.fps`` is the source rate divided by the range step;
    ``Video.info`` describes the source; ``Video.indices`` lists the source index of each frame.
    """
    info, indices, size = _select(
        path, frames, size, dict(raw_size=raw_size, raw_fps=raw_fps, raw_pix_fmt=raw_pix_fmt)
    )
    height, width = size if size is not None else info.size
    out = torch.empty((len(indices), 3, height, width), dtype=torch.uint8)
    count = 0
    for i, rgb in enumerate(_iter_rgb(info, indices, size)):
        out[i] = torch.from_numpy(rgb).permute(2, 0, 1)
        count += 1
    if count != len(indices):  # pragma: no cover - the sources raise first
        raise InputError(f"{info.path} is truncated or corrupt: got {count} of {len(indices)} frames")
    return Video(frames=out, fps=info.fps / indices.step, info=info, indices=list(indices))
