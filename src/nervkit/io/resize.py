"""Resizing RGB frames: :func:`resize_frame`.

* Downscaling by integer factors (``H % h == 0`` and ``W % w == 0``): a box average over each
  ``(H/h) x (W/w)`` block, computed by Pillow's ``Image.reduce`` so that the result is bit-identical to
  the official NeRV baselines, which made their 180x320 Big Buck Bunny frames with
  ``Image.reduce(4)``. For factors whose block size is a power of two (2x2, 4x4, 8x8, ...) this is
  exactly the mean rounded half up; for other factors Pillow's fixed-point division gives one less
  when the mean (plus one half) is an exact integer, and we keep Pillow's numbers on purpose.
* Any other downscale: Pillow's antialiased Lanczos filter.
* Upscaling (no dimension shrinks): Pillow's bicubic filter.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .size import check_size


def _check_frame(frame: object) -> np.ndarray:
    """Validate an ``(H, W, 3)`` uint8 frame (``ConfigError`` otherwise)."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        desc = f"{type(frame).__name__} {getattr(frame, 'dtype', '')} {getattr(frame, 'shape', '')}"
        raise ConfigError(f"resize_frame expects an (H, W, 3) uint8 array, got {desc.strip()}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ConfigError(f"resize_frame got an empty frame of shape {frame.shape}")
    return frame


def integer_factors(src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int] | None:
    """``(kh, kw)`` if ``dst`` is ``src`` shrunk by whole factors in both dimensions, else ``None``."""
    (sh, sw), (dh, dw) = src, dst
    if sh % dh == 0 and sw % dw == 0:
        return (sh // dh, sw // dw)
    return None


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 RGB frame to ``size = (h, w)``; returns ``(h, w, 3)`` uint8.

    The filter depends on the factors (see the module docstring): box average (== ``Image.reduce``)
    for integer downscales, Lanczos for other downscales, bicubic for upscales. The same size returns
    a copy.
    """
    frame = _check_frame(frame)
    h, w = check_size(size, "target size")
    src = (frame.shape[0], frame.shape[1])
    if src == (h, w):
        return frame.copy()
    image = Image.fromarray(np.ascontiguousarray(frame))  # uint8 (H, W, 3) -> mode "RGB"
    factors = integer_factors(src, (h, w))
    if factors is not None:
        kh, kw = factors
        out = image.reduce((kw, kh))
    else:
        upscale = h >= src[0] and w >= src[1]
        method = Image.Resampling.BICUBIC if upscale else Image.Resampling.LANCZOS
        out = image.resize((w, h), resample=method)
    return np.asarray(out, dtype=np.uint8).copy()
