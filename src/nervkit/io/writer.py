"""Writing videos: :class:`VideoWriter` and :func:`write_video`.

The output kind comes from the path:

============================  =====================================================================
path                          output
============================  =====================================================================
``.mp4`` / ``.mov``           H.264 (libx264, preset medium, ``crf``, yuv420p; yuv444p if the width
                              or height is odd, since 4:2:0 needs even sizes). With
                              ``lossless=True``: libx264rgb with qp 0, lossless RGB (decodes to the
                              exact frames); ConfigError if PyAV's FFmpeg lacks libx264rgb.
``.mkv``                      ``lossless=True``: FFV1 in RGB (``bgr0``), decodes to the exact frames.
                              Otherwise H.264 as for ``.mp4``.
no suffix, or ends in ``/``   a folder of lossless PNGs ``frame_00000.png``, ``frame_00001.png``, ...
                              and a marker file ``.nervkit-frames``. The folder must be new, empty,
                              or a frame folder nervkit wrote before (:mod:`nervkit.io.outputs`);
                              any other existing folder or file is refused, never deleted.
an existing folder            the same
``.y4m``                      YUV4MPEG2, 8-bit 4:2:0 (yuv420p), uncompressed. Header
                              ``YUV4MPEG2 W<w> H<h> F<num>:<den> Ip A1:1 C420jpeg XCOLORRANGE=LIMITED``,
                              then ``FRAME`` + Y, U, V planes per frame (for HM/VTM/VMAF pipelines).
``.yuv``                      headerless raw yuv420p: the Y, U, V planes of each frame, one frame after
                              the other (W·H·3/2 bytes a frame); size and rate are not stored.
============================  =====================================================================

``.y4m`` and ``.yuv`` are converted from RGB exactly as the other YUV outputs (below: swscale, BT.601,
limited range, the inverse of the reader's conversion) and ignore ``lossless``/``crf``. swscale
subsamples chroma at the centre of each 2x2 block (MPEG-1/JPEG siting), hence ``C420jpeg``. 4:2:0
needs even sides: a frame with an odd width or height is refused (``ConfigError``) before anything
reaches the destination (no padding).

Containers are written with FFmpeg's ``+bitexact`` muxer flag: no random segment UID or library
version string, so the same frames give byte-identical files run to run.

Colour convention (the mirror of :mod:`nervkit.io.reader`): RGB -> YUV goes through FFmpeg's swscale via
PyAV with its defaults, BT.601 coefficients and limited range, and YUV streams are tagged so
(smpte170m, tv range) for players; nervkit's reader converts them back with the same matrix.

Everything is written atomically (:func:`nervkit.io.atomic.atomic_path`): frames go to a temporary
sibling that keeps the suffix (so FFmpeg picks the right muxer) and is renamed into place when the
writer closes; an exception before that, or a writer that received no frame, leaves nothing at the
destination.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError, InputError, output_error
from .atomic import atomic_path
from .averrors import AV_ERRORS, describe
from .convert import iter_hwc_uint8

#: Output suffixes written as containers.
CONTAINER_SUFFIXES = (".mp4", ".mov", ".mkv")
#: Output suffixes written as uncompressed 8-bit 4:2:0 YUV (YUV4MPEG2, headerless raw).
RAW_YUV_SUFFIXES = (".y4m", ".yuv")

# swscale's default RGB -> YUV conversion, stated in the stream (AVCOL_* values of FFmpeg).
_BT601_TAGS = {"colorspace": 6, "color_primaries": 6, "color_trc": 6, "color_range": 1}
_AUTO_420 = "yuv420p (yuv444p for odd sizes)"


@dataclass(frozen=True)
class _Plan:
    """How one output is encoded."""

    folder: bool
    codec: str | None = None
    pix_fmt: str | None = None  # None: yuv420p, or yuv444p for odd sizes
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    raw: str | None = None  # ".y4m" or ".yuv": planes written by nervkit itself, no encoder


def yuv420_planes(rgb: np.ndarray, *, what: str = "a frame") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U, V planes (uint8, 4:2:0) of an ``(H, W, 3)`` uint8 RGB frame: swscale via PyAV, BT.601,
    limited range, the conversion the .y4m/.yuv outputs use (chroma planes are ceil(H/2) x ceil(W/2))."""
    try:
        yuv = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
    except AV_ERRORS as exc:
        raise InputError(f"cannot convert a frame to yuv420p for {what}: {describe(exc)}") from exc
    y, u, v = (
        np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        for plane in yuv.planes
    )
    return y, u, v


