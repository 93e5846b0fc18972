"""Reading videos that FFmpeg opens as containers (mp4, mkv, mov, webm, avi, y4m, ...) with PyAV.

Probing selects the video stream (not a cover picture), finds how many frames it has and checks that
the file holds what its container promises, so that a cut-off download is refused up front instead
of silently yielding its first part:

* **A declared frame count** (mp4/mov ``stsz``, avi ``strh``, ivf headers): the probe only demuxes
  (no decoding) and counts the video packets. Fewer packets than declared means the file was cut:
  it then decodes what is there to say how many frames survive. Packets the container marks to be
  discarded (an mp4 edit list that starts later) are not frames of the video and are subtracted.
* **No count** (mkv, webm, y4m, nut, flv, ts, ...): the probe decodes the stream once and counts the
  frames, tracking the timestamps of every stream's packets on the way. If the container declares a
  duration (container or stream; for mkv/webm the video's own ``DURATION`` tag gives the frame
  estimate), the file is refused when its packets end well before that duration **and** the
  decoded frames fall short of ``duration x frame rate``. Tolerance: the data may end up to
  ``max(2 frame intervals, 1 % of the duration)`` early and the count may be up to
  ``max(2, 1 % of the estimate)`` frames short. Comparing times rather than only counts keeps
  variable-frame-rate files (whose average rate says little about their count) and files whose audio
  outlasts the video valid. Formats whose duration FFmpeg estimates from the timestamps present
  (mpeg-ts, mpeg-ps, ogg) cannot reveal a cut and are read as they are; a file without any
  duration (an mkv written to a pipe, a raw ``.h264`` stream) is read as it is.
* **y4m**: FFmpeg derives its duration from the file size, so the probe checks instead that the file
  is a whole number of ``FRAME`` records (as for raw ``.yuv``).
* **mp4/mov cut before their index**: a file written with its ``moov`` box at the end (FFmpeg's
  default) loses it when cut, and FFmpeg cannot open it at all; the top-level box structure shows
  this, and the message says so (no frame count is known then).

In every case a decoding error ends the count, and the error names it. The message of a cut file says
how many frames were promised and how many could be decoded, e.g. ``PATH is truncated or corrupt: the
container declares 60 frames (2.40 s at 25 fps) but only 21 could be decoded`` ("declares about 60
frames" when the count is estimated from a duration), followed by which frames can still be read.

Frame ranges on a truncated file: :func:`probe_container` refuses it, except when the caller passes
the ``frames`` it will read and that range lies entirely within the frames that could be decoded (an
explicit stop no later than the decodable count): then the truncated file is accepted and
``VideoInfo.num_frames`` is the decodable count. A range that reaches past the decodable frames, or
has no stop ("to the end"), still gets the truncation error.

Probing costs one demux pass (declared count) or one decoding pass (no count); results are cached per
file (path, size and modification time), so probing and then reading does not count twice.

Iteration decodes with FFmpeg's automatic (frame and slice) threading and yields ``av.VideoFrame``
objects; converting them to RGB is :mod:`nervkit.io.reader`'s job.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace

import av
from av.stream import Disposition

from ..errors import InputError
from .averrors import AV_ERRORS, describe, translate_av_errors
from .frame_range import FrameRange
from .info import KIND_CONTAINER, VideoInfo
from .pixfmt import is_supported_pix_fmt
from .truncation import (
    Scan,
    count_problem,
    duration_problem,
    error_problem,
    mp4_missing_index,
    track_time,
    y4m_problem,
)

_Y4M_FORMAT = "yuv4mpegpipe"

# Demuxers that happily open files that are not videos: the name says what FFmpeg took the file for.
_NOT_VIDEO_DEMUXERS = {"tty": "text (ANSI art)"}

@dataclass(frozen=True)
class _Probe:
    """A probe result: the info, and why the file is truncated or corrupt (``None`` if it is not): the
    error message less the leading path, which the cache does not key on.

    For a truncated file ``info.num_frames`` is the number of frames that could be decoded.
    """

    info: VideoInfo
    problem: str | None = None


_CACHE: OrderedDict[tuple, _Probe] = OrderedDict()
_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()


def open_container(path: str) -> av.container.InputContainer:
    """Open ``path`` for reading; ``InputError`` if FFmpeg cannot, or reads it as a non-video."""
    try:
        container = av.open(str(path), mode="r", metadata_errors="replace")
    except AV_ERRORS as exc:
        missing = mp4_missing_index(path)
        if missing is not None:  # an mp4/mov written with its index at the end, then cut
            raise InputError(
                f"{path} is truncated or corrupt: it is an mp4/mov file without its index (no 'moov' box"
                f"{missing}), as when a file is cut off before its end"
            ) from exc
        raise InputError(
            f"cannot open {path} as a video (not a video file, or truncated or corrupt): {describe(exc)}"
        ) from exc
    what = _NOT_VIDEO_DEMUXERS.get(container.format.name)
    if what is not None:
        container.close()
        raise InputError(f"{path} is not a video file (FFmpeg reads it as {what})")
    return container


def select_video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    """The stream to read: FFmpeg's best video stream, ignoring cover pictures."""
    videos = [s for s in container.streams.video if not (s.disposition & Disposition.attached_pic)]
    if not videos:
        if container.streams.video:
            raise InputError(f"no video stream in {path} (it only has a cover picture)")
        kinds = sorted({s.type for s in container.streams})
        only = f" (it only has {' and '.join(kinds)} streams)" if kinds else ""
        raise InputError(f"no video stream in {path}{only}")
    best = container.streams.best("video")
    return best if any(best is s for s in videos) else videos[0]


