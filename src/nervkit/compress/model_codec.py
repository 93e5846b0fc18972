"""A fitted representation ↔ a ``.nerv`` file.

The file holds everything needed to decode, and nothing else (no encoder, no optimizer state):

* section 1, kind ``header`` (UTF-8 JSON): format name, method, resolved model config, video
  geometry (frames, true H×W), fps, the model's output size, the quantization settings and the list
  of stored tensors — enough to rebuild the module with :func:`~nervkit.models.rebuild_model`;
* then one section per stored tensor, kind ``tensor`` (quantized + entropy-coded, see
  :mod:`.tensor_codec`) named ``group/tensor``; weights use ``bits``, per-frame side information
  (embeddings) ``embed_bits``; pruned weight tensors (kind ``sparse``) as a coded keep-mask plus their
  quantized non-zeros (:mod:`.sparse_codec`); non-float buffers go raw (kind ``raw``);
* latent feature grids (storage kinds ``latent_image`` / ``latent_video``: NVP's keyframes and
  sparse grid) with :class:`LatentCoding` ``codec="codec"``: every channel quantized to 8 bits (its
  range stored) and coded as a grayscale JPEG (kind ``jpeg``) or a 4:0:0 HEVC stream (kind ``hevc``)
  through ffmpeg (:mod:`.latent_codec`); with ``codec="weights"`` they are coded like weights.

Decoding dequantizes with a fixed float32 formula, so the same file gives bit-identical weights —
and, on the same device type, bit-identical frames — every time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BitstreamError
from ..models import Representation, VideoGeometry, rebuild_model
from ..models.config import config_to_dict
from .container import Section, read_container, unpack, write_container
from .quantize import dequantize, quantize
from .sparse_codec import decode_sparse, encode_sparse
from .tensor_codec import decode_quantized, encode_quantized

FORMAT_NAME = "nervkit"
#: revision of the encoder's choices (quantizer rule, coders, sparse form). The format does not change
#: with it (old files still decode), but the same model and settings can give a different file: caches
#: of encoded results (``nervkit bench rd``) key on it. 2 = per-tensor/per-channel chosen at equal rate.
ENCODER_REVISION = 2
#: a weight tensor with at least this share of exact zeros (pruned) is coded as mask + non-zeros
SPARSE_THRESHOLD = 0.02


LATENT_CODECS = ("codec", "weights")


@dataclass(frozen=True)
class LatentCoding:
    """How latent grids are stored (NVP spec §2.4): ``codec`` = JPEG (2-D) / HEVC (3-D) through ffmpeg,
    ``weights`` = like weights (``bits`` + entropy coding). ``jpeg_quality``: ffmpeg -q:v, 2 (best) to 31;
    ``hevc_crf``: x265 CRF 0..51; ``hevc_fps``: the frame rate x265's rate control sees (official 25)."""

    codec: str = "codec"
    jpeg_quality: int = 2
    hevc_crf: int = 21
    hevc_fps: int = 25


@dataclass(frozen=True)
class SectionSize:
    name: str
    kind: str
    group: str
    values: int
    bytes: int

    @property
    def bits_per_value(self) -> float:
        return 8.0 * self.bytes / self.values if self.values else 0.0


@dataclass
class NervFile:
    """What a ``.nerv`` file holds once parsed."""

    header: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    sizes: list[SectionSize] = field(default_factory=list)
    file_bytes: int = 0

    @property
    def geometry(self) -> VideoGeometry:
        return VideoGeometry(**self.header["geometry"])

    @property
    def fps(self) -> float:
        """The video's frame rate as stored in the header (25 when the file does not say)."""
        return float(self.header.get("video", {}).get("fps") or 25.0)

    def build_model(self) -> Representation:
        """Rebuild the module and load the dequantized tensors (strictly, ``Representation.load_stored``)."""
        try:
            model = rebuild_model(self.header["method"], self.header["config"], self.geometry)
            model.load_stored(self.tensors)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise BitstreamError(f"the file's tensors do not fit its model ({type(exc).__name__})") from None
        return model.eval()


