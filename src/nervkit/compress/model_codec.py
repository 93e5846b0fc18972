"""A fitted representation ↔ a ``.nerv`` file.

The file holds everything needed to decode, and nothing else (no encoder, no optimizer state):

* section 1, kind ``header`` (UTF-8 JSON): format name, method, resolved model config, video
  geometry (frames, true H×W), fps, the model's output size, the quantization settings and the list
  of stored tensors — enough to rebuild the module with :func:`~nervkit.models.rebuild_model`;
* then one section per stored tensor, named after it, whose kind names its codec (the table and the
  one rule that picks a codec are in :mod:`.sections`): ``tensor`` (quantized + entropy-coded, see
  :mod:`.tensor_codec`); weights use ``bits``, per-frame side information (embeddings)
  ``embed_bits``; pruned weight tensors (kind ``sparse``) as a coded keep-mask plus their quantized
  non-zeros (:mod:`.sparse_codec`); non-float buffers go raw (kind ``raw``);
* latent feature grids (storage kinds ``latent_image`` / ``latent_video``: NVP's keyframes and
  sparse grid) with ``latent_codec="codec"`` (:class:`~.config.CompressConfig`): every channel
  quantized to 8 bits (its range stored) and coded as a grayscale JPEG (kind ``jpeg``) or a 4:0:0 HEVC
  stream (kind ``hevc``) through ffmpeg (:mod:`.latent_codec`); with ``"weights"`` they are coded like
  weights.

Decoding dequantizes with a fixed float32 formula, so the same file gives bit-identical weights —
and, on the same device type, bit-identical frames — every time.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.video_dataset import register_opener
from ..errors import BitstreamError, NervkitError
from ..models import Representation, VideoGeometry
from ..models.config import config_to_dict
from ..models.memory import check_model_memory
from ..resources import check_memory
from .config import CompressConfig, compress_config
from .container import Section, read_container, unpack, write_container
from .header import (
    FORMAT_NAME,
    check_collection,
    check_geometry,
    check_video,
    label,
    shape_text,
    validate_header,
)
from .learned_codec import learned_side_bytes
from .learned_quant import RateModel
from .model_checks import DECODE_BATCH_FRAMES, check_tensor_shapes, meta_model, peek_shape, stored_shapes
from .sections import SECTION_CODECS, STORAGES, encode_section

#: revision of the encoder's choices (quantizer rule, coders, sparse form). The format does not change
#: with it (old files still decode), but the same model and settings can give a different file: caches
#: of encoded results (``nervkit bench rd``) key on it. 2 = per-tensor/per-channel chosen at equal rate.
ENCODER_REVISION = 2


@dataclass(frozen=True)
class SectionSize:
    name: str
    kind: str
    group: str
    values: int
    bytes: int
    #: of ``bytes``, those holding the section's learned quantizer and entropy model (``learned`` sections)
    model_bytes: int = 0

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
        return check_geometry(self.header.get("geometry"))

    @property
    def videos(self) -> list[dict[str, Any]]:
        """A collection file's videos: name, fps (None: the file's), first frame and frame count in order;
        a single-video file is one entry named after its source."""
        geometry = self.geometry
        listed = check_collection(self.header.get("video"), geometry)
        if not listed:
            source = (self.header.get("video") or {}).get("source")
            listed = [{"name": Path(str(source)).stem if source else "video", "fps": None}]
        return [{**entry, "fps": entry["fps"] or self.fps, "first_frame": start, "frames": count}
                for entry, (start, count) in zip(listed, geometry.spans())]

    @property
    def fps(self) -> float:
        """The video's frame rate as stored in the header (25 when the file does not say)."""
        return float(check_video(self.header.get("video")) or 25.0)

    def build_model(self, *, memory_limit: int | None = None) -> Representation:
        """Rebuild the module and load the dequantized tensors (strictly, ``Representation.load_stored``).

        The header is validated again (:func:`validate_header`), the model is first built on the meta
        device and its stored tensors compared, name by name and shape by shape, with the file's, and
        the memory it needs (weights plus a batch of decoded frames) compared with ``memory_limit``
        (default: the memory available, :func:`nervkit.resources.available_memory_bytes`); only then is
        it allocated. Every problem is a one-line BitstreamError."""
        spec, config, geometry = validate_header(self.header)
        meta = meta_model(spec, config, geometry, len(self.tensors))
        check_tensor_shapes({name: tuple(t.shape) for name, t in self.tensors.items()}, stored_shapes(meta),
                            spec.name)
        out_h, out_w = meta.output_size
        check_model_memory(spec, config, geometry, training=False, error=BitstreamError, limit=memory_limit,
                           extra_bytes=DECODE_BATCH_FRAMES * 3 * out_h * out_w * 4)
        try:
            model = spec.model_cls(config, geometry)
            model.load_stored(self.tensors)
        except NervkitError as exc:
            raise BitstreamError(f"the file's model cannot be rebuilt: {exc}") from None
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise BitstreamError(f"the file's tensors do not fit its model ({type(exc).__name__})") from None
        return model.eval()


