"""NVP's no-retraining compression of latent grids with real codecs (spec §2.4, "Compression pipeline").

Every latent channel is quantized to 8 bits with the official rule (:func:`quantize_channels`: one
(lo, hi) per channel, round half up, a unit of 255) and coded as its own grayscale picture: a 2-D
keyframe level (C, H, W) as C JPEGs (:func:`encode_latent_images`), a 3-D sparse grid (C, T, H, W) as C
HEVC streams (:func:`encode_latent_video`). Unlike the official scripts, the lo/hi side information
is stored in the payload (spec §2.4: "a real codec must store these floats").

ffmpeg (:mod:`nervkit.io.ffmpeg`, imageio-ffmpeg's static n9.0.2 build) does all the coding, fed
raw ``gray`` frames on stdin and returning raw ``gray`` frames on stdout; nothing touches the disk.
Both codecs run single-threaded with ``-flags/-fflags +bitexact``, so the same tensor always gives the
same bytes on any machine (tested). Decoding runs with ``-err_detect explode -xerror``: a payload whose
framing, JPEG tables or HEVC parameter sets are damaged is a one-line :class:`BitstreamError`; damage
inside entropy-coded picture data is not always detectable (the ``.nerv`` container's CRCs are).

Pixel formats, measured with this ffmpeg build:

* **JPEG: yuvj444p, decoded back as gray (= the luma plane).** ffmpeg's mjpeg encoder cannot write a
  one-component JPEG (it supports only yuv(j)420p/422p/444p); ``-pix_fmt gray`` is silently replaced
  by yuvj444p and gives byte-identical output (930 B for a 40×54 smooth field at q 2). That is the
  format the official code ends up with. yuvj444p keeps the 8-bit luma exactly (gray→yuvj444p is a
  copy, chroma is a flat 128); yuvj420p was bigger (974 B) and limited-range yuv444p would squeeze the
  codes into 16..235. For reference, a true grayscale JPEG (PIL, same quality) is ≈330 B smaller
  (chroma tables and flat-chroma blocks: 792 vs 1122 B at 40×54, 2512 vs 3096 B at 131×131).
  ``+bitexact`` also drops the JFIF/"Lavc" header segments (−17 B per image).
* **HEVC: gray (4:0:0, Rext profile), decoded with -pix_fmt gray.** libx265 really codes 4:0:0 (the
  stream reports ``hevc (Rext), gray(pc)``; a lossless encode decodes back bit-exactly). It is ≈0.5 %
  smaller than full-range yuvj420p with flat chroma at equal error (e.g. 1467 vs 1476 B, 6×64×64
  at crf 21). ``info=0`` drops x265's ≈2 kB version/options SEI, which would dominate small streams.

Size constraints:

* JPEG: none; 1×1, 3×5, 7×9, 16×22 all work as they are.
* HEVC: libx265 refuses frames under 16×16, and its cu-tree lookahead corrupts the heap (abort,
  "free(): invalid next size") on some small frames, e.g. 30×40 or 16×46 with T ≥ 2 (both 4:0:0 and
  4:2:0; ``cutree=0`` avoids it but changes the rate/quality point of the official preset). No crash
  was seen with both sides ≥ 64, so each frame is edge-replicated up to at least
  ``MIN_VIDEO_SIDE`` = 64 rows and columns before coding and cropped after decoding; the payload
  stores the true size. NVP's 300×300 sparse grid is never padded.

Payload (all integers LEB128 varints, floats little-endian float32)::

    magic   u8      0x4A ('J', images) or 0x48 ('H', video)
    version u8      1
    C [T] H W       varints (T only for video); C, H, W (, T) >= 1
    lo      C float32
    hi      C float32
    C times: length varint, then that many bytes (one JPEG / one raw HEVC elementary stream)
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import BitstreamError, ConfigError, NervkitError
from ..io.ffmpeg import run_ffmpeg
from .tensor_codec import MAX_ELEMENTS
from .varint import encode_uvarint, read_uvarint

IMAGE_MAGIC = 0x4A
VIDEO_MAGIC = 0x48
VERSION = 1
MIN_VIDEO_SIDE = 64
X265_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)
_MAX_ABS = 1e38  # so that hi - lo stays finite in float32
# no version strings (JFIF/"Lavc" comment) in the output
_BITEXACT = ("-flags", "+bitexact", "-fflags", "+bitexact")
# a damaged stream is an error, not a concealed picture
_STRICT_DECODE = ("-err_detect", "explode", "-xerror")
_RAW_GRAY_OUT = ("-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-")


# ---------------------------------------------------------------- quantization (spec §2.4)


def quantize_channels(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8-bit codes per channel of ``t`` (C, ...): ``(q uint8, lo float32 (C,), hi float32 (C,))``.

    Per channel c, lo/hi = min/max of t[c] and q = clamp(floor(255·(v−lo)/(hi−lo) + ½), 0, 255), the
    official round-half-up rule (spec §2.4); a constant channel gives q = 0. lo/hi are rounded to
    float32 first (they are what the payload stores), the rest is computed in float64.
    """
    _check_float(t, None, "quantize_channels input")
    if t.ndim < 1 or t.shape[0] == 0 or t.numel() == 0:
        raise ConfigError(f"quantize_channels needs a non-empty (C, ...) tensor, got shape {tuple(t.shape)}")
    v = t.detach().cpu().to(torch.float64).reshape(t.shape[0], -1).numpy()
    lo = v.min(axis=1).astype(np.float32)
    hi = v.max(axis=1).astype(np.float32)
    lo64, span = lo.astype(np.float64)[:, None], (hi.astype(np.float64) - lo.astype(np.float64))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.floor(255.0 * (v - lo64) / span + 0.5)
    q = np.where(span > 0, q, 0.0)
    q = np.clip(q, 0, 255).astype(np.uint8).reshape(tuple(t.shape))
    return torch.from_numpy(q), torch.from_numpy(lo), torch.from_numpy(hi)


