"""Reading a folder of image frames (PNG, JPEG, BMP).

Frames are the folder's image files (hidden files ignored) in natural order of their names, so
``frame2.png`` comes before ``frame10.png``. All frames must have the same size. Images are decoded by
Pillow and converted to RGB with ``Image.convert("RGB")`` (alpha dropped, gray replicated, palettes
expanded), as the official NeRV baselines load frame folders; for JPEG files the YCbCr -> RGB step is
therefore libjpeg's (full range), not FFmpeg's.

Probing reads only each file's header (size and mode); an image whose data is cut off or damaged is
found when that frame is read, as a one-line ``InputError("cannot read image FILE: ...")``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from .info import KIND_FRAME_FOLDER, VideoInfo

#: File suffixes taken as frames (compared case-insensitively).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

# Pillow modes whose convert("RGB") is a faithful 8-bit RGB picture.
_SUPPORTED_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "L", "LA", "La", "P", "PA", "1", "CMYK", "YCbCr"}
_MODE_TO_PIX_FMT = {"RGB": "rgb24", "RGBA": "rgba", "RGBX": "rgb0", "L": "gray", "LA": "ya8", "P": "pal8"}

_DIGITS = re.compile(r"([0-9]+)")


def natural_key(name: str) -> tuple:
    """Sort key for natural order: digit runs compare as numbers (``a2 < a10``), text ignoring case."""
    parts = _DIGITS.split(name)
    return (tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), name)


def list_frame_files(folder: str) -> list[Path]:
    """The image files of ``folder`` in natural order; ``InputError`` if there are none."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise InputError(f"cannot read folder {folder}: {exc.strerror or exc}") from exc
    files = [
        Path(e.path)
        for e in entries
        if not e.name.startswith(".")
        and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES
        and e.is_file()
    ]
    if not files:
        raise InputError(f"no image frames ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    return sorted(files, key=lambda p: natural_key(p.name))


def _header(file: Path) -> tuple[tuple[int, int], str]:
    """((H, W), Pillow mode) of an image file, reading only its header."""
    try:
        with Image.open(file) as image:
            return (image.height, image.width), image.mode
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"cannot read image {file}: {exc}") from exc


def _check_mode(mode: str, file: Path) -> None:
    """``InputError`` unless Pillow mode ``mode`` converts faithfully to 8-bit RGB."""
    if mode not in _SUPPORTED_MODES:
        raise InputError(f"unsupported pixel format {mode} (Pillow image mode) in {file}: use 8-bit images")


def probe_frame_folder(folder: str, fps: float) -> VideoInfo:
    """:class:`VideoInfo` of a frame folder: reads every file's header to check they share one size."""
    files = list_frame_files(folder)
    size, mode = _header(files[0])
    _check_mode(mode, files[0])
    for file in files[1:]:
        other, other_mode = _header(file)
        _check_mode(other_mode, file)
        if other != size:
            raise InputError(
                f"frames in {folder} differ in size: {files[0].name} is {size[0]}x{size[1]} but "
                f"{file.name} is {other[0]}x{other[1]} (HxW)"
            )
    return VideoInfo(
        path=str(folder),
        width=size[1],
        height=size[0],
        num_frames=len(files),
        fps=float(fps),
        pix_fmt=_MODE_TO_PIX_FMT.get(mode, mode.lower()),
        kind=KIND_FRAME_FOLDER,
    )


def load_rgb(file: Path) -> np.ndarray:
    """Decode one image file to an ``(H, W, 3)`` uint8 RGB array."""
    try:
        with Image.open(file) as image:
            _check_mode(image.mode, file)
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"cannot read image {file}: {exc}") from exc


def iter_folder_frames(folder: str, info: VideoInfo, indices: range) -> Iterator[np.ndarray]:
    """Decode the frames whose index is in ``indices`` as ``(H, W, 3)`` uint8 RGB arrays."""
    files = list_frame_files(folder)
    if len(files) != info.num_frames:
        raise InputError(f"folder {folder} changed while reading: {len(files)} frames, was {info.num_frames}")
    for index in indices:
        rgb = load_rgb(files[index])
        if rgb.shape[:2] != (info.height, info.width):
            raise InputError(
                f"frames in {folder} differ in size: {files[index].name} is {rgb.shape[0]}x{rgb.shape[1]} "
                f"but the first frame is {info.height}x{info.width} (HxW)"
            )
        yield rgb
