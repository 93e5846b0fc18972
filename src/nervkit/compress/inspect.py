"""What a ``.nerv`` file holds and what its parts cost: :func:`inspect` (``nervkit inspect``) and
:func:`coding_efficiency` (the entropy coder against the entropy and a Huffman code; ``bench rd``).

Rate-trained tensors (section kind ``learned``) store their learned quantization steps and entropy
model beside their codes: ``entropy_model_bytes`` (per section, per group and in all) counts those, and
each group's ``code_bits_per_value`` the codes alone.

The byte breakdown (``parts``) splits the file into the header, the model (every tensor except the
key-frames), the key-frames and the container's framing, which add up to the file size. Key-frames are
the tensors of storage kind ``key_frames`` (D-NeRV's): the bitstreams of an image codec, all in one
uint8 tensor, and the bitstream length of each key-frame in one integer tensor; the codec and its
quality come from the header's config (``keyframe_codec``, ``keyframe_quality``; -1 = the codec's
default, :data:`nervkit.io.intra.DEFAULT_QUALITY`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..io.intra import CODECS, DEFAULT_QUALITY
from .container import read_container
from .entropy import (
    empirical_entropy_bits,
    encode_symbols,
    histogram_header_bytes,
    huffman_code_bits,
    huffman_table_bits,
)
from .model_codec import read_nerv
from .tensor_codec import decode_quantized


def inspect(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Format, method, config, video and a byte breakdown (header, each tensor) of a ``.nerv`` file."""
    nerv = read_nerv(path)
    h, geo = nerv.header, nerv.geometry
    groups: dict[str, dict[str, float]] = {}
    for s in nerv.sizes[1:]:
        g = groups.setdefault(s.group, {"values": 0, "bytes": 0, "entropy_model_bytes": 0})
        g["values"] += s.values
        g["bytes"] += s.bytes
        g["entropy_model_bytes"] += s.model_bytes
    for g in groups.values():
        g["bits_per_value"] = 8.0 * g["bytes"] / g["values"] if g["values"] else 0.0
        g["code_bits_per_value"] = 8.0 * (g["bytes"] - g["entropy_model_bytes"]) / g["values"] if g["values"] else 0.0
    storage = {str(e.get("name")): e.get("storage") for e in h.get("tensors", []) if isinstance(e, dict)}
    key_sections = [s for s in nerv.sizes[1:] if storage.get(s.name) == "key_frames"]
    key_bytes = sum(s.bytes for s in key_sections)
    model_bytes = sum(s.bytes for s in nerv.sizes[1:]) - key_bytes
    overhead = nerv.file_bytes - sum(s.bytes for s in nerv.sizes)
    return {
        "file": str(path),
        "bytes": nerv.file_bytes,
        "bpp": nerv.file_bytes * 8 / geo.pixels,
        "format_version": 1,
        "method": h["method"],
        "config": h["config"],
        "frames": geo.num_frames,
        "size": [geo.height, geo.width],
        "fps": h.get("video", {}).get("fps"),
        "quantization": h.get("quantization"),
        "container_overhead_bytes": overhead,
        "parts": {"header": nerv.sizes[0].bytes, "model": model_bytes, "key_frames": key_bytes,
                  "container_overhead": overhead},
        "model_bytes": model_bytes,
        "model_bpp": model_bytes * 8 / geo.pixels,
        "key_frames": _key_frames(nerv, key_sections, geo) if key_sections else None,
        "groups": groups,
        "entropy_model_bytes": sum(s.model_bytes for s in nerv.sizes),
        "sections": [{"name": s.name, "kind": s.kind, "group": s.group, "values": s.values, "bytes": s.bytes,
                      "bits_per_value": s.bits_per_value, "entropy_model_bytes": s.model_bytes}
                     for s in nerv.sizes],
    }


def _key_frames(nerv: Any, sections: list[Any], geo: Any) -> dict[str, Any]:
    """The key-frames of a file: codec, quality, count, the bytes of their bitstreams (in all and per
    key-frame), bits per key-frame pixel, and what storing them costs beyond the bitstreams."""
    tensors = {s.name: nerv.tensors[s.name] for s in sections}
    streams = [t for t in tensors.values() if t.dtype == torch.uint8]
    lengths = [t for t in tensors.values() if t.dtype != torch.uint8 and not t.is_floating_point()]
    stream_bytes = sum(t.numel() for t in streams)
    per_frame = [int(v) for v in lengths[0].reshape(-1).tolist()] if len(lengths) == 1 else []
    config = nerv.header.get("config") or {}
    codec = config.get("keyframe_codec")
    quality = config.get("keyframe_quality")
    if isinstance(quality, int) and quality < 0:
        quality = DEFAULT_QUALITY.get(str(codec), quality)
    stored = sum(s.bytes for s in sections)
    pixels = len(per_frame) * geo.height * geo.width
    return {
        "group": ",".join(dict.fromkeys(s.group for s in sections)),
        "codec": codec,
        "quality": quality,
        "quality_name": CODECS[codec].quality_name if codec in CODECS else None,
        "count": len(per_frame),
        "bytes": sum(per_frame) if per_frame else stream_bytes,
        "bytes_per_key_frame": per_frame,
        "mean_bytes_per_key_frame": sum(per_frame) / len(per_frame) if per_frame else None,
        "bits_per_key_frame_pixel": 8 * sum(per_frame) / pixels if pixels else None,
        "stored_bytes": stored,
        "storage_overhead_bytes": stored - (sum(per_frame) if per_frame else stream_bytes),
        "video_bpp": stored * 8 / geo.pixels,
    }


def coding_efficiency(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Bits per quantized weight of the file's dense tensors, each tensor with its own statistics:
    the empirical entropy (order 0, the ideal), nervkit's ANS words alone and with the histogram it
    stores, a Huffman code of the same symbols alone and with a canonical code table
    (:func:`~nervkit.compress.entropy.huffman_table_bits`), and the whole sections (with the
    quantization ranges and shapes)."""
    totals = dict.fromkeys(("values", "entropy", "ans", "ans_histogram", "huffman", "huffman_table", "section"), 0.0)
    for s in read_container(path):
        if s.kind != "tensor":
            continue
        qt = decode_quantized(s.payload)
        symbols = qt.q.reshape(-1)
        totals["values"] += symbols.size
        totals["entropy"] += empirical_entropy_bits(symbols)
        header = 8 * histogram_header_bytes(symbols)
        totals["ans"] += 8 * len(encode_symbols(symbols, qt.levels)) - header
        totals["ans_histogram"] += header
        totals["huffman"] += huffman_code_bits(symbols)
        totals["huffman_table"] += huffman_table_bits(symbols)
        totals["section"] += 8 * len(s.payload)
    n = totals["values"]
    if not n:
        return {"values": 0}
    return {
        "values": int(n),
        "tensors_note": "dense tensor sections only (pruned tensors are coded as mask + non-zeros)",
        "entropy_bits_per_value": totals["entropy"] / n,
        "ans_bits_per_value": totals["ans"] / n,
        "ans_with_histogram_bits_per_value": (totals["ans"] + totals["ans_histogram"]) / n,
        "huffman_bits_per_value": totals["huffman"] / n,
        "huffman_with_table_bits_per_value": (totals["huffman"] + totals["huffman_table"]) / n,
        "section_bits_per_value": totals["section"] / n,
        "ans_over_entropy": totals["ans"] / totals["entropy"] if totals["entropy"] else None,
    }