def encode_model(model: Representation, *, bits: int = 8, embed_bits: int = 6,
                 video: dict[str, Any] | None = None, latent: LatentCoding | None = None) -> list[Section]:
    """The sections of a ``.nerv`` file for ``model`` (weights quantized to ``bits``)."""
    from .latent_codec import encode_latent_images, encode_latent_video

    latent = latent or LatentCoding()
    sections: list[Section] = []
    stored: list[dict[str, Any]] = []
    uses_latent_codec = False
    for group in model.stored_groups():
        depth = embed_bits if group.kind == "per_frame" else max(bits, group.min_bits)
        for name, tensor in group.tensors.items():
            t = tensor.detach().cpu()
            if group.kind in ("latent_image", "latent_video") and latent.codec == "codec":
                uses_latent_codec = True
                if group.kind == "latent_image":
                    payload, kind = encode_latent_images(t.float(), quality=latent.jpeg_quality), "jpeg"
                else:
                    payload = encode_latent_video(t.float(), crf=latent.hevc_crf, fps=latent.hevc_fps)
                    kind = "hevc"
            elif t.is_floating_point() and t.ndim >= 2 and float((t == 0).float().mean()) >= SPARSE_THRESHOLD:
                payload = encode_sparse(t, depth)
                kind = "sparse"
            elif t.is_floating_point():
                payload = encode_quantized(quantize(t.float(), depth))
                kind = "tensor"
            else:
                payload = _encode_raw(t)
                kind = "raw"
            sections.append(Section(kind, name, payload))
            stored.append({"name": name, "group": group.name, "storage": group.kind, "values": t.numel()})
    header = {
        "format": FORMAT_NAME,
        "method": model.method,
        "config": config_to_dict(model.config),
        "geometry": asdict(model.geometry),
        "output_size": list(model.output_size),
        "quantization": {"bits": bits, "embed_bits": embed_bits,
                         **({"latent": asdict(latent)} if uses_latent_codec else {})},
        "video": video or {},
        "tensors": stored,
    }
    return [Section("header", "header", json.dumps(header, separators=(",", ":")).encode()), *sections]


def write_nerv(path: str | os.PathLike[str], model: Representation, **kwargs: Any) -> int:
    """Write ``model`` to ``path`` atomically; returns the file size in bytes."""
    write_container(path, encode_model(model, **kwargs))
    return Path(path).stat().st_size


def read_nerv(path: str | os.PathLike[str]) -> NervFile:
    """Parse a ``.nerv`` file (BitstreamError, one line, for anything malformed)."""
    p = Path(path)
    return _parse(read_container(p), p.stat().st_size)


def parse_nerv(data: bytes) -> NervFile:
    """Parse ``.nerv`` bytes."""
    return _parse(unpack(data), len(data))


def _parse(sections: list[Section], file_bytes: int) -> NervFile:
    if not sections or sections[0].kind != "header":
        raise BitstreamError("the file has no header section")
    try:
        header = json.loads(sections[0].payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BitstreamError("section 1 (header) is not valid JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise BitstreamError("section 1 is not a nervkit header")
    for key in ("method", "config", "geometry", "tensors"):
        if key not in header:
            raise BitstreamError(f"the header lacks {key!r}")
    entries = header["tensors"]
    if not isinstance(entries, list) or len(entries) != len(sections) - 1:
        raise BitstreamError(f"the header lists {len(entries) if isinstance(entries, list) else '?'} tensors "
                             f"but the file has {len(sections) - 1}")
    tensors: dict[str, torch.Tensor] = {}
    sizes = [SectionSize("header", "header", "header", 0, len(sections[0].payload))]
    for index, (entry, section) in enumerate(zip(entries, sections[1:]), start=2):
        if not isinstance(entry, dict) or entry.get("name") != section.name:
            raise BitstreamError(f"section {index} ({section.name}) does not match the header")
        if section.kind == "tensor":
            tensors[section.name] = dequantize(decode_quantized(section.payload))
        elif section.kind == "sparse":
            tensors[section.name] = decode_sparse(section.payload)
        elif section.kind == "raw":
            tensors[section.name] = _decode_raw(section.payload)
        elif section.kind in ("jpeg", "hevc"):
            from .latent_codec import decode_latent_images, decode_latent_video

            decoder = decode_latent_images if section.kind == "jpeg" else decode_latent_video
            tensors[section.name] = decoder(section.payload)
        else:
            raise BitstreamError(f"section {index} has unknown kind {section.kind!r}")
        sizes.append(SectionSize(section.name, section.kind, str(entry.get("group", "")),
                                 tensors[section.name].numel(), len(section.payload)))
    return NervFile(header, tensors, sizes, file_bytes)


def _encode_raw(t: torch.Tensor) -> bytes:
    meta = json.dumps({"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}).encode()
    return len(meta).to_bytes(4, "little") + meta + t.contiguous().numpy().tobytes()


def _decode_raw(payload: bytes) -> torch.Tensor:
    try:
        n = int.from_bytes(payload[:4], "little")
        meta = json.loads(payload[4 : 4 + n])
        array = np.frombuffer(payload[4 + n :], dtype=np.dtype(meta["dtype"])).reshape(meta["shape"])
    except (ValueError, TypeError, KeyError):
        raise BitstreamError("a raw tensor section is malformed") from None
    return torch.from_numpy(array.copy())
