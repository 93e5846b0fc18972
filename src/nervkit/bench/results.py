"""Rate–distortion results as JSON: the schema, :class:`RDResults`, a writer and a reader.

One file per method (CompressAI's ``results/`` layout, extended)::

    {
      "schema": "nervkit-rd/1",
      "name": "x265",                          # method name, the legend label
      "description": "H.265/HEVC, libx265 preset slow, CRF",
      "meta": {...},                           # free-form: video, frames, height, width, fps, machine, ...
      "results": {
        "quality":       [20, 24, ...],        # optional: the codec's CRF/QP (or any per-point setting)
        "bpp":           [0.21, 0.12, ...],    # required: bits per pixel = file bits / (frames × H × W)
        "psnr-rgb":      [39.1, 36.0, ...],    # required: mean per-frame PSNR over RGB, dB
        "ssim-rgb":      [...],                # optional
        "ms-ssim-rgb":   [...],                # optional
        "vmaf":          [...],                # optional: vmaf_v0.6.1 pooled mean; null where not measured
        "encoding_time": [...],                # optional: seconds for the whole clip
        "decoding_time": [...]                 # optional: seconds for the whole clip
      }
    }

Every list in ``results`` has one entry per RD point, in the same order; ``null`` marks a value that was
not measured. Unknown keys in ``results`` are kept (lists of numbers/null of the same length). The
reader checks this and raises :class:`~nervkit.errors.InputError` with one line on any violation.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nervkit.errors import InputError
from nervkit.io.atomic import write_json_atomic

SCHEMA = "nervkit-rd/1"
REQUIRED = ("bpp", "psnr-rgb")
KNOWN = ("quality", "bpp", "psnr-rgb", "ssim-rgb", "ms-ssim-rgb", "vmaf", "encoding_time", "decoding_time")


@dataclass
class RDResults:
    """The RD points of one method: ``results[key]`` lists one value (or None) per point."""

    name: str
    description: str = ""
    results: dict[str, list[float | None]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self.name, self.results, "RD results")

    def __len__(self) -> int:
        return len(self.results["bpp"])

    def points(self) -> list[dict[str, float | None]]:
        """The points one by one: ``[{"bpp": .., "psnr-rgb": .., ...}, ...]``."""
        return [{key: values[i] for key, values in self.results.items()} for i in range(len(self))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "description": self.description,
            "meta": self.meta,
            "results": {key: list(values) for key, values in self.results.items()},
        }

    @classmethod
    def from_points(
        cls, name: str, points: Iterable[dict[str, float | None]], *, description: str = "", meta: dict | None = None
    ) -> RDResults:
        """Build from per-point dicts (missing keys become None)."""
        points = list(points)
        keys: list[str] = []
        for point in points:
            keys.extend(k for k in point if k not in keys)
        results = {key: [point.get(key) for point in points] for key in keys}
        return cls(name, description, results, dict(meta or {}))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(name: object, results: object, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: 'name' must be a non-empty string")
    if not isinstance(results, dict):
        raise InputError(f"{where}: 'results' must be an object of lists")
    for key in REQUIRED:
        if key not in results:
            raise InputError(f"{where}: 'results' has no '{key}' list")
    length = None
    for key, values in results.items():
        if not isinstance(values, list):
            raise InputError(f"{where}: results['{key}'] must be a list")
        if length is None:
            length = len(values)
        elif len(values) != length:
            raise InputError(f"{where}: results['{key}'] has {len(values)} values, expected {length}")
        for value in values:
            if value is not None and not _number(value):
                raise InputError(f"{where}: results['{key}'] holds {value!r}, not a finite number or null")
    for key in REQUIRED:
        if any(value is None for value in results[key]):
            raise InputError(f"{where}: results['{key}'] must not hold null")
    if any(value <= 0 for value in results["bpp"]):
        raise InputError(f"{where}: results['bpp'] must be positive")


def write_results(path: str | os.PathLike[str], rd: RDResults) -> Path:
    """Write ``rd`` as JSON to ``path`` atomically; returns the path."""
    write_json_atomic(path, rd.to_dict())
    return Path(path)


def read_json_object(path: str | os.PathLike[str]) -> dict:
    """The JSON object in an RD results file; a one-line InputError when it is missing, unreadable or not an
    object (``read_results`` and ``bench plot`` read their files through it)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read RD results {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: RD results must be a JSON object")
    return data


def read_results(path: str | os.PathLike[str]) -> RDResults:
    """Read and validate an RD results file (InputError on any problem)."""
    data = read_json_object(path)
    schema = data.get("schema", SCHEMA)  # CompressAI files have no schema field
    if schema != SCHEMA:
        raise InputError(f"{path}: unknown RD results schema {schema!r} (expected {SCHEMA})")
    _validate(data.get("name"), data.get("results"), str(path))
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise InputError(f"{path}: 'meta' must be an object")
    return RDResults(str(data["name"]), str(data.get("description", "")), data["results"], meta)


def codec_rd_curve(
    frames,
    codec: str,
    qualities: Sequence[int] | None = None,
    *,
    fps: float = 25.0,
    vmaf: bool = True,
    ms_ssim: bool = True,
    meta: dict | None = None,
    device: str = "cpu",
) -> RDResults:
    """Encode/decode ``frames`` at each quality of ``codec`` (default: its ladder) and collect the RD points."""
    from nervkit.bench.codecs import as_rgb_frames, codec_spec, encode_decode
    from nervkit.bench.quality import measure_quality

    spec = codec_spec(codec)
    rgb = as_rgb_frames(frames)
    points = []
    for q in qualities if qualities is not None else spec.ladder:
        coded = encode_decode(rgb, spec, q, fps=fps)
        quality = measure_quality(rgb, coded.frames, vmaf=vmaf, ms_ssim=ms_ssim, fps=fps, device=device)
        points.append(
            {
                "quality": coded.quality,
                "bpp": coded.bpp,
                "psnr-rgb": quality.psnr,
                "ssim-rgb": quality.ssim,
                "ms-ssim-rgb": quality.ms_ssim,
                "vmaf": quality.vmaf,
                "encoding_time": coded.encode_seconds,
                "decoding_time": coded.decode_seconds,
            }
        )
    n, height, width, _ = rgb.shape
    info = {"frames": n, "height": height, "width": width, "fps": fps, "encoder": spec.encoder,
            "quality_option": spec.quality_option, "encoder_args": list(spec.args), "container": spec.muxer}
    info.update(meta or {})
    return RDResults.from_points(spec.name, points, description=spec.description, meta=info)