def is_folder_output(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is written as a PNG folder: no suffix, a trailing separator, or an existing folder."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).suffix == "" or os.path.isdir(text)


def _video_encoder(name: str) -> av.codec.Codec | None:
    """PyAV's FFmpeg video encoder called ``name``, or ``None`` if there is none."""
    try:
        codec = av.codec.Codec(name, "w")
    except AV_ERRORS:
        return None
    return codec if codec.type == "video" else None


def _plan(path: str, lossless: bool, crf: int, codec: str | None) -> _Plan:
    """Choose encoder, pixel format and options for ``path`` (``ConfigError`` if impossible)."""
    if is_folder_output(path):
        if codec not in (None, "png"):
            raise ConfigError(f"codec {codec!r} cannot write the PNG frame folder {path}; leave codec unset")
        return _Plan(folder=True, codec="png")
    suffix = Path(path).suffix.lower()
    if suffix in RAW_YUV_SUFFIXES:
        if codec not in (None, "rawvideo"):
            raise ConfigError(f"codec {codec!r} cannot write {path} (uncompressed yuv420p); leave codec unset")
        return _Plan(folder=False, codec="rawvideo", pix_fmt="yuv420p", raw=suffix)
    if suffix not in CONTAINER_SUFFIXES:
        raise ConfigError(
            f"unsupported output format {suffix!r} for {path}: "
            f"use .mp4, .mov, .mkv, .y4m, .yuv or a folder (a path ending in '/')"
        )
    movflags = {"movflags": "+faststart"} if suffix in (".mp4", ".mov") else {}
    x264 = {"preset": "medium", "qp": "0"} if lossless else {"preset": "medium", "crf": str(crf)}
    if codec is None:
        if not lossless:
            return _Plan(False, "libx264", None, x264, movflags)
        if suffix == ".mkv":
            return _Plan(False, "ffv1", "bgr0", {}, {})
        if _video_encoder("libx264rgb") is None:
            raise ConfigError(
                f"cannot write {path} losslessly: PyAV's FFmpeg has no libx264rgb encoder; "
                f"use a .mkv file (FFV1) or a folder of PNGs"
            )
        return _Plan(False, "libx264rgb", "rgb24", x264, movflags)
    encoder = _video_encoder(codec) if isinstance(codec, str) else None
    if encoder is None:
        raise ConfigError(f"video encoder {codec!r} is not available in PyAV's FFmpeg (for {path})")
    if codec == "libx264":  # lossless here is lossless in YUV 4:4:4, not in RGB
        return _Plan(False, codec, "yuv444p" if lossless else None, x264, movflags)
    if codec == "libx265":
        # libx265 logs to stderr by itself (not through FFmpeg's logger): silence it
        params = "log-level=none:lossless=1" if lossless else "log-level=none"
        options = {"preset": "medium", "x265-params": params, **({} if lossless else {"crf": str(crf)})}
        return _Plan(False, codec, "yuv444p" if lossless else None, options, movflags)
    if codec == "libx264rgb":
        return _Plan(False, codec, "rgb24", x264, movflags)
    if codec == "ffv1":
        return _Plan(False, codec, "bgr0", {}, movflags)
    formats = [f.name for f in (encoder.video_formats or ())]
    preferred = (
        ["bgr0", "rgb24", "gbrp", "yuv444p"]
        if lossless
        else ["yuv420p", "yuvj420p", "yuv444p", "rgb24", "bgr0"]
    )
    pix_fmt = next((f for f in preferred if f in formats), formats[0] if formats else None)
    return _Plan(False, codec, None if pix_fmt == "yuv420p" else pix_fmt, {}, movflags)


def _check_fps(fps: object, path: str) -> Fraction:
    """Validate the frame rate and return it as a Fraction for the muxer."""
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float, Fraction))
        or not math.isfinite(fps)
        or fps <= 0
    ):
        raise ConfigError(f"invalid frame rate {fps!r} for {path}: must be a positive number")
    return Fraction(fps).limit_denominator(10000)


