"""The header of a ``.nerv`` file, checked before anything is built from it (docs/bitstream.md,
"What the decoder checks").

A header is untrusted JSON: every value is checked against the method's config dataclass and bounded
(frames, sizes, frame rate, config integers and lists) before a model is built or anything allocated
from it; every problem is a one-line :class:`~nervkit.errors.BitstreamError` about the file.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from typing import Any

from ..errors import BitstreamError, NervkitError
from ..models import VideoGeometry
from ..models.base import STORAGE_KINDS, MethodConfig
from ..models.config import config_from_dict, validate_choices
from ..models.registry import MethodSpec, get_method, list_methods
from .quantize import MAX_BITS, MIN_BITS

FORMAT_NAME = "nervkit"

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
GEOMETRY_FIELDS = ("num_frames", "height", "width")
#: videos of a collection in one file
MAX_VIDEOS = 1 << 16


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
        raise BitstreamError(f"the file's method {short(method)} is not one this nervkit knows "
                             f"({', '.join(list_methods())})")
    spec = get_method(method)
    geometry = check_geometry(header["geometry"])
    config = _check_config(spec, header["config"])
    if "video" in header and not isinstance(header["video"], dict):
        raise BitstreamError(f"the header's video must be an object, got {short(header['video'])}")
    check_video(header.get("video"))
    check_collection(header.get("video"), geometry)
    _check_quantization(header.get("quantization"))
    output_size = header.get("output_size")
    if output_size is not None and not (
        isinstance(output_size, list) and len(output_size) == 2
        and all(is_int(v) and 0 < v <= 2 * MAX_FRAME_SIDE for v in output_size)
    ):
        raise BitstreamError(f"the header's output_size must be two positive integers, "
                             f"got {short(output_size)}")
    entries = header["tensors"]
    if not isinstance(entries, list):
        raise BitstreamError("the header's tensors must be a list")
    for i, entry in enumerate(entries, start=2):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise BitstreamError(f"the header's entry for section {i} has no name")
        if "values" in entry and not (is_int(entry["values"]) and entry["values"] >= 0):
            raise BitstreamError(f"the header's entry for section {i} has an invalid value count "
                                 f"{short(entry['values'])}")
        if "group" in entry and not isinstance(entry["group"], str):
            raise BitstreamError(f"the header's entry for section {i} has an invalid group "
                                 f"{short(entry['group'])}")
        if "storage" in entry and entry["storage"] not in STORAGE_KINDS:
            raise BitstreamError(f"the header's entry for section {i} has an unknown storage kind "
                                 f"{short(entry['storage'])}")
    return spec, config, geometry


def check_geometry(geo: Any) -> VideoGeometry:
    """The header's geometry: exactly num_frames, height, width (and, for a collection of videos,
    ``segments``: each video's frame count, at most MAX_VIDEOS, adding up to num_frames)."""
    keys = set(geo) - {"segments"} if isinstance(geo, dict) else None
    if not isinstance(geo, dict) or keys != set(GEOMETRY_FIELDS):
        found = ", ".join(short(k, 24) for k in geo) if isinstance(geo, dict) else short(geo)
        raise BitstreamError(f"the header's geometry must hold exactly {', '.join(GEOMETRY_FIELDS)} (and "
                             f"segments for a collection); it holds {found or 'nothing'}")
    for key in GEOMETRY_FIELDS:
        if not is_int(geo[key]):
            raise BitstreamError(f"the header's geometry.{key} must be an integer, got {short(geo[key])}")
    if not 1 <= geo["num_frames"] <= MAX_FRAMES:
        raise BitstreamError(f"the header declares {geo['num_frames']:,} frames; a .nerv file holds 1 to "
                             f"{MAX_FRAMES:,}")
    if not (1 <= geo["height"] <= MAX_FRAME_SIDE and 1 <= geo["width"] <= MAX_FRAME_SIDE):
        raise BitstreamError(f"the header declares frames of {geo['height']}x{geo['width']}; each side must "
                             f"be 1 to {MAX_FRAME_SIDE}")
    segments = geo.get("segments", [])
    if not (isinstance(segments, list) and len(segments) <= MAX_VIDEOS
            and all(is_int(n) and n >= 1 for n in segments)
            and (not segments or sum(segments) == geo["num_frames"])):
        raise BitstreamError(f"the header's geometry.segments must be at most {MAX_VIDEOS:,} positive frame counts "
                             f"adding up to {geo['num_frames']:,}, got {short(segments)}")
    return VideoGeometry(geo["num_frames"], geo["height"], geo["width"], tuple(segments))