def check_pix_fmt(pix_fmt: str | None, path: str) -> None:
    """``InputError("unsupported pixel format X in PATH")`` unless nervkit reads ``pix_fmt``."""
    if not is_supported_pix_fmt(pix_fmt):
        raise InputError(
            f"unsupported pixel format {pix_fmt} in {path} (nervkit reads YUV, RGB/BGR and gray formats)"
        )


def _scan(container: av.container.InputContainer, stream, path: str, fps: float, decode: bool) -> Scan:
    """One pass over every packet of the file: count (and decode, if ``decode``) the video stream's.

    An FFmpeg error ends the pass and is recorded in ``error``; nervkit's own errors (an unsupported
    pixel format) propagate.
    """
    scan = Scan()
    video = stream.index
    if decode:
        stream.thread_type = "AUTO"
    try:
        for packet in container.demux():
            is_video = packet.stream_index == video
            if packet.size:
                if is_video:
                    scan.first_packet_size = scan.first_packet_size or packet.size
                    if packet.is_discard:
                        scan.discarded += 1
                    elif not decode:
                        scan.frames += 1
                track_time(scan.spans, packet, fps if is_video else 0.0)
            if decode and is_video:
                for frame in packet.decode():
                    if scan.first is None:
                        check_pix_fmt(frame.format.name, path)
                        scan.first = frame
                    scan.frames += 1
    except AV_ERRORS as exc:
        scan.error = describe(exc)
    return scan


def _count_decodable(path: str, fps: float) -> Scan:
    """Decode ``path``'s video stream from the start until it ends or fails (a fresh pass)."""
    container = open_container(path)
    try:
        return _scan(container, select_video_stream(container, path), path, fps, decode=True)
    finally:
        container.close()


