"""Video I/O for nervkit: probing, streaming and reading videos, resizing frames, writing videos.

Inputs: any container FFmpeg opens (mp4, mkv, mov, webm, avi, y4m, ...), headerless ``.yuv`` files and
folders of PNG/JPEG/BMP frames. Outputs: ``.mp4``/``.mov``/``.mkv`` files and PNG folders, always
written atomically. Frames are ``(H, W, 3)`` uint8 RGB numpy arrays one at a time, or ``(N, 3, H, W)``
uint8 torch tensors for whole clips. Sizes are ``(height, width)`` everywhere.

Modules: :mod:`.info` (VideoInfo), :mod:`.video` (Video), :mod:`.frame_range` (FrameRange),
:mod:`.size` (parse_size), :mod:`.resize` (resize_frame), :mod:`.convert` (to_uint8),
:mod:`.pixfmt` (supported pixel formats), :mod:`.container`, :mod:`.raw_yuv`, :mod:`.frame_folder`
(the three input kinds), :mod:`.reader` (probe_video, iter_frames, read_video and the colour
convention), :mod:`.writer` (VideoWriter, write_video), :mod:`.averrors` (PyAV error translation),
:mod:`.atomic` (atomic writes).
"""

from __future__ import annotations

from .convert import to_uint8
from .frame_range import FrameRange
from .info import VideoInfo
from .reader import iter_frames, probe_video, read_video
from .resize import resize_frame
from .size import parse_size
from .video import Video
from .writer import VideoWriter, write_video, yuv420_planes

__all__ = [
    "FrameRange",
    "Video",
    "VideoInfo",
    "VideoWriter",
    "iter_frames",
    "parse_size",
    "probe_video",
    "read_video",
    "resize_frame",
    "to_uint8",
    "write_video",
    "yuv420_planes",
]
