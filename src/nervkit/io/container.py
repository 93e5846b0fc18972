"""Reading videos that FFmpeg opens as containers (mp4, mkv, mov, webm, avi, y4m, ...) with PyAV.

Probing selects the video stream (not a cover picture) and takes the frame count the container
declares, after checking that the container really holds that many packets (a cut-off mp4 whose index
sits at the front declares all its frames but holds only some); when no count is declared (webm, mkv,
y4m, ...) it decodes the stream once and counts. Probe results are cached per file (path, size and
modification time), so probing and then reading does not count twice.

Iteration decodes with FFmpeg's automatic (frame and slice) threading and yields ``av.VideoFrame``
objects; converting them to RGB is :mod:`nervkit.io.reader`'s job.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace

import av
from av.stream import Disposition

from ..errors import InputError
from .averrors import translate_av_errors
from .info import KIND_CONTAINER, VideoInfo
from .pixfmt import is_supported_pix_fmt

# Demuxers that happily open files that are not videos: the name says what FFmpeg took the file for.
_NOT_VIDEO_DEMUXERS = {"tty": "text (ANSI art)"}

_CACHE: OrderedDict[tuple, VideoInfo] = OrderedDict()
_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()


def open_container(path: str) -> av.container.InputContainer:
    """Open ``path`` for reading; ``InputError`` if FFmpeg cannot, or reads it as a non-video."""
    with translate_av_errors(f"cannot open {path} as a video (not a video file, or truncated or corrupt)"):
        container = av.open(str(path), mode="r", metadata_errors="replace")
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


def _count_packets(container: av.container.InputContainer, stream, path: str) -> int:
    """Number of non-empty packets of ``stream`` (demuxed, not decoded)."""
    with translate_av_errors(f"{path} is truncated or corrupt"):
        return sum(1 for packet in container.demux(stream) if packet.size)


def _decode_all(
    container: av.container.InputContainer, stream, path: str
) -> tuple[int, av.VideoFrame | None]:
    """Decode the whole stream: (frame count, first frame)."""
    stream.thread_type = "AUTO"
    count, first = 0, None
    with translate_av_errors(f"{path} is truncated or corrupt"):
        for frame in container.decode(stream):
            if first is None:
                check_pix_fmt(frame.format.name, path)
                first = frame
            count += 1
    return count, first


def _first_frame(path: str) -> av.VideoFrame | None:
    """The first decoded frame of ``path``'s video stream, or ``None``."""
    container = open_container(path)
    try:
        stream = select_video_stream(container, path)
        with translate_av_errors(f"{path} is truncated or corrupt"):
            return next(iter(container.decode(stream)), None)
    finally:
        container.close()


def _probe(path: str, fallback_fps: float) -> VideoInfo:
    """Uncached probe of a container file (see :func:`probe_container`)."""
    container = open_container(path)
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
        first = None
        if declared > 0:
            held = _count_packets(container, stream, path)
            if held < declared:
                raise InputError(
                    f"{path} is truncated or corrupt: the container declares {declared} frames "
                    f"but holds only {held}"
                )
            num_frames = declared
        else:
            num_frames, first = _decode_all(container, stream, path)
    finally:
        container.close()
    if num_frames == 0:
        raise InputError(f"{path} has a video stream but no frames")
    if first is None and (pix_fmt is None or not width or not height):
        first = _first_frame(path)
        if first is None:
            raise InputError(f"{path} is truncated or corrupt: no frame of its video stream decodes")
    if first is not None:
        pix_fmt, width, height = first.format.name, first.width, first.height
        check_pix_fmt(pix_fmt, path)
    return VideoInfo(
        path=str(path),
        width=int(width),
        height=int(height),
        num_frames=int(num_frames),
        fps=fps,
        pix_fmt=str(pix_fmt),
        kind=KIND_CONTAINER,
    )


def probe_container(path: str, fallback_fps: float = 25.0) -> VideoInfo:
    """:class:`VideoInfo` of a container file (cached while the file is unchanged).

    ``fallback_fps`` is used when the stream declares no frame rate.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, float(fallback_fps))
    with _CACHE_LOCK:
        info = _CACHE.get(key)
        if info is not None:
            _CACHE.move_to_end(key)
    if info is None:
        info = _probe(str(path), fallback_fps)
        with _CACHE_LOCK:
            _CACHE[key] = info
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return replace(info, path=str(path))


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
