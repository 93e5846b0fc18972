"""What a ``.nerv`` file holds and what its parts cost: :func:`inspect` (``nervkit inspect``) and
:func:`coding_efficiency` (the entropy coder against the entropy and a Huffman code; ``bench rd``)."""

from __future__ import annotations

import os
from typing import Any

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
        g = groups.setdefault(s.group, {"values": 0, "bytes": 0})
        g["values"] += s.values
        g["bytes"] += s.bytes
    for g in groups.values():
        g["bits_per_value"] = 8.0 * g["bytes"] / g["values"] if g["values"] else 0.0
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
        "container_overhead_bytes": nerv.file_bytes - sum(s.bytes for s in nerv.sizes),
        "groups": groups,
        "sections": [{"name": s.name, "kind": s.kind, "group": s.group, "values": s.values, "bytes": s.bytes,
                      "bits_per_value": s.bits_per_value} for s in nerv.sizes],
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