def encode_model(model: Representation, config: CompressConfig | None = None, *,
                 video: dict[str, Any] | None = None, rate: RateModel | None = None,
                 estimate: dict[str, float] | None = None, **settings: Any) -> list[Section]:
    """The sections of a ``.nerv`` file for ``model``, coded as ``config`` says (default
    :class:`CompressConfig`; keyword ``settings`` replace its fields, e.g. ``bits=12``). Each stored tensor
    goes through the codec :func:`~.sections.choose_section` picks for its storage kind, or, when ``rate``
    (a trained :class:`~.learned_quant.RateModel`) holds a quantizer for it, through its learned quantizer and
    entropy model. ``estimate``, when given, receives each section's estimated bits (:func:`encode_section`)."""
    config = compress_config(config, **settings)
    sections: list[Section] = []
    stored: list[dict[str, Any]] = []
    for group in model.stored_groups():
        for name, tensor in group.tensors.items():
            kind, payload, bits = encode_section(group.kind, tensor, config, group.min_bits, name=name, rate=rate)
            if estimate is not None:
                estimate[name] = bits
            sections.append(Section(kind, name, payload))
            stored.append({"name": name, "group": group.name, "storage": group.kind, "values": tensor.numel()})
    media = {s.media for s in STORAGES.values() if s.media}
    header = _header(model, config, video, rate, stored, latent=any(s.kind in media for s in sections))
    return [Section("header", "header", header), *sections]


def smallest_file_bits(model: Representation, rate: RateModel) -> float:
    """A lower bound of the size of any file ``model`` trained with ``rate`` can be written to: the header,
    the container's framing, every tensor rate training does not code as it is coded now, and for every
    rate-trained tensor its shape, axes and one byte per stored step and scale integer block (its codes at no
    bits at all)."""
    config = CompressConfig()
    bits = 8.0 * (len(_header(model, config, None, rate, [], latent=False)) + 64)  # + magic, version, end marker
    for group in model.stored_groups():
        for name, tensor in group.tensors.items():
            framing = 1 + len("learned") + 1 + len(name.encode()) + 8 + 4
            if name in rate.kinds:
                axes = rate.quantizer(name).axes
                bits += 8.0 * (framing + 4 + tensor.ndim + len(axes) + 6 * max(len(axes), 1) + 3)
            else:
                bits += 8.0 * framing + encode_section(group.kind, tensor, config, group.min_bits)[2]
    return bits


def _header(model: Representation, config: CompressConfig, video: dict[str, Any] | None, rate: RateModel | None,
            stored: list[dict[str, Any]], *, latent: bool) -> bytes:
    """The header section's JSON payload (module docstring); ``latent``: the file codes latent grids with an
    image / video codec (the header then records its settings)."""
    header = {
        "format": FORMAT_NAME,
        "method": model.method,
        "config": config_to_dict(model.config),
        "geometry": model.geometry.to_dict(),
        "output_size": list(model.output_size),
        "quantization": {"bits": config.bits, "embed_bits": config.embed_bits,
                         # informational (the decoder needs no more than the payloads): HiNeRV's rule
                         **({"quantizer": config.quantizer} if config.quantizer != "minmax" else {}),
                         **({"latent": config.latent_settings()} if latent else {}),
                         **({"rate_trained": True, "entropy_model": rate.options.entropy_model} if rate else {})},
        "video": video or {},
        "tensors": stored,
    }
    return json.dumps(header, separators=(",", ":")).encode()


