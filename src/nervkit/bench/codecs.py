"""Classical codecs through ffmpeg: :class:`CodecSpec` entries and :func:`encode_decode`.

Codecs (:data:`CODECS`; :func:`codec_spec` resolves a name against the ffmpeg in use):

* ``x264``: libx264, ``-preset slow``, CRF ladder 18…38 (H.264 CRF 0–51);
* ``x265``: libx265, ``-preset slow``, CRF ladder 20…40 (HEVC, x265 CRF is about 5 steps "cheaper"
  than x264's for the same quality);
* ``av1``: libsvtav1 ``-preset 6`` (SVT-AV1 presets run 0 = slowest … 13; 6 is the usual quality/speed
  middle ground), or, if this ffmpeg lacks SVT-AV1, libaom-av1 ``-cpu-used 4`` in constant-quality
  mode; CRF ladder 23…55 (AV1 CRF 0–63);
* ``vvc``: libvvenc ``-preset fast`` with a fixed QP (the JVET common-test-condition QPs 22…42),
  perceptual QP adaptation off (``-qpa 0``, so the encoder optimises PSNR like the others). ``fast``,
  not ``medium``: on Bunny 180×320, 132 frames, QP 32, 2 cores, medium took 53 s for 0.0491 bpp /
  31.00 dB and fast 12 s for 0.0512 bpp / 30.93 dB (faster: 6 s, 0.0524 bpp / 30.76 dB). libvvenc
  takes only 10-bit input, so the 8-bit 4:2:0 frames are shifted to ``yuv420p10le`` for it and the
  decoder's 10-bit output is brought back to 8 bits before the RGB conversion.

All other encoder settings are the encoders' defaults (one GOP structure per encoder, no tune).

Colour. Input frames are RGB uint8 ``(N, H, W, 3)``; they are piped to ffmpeg as ``rawvideo rgb24``
and converted to ``yuv420p`` by ffmpeg's ``scale`` filter with an explicit matrix: BT.601
(``out_color_matrix=bt601``), limited ("tv", 16–235) range; the stream is tagged smpte170m/tv like
:mod:`nervkit.io.writer` does. The bitstream is decoded by ffmpeg to raw 8-bit ``yuv420p`` and that raw
file is converted to RGB by nervkit's own reader (:func:`nervkit.io.read_video` on a ``.yuv`` file:
PyAV/swscale, BT.601 limited range), so decoded frames follow exactly the convention every other
nervkit frame follows. A path given instead of frames is read with :func:`nervkit.io.read_video` first:
the reference is always nervkit's RGB view of the video.

Odd sizes. ``yuv420p`` encoders need even sizes: odd heights/widths are padded by one row/column
(edge replication, bottom/right) before encoding and the decoded frames are cropped back to the true
size. The padded pixels are counted in the file but ``bpp`` divides by the true pixel count.

Bits. Each codec writes its raw elementary stream (``.264`` Annex B, ``.hevc`` Annex B, ``.266``
Annex B) or, for AV1, an IVF file (32-byte header + 12 bytes per frame, counted). ``bpp`` is
``file bytes × 8 / (frames × H × W)`` of that real file, so container overhead, where there is one, is
counted. The encoders' informational SEI (x264's and x265's settings text, hundreds of bytes that a
decoder does not need) is left out: x265 with ``info=0``, x264 by dropping SEI NAL units
(``filter_units`` bitstream filter).

Timing. ``encode_seconds`` / ``decode_seconds`` are wall-clock times of the ffmpeg process (including
process start-up, the RGB→YUV conversion on encode, and writing raw YUV on decode), with ffmpeg's
default threading.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nervkit.errors import ConfigError, InputError, NervkitError
from nervkit.io.ffmpeg import has_encoder, run_ffmpeg

#: ffmpeg filter arguments of the one RGB -> YUV conversion (BT.601, limited range).
RGB_TO_YUV = "scale=out_color_matrix=bt601:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int"
COLOUR_TAGS = ("-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
               "-color_range", "tv")


@dataclass(frozen=True)
class CodecSpec:
    """One classical codec configuration: an ffmpeg encoder, its settings and its quality ladder."""

    name: str
    encoder: str
    quality_option: str  # "crf" or "qp": the ffmpeg option the ladder values go to
    ladder: tuple[int, ...]  # high quality (low value) first
    args: tuple[str, ...]  # encoder options besides the quality
    muxer: str  # ffmpeg output format of the bitstream file
    suffix: str
    pix_fmt: str = "yuv420p"  # what the encoder is fed
    description: str = ""
    quality_range: tuple[int, int] = (0, 51)

    def available(self) -> bool:
        return has_encoder(self.encoder)


_X264 = CodecSpec(
    "x264", "libx264", "crf", (18, 23, 28, 33, 38),
    ("-preset", "slow", "-bsf:v", "filter_units=remove_types=6"),
    "h264", ".264", description="H.264/AVC, libx264 preset slow, CRF",
)
_X265 = CodecSpec(
    "x265", "libx265", "crf", (20, 24, 28, 32, 36, 40),
    ("-preset", "slow", "-x265-params", "info=0:log-level=error"),
    "hevc", ".hevc", description="H.265/HEVC, libx265 preset slow, CRF",
)
_SVTAV1 = CodecSpec(
    "av1", "libsvtav1", "crf", (23, 31, 39, 47, 55),
    ("-preset", "6", "-svtav1-params", "progress=0"),
    "ivf", ".ivf", description="AV1, libsvtav1 preset 6, CRF", quality_range=(0, 63),
)
_AOMAV1 = CodecSpec(
    "av1", "libaom-av1", "crf", (23, 31, 39, 47, 55),
    ("-cpu-used", "4", "-b:v", "0", "-row-mt", "1"),
    "ivf", ".ivf", description="AV1, libaom-av1 cpu-used 4, constant quality (CRF)", quality_range=(0, 63),
)
_VVC = CodecSpec(
    "vvc", "libvvenc", "qp", (22, 27, 32, 37, 42),
    ("-preset", "fast", "-qpa", "0"),
    "vvc", ".266", pix_fmt="yuv420p10le", description="H.266/VVC, libvvenc preset fast, fixed QP",
    quality_range=(0, 63),
)

#: Every codec name with its candidate specs, best first (the first whose encoder exists is used).
CODECS: dict[str, tuple[CodecSpec, ...]] = {
    "x264": (_X264,),
    "x265": (_X265,),
    "av1": (_SVTAV1, _AOMAV1),
    "vvc": (_VVC,),
}


def codec_spec(codec: str | CodecSpec) -> CodecSpec:
    """The spec for ``codec`` whose encoder this ffmpeg has (ConfigError / NervkitError otherwise)."""
    if isinstance(codec, CodecSpec):
        spec = codec
        if not spec.available():
            raise NervkitError(f"codec {spec.name}: this ffmpeg has no {spec.encoder} encoder")
        return spec
    if codec not in CODECS:
        raise ConfigError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    for spec in CODECS[codec]:
        if spec.available():
            return spec
    names = " or ".join(s.encoder for s in CODECS[codec])
    raise NervkitError(f"codec {codec}: this ffmpeg has no {names} encoder")


def available_codecs() -> list[str]:
    """Names in :data:`CODECS` this ffmpeg can encode."""
    return [name for name, specs in CODECS.items() if any(s.available() for s in specs)]


@dataclass
class CodecResult:
    """One encoded and decoded point. ``frames`` are the decoded RGB frames ``(N, H, W, 3)`` uint8."""

    codec: str
    quality: int
    bytes: int
    bpp: float
    encode_seconds: float
    decode_seconds: float
    num_frames: int
    height: int
    width: int
    encoder: str
    frames: np.ndarray = field(repr=False)
    bitstream_path: Path | None = None  # kept only when a workdir was given
    decoded_path: Path | None = None  # raw yuv420p of the (padded) decoded frames, only with a workdir


def as_rgb_frames(frames: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB from an array (HWC, or a torch ``(N, 3, H, W)`` uint8 tensor) or a video path."""
    if isinstance(frames, (str, os.PathLike)):
        from nervkit.io import read_video

        return read_video(frames).frames.permute(0, 2, 3, 1).contiguous().numpy()
    if hasattr(frames, "detach"):  # torch tensor (N, 3, H, W)
        frames = frames.detach().cpu().permute(0, 2, 3, 1).contiguous().numpy()
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or array.shape[0] == 0:
        raise InputError(
            f"frames must be a non-empty (N, H, W, 3) uint8 RGB array, got {array.dtype} {tuple(array.shape)}"
        )
    return np.ascontiguousarray(array)