def dequantize_channels(q: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``lo + (hi − lo)·q/255`` per channel, float32 (each operation rounded to float32, deterministic)."""
    qn = np.asarray(q.detach().cpu().numpy() if isinstance(q, torch.Tensor) else q, dtype=np.float32)
    lo32 = np.asarray(lo.detach().cpu().numpy() if isinstance(lo, torch.Tensor) else lo, dtype=np.float32)
    hi32 = np.asarray(hi.detach().cpu().numpy() if isinstance(hi, torch.Tensor) else hi, dtype=np.float32)
    if lo32.shape != (qn.shape[0],) or hi32.shape != lo32.shape:
        raise ConfigError(f"lo/hi must have shape ({qn.shape[0]},) for codes of shape {qn.shape}")
    bshape = (-1,) + (1,) * (qn.ndim - 1)
    span = (hi32 - lo32).reshape(bshape)
    out = (span * qn) / np.float32(255) + lo32.reshape(bshape)
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


# ---------------------------------------------------------------- JPEG (2-D keyframe levels)


def encode_latent_images(t: torch.Tensor, quality: int = 2) -> bytes:
    """Code each channel of ``t`` (C, H, W) as a grayscale JPEG (ffmpeg mjpeg, ``-q:v quality``, 2 = best).

    Returns one self-describing payload (module docstring); spec §2.4 uses quality (2, 3, 3) for the
    (xy, xt, yt) planes.
    """
    _check_float(t, 3, "latent images")
    if not isinstance(quality, int) or isinstance(quality, bool) or not 2 <= quality <= 31:
        raise ConfigError(f"JPEG quality must be an integer in 2..31 (2 = best), got {quality!r}")
    q, lo, hi = quantize_channels(t)
    c, h, w = q.shape
    streams = []
    for ch in q.numpy():
        args = [*_raw_gray_in(w, h), "-frames:v", "1", "-c:v", "mjpeg", "-q:v", quality,
                "-pix_fmt", "yuvj444p",
                "-threads", 1, *_BITEXACT, "-f", "mjpeg", "-"]
        streams.append(_ffmpeg(args, ch.tobytes(), what="JPEG-coding a latent channel"))
    return _pack(IMAGE_MAGIC, (c, h, w), lo, hi, streams)


def decode_latent_images(payload: bytes) -> torch.Tensor:
    """Decode :func:`encode_latent_images`' payload to float32 (C, H, W)."""
    (c, h, w), lo, hi, streams = _unpack(payload, IMAGE_MAGIC, 3)
    q = np.empty((c, h, w), dtype=np.uint8)
    for i, data in enumerate(streams):
        args = ["-hide_banner", "-loglevel", "error", "-f", "mjpeg", "-threads", 1, *_STRICT_DECODE,
                "-i", "-",
                *_RAW_GRAY_OUT]
        q[i] = _decoded_frames(data, args, (1, h, w), f"JPEG of channel {i}")[0]
    return dequantize_channels(torch.from_numpy(q), lo, hi)


# ---------------------------------------------------------------- HEVC (3-D sparse grid)


def encode_latent_video(t: torch.Tensor, crf: int = 21, fps: int = 25, preset: str = "slow") -> bytes:
    """Code each channel of ``t`` (C, T, H, W) as a 4:0:0 HEVC stream (libx265, spec §2.4 settings).

    One lo/hi per channel over its whole T×H×W volume; x265 runs with ``-crf crf -preset preset``,
    ``bframes=0`` and input frame rate ``fps`` (it steers rate control, so it matters). Frames smaller
    than 64×64 are edge-padded first (module docstring).
    """
    _check_float(t, 4, "latent video")
    if not isinstance(crf, int) or isinstance(crf, bool) or not 0 <= crf <= 51:
        raise ConfigError(f"HEVC crf must be an integer in 0..51, got {crf!r}")
    if not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= 1000:
        raise ConfigError(f"frame rate must be an integer in 1..1000, got {fps!r}")
    if preset not in X265_PRESETS:
        raise ConfigError(f"unknown x265 preset {preset!r} (choose from {', '.join(X265_PRESETS)})")
    q, lo, hi = quantize_channels(t)
    c, n, h, w = q.shape
    hp, wp = _video_padded(h, w)
    x265 = "bframes=0:log-level=error:info=0:pools=1:frame-threads=1"
    streams = []
    for ch in q.numpy():
        frames = np.pad(ch, ((0, 0), (0, hp - h), (0, wp - w)), mode="edge")
        args = [*_raw_gray_in(wp, hp, fps), "-c:v", "libx265", "-preset", preset, "-crf", crf,
                "-pix_fmt", "gray",
                "-x265-params", x265, *_BITEXACT, "-f", "hevc", "-"]
        streams.append(_ffmpeg(args, frames.tobytes(), what="HEVC-coding a latent channel"))
    return _pack(VIDEO_MAGIC, (c, n, h, w), lo, hi, streams)


def decode_latent_video(payload: bytes) -> torch.Tensor:
    """Decode :func:`encode_latent_video`' payload to float32 (C, T, H, W)."""
    (c, n, h, w), lo, hi, streams = _unpack(payload, VIDEO_MAGIC, 4)
    hp, wp = _video_padded(h, w)
    if c * n * hp * wp > MAX_ELEMENTS:
        raise BitstreamError(f"latent video has more than {MAX_ELEMENTS} padded samples")
    q = np.empty((c, n, h, w), dtype=np.uint8)
    for i, data in enumerate(streams):
        args = ["-hide_banner", "-loglevel", "error", "-f", "hevc", "-threads", 1, *_STRICT_DECODE,
                "-i", "-",
                *_RAW_GRAY_OUT]
        q[i] = _decoded_frames(data, args, (n, hp, wp), f"HEVC stream of channel {i}")[:, :h, :w]
    return dequantize_channels(torch.from_numpy(q), lo, hi)


# ---------------------------------------------------------------- helpers


def _check_float(t: object, ndim: int | None, what: str) -> None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise ConfigError(f"{what} must be a float tensor, got {type(t).__name__}"
                          + (f" of {t.dtype}" if isinstance(t, torch.Tensor) else ""))
    if ndim is not None:
        names = {3: "(C, H, W)", 4: "(C, T, H, W)"}[ndim]
        if t.ndim != ndim or t.numel() == 0:
            raise ConfigError(f"{what} must be a non-empty {names} tensor, got shape {tuple(t.shape)}")
        if t.numel() > MAX_ELEMENTS:
            raise ConfigError(f"{what} has more than {MAX_ELEMENTS} elements")
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{what} contains NaN or infinite values")
    if t.numel() and float(t.detach().abs().max()) > _MAX_ABS:
        raise ConfigError(f"{what} has values beyond ±{_MAX_ABS:g} (their float32 range would overflow)")


def _video_padded(h: int, w: int) -> tuple[int, int]:
    return max(h, MIN_VIDEO_SIDE), max(w, MIN_VIDEO_SIDE)


def _raw_gray_in(w: int, h: int, fps: int | None = None) -> list[object]:
    rate = ["-framerate", fps] if fps is not None else []
    return ["-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{w}x{h}",
            *rate,
            "-i", "-"]


def _ffmpeg(args: list[object], data: bytes, *, what: str) -> bytes:
    out = run_ffmpeg([str(a) for a in args], what=what, input=data).stdout
    if not out:
        raise NervkitError(f"{what} failed: ffmpeg wrote nothing")
    return out


def _decoded_frames(data: bytes, args: list[object], shape: tuple[int, int, int], what: str) -> np.ndarray:
    """Run the decoder; the raw gray output must be exactly ``shape`` (frames, rows, cols)."""
    try:
        raw = run_ffmpeg([str(a) for a in args], what=f"decoding the {what}", input=data).stdout
    except NervkitError as exc:
        raise BitstreamError(f"corrupt {what}: {exc}") from None
    if len(raw) != shape[0] * shape[1] * shape[2]:
        expected = "×".join(map(str, shape))
        raise BitstreamError(f"corrupt {what}: decoded {len(raw)} bytes, expected {expected}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def _pack(
    magic: int, dims: tuple[int, ...], lo: torch.Tensor, hi: torch.Tensor, streams: list[bytes]
) -> bytes:
    out = bytearray([magic, VERSION])
    for d in dims:
        out += encode_uvarint(d)
    out += lo.numpy().astype("<f4").tobytes() + hi.numpy().astype("<f4").tobytes()
    for s in streams:
        out += encode_uvarint(len(s)) + s
    return bytes(out)


def _unpack(
    payload: bytes, magic: int, ndim: int
) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor, list[bytes]]:
    """Parse and bound-check a payload header, ranges and stream table (BitstreamError if malformed)."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"latent payload must be bytes, got {type(payload).__name__}")
    data = bytes(payload)
    kind = "image" if magic == IMAGE_MAGIC else "video"
    if len(data) < 2:
        raise BitstreamError(f"truncated latent {kind} payload")
    if data[0] != magic:
        raise BitstreamError(f"not a latent {kind} payload (magic byte 0x{data[0]:02x})")
    if data[1] != VERSION:
        raise BitstreamError(f"unsupported latent {kind} payload version {data[1]}")
    pos, dims, numel = 2, [], 1
    names = ("channels", "frames", "height", "width") if ndim == 4 else ("channels", "height", "width")
    for name in names:
        d, pos = read_uvarint(data, pos, what=f"latent {kind} {name}")
        if d == 0:
            raise BitstreamError(f"latent {kind} {name} is 0")
        numel *= d
        if numel > MAX_ELEMENTS:
            raise BitstreamError(f"latent {kind} has more than {MAX_ELEMENTS} elements")
        dims.append(d)
    c = dims[0]
    if pos + 8 * c > len(data):
        raise BitstreamError(f"truncated latent {kind} channel ranges")
    lo = np.frombuffer(data, dtype="<f4", count=c, offset=pos).astype(np.float32)
    hi = np.frombuffer(data, dtype="<f4", count=c, offset=pos + 4 * c).astype(np.float32)
    pos += 8 * c
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (hi >= lo).all()):
        raise BitstreamError(f"invalid latent {kind} channel ranges")
    streams = []
    for i in range(c):
        n, pos = read_uvarint(data, pos, what=f"length of {kind} stream {i}")
        if n == 0 or n > len(data) - pos:
            raise BitstreamError(f"truncated or empty {kind} stream {i}")
        streams.append(data[pos : pos + n])
        pos += n
    if pos != len(data):
        raise BitstreamError(f"{len(data) - pos} trailing bytes after the latent {kind} streams")
    return tuple(dims), torch.from_numpy(lo), torch.from_numpy(hi), streams