def check_collection(video: Any, geometry: VideoGeometry) -> list[dict[str, Any]]:
    """A collection file's videos (the header's ``video.videos``: one ``{name, fps}`` per segment of the
    geometry, names unique and printable); ``[]`` for a single video. Files written without names get
    ``video-1``, ``video-2``, …"""
    if not geometry.segments:
        return []
    listed = video.get("videos") if isinstance(video, dict) else None
    if listed is None:
        return [{"name": f"video-{i + 1}", "fps": None} for i in range(len(geometry.segments))]
    if not isinstance(listed, list) or len(listed) != len(geometry.segments):
        raise BitstreamError(f"the header's video.videos must list the {len(geometry.segments)} videos of its "
                             f"geometry, got {short(listed)}")
    names = set()
    for i, entry in enumerate(listed):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or len(name) > 256 or not name.isprintable() or name in names:
            raise BitstreamError(f"the header's video.videos[{i}] needs a unique printable name, got {short(entry)}")
        names.add(name)
        check_video({"fps": entry.get("fps")})
    return [{"name": e["name"], "fps": e.get("fps")} for e in listed]


def check_video(video: Any) -> float | None:
    """The header's ``video`` (optional, an object): its ``fps``, when given and not null, is a sane
    frame rate."""
    if video is None:
        return None
    if not isinstance(video, dict):
        raise BitstreamError(f"the header's video must be an object, got {short(video)}")
    fps = video.get("fps")
    if fps is None:
        return None
    if not is_number(fps) or not math.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
        raise BitstreamError(f"the header's video.fps must be a frame rate from {MIN_FPS:g} to {MAX_FPS:g}, "
                             f"got {short(fps)}")
    return float(fps)


def _check_quantization(quant: Any) -> None:
    if quant is None:
        return
    if not isinstance(quant, dict):
        raise BitstreamError(f"the header's quantization must be an object, got {short(quant)}")
    for key in ("bits", "embed_bits"):
        if key in quant and not (is_int(quant[key]) and MIN_BITS <= quant[key] <= MAX_BITS):
            raise BitstreamError(f"the header's quantization.{key} must be an integer from {MIN_BITS} to "
                                 f"{MAX_BITS}, got {short(quant[key])}")
    if "latent" in quant and not isinstance(quant["latent"], dict):
        raise BitstreamError("the header's quantization.latent must be an object")


def _check_config(spec: MethodSpec, config: Any) -> MethodConfig:
    """The header's config as ``spec``'s config dataclass: known keys only (a missing key takes its
    default), each value of its declared JSON type, integers and lists bounded, choices respected."""
    if not isinstance(config, dict):
        raise BitstreamError(f"the header's config must be an object, got {short(config)}")
    known = {f.name: f for f in fields(spec.config_cls)}
    unknown = [k for k in config if k not in known]
    if unknown:
        raise BitstreamError(f"the header's config has {len(unknown)} key(s) that {spec.name} does not have: "
                             f"{', '.join(short(k, 32) for k in unknown[:3])}")
    hints = typing.get_type_hints(spec.config_cls)
    for key, value in config.items():
        _check_value(f"config.{key}", value, hints[key])
        choices = known[key].metadata.get("choices")
        if choices and value not in choices:
            raise BitstreamError(f"the header's config.{key} is {short(value)}; {spec.name} knows "
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
                                 f"got {short(value)}")
        elem = args[0] if args else Any
        for v in value:
            _check_value(name, v, elem)
        return
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = is_int(value) and abs(value) <= MAX_CONFIG_INT
    elif annotation is float:
        ok = is_number(value) and math.isfinite(value) and abs(value) <= 1e30
    elif annotation is str:
        ok = isinstance(value, str) and len(value) <= 64
    else:
        ok = True
    if not ok:
        what = {int: f"an integer of magnitude at most {MAX_CONFIG_INT:,}", float: "a finite number",
                bool: "true or false", str: "a short string"}.get(annotation, str(annotation))
        raise BitstreamError(f"the header's {name} must be {what}, got {short(value)}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters and made printable (header values are untrusted)."""
    text = repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def label(name: str) -> str:
    text = "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in name)
    return text if len(text) <= 64 else text[:61] + "..."


def shape_text(shape: Any) -> str:
    dims = list(shape)
    return "x".join(str(d) for d in dims) if dims else "a scalar"