class VideoWriter:
    """Write RGB frames to a video file or PNG folder, atomically; use as a context manager.

    ``VideoWriter(path, fps=25.0, *, lossless=False, crf=12, codec=None)``: see the module docstring
    for what each path writes. ``crf`` (0-51, lower is better) sets H.264 quality; ``lossless=True``
    asks for an exactly decodable output; ``codec`` overrides the encoder (any PyAV video encoder).
    The frame size is taken from the first frame; all frames must share it. On leaving the ``with``
    block normally the output appears at ``path``; on an exception nothing does. Without ``with``,
    call :meth:`close` (or :meth:`abort`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = 25.0,
        *,
        lossless: bool = False,
        crf: int = 12,
        codec: str | None = None,
    ) -> None:
        """Check the options (``ConfigError``); nothing is created until the first frame or ``with``."""
        self.path = os.fspath(path)
        self.rate = _check_fps(fps, self.path)
        self.fps = float(fps)
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ConfigError(f"invalid crf {crf!r} for {self.path}: must be an integer from 0 to 51")
        self.lossless = bool(lossless)
        self.crf = crf
        self._plan = _plan(self.path, self.lossless, crf, codec)
        self._codec_option = codec
        self.frames_written = 0
        self._stack: contextlib.ExitStack | None = None
        self._tmp: Path | None = None
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._raw_file: Any = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> VideoWriter:
        """Start writing (create the temporary output)."""
        self._start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Commit the output, or discard it if the block raised."""
        if exc_type is None:
            self.close()
        else:
            self._discard(exc_type, exc, tb)

    def _start(self) -> None:
        """Create the temporary output (once); refuse if already closed."""
        if self._closed:
            raise ConfigError(f"the writer for {self.path} is already closed")
        if self._stack is None:
            stack = contextlib.ExitStack()
            self._tmp = stack.enter_context(atomic_path(self.path, directory=self._plan.folder))
            self._stack = stack

    def close(self) -> Path:
        """Finish encoding and move the output into place; returns its path.

        Raises ``InputError`` (and leaves nothing behind) if no frame was written.
        """
        if self._closed:
            return Path(self.path)
        self._start()
        try:
            if self.frames_written == 0:
                raise InputError(f"no frames to write to {self.path}")
            if self._container is not None:
                try:
                    for packet in self._stream.encode(None):
                        self._container.mux(packet)
                    self._container.close()
                except AV_ERRORS as exc:
                    raise InputError(f"cannot write {self.path}: {describe(exc)}") from exc
                finally:
                    self._container = None
            if self._raw_file is not None:
                try:
                    self._raw_file.close()
                except OSError as exc:
                    raise output_error(exc, self.path) from None
                finally:
                    self._raw_file = None
        except BaseException:
            self._discard(*sys.exc_info())
            raise
        self._closed = True
        assert self._stack is not None
        self._stack.close()  # atomic rename
        return Path(self.path)

    def abort(self) -> None:
        """Stop writing and remove everything written so far; the destination is left as it was."""
        if not self._closed:
            error = RuntimeError("writing aborted")
            self._discard(type(error), error, None)

    def _discard(self, exc_type, exc, tb) -> None:
        """Close everything and delete the temporary output; the destination is untouched."""
        if self._closed:
            return
        self._closed = True
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        if self._raw_file is not None:
            with contextlib.suppress(Exception):
                self._raw_file.close()
            self._raw_file = None
        if self._stack is not None:
            # hand the exception to atomic_path so that it deletes the temporary; it re-raises it
            with contextlib.suppress(BaseException):
                self._stack.__exit__(exc_type, exc, tb)

    # -- frames ------------------------------------------------------------------------------------
    def write(self, frame: np.ndarray | torch.Tensor) -> None:
        """Append frames: a numpy ``(H, W, 3)`` uint8 array, or a torch ``(3, H, W)`` / ``(N, 3, H, W)``
        tensor, uint8 or float in ``[0, 1]`` (also numpy ``(N, H, W, 3)`` and float arrays)."""
        self._start()
        for rgb in iter_hwc_uint8(frame, self.path):
            self._write_one(rgb)

    def _write_one(self, rgb: np.ndarray) -> None:
        """Encode (or save as PNG) one ``(H, W, 3)`` uint8 frame."""
        size = (rgb.shape[0], rgb.shape[1])
        if self._size is None:
            self._size = size
        elif size != self._size:
            raise InputError(
                f"frame {self.frames_written} is {size[0]}x{size[1]} but earlier frames are "
                f"{self._size[0]}x{self._size[1]} (HxW); all frames of {self.path} must share one size"
            )
        assert self._tmp is not None
        if self._plan.raw is not None:
            self._write_raw(rgb)
        elif self._plan.folder:
            try:
                Image.fromarray(rgb).save(self._tmp / f"frame_{self.frames_written:05d}.png")
            except OSError as exc:  # disk full, quota, a folder removed under us
                raise output_error(exc, self.path) from None
        else:
            try:
                if self._container is None:
                    self._open_container(size)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=self._stream.pix_fmt)
                frame.pts = self.frames_written
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
            except AV_ERRORS as exc:
                # the encoder refusing its settings is a problem with the codec option, if one was given
                error = ConfigError if self._codec_option is not None else InputError
                what = f"{self._plan.codec} ({self._stream.pix_fmt})" if self._stream else self._plan.codec
                raise error(f"cannot write {self.path} with {what}: {describe(exc)}") from exc
        self.frames_written += 1

    def _write_raw(self, rgb: np.ndarray) -> None:
        """Append one frame as yuv420p planes to the ``.y4m`` / ``.yuv`` temporary."""
        height, width = rgb.shape[:2]
        if self._raw_file is None:
            if height % 2 or width % 2:
                raise ConfigError(
                    f"cannot write {self.path}: 4:2:0 needs even frame sides, the frames are {height}x{width} "
                    "(HxW); use .mkv/.mp4 or a PNG folder"
                )
            assert self._tmp is not None
            try:
                self._raw_file = open(self._tmp, "wb")  # noqa: SIM115 - closed in close() or _discard()
                if self._plan.raw == ".y4m":
                    rate = self.rate
                    header = (f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} "
                              "Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n")
                    self._raw_file.write(header.encode("ascii"))
            except OSError as exc:
                raise output_error(exc, self.path) from None
        data = b"".join(plane.tobytes() for plane in yuv420_planes(rgb, what=str(self.path)))
        try:
            if self._plan.raw == ".y4m":
                self._raw_file.write(b"FRAME\n")
            self._raw_file.write(data)
        except OSError as exc:
            raise output_error(exc, self.path) from None

    def _open_container(self, size: tuple[int, int]) -> None:
        """Open the temporary file with PyAV and add the video stream for frames of ``size``."""
        plan = self._plan
        height, width = size
        pix_fmt = plan.pix_fmt or ("yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p")
        # +bitexact: no random Matroska segment UID, no muxer version tag -> byte-reproducible files
        container = av.open(str(self._tmp), mode="w", options={"fflags": "+bitexact", **plan.container_options})
        try:
            stream = container.add_stream(plan.codec, rate=self.rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.time_base = Fraction(1, 1) / self.rate
            stream.options = dict(plan.options)
            if pix_fmt.startswith("yuv") and not pix_fmt.startswith("yuvj"):
                for name, value in _BT601_TAGS.items():
                    setattr(stream.codec_context, name, value)
        except BaseException:
            container.close()
            raise
        self._container, self._stream = container, stream


def write_video(
    frames: Iterable[np.ndarray | torch.Tensor] | torch.Tensor | np.ndarray,
    path: str | os.PathLike[str],
    fps: float = 25.0,
    **kw: Any,
) -> Path:
    """Write ``frames`` to ``path`` with a :class:`VideoWriter` (``kw``: ``lossless``, ``crf``, ``codec``).

    ``frames`` is a tensor ``(N, 3, H, W)``, an array ``(N, H, W, 3)``, or an iterable of single frames
    or batches as :meth:`VideoWriter.write` accepts. Returns ``Path(path)``.
    """
    with VideoWriter(path, fps, **kw) as writer:
        if isinstance(frames, (torch.Tensor, np.ndarray)):
            writer.write(frames)
        else:
            for frame in frames:
                writer.write(frame)
    return Path(path)