def group_bytes(sections: list[Section]) -> dict[str, int]:
    """Payload bytes of the header and of every stored group (D-NeRV: its key-frames apart from the
    weights) of :func:`encode_model`'s sections, read from the header's tensor list, nothing decoded."""
    out = {"header": len(sections[0].payload)}
    for entry, section in zip(json.loads(sections[0].payload)["tensors"], sections[1:]):
        out[entry["group"]] = out.get(entry["group"], 0) + len(section.payload)
    return out


def write_nerv(path: str | os.PathLike[str], model: Representation, config: CompressConfig | None = None,
               **kwargs: Any) -> int:
    """Write ``model`` to ``path`` atomically (:func:`encode_model`'s arguments); returns the file size in
    bytes."""
    write_container(path, encode_model(model, config, **kwargs))
    return Path(path).stat().st_size


def read_nerv(path: str | os.PathLike[str]) -> NervFile:
    """Parse a ``.nerv`` file (BitstreamError, one line, for anything malformed)."""
    p = Path(path)
    sections = read_container(p)
    try:
        return _parse(sections, p.stat().st_size)
    except BitstreamError as exc:
        raise BitstreamError(f"{p}: {exc}") from None


def parse_nerv(data: bytes) -> NervFile:
    """Parse ``.nerv`` bytes."""
    return _parse(unpack(data), len(data))


def _parse(sections: list[Section], file_bytes: int) -> NervFile:
    if not sections or sections[0].kind != "header":
        raise BitstreamError("the file has no header section")
    try:
        header = json.loads(sections[0].payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BitstreamError("section 1 (header) is not valid JSON") from None
    spec, config, geometry = validate_header(header)
    entries = header["tensors"]
    if len(entries) != len(sections) - 1:
        raise BitstreamError(f"the header lists {len(entries)} tensors but the file has {len(sections) - 1}")
    meta = meta_model(spec, config, geometry, len(entries))
    output_size = header.get("output_size")
    if output_size is not None and tuple(output_size) != tuple(meta.output_size):
        raise BitstreamError(f"the header's output_size {shape_text(output_size)} is not the "
                             f"{shape_text(meta.output_size)} of its {spec.name} model")
    # the shapes of every section, read from the payload headers before anything is decoded
    shapes: dict[str, tuple[int, ...]] = {}
    for index, (entry, section) in enumerate(zip(entries, sections[1:]), start=2):
        if entry["name"] != section.name:
            raise BitstreamError(f"section {index} ({label(section.name)}) does not match the header")
        if section.name in shapes:
            raise BitstreamError(f"section {index} repeats tensor {label(section.name)}")
        shape = peek_shape(section, index)
        if "values" in entry and entry["values"] != math.prod(shape):
            raise BitstreamError(f"section {index} ({label(section.name)}) holds {math.prod(shape):,} "
                                 f"values but the header says {entry['values']:,}")
        shapes[section.name] = shape
    check_tensor_shapes(shapes, stored_shapes(meta), spec.name)
    values = [math.prod(shape) for shape in shapes.values()]
    check_memory(4 * (sum(values) + max(values, default=0)),
                 f"decoding the file's {len(values)} tensors ({sum(values):,} values)", error=BitstreamError)
    tensors: dict[str, torch.Tensor] = {}
    sizes = [SectionSize("header", "header", "header", 0, len(sections[0].payload))]
    for entry, section in zip(entries, sections[1:]):
        tensor = SECTION_CODECS[section.kind].decode(section.payload)  # peek_shape refused unknown kinds
        if tuple(tensor.shape) != shapes[section.name]:  # the decoders read the shape the peek read
            declared = shape_text(shapes[section.name])
            raise BitstreamError(f"tensor {label(section.name)} decodes to shape "
                                 f"{shape_text(tensor.shape)}, not the {declared} its section declares")
        tensors[section.name] = tensor
        side = learned_side_bytes(section.payload) if section.kind == "learned" else 0
        sizes.append(SectionSize(section.name, section.kind, str(entry.get("group", "")), tensor.numel(),
                                 len(section.payload), side))
    return NervFile(header, tensors, sizes, file_bytes)


# a .nerv file is a clip source for nervkit.data.NervVideoDataset (the data layer cannot import this one)
register_opener(".nerv", read_nerv)