def _probe(path: str, fallback_fps: float) -> _Probe:
    """Uncached probe of a container file (see :func:`probe_container`)."""
    container = open_container(path)
    problem = None
    try:
        stream = select_video_stream(container, path)
        ctx = stream.codec_context
        if ctx is None:
            raise InputError(f"cannot decode {path}: PyAV's FFmpeg has no decoder for its video codec")
        pix_fmt, width, height = ctx.pix_fmt, ctx.width, ctx.height
        if pix_fmt is not None:
            check_pix_fmt(pix_fmt, path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate and float(rate) > 0 else float(fallback_fps)
        declared = int(stream.frames or 0)
        if declared > 0:
            scan = _scan(container, stream, path, fps, decode=False)  # demux only: cheap
            num_frames = declared - scan.discarded
            if scan.frames < num_frames or scan.error:
                scan = _count_decodable(path, fps)  # cut off: say how many frames survive
                num_frames = scan.frames
                if num_frames < declared - scan.discarded:
                    problem = count_problem(declared, num_frames, fps, scan.error)
                elif scan.error:
                    problem = error_problem(num_frames, scan.error)
            first = scan.first
        else:
            scan = _scan(container, stream, path, fps, decode=True)
            num_frames, first = scan.frames, scan.first
            problem = duration_problem(container, stream, scan, fps)
            if problem is None and container.format.name == _Y4M_FORMAT:
                problem = y4m_problem(path, scan)
            if problem is None and scan.error:
                problem = error_problem(num_frames, scan.error)
    finally:
        container.close()
    if num_frames == 0 and problem is None:
        raise InputError(f"{path} has a video stream but no frames")
    if num_frames > 0 and first is None and (pix_fmt is None or not width or not height):
        first = _first_frame(path)
        if first is None:
            raise InputError(f"{path} is truncated or corrupt: no frame of its video stream decodes")
    if first is not None:
        pix_fmt, width, height = first.format.name, first.width, first.height
        check_pix_fmt(pix_fmt, path)
    info = VideoInfo(
        path=str(path),
        width=int(width or 0),
        height=int(height or 0),
        num_frames=int(num_frames),
        fps=fps,
        pix_fmt=str(pix_fmt),
        kind=KIND_CONTAINER,
    )
    return _Probe(info, problem)


def _first_frame(path: str) -> av.VideoFrame | None:
    """The first decoded frame of ``path``'s video stream, or ``None``."""
    container = open_container(path)
    try:
        stream = select_video_stream(container, path)
        with translate_av_errors(f"{path} is truncated or corrupt"):
            return next(iter(container.decode(stream)), None)
    finally:
        container.close()


def _range_within(frames: FrameRange | None, count: int) -> bool:
    """True if ``frames`` has an explicit stop and every frame it selects has an index below ``count``."""
    if frames is None or frames.stop is None or count <= 0:
        return False
    selected = range(frames.start, frames.stop, frames.step)
    return len(selected) > 0 and selected[-1] < count


def probe_container(path: str, fallback_fps: float = 25.0, frames: FrameRange | None = None) -> VideoInfo:
    """:class:`VideoInfo` of a container file (cached while the file is unchanged).

    ``fallback_fps`` is used when the stream declares no frame rate. A truncated or corrupt file raises
    ``InputError``, unless ``frames`` (the range the caller will read) lies entirely within the frames
    that could be decoded; ``num_frames`` is then that decodable count (see the module docstring).
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, float(fallback_fps))
    with _CACHE_LOCK:
        probe = _CACHE.get(key)
        if probe is not None:
            _CACHE.move_to_end(key)
    if probe is None:
        probe = _probe(str(path), fallback_fps)
        with _CACHE_LOCK:
            _CACHE[key] = probe
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    info = replace(probe.info, path=str(path))
    if probe.problem is not None:
        problem = f"{path} {probe.problem}"
        count = info.num_frames
        if _range_within(frames, count):
            return info
        if count > 0:
            frames_ok = "frame 0" if count == 1 else f"frames 0-{count - 1}"
            problem += f"; a frame range within {frames_ok} can still be read"
        raise InputError(problem)
    return info


def iter_container_frames(path: str, info: VideoInfo, indices: range) -> Iterator[av.VideoFrame]:
    """Decode ``path`` once from the start, yielding the frames whose index is in ``indices``.

    Stops decoding after the last wanted frame. Raises ``InputError("PATH is truncated or corrupt:
    ...")`` if decoding fails or ends before the last wanted frame, and ``InputError`` for a frame in
    an unsupported pixel format or of a size other than ``info``'s.
    """
    if len(indices) == 0:
        return
    wanted_last = indices[-1]
    container = open_container(path)
    try:
        stream = select_video_stream(container, path)
        stream.thread_type = "AUTO"
        index = -1
        with translate_av_errors(f"{path} is truncated or corrupt"):
            for frame in container.decode(stream):
                index += 1
                if index < indices.start or (index - indices.start) % indices.step:
                    continue
                check_pix_fmt(frame.format.name, path)
                if (frame.width, frame.height) != (info.width, info.height):
                    raise InputError(
                        f"frame {index} of {path} is {frame.height}x{frame.width} but the video starts at "
                        f"{info.height}x{info.width}: size changes within a video are not supported"
                    )
                yield frame
                if index >= wanted_last:
                    return
        raise InputError(
            f"{path} is truncated or corrupt: decoding ended after {index + 1} of {info.num_frames} frames"
        )
    finally:
        container.close()
