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
import math
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BitstreamError, NervkitError
from ..models import Representation, VideoGeometry
from ..models.base import STORAGE_KINDS, MethodConfig
from ..models.config import config_from_dict, config_to_dict, validate_choices
from ..models.registry import MethodSpec, build_meta_model, check_model_memory, get_method, list_methods
from ..resources import check_memory, format_bytes
from .container import Section, read_container, unpack, write_container
from .quantize import MAX_BITS, MIN_BITS, dequantize, quantize
from .sparse_codec import decode_sparse, encode_sparse
from .tensor_codec import MAX_ELEMENTS, MAX_NDIM, decode_quantized, encode_quantized, read_shape
from .varint import read_uvarint

FORMAT_NAME = "nervkit"
#: revision of the encoder's choices (quantizer rule, coders, sparse form). The format does not change
#: with it (old files still decode), but the same model and settings can give a different file: caches
#: of encoded results (``nervkit bench rd``) key on it. 2 = per-tensor/per-channel chosen at equal rate.
ENCODER_REVISION = 2
#: a weight tensor with at least this share of exact zeros (pruned) is coded as mask + non-zeros
SPARSE_THRESHOLD = 0.02


LATENT_CODECS = ("codec", "weights")

# What a header may declare (docs/bitstream.md, "What the decoder checks"): every value is checked
# before anything is built or allocated from it.
#: frames of the video (4,194,304: 46 hours at 25 fps)
MAX_FRAMES = 1 << 22
#: frame height and width
MAX_FRAME_SIDE = 1 << 15
#: ``video.fps`` (absent or null: 25)
MIN_FPS, MAX_FPS = 0.001, 100_000.0
#: every integer of the model config (a width, a count of layers, a tile size) and the length of its lists
MAX_CONFIG_INT = 1 << 22
MAX_CONFIG_LIST = 64
#: submodules the header's model may register: a fixed allowance (encoders, which are not stored) plus
#: this many per stored tensor (a crafted "a million layers" config is refused while it is being built)
MODULES_BASE = 4096
MODULES_PER_TENSOR = 16
#: frames ``write_decoded`` decodes at once: their float32 output counts in the decoding memory check
DECODE_BATCH_FRAMES = 8
GEOMETRY_FIELDS = ("num_frames", "height", "width")
_RAW_DTYPE_KINDS = "biuf"


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
        return _check_geometry(self.header.get("geometry"))

    @property
    def fps(self) -> float:
        """The video's frame rate as stored in the header (25 when the file does not say)."""
        return float(_check_video(self.header.get("video")) or 25.0)

    def build_model(self, *, memory_limit: int | None = None) -> Representation:
        """Rebuild the module and load the dequantized tensors (strictly, ``Representation.load_stored``).

        The header is validated again (:func:`validate_header`), the model is first built on the meta
        device and its stored tensors compared, name by name and shape by shape, with the file's, and
        the memory it needs (weights plus a batch of decoded frames) compared with ``memory_limit``
        (default: the memory available, :func:`nervkit.resources.available_memory_bytes`); only then is
        it allocated. Every problem is a one-line BitstreamError."""
        spec, config, geometry = validate_header(self.header)
        meta = _meta_model(spec, config, geometry, len(self.tensors))
        check_tensor_shapes({name: tuple(t.shape) for name, t in self.tensors.items()}, _stored_shapes(meta),
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
    meta = _meta_model(spec, config, geometry, len(entries))
    output_size = header.get("output_size")
    if output_size is not None and tuple(output_size) != tuple(meta.output_size):
        raise BitstreamError(f"the header's output_size {_shape_text(output_size)} is not the "
                             f"{_shape_text(meta.output_size)} of its {spec.name} model")
    # the shapes of every section, read from the payload headers before anything is decoded
    shapes: dict[str, tuple[int, ...]] = {}
    for index, (entry, section) in enumerate(zip(entries, sections[1:]), start=2):
        if entry["name"] != section.name:
            raise BitstreamError(f"section {index} ({_label(section.name)}) does not match the header")
        if section.name in shapes:
            raise BitstreamError(f"section {index} repeats tensor {_label(section.name)}")
        shape = _peek_shape(section, index)
        if "values" in entry and entry["values"] != math.prod(shape):
            raise BitstreamError(f"section {index} ({_label(section.name)}) holds {math.prod(shape):,} "
                                 f"values but the header says {entry['values']:,}")
        shapes[section.name] = shape
    check_tensor_shapes(shapes, _stored_shapes(meta), spec.name)
    values = [math.prod(shape) for shape in shapes.values()]
    check_memory(4 * (sum(values) + max(values, default=0)),
                 f"decoding the file's {len(values)} tensors ({sum(values):,} values)", error=BitstreamError)
    tensors: dict[str, torch.Tensor] = {}
    sizes = [SectionSize("header", "header", "header", 0, len(sections[0].payload))]
    for entry, section in zip(entries, sections[1:]):
        if section.kind == "tensor":
            tensor = dequantize(decode_quantized(section.payload))
        elif section.kind == "sparse":
            tensor = decode_sparse(section.payload)
        elif section.kind == "raw":
            tensor = _decode_raw(section.payload)
        else:  # jpeg / hevc (_peek_shape refused any other kind)
            from .latent_codec import decode_latent_images, decode_latent_video

            decoder = decode_latent_images if section.kind == "jpeg" else decode_latent_video
            tensor = decoder(section.payload)
        if tuple(tensor.shape) != shapes[section.name]:  # the decoders read the shape the peek read
            declared = _shape_text(shapes[section.name])
            raise BitstreamError(f"tensor {_label(section.name)} decodes to shape "
                                 f"{_shape_text(tensor.shape)}, not the {declared} its section declares")
        tensors[section.name] = tensor
        sizes.append(SectionSize(section.name, section.kind, str(entry.get("group", "")), tensor.numel(),
                                 len(section.payload)))
    return NervFile(header, tensors, sizes, file_bytes)


# ------------------------------------------------------------------------------------------------
# header validation


def validate_header(header: Any) -> tuple[MethodSpec, MethodConfig, VideoGeometry]:
    """Check a parsed header JSON (docs/bitstream.md, "What the decoder checks"); return the method,
    its config and the video geometry. Nothing is built or allocated from a value before it is checked;
    every problem is a one-line :class:`BitstreamError` about the file."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise BitstreamError("section 1 is not a nervkit header")
    for key in ("method", "config", "geometry", "tensors"):
        if key not in header:
            raise BitstreamError(f"the header lacks {key!r}")
    method = header["method"]
    if not isinstance(method, str) or method not in list_methods():
        raise BitstreamError(f"the file's method {_short(method)} is not one this nervkit knows "
                             f"({', '.join(list_methods())})")
    spec = get_method(method)
    geometry = _check_geometry(header["geometry"])
    config = _check_config(spec, header["config"])
    if "video" in header and not isinstance(header["video"], dict):
        raise BitstreamError(f"the header's video must be an object, got {_short(header['video'])}")
    _check_video(header.get("video"))
    _check_quantization(header.get("quantization"))
    output_size = header.get("output_size")
    if output_size is not None and not (
        isinstance(output_size, list) and len(output_size) == 2
        and all(_is_int(v) and 0 < v <= 2 * MAX_FRAME_SIDE for v in output_size)
    ):
        raise BitstreamError(f"the header's output_size must be two positive integers, "
                             f"got {_short(output_size)}")
    entries = header["tensors"]
    if not isinstance(entries, list):
        raise BitstreamError("the header's tensors must be a list")
    for i, entry in enumerate(entries, start=2):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BitstreamError(f"the header's entry for section {i} has no name")
        if "values" in entry and not (_is_int(entry["values"]) and entry["values"] >= 0):
            raise BitstreamError(f"the header's entry for section {i} has an invalid value count "
                                 f"{_short(entry['values'])}")
        if "group" in entry and not isinstance(entry["group"], str):
            raise BitstreamError(f"the header's entry for section {i} has an invalid group "
                                 f"{_short(entry['group'])}")
        if "storage" in entry and entry["storage"] not in STORAGE_KINDS:
            raise BitstreamError(f"the header's entry for section {i} has an unknown storage kind "
                                 f"{_short(entry['storage'])}")
    return spec, config, geometry


def _check_geometry(geo: Any) -> VideoGeometry:
    if not isinstance(geo, dict) or set(geo) != set(GEOMETRY_FIELDS):
        found = ", ".join(_short(k, 24) for k in geo) if isinstance(geo, dict) else _short(geo)
        raise BitstreamError(f"the header's geometry must hold exactly {', '.join(GEOMETRY_FIELDS)}; "
                             f"it holds {found or 'nothing'}")
    for key in GEOMETRY_FIELDS:
        if not _is_int(geo[key]):
            raise BitstreamError(f"the header's geometry.{key} must be an integer, got {_short(geo[key])}")
    if not 1 <= geo["num_frames"] <= MAX_FRAMES:
        raise BitstreamError(f"the header declares {geo['num_frames']:,} frames; a .nerv file holds 1 to "
                             f"{MAX_FRAMES:,}")
    if not (1 <= geo["height"] <= MAX_FRAME_SIDE and 1 <= geo["width"] <= MAX_FRAME_SIDE):
        raise BitstreamError(f"the header declares frames of {geo['height']}x{geo['width']}; each side must "
                             f"be 1 to {MAX_FRAME_SIDE}")
    return VideoGeometry(geo["num_frames"], geo["height"], geo["width"])


def _check_video(video: Any) -> float | None:
    """The header's ``video`` (optional, an object): its ``fps``, when given and not null, is a sane
    frame rate."""
    if video is None:
        return None
    if not isinstance(video, dict):
        raise BitstreamError(f"the header's video must be an object, got {_short(video)}")
    fps = video.get("fps")
    if fps is None:
        return None
    if not _is_number(fps) or not math.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
        raise BitstreamError(f"the header's video.fps must be a frame rate from {MIN_FPS:g} to {MAX_FPS:g}, "
                             f"got {_short(fps)}")
    return float(fps)


def _check_quantization(quant: Any) -> None:
    if quant is None:
        return
    if not isinstance(quant, dict):
        raise BitstreamError(f"the header's quantization must be an object, got {_short(quant)}")
    for key in ("bits", "embed_bits"):
        if key in quant and not (_is_int(quant[key]) and MIN_BITS <= quant[key] <= MAX_BITS):
            raise BitstreamError(f"the header's quantization.{key} must be an integer from {MIN_BITS} to "
                                 f"{MAX_BITS}, got {_short(quant[key])}")
    if "latent" in quant and not isinstance(quant["latent"], dict):
        raise BitstreamError("the header's quantization.latent must be an object")


def _check_config(spec: MethodSpec, config: Any) -> MethodConfig:
    """The header's config as ``spec``'s config dataclass: known keys only (a missing key takes its
    default), each value of its declared JSON type, integers and lists bounded, choices respected."""
    if not isinstance(config, dict):
        raise BitstreamError(f"the header's config must be an object, got {_short(config)}")
    known = {f.name: f for f in fields(spec.config_cls)}
    unknown = [k for k in config if k not in known]
    if unknown:
        raise BitstreamError(f"the header's config has {len(unknown)} key(s) that {spec.name} does not have: "
                             f"{', '.join(_short(k, 32) for k in unknown[:3])}")
    hints = typing.get_type_hints(spec.config_cls)
    for key, value in config.items():
        _check_value(f"config.{key}", value, hints[key])
        choices = known[key].metadata.get("choices")
        if choices and value not in choices:
            raise BitstreamError(f"the header's config.{key} is {_short(value)}; {spec.name} knows "
                                 f"{', '.join(map(str, choices))}")
    try:
        cfg = config_from_dict(spec.config_cls, config)
        validate_choices(cfg)
    except NervkitError as exc:  # not expected after the checks above
        raise BitstreamError(f"the header's {spec.name} config is invalid: {exc}") from None
    return cfg


def _check_value(name: str, value: Any, annotation: Any) -> None:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        inner = [a for a in args if a is not type(None)]
        return _check_value(name, value, inner[0])
    if origin is tuple:
        if not isinstance(value, list) or len(value) > MAX_CONFIG_LIST:
            raise BitstreamError(f"the header's {name} must be a list of at most {MAX_CONFIG_LIST} values, "
                                 f"got {_short(value)}")
        elem = args[0] if args else Any
        for v in value:
            _check_value(name, v, elem)
        return
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = _is_int(value) and abs(value) <= MAX_CONFIG_INT
    elif annotation is float:
        ok = _is_number(value) and math.isfinite(value) and abs(value) <= 1e30
    elif annotation is str:
        ok = isinstance(value, str) and len(value) <= 64
    else:
        ok = True
    if not ok:
        what = {int: f"an integer of magnitude at most {MAX_CONFIG_INT:,}", float: "a finite number",
                bool: "true or false", str: "a short string"}.get(annotation, str(annotation))
        raise BitstreamError(f"the header's {name} must be {what}, got {_short(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters and made printable (header values are untrusted)."""
    text = repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _label(name: str) -> str:
    text = "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in name)
    return text if len(text) <= 64 else text[:61] + "..."


def _shape_text(shape: Any) -> str:
    dims = list(shape)
    return "x".join(str(d) for d in dims) if dims else "a scalar"


# ------------------------------------------------------------------------------------------------
# the model the header describes, on the meta device


def _meta_model(spec: MethodSpec, config: MethodConfig, geometry: VideoGeometry,
                tensors: int) -> Representation:
    """The header's model on the meta device, checked to render frames at least as large as the
    header's (decoded frames are crops of its output)."""
    model = build_meta_model(spec, config, geometry, error=BitstreamError,
                             max_modules=MODULES_BASE + MODULES_PER_TENSOR * tensors)
    try:
        out_h, out_w = (int(v) for v in model.output_size)
    except (TypeError, ValueError, RuntimeError):
        raise BitstreamError(f"the file's {spec.name} model has no valid output size") from None
    if out_h < geometry.height or out_w < geometry.width:
        raise BitstreamError(f"the file's {spec.name} model renders {out_h}x{out_w} frames, smaller than the "
                             f"{geometry.height}x{geometry.width} its header declares")
    return model


def _stored_shapes(model: Representation) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor ``model`` stores (its ``stored_groups``), from a meta model."""
    try:
        return {name: tuple(t.shape) for group in model.stored_groups() for name, t in group.tensors.items()}
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
        raise BitstreamError(f"the file's {model.method} model cannot list its tensors "
                             f"({type(exc).__name__})") from None


def check_tensor_shapes(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                        method: str) -> None:
    """BitstreamError (one line) unless ``found`` (a file's tensors) has exactly the names and shapes of
    ``expected`` (what the header's model stores): the first missing or extra tensor, else the totals
    ("describes a model of N parameters but its tensors hold M values"), else the first other shape."""
    missing = [n for n in expected if n not in found]
    extra = [n for n in found if n not in expected]
    unfit = f"the file's tensors do not fit its {method} model"
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BitstreamError(f"{unfit}: it lacks tensor {_label(missing[0])}{more}")
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise BitstreamError(f"{unfit}: it holds tensor {_label(extra[0])}, which the model does not "
                             f"have{more}")
    model_values = sum(math.prod(s) for s in expected.values())
    file_values = sum(math.prod(s) for s in found.values())
    if model_values != file_values:
        raise BitstreamError(f"the file's header describes a {method} model of {model_values:,} "
                             f"parameters ({format_bytes(4 * model_values)}) but its tensors hold "
                             f"{file_values:,} values")
    for name, shape in expected.items():
        if tuple(found[name]) != tuple(shape):
            raise BitstreamError(f"{unfit}: tensor {_label(name)} has shape {_shape_text(found[name])} in "
                                 f"the file but {_shape_text(shape)} in the model")


def _peek_shape(section: Section, index: int) -> tuple[int, ...]:
    """The shape a tensor section declares, read from its payload header without decoding it
    (bounded: at most MAX_ELEMENTS values); BitstreamError when that header is malformed."""
    data = section.payload
    where = f"section {index} ({_label(section.name)})"
    if section.kind == "tensor":
        if len(data) < 3:
            raise BitstreamError(f"{where}: truncated tensor header")
        return tuple(read_shape(data, 2)[0])
    if section.kind == "sparse":
        return tuple(read_shape(data, 0)[0])
    if section.kind == "raw":
        return _raw_meta(data, where)[1]
    if section.kind in ("jpeg", "hevc"):
        from .latent_codec import IMAGE_MAGIC, VERSION, VIDEO_MAGIC

        magic, ndim = (IMAGE_MAGIC, 3) if section.kind == "jpeg" else (VIDEO_MAGIC, 4)
        if len(data) < 2 or data[0] != magic or data[1] != VERSION:
            raise BitstreamError(f"{where}: not a latent {section.kind} payload of version {VERSION}")
        pos, dims = 2, []
        for _ in range(ndim):
            d, pos = read_uvarint(data, pos, what="latent dimension")
            dims.append(d)
            if math.prod(dims) > MAX_ELEMENTS:
                raise BitstreamError(f"{where}: more than {MAX_ELEMENTS} values")
        return tuple(dims)
    raise BitstreamError(f"section {index} has unknown kind {section.kind!r}")


def _raw_meta(payload: bytes, where: str = "a raw tensor section") -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, data offset) of a raw payload, checked: a plain numeric dtype, at most MAX_NDIM
    dims and MAX_ELEMENTS values, and exactly the bytes they need."""
    try:
        n = int.from_bytes(payload[:4], "little")
        if len(payload) < 4 or 4 + n > len(payload):
            raise ValueError
        meta = json.loads(payload[4 : 4 + n])
        dtype = np.dtype(meta["dtype"]) if isinstance(meta["dtype"], str) else None
        shape = meta["shape"]
        if (dtype is None or dtype.kind not in _RAW_DTYPE_KINDS or dtype.shape != () or dtype.itemsize > 16
                or not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(d) and 0 <= d <= MAX_ELEMENTS for d in shape)
                or math.prod(shape) > MAX_ELEMENTS
                or len(payload) - 4 - n != math.prod(shape) * dtype.itemsize):
            raise ValueError
    except (ValueError, TypeError, KeyError, RecursionError):
        raise BitstreamError(f"{where} is malformed") from None
    return dtype, tuple(shape), 4 + n


def _encode_raw(t: torch.Tensor) -> bytes:
    meta = json.dumps({"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}).encode()
    return len(meta).to_bytes(4, "little") + meta + t.contiguous().numpy().tobytes()


def _decode_raw(payload: bytes) -> torch.Tensor:
    dtype, shape, offset = _raw_meta(payload)
    try:
        array = np.frombuffer(payload[offset:], dtype=dtype).reshape(shape)
        return torch.from_numpy(array.copy())
    except (ValueError, TypeError):  # e.g. a dtype torch has no counterpart for
        raise BitstreamError("a raw tensor section is malformed") from None
