"""What nervkit knows about a video source before decoding it: :class:`VideoInfo`."""

from __future__ import annotations

from dataclasses import dataclass

#: ``VideoInfo.kind`` of anything FFmpeg opens as a container (mp4, mkv, mov, webm, avi, y4m, ...).
KIND_CONTAINER = "container"
#: ``VideoInfo.kind`` of a headerless ``.yuv`` file (size, rate and pixel format come from options).
KIND_RAW_YUV = "raw_yuv"
#: ``VideoInfo.kind`` of a folder of PNG/JPEG/BMP frames.
KIND_FRAME_FOLDER = "frame_folder"


@dataclass(frozen=True)
class VideoInfo:
    """Geometry, length and format of a video source, as :func:`nervkit.io.probe_video` found it.

    Attributes:
        path: the source path as given (file or folder).
        width: frame width in pixels.
        height: frame height in pixels.
        num_frames: number of frames (declared by the container and checked, or counted by decoding);
            for a truncated container read with a frame range within its decodable part (see
            :mod:`nervkit.io.container`), the number of frames that could be decoded.
        fps: frames per second (declared by the source, else the fallback rate passed to the probe).
        pix_fmt: FFmpeg name of the source pixel format (``"yuv420p"``, ...); for frame folders the
            format of the first image (``"rgb24"``, ``"rgba"``, ``"gray"``, ...).
        kind: ``"container"``, ``"raw_yuv"`` or ``"frame_folder"``.
    """

    path: str
    width: int
    height: int
    num_frames: int
    fps: float
    pix_fmt: str
    kind: str

    @property
    def size(self) -> tuple[int, int]:
        """Frame size as ``(height, width)``, the order nervkit uses for sizes everywhere."""
        return (self.height, self.width)
