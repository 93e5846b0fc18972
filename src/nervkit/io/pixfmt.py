"""Which source pixel formats nervkit reads.

Supported (``is_supported_pix_fmt``): FFmpeg's 8/9/10/12/14/16-bit YUV formats (planar, semi-planar
like nv12/p010, packed like yuyv422; full-range ``yuvj*`` included), packed and planar RGB/BGR
(``rgb24``, ``bgr0``, ``gbrp``, ``rgb48le``, ...) and gray (``gray``, ``gray10le``, ...). Alpha variants
of all of these are accepted and the alpha channel is dropped. Everything else is rejected with
"unsupported pixel format X in PATH": palettes (``pal8``, e.g. GIF or text rendered by FFmpeg),
Bayer sensor data, 1-bit/4-bit and 16-bit-packed RGB (``monow``, ``rgb565``, ...), float, XYZ and
hardware surface formats.

Raw ``.yuv`` files (no header) must be one of :data:`RAW_PIX_FMTS`.
"""

from __future__ import annotations

import re

_DEPTH = r"(?:9|10|12|14|16)(?:le|be)"
_SUPPORTED = re.compile(
    "|".join(
        [
            # planar YUV, 8-bit (also full-range yuvj*) and deeper, with or without alpha
            r"yuvj?(?:410|411|420|422|440|444)p",
            rf"yuva?(?:420|422|440|444)p(?:{_DEPTH})?",
            # semi-planar YUV
            r"nv(?:12|21|16|24|42)",
            r"nv20(?:le|be)",
            r"p(?:010|012|016|210|212|216|410|412|416)(?:le|be)",
            # packed YUV
            r"yuyv422|uyvy422|yvyu422|y210le|y212le|vuya|vuyx|ayuv64le|xv30le|xv36le",
            # packed RGB/BGR, 8 and 16 bit, with alpha or padding
            r"rgb24|bgr24|rgba|bgra|argb|abgr|rgb0|bgr0|0rgb|0bgr",
            r"(?:rgb48|bgr48|rgba64|bgra64)(?:le|be)",
            r"x2rgb10le|x2bgr10le",
            # planar RGB
            rf"gbra?p(?:{_DEPTH})?",
            # gray (with alpha)
            rf"gray(?:{_DEPTH})?",
            r"ya8|ya16(?:le|be)",
        ]
    )
)

#: Pixel formats accepted for headerless ``.yuv`` files (8-bit planar).
RAW_PIX_FMTS: tuple[str, ...] = ("yuv420p", "yuv422p", "yuv444p", "gray")


def is_supported_pix_fmt(name: str | None) -> bool:
    """True if frames in pixel format ``name`` (an FFmpeg name) can be read as RGB by nervkit."""
    return bool(name) and _SUPPORTED.fullmatch(str(name)) is not None
