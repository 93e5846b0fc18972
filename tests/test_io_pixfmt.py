"""nervkit.io.pixfmt: the whitelist of source pixel formats, checked against FFmpeg itself."""

from __future__ import annotations

import av
import pytest

from nervkit.io.pixfmt import RAW_PIX_FMTS, is_supported_pix_fmt

SUPPORTED = [
    "yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv411p", "yuv410p", "yuv440p", "yuvj444p",
    "yuv420p10le", "yuv422p10le", "yuv444p12le", "yuv420p16be", "yuva420p", "yuva444p10le",
    "nv12", "nv21", "nv16", "nv24", "p010le", "p016le", "yuyv422", "uyvy422",
    "rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "rgb0", "bgr0", "rgb48le", "rgba64le",
    "gbrp", "gbrap", "gbrp10le", "gbrp16le", "gbrap12le",
    "gray", "gray10le", "gray12le", "gray16le", "ya8", "ya16le",
]  # fmt: skip
REJECTED = [
    "pal8", "bayer_rggb8", "bayer_bggr16le", "monow", "monob", "rgb8", "bgr4_byte", "rgb565le",
    "rgb555le", "xyz12le", "grayf32le", "gbrpf32le", "rgbaf16le",
]  # fmt: skip


@pytest.mark.parametrize("name", SUPPORTED)
def test_supported_formats_convert_to_rgb(name):
    assert is_supported_pix_fmt(name)
    frame = av.VideoFrame(64, 36, name)  # a real FFmpeg format...
    assert frame.to_ndarray(format="rgb24").shape == (36, 64, 3)  # ...that swscale turns into RGB


@pytest.mark.parametrize("name", REJECTED)
def test_rejected_formats(name):
    av.VideoFormat(name)  # real FFmpeg formats, just not ones nervkit reads
    assert not is_supported_pix_fmt(name)


def test_odd_names():
    for name in (None, "", "yuv420", "YUV420P", "yuv420p10", "rgb24 "):
        assert not is_supported_pix_fmt(name)
    assert all(is_supported_pix_fmt(name) for name in RAW_PIX_FMTS)
