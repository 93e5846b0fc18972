"""Intra (still-image) coding of RGB frames with real codecs: D-NeRV's key-frames.

Every frame is coded *on its own* into one self-contained bitstream (its own sequence / parameter-set
headers), so any key-frame decodes without the others (random access), and decoding is bit-exact: the
same bitstream gives the same uint8 frame on every run and machine (the decoders are integer-exact
and the YUV → RGB conversion is libswscale's fixed-point path with fixed flags). The 10-bit 4:2:0
pictures are brought to 4:4:4 (bilinear) before RGB: libswscale's direct 10-bit 4:2:0 → RGB path
interpolates the chroma poorly, which cost 0.3–2 dB of RGB PSNR on Bunny key-frames (5 dB of the
round trip's ceiling); the 8-bit JPEG path is direct (better there).

=======  ==========================================  ============  ============  ====================
codec    encoder (bitstream)                          pixel format  quality        default quality
=======  ==========================================  ============  ============  ====================
av1      libaom, still-picture all-intra (AV1 OBUs)   4:2:0 10-bit  crf 0–63       32
hevc     x265, one IDR picture + end of bitstream     4:2:0 10-bit  crf 0–51       34
vvc      vvenc through the ffmpeg binary (Annex B)    4:2:0 10-bit  qp 0–63        40
jpeg     ffmpeg's mjpeg (baseline JPEG)               4:2:0 8-bit   qscale 2–31    8
=======  ==========================================  ============  ============  ====================

The defaults give about the same PSNR, ≈ 36.5 dB on 256×320 Bunny tiles at ≈ 0.3 bpp for AV1 (the
official D-NeRV's key-frames, CompressAI's cheng2020 at quality 3 for UVG-XS/S, take ≈ 0.09 bpp at 1080p:
key-frames are coded at a moderate quality, the network refines them).

No encoder writes its name or version into the bitstream (x265's ``info=0``: by default it writes every
setting into an SEI message, about 2.3 kB per picture; mjpeg's ``bitexact``: no "Lavc" comment), so the
bytes are those of the picture. Quality is each codec's own quantizer scale (lower is better;
:data:`DEFAULT_QUALITY` when None). av1, hevc and jpeg run in-process through PyAV (FFmpeg's libraries:
no process per frame); vvc needs the ``libvvenc`` encoder of the static ffmpeg binary
(:mod:`nervkit.io.ffmpeg`) and decodes with FFmpeg's native VVC decoder. Frames of odd height or width
are padded by edge replication to even sizes for 4:2:0 and cropped back when decoded
(:func:`decode_images` takes the size).

Issue 14 quotes, on 256×320 frames, AV1 about 14 % fewer bits than HEVC at equal PSNR, VVC about 18 %
fewer but 4–5× slower, JPEG 2.4× HEVC's bits. ``benchmarks/keyframe_codecs.py`` measured these settings on
256×320 Bunny tiles (BENCHMARKS.md): AV1 −1 % (−13 % at libaom ``cpu-used`` 2, 10× slower), VVC −15 %
with a 47× slower encoder (4× slower decoder), JPEG 1.75× HEVC's bits.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from ..errors import ConfigError, InputError, NervkitError
from .ffmpeg import ffmpeg_exe, has_encoder, run_ffmpeg


@dataclass(frozen=True)
class IntraCodec:
    """One still-image codec: ``encoder`` (None: the ffmpeg binary's ``binary_encoder``), ``decoder``,
    the pixel format coded, the quality range (``quality_name``: the quantizer's name), the encoder
    options (``{q}``: the quality) and ``end_marker``, the bytes every complete bitstream ends with: the
    encoder appends them when its output lacks them and the decoder refuses a bitstream without them,
    for the formats whose decoders show a truncated picture without an error (JPEG: its EOI marker;
    HEVC: an end-of-bitstream NAL unit, 5 bytes, which x265 does not write itself)."""

    name: str
    encoder: str | None
    decoder: str
    pix_fmt: str
    quality_range: tuple[int, int]
    default_quality: int
    options: dict[str, str] = field(default_factory=dict)
    binary_encoder: str | None = None
    end_marker: bytes = b""
    quality_name: str = "quality"
    #: the 4:4:4 format a decoded picture is resampled to before RGB (None: straight to RGB)
    upsample_to: str | None = "yuv444p10le"


#: an HEVC end-of-bitstream NAL unit (Annex B start code, type 37, layer 0, temporal id 0)
HEVC_END_OF_BITSTREAM = b"\x00\x00\x01\x4a\x01"

CODECS: dict[str, IntraCodec] = {
    codec.name: codec
    for codec in (
        IntraCodec("av1", "libaom-av1", "libdav1d", "yuv420p10le", (0, 63), 32,
                   {"crf": "{q}", "b": "0", "usage": "allintra", "still-picture": "1", "cpu-used": "6",
                    "threads": "1", "row-mt": "0"}, quality_name="crf"),
        IntraCodec("hevc", "libx265", "hevc", "yuv420p10le", (0, 51), 34,
                   {"crf": "{q}", "x265-params": "log-level=error:frame-threads=1:pools=none:keyint=1:info=0"},
                   end_marker=HEVC_END_OF_BITSTREAM, quality_name="crf"),
        IntraCodec("vvc", None, "vvc", "yuv420p10le", (0, 63), 40, binary_encoder="libvvenc",
                   quality_name="qp"),
        IntraCodec("jpeg", "mjpeg", "mjpeg", "yuvj420p", (2, 31), 8, {"qmin": "{q}", "qmax": "{q}",
                                                                        "global_quality": "{q}",
                                                                        "flags": "+bitexact"},
                   end_marker=b"\xff\xd9", quality_name="qscale", upsample_to=None),
    )
}
#: codec -> the quality used when none is given
DEFAULT_QUALITY = {name: codec.default_quality for name, codec in CODECS.items()}


def get_codec(name: str) -> IntraCodec:
    """The intra codec ``name`` (ConfigError naming the choices)."""
    try:
        return CODECS[name]
    except KeyError:
        raise ConfigError(f"unknown key-frame codec {name!r}; choose one of {', '.join(CODECS)}") from None


def check_codec(name: str, quality: int | None = None) -> IntraCodec:
    """The codec, checked before anything is coded: known, its quality in range, and its encoder and
    decoder present in this FFmpeg build (ConfigError, one line, otherwise)."""
    codec = get_codec(name)
    if quality is not None:
        lo, hi = codec.quality_range
        if not lo <= quality <= hi:
            raise ConfigError(f"{name} key-frame quality must be in {lo}..{hi} (its quantizer scale; lower is "
                              f"better), got {quality}")
    missing = _missing(codec)
    if missing:
        raise ConfigError(f"the {name} key-frame codec needs {' and '.join(missing)}; choose another "
                          f"--keyframe-codec ({', '.join(available_codecs()) or 'none'})")
    return codec


def available_codecs() -> list[str]:
    """The codecs whose encoder and decoder this installation has."""
    return [name for name, codec in CODECS.items() if not _missing(codec)]


def _missing(codec: IntraCodec) -> list[str]:
    """What ``codec`` needs and this installation lacks, each in words (empty: it can be used)."""
    import av

    def has(name: str, mode: str) -> bool:
        try:
            av.codec.Codec(name, mode)
            return True
        except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError / ValueError by version
            return False

    missing = []
    if codec.binary_encoder is not None:
        what = f"the ffmpeg binary's {codec.binary_encoder} encoder"
        try:
            ffmpeg_exe()  # no runnable binary (e.g. a bad IMAGEIO_FFMPEG_EXE): its own words
            if not has_encoder(codec.binary_encoder):
                missing.append(f"{what}, which this ffmpeg binary lacks")
        except NervkitError as exc:
            missing.append(f"{what}, but {exc}")
    elif not has(str(codec.encoder), "w"):
        missing.append(f"the {codec.encoder} encoder, which this FFmpeg build (PyAV) lacks")
    if not has(codec.decoder, "r"):
        missing.append(f"the {codec.decoder} decoder, which this FFmpeg build (PyAV) lacks")
    return missing


# -- coding ---------------------------------------------------------------------------------------------
def encode_images(frames: torch.Tensor, codec: str, quality: int | None = None) -> list[bytes]:
    """One self-contained bitstream per frame of ``frames`` (uint8, (K, 3, H, W), RGB)."""
    spec = check_codec(codec, quality)
    q = spec.default_quality if quality is None else int(quality)
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1] != 3:
        raise InputError(f"key-frames must be uint8 (K, 3, H, W), got {tuple(frames.shape)} {frames.dtype}")
    images = [_even(f.permute(1, 2, 0).contiguous().numpy()) for f in frames.cpu()]
    if spec.binary_encoder is not None:
        return [_encode_with_binary(spec, image, q) for image in images]
    return [_encode_in_process(spec, image, q) for image in images]


def decode_images(streams: list[bytes], codec: str, size: tuple[int, int] | None = None) -> torch.Tensor:
    """The uint8 frames (K, 3, H, W) of bitstreams made by :func:`encode_images` (cropped to ``size``,
    the coded frames' (H, W), when given). Each bitstream is decoded on its own."""
    spec = get_codec(codec)
    frames = [_decode_one(spec, bytes(s), i) for i, s in enumerate(streams)]
    if not frames:
        h, w = size or (0, 0)
        return torch.zeros(0, 3, h, w, dtype=torch.uint8)
    if size is not None:
        h, w = size
        if any(f.shape[0] < h or f.shape[1] < w for f in frames):
            raise InputError(f"a {codec} key-frame decodes smaller than {h}x{w}")
        frames = [f[:h, :w] for f in frames]
    if len({f.shape for f in frames}) != 1:
        raise InputError(f"the {codec} key-frames decode to different sizes")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def _even(image: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) padded by edge replication to even height and width (4:2:0)."""
    h, w = image.shape[:2]
    if h % 2 or w % 2:
        image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(image)


def _yuv_frame(image: np.ndarray, pix_fmt: str):
    import av

    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
    frame.pts = 0
    return frame


def _encode_in_process(spec: IntraCodec, image: np.ndarray, quality: int) -> bytes:
    import av

    ctx = av.CodecContext.create(str(spec.encoder), "w")
    ctx.height, ctx.width = image.shape[:2]
    ctx.pix_fmt = spec.pix_fmt
    ctx.time_base = Fraction(1, 25)
    ctx.options = {k: v.format(q=quality) for k, v in spec.options.items()}
    try:
        packets = list(ctx.encode(_yuv_frame(image, spec.pix_fmt))) + list(ctx.encode(None))
    except av.FFmpegError as exc:
        raise ConfigError(f"the {spec.name} key-frame encoder failed: {_av_error(exc)}") from None
    data = b"".join(bytes(p) for p in packets)
    if not data:
        raise ConfigError(f"the {spec.name} key-frame encoder returned no data")
    return data if data.endswith(spec.end_marker) else data + spec.end_marker


def _encode_with_binary(spec: IntraCodec, image: np.ndarray, quality: int) -> bytes:
    h, w = image.shape[:2]
    raw = _yuv_frame(image, spec.pix_fmt)
    planes = b"".join(_plane_bytes(raw, i) for i in range(len(raw.planes)))
    with tempfile.TemporaryDirectory(prefix="nervkit-intra-") as tmp:
        out = os.path.join(tmp, "key.266")
        run_ffmpeg(["-f", "rawvideo", "-pix_fmt", spec.pix_fmt, "-s", f"{w}x{h}", "-r", "25", "-i", "pipe:0",
                    "-frames:v", "1", "-c:v", str(spec.binary_encoder), "-qp", str(quality), "-threads", "1",
                    "-f", "vvc", out], what=f"coding a {spec.name} key-frame", input=planes)
        with open(out, "rb") as f:
            return f.read()


def _plane_bytes(frame, index: int) -> bytes:
    """Plane ``index`` of ``frame`` without the line padding."""
    plane = frame.planes[index]
    row = plane.width * (2 if frame.format.name.endswith("10le") else 1)
    data = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return data[:, :row].tobytes()


def _decode_one(spec: IntraCodec, data: bytes, index: int) -> np.ndarray:
    import av

    if not data:
        raise InputError(f"{spec.name} key-frame {index} is empty")
    if not data.endswith(spec.end_marker):
        raise InputError(f"{spec.name} key-frame {index} is truncated (its bitstream lacks the end marker)")
    ctx = av.CodecContext.create(spec.decoder, "r")
    ctx.thread_count = 1
    try:
        frames = list(ctx.decode(av.Packet(data))) + list(ctx.decode(None))
    except av.FFmpegError as exc:
        raise InputError(f"{spec.name} key-frame {index} does not decode: {_av_error(exc)}") from None
    if len(frames) != 1:
        raise InputError(f"{spec.name} key-frame {index} decodes to {len(frames)} pictures, not one")
    picture = frames[0]
    if spec.upsample_to is not None:
        picture = picture.reformat(format=spec.upsample_to, interpolation="BILINEAR")
    return picture.to_ndarray(format="rgb24")


def _av_error(exc: Exception) -> str:
    """PyAV's error in one short line: FFmpeg's message without the errno ("Invalid data found when
    processing input")."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:200]
