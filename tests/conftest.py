"""Shared fixtures. ``io_*``: synthetic clips and files for the nervkit.io tests."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest


def _clip(n: int = 12, height: int = 72, width: int = 128) -> list[np.ndarray]:
    """Moving smooth colour gradients with a light square sliding over them: (H, W, 3) uint8 frames."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(n):
        r = 128 + 90 * np.sin((x + 3 * i) / 17.0)
        g = 128 + 90 * np.cos((y - 2 * i) / 13.0)
        b = 128 + 90 * np.sin((x + y + 4 * i) / 23.0)
        rgb = np.stack([r, g, b], -1)
        top, left = (10 + 2 * i) % (height - 16), (12 + 4 * i) % (width - 16)
        rgb[top : top + 16, left : left + 16] = (240, 236, 224)
        frames.append(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture
def io_clip() -> Callable[..., list[np.ndarray]]:
    """``io_clip(n=12, height=72, width=128)`` -> list of synthetic RGB frames."""
    return _clip


@pytest.fixture
def io_encode() -> Callable[..., Path]:
    """``io_encode(path, frames, codec, pix_fmt, fps=25, options=None, container_options=None)``:
    encode RGB frames with PyAV directly (independently of nervkit's writer)."""
    import av

    def encode(path, frames, codec, pix_fmt, fps=25, options=None, container_options=None) -> Path:
        with av.open(str(path), "w", options=container_options or {}) as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = pix_fmt
            stream.options = options or {}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return Path(path)

    return encode


@pytest.fixture
def io_bunny() -> Path:
    """The bundled Big Buck Bunny sample (1280x720, 132 frames, 25 fps)."""
    import nervkit

    return Path(nervkit.__file__).parent / "assets" / "bigbuckbunny.mp4"