def encode_decode(
    frames: np.ndarray | str | os.PathLike[str],
    codec: str | CodecSpec,
    quality: int,
    *,
    fps: float = 25.0,
    workdir: str | os.PathLike[str] | None = None,
) -> CodecResult:
    """Encode ``frames`` with ``codec`` at ``quality`` (CRF or QP), decode, and measure size and time.

    With ``workdir`` the bitstream and the decoded raw YUV are kept there (names
    ``{codec}_{quality}{suffix}`` and ``…_decoded.yuv``); without, a temporary folder is removed.
    """
    spec = codec_spec(codec)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise ConfigError(f"codec {spec.name}: quality must be an integer, got {quality!r}")
    low, high = spec.quality_range
    if not low <= int(quality) <= high:
        raise ConfigError(f"codec {spec.name}: {spec.quality_option} {quality} outside {low}..{high}")
    quality = int(quality)
    rgb = as_rgb_frames(frames)
    n, height, width, _ = rgb.shape
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        rgb_in = np.pad(rgb, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    else:
        rgb_in = rgb
    ph, pw = height + pad_h, width + pad_w

    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="nervkit-bench-")
        folder = Path(tmp.name)
    else:
        tmp = None
        folder = Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
    try:
        stem = f"{spec.name}_{spec.quality_option}{quality}"
        bitstream = folder / f"{stem}{spec.suffix}"
        decoded = folder / f"{stem}_decoded.yuv"
        what = f"encoding with {spec.name} ({spec.encoder}) at {spec.quality_option} {quality}"
        encode_args = [
            "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{pw}x{ph}", "-framerate", f"{fps:g}", "-i", "-",
            "-vf", f"{RGB_TO_YUV},format={spec.pix_fmt}",
            "-frames:v", str(n), "-an",
            "-c:v", spec.encoder, f"-{spec.quality_option}", str(quality), *spec.args, *COLOUR_TAGS,
            "-f", spec.muxer, str(bitstream),
        ]
        start = time.perf_counter()
        run_ffmpeg(encode_args, what=what, input=rgb_in.tobytes())
        encode_seconds = time.perf_counter() - start
        size = bitstream.stat().st_size
        if size == 0:
            raise NervkitError(f"{what} failed: ffmpeg wrote an empty file")

        decode_args = [
            "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(bitstream),
            "-f", "rawvideo", "-pix_fmt", "yuv420p", str(decoded),
        ]
        start = time.perf_counter()
        run_ffmpeg(decode_args, what=f"decoding the {spec.name} stream at {spec.quality_option} {quality}")
        decode_seconds = time.perf_counter() - start

        from nervkit.io import read_video

        video = read_video(decoded, raw_size=(ph, pw), raw_pix_fmt="yuv420p", raw_fps=fps)
        if len(video) != n:
            raise NervkitError(f"{spec.name} at {spec.quality_option} {quality}: decoded {len(video)} of {n} frames")
        out = video.frames[:, :, :height, :width].permute(0, 2, 3, 1).contiguous().numpy()
        return CodecResult(
            codec=spec.name, quality=quality, bytes=size, bpp=size * 8 / (n * height * width),
            encode_seconds=encode_seconds, decode_seconds=decode_seconds, num_frames=n,
            height=height, width=width, encoder=spec.encoder, frames=out,
            bitstream_path=None if tmp else bitstream, decoded_path=None if tmp else decoded,
        )
    finally:
        if tmp is not None:
            tmp.cleanup()
