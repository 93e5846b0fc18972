"""The report of ``nervkit bench rd``: BD-rates of every series against the anchor, the byte breakdown
and entropy-coding efficiency of a ``.nerv`` file, and the Markdown tables (``rd.md``)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

from nervkit.bench.bdrate import BDRateWarning, bd_quality, bd_rate
from nervkit.bench.results import RDResults
from nervkit.compress.inspect import coding_efficiency, inspect
from nervkit.errors import ConfigError


def bd_table(series: dict[str, RDResults], anchor: str) -> dict[str, dict[str, Any]]:
    """BD-rate (PSNR, MS-SSIM) and BD-PSNR of every series against ``anchor`` (None + note where undefined)."""
    base = series[anchor].results
    table: dict[str, dict[str, Any]] = {}
    for name, rd in series.items():
        if name == anchor:
            continue
        row: dict[str, Any] = {}
        notes = []
        for key, metric in (("bd_rate_psnr", "psnr-rgb"), ("bd_rate_ms_ssim", "ms-ssim-rgb"), ("bd_psnr", "psnr-rgb")):
            value = _bd(key, base, rd.results, metric)
            if isinstance(value, str):
                if value not in notes:
                    notes.append(value)
                value = None
            row[key] = value
        row["note"] = "; ".join(notes) or None
        table[name] = row
    return table


def _bd(key: str, base: dict, test: dict, metric: str) -> float | str:
    if metric not in base or metric not in test:
        return f"no {metric} values"
    pairs = [(r, q) for r, q in zip(base["bpp"], base[metric]) if q is not None]
    tpairs = [(r, q) for r, q in zip(test["bpp"], test[metric]) if q is not None]
    if len(pairs) < 2 or len(tpairs) < 2:
        return "needs at least 2 points per curve"
    fn = bd_quality if key == "bd_psnr" else bd_rate
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BDRateWarning)
        try:
            value = fn(*zip(*pairs), *zip(*tpairs))
        except ConfigError as exc:
            return str(exc)
    if not math.isfinite(value):
        return str(caught[-1].message) if caught else "undefined"
    return float(value)


def file_breakdown(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The summary's ``breakdown`` (bytes of the header, the container and every group and section of the
    ``.nerv`` file at ``path``) and ``coding_efficiency`` (:func:`nervkit.compress.inspect.coding_efficiency`)."""
    info = inspect(path)
    header = next(s for s in info["sections"] if s["kind"] == "header")
    return {"breakdown": {"file": str(path), "bytes": info["bytes"], "header_bytes": header["bytes"],
                          "container_overhead_bytes": info["container_overhead_bytes"],
                          "groups": info["groups"], "sections": info["sections"]},
            "coding_efficiency": coding_efficiency(path)}


def markdown_report(summary: dict[str, Any]) -> str:
    """The RD table, the BD table, the byte breakdown and the coding efficiency as Markdown."""
    meta = summary["meta"]
    lines = [f"# Rate–distortion: {Path(meta['video']).name}, {meta['frames']} frames {meta['height']}x{meta['width']}",
             "", f"Machine: {meta['machine']['cpu']} ({meta['machine']['cores']} cores)"
             + (f", GPU {meta['machine']['gpu']}" if meta["machine"].get("gpu") else "")
             + f"; torch {meta['machine']['torch']}.", "",
             "| series | setting | bpp | PSNR (dB) | MS-SSIM | VMAF | encode (s) | decode (s) |",
             "|---|---|---|---|---|---|---|---|"]

    def num(v: Any, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    for name, data in summary["series"].items():
        r = data["results"]
        neural = "params" in r
        for i in range(len(r["bpp"])):
            setting = f"{r['params'][i] / 1e6:.3f} M params" if neural else \
                f"{data['meta'].get('quality_option', 'q')} {num(r.get('quality', [None] * (i + 1))[i], 'g')}"
            lines.append(f"| {name} | {setting} | {r['bpp'][i]:.4f} | {r['psnr-rgb'][i]:.2f} | "
                         f"{num(r.get('ms-ssim-rgb', [None] * (i + 1))[i], '.4f')} | "
                         f"{num(r.get('vmaf', [None] * (i + 1))[i], '.1f')} | "
                         f"{num(r.get('encoding_time', [None] * (i + 1))[i], '.1f')} | "
                         f"{num(r.get('decoding_time', [None] * (i + 1))[i], '.2f')} |")
    lines += ["", f"BD against {summary['anchor']} (negative BD-rate: fewer bits for the same quality):", "",
              "| series | BD-rate PSNR (%) | BD-rate MS-SSIM (%) | BD-PSNR (dB) | note |", "|---|---|---|---|---|"]
    for name, row in summary["bd"].items():
        lines.append(f"| {name} | {num(row['bd_rate_psnr'], '+.1f')} | {num(row['bd_rate_ms_ssim'], '+.1f')} | "
                     f"{num(row['bd_psnr'], '+.2f')} | {row['note'] or ''} |")
    breakdown = summary.get("breakdown")
    if breakdown:
        lines += ["", f"Byte breakdown of {Path(breakdown['file']).name} ({breakdown['bytes']:,} bytes):", "",
                  "| part | values | bytes | bits/value |", "|---|---|---|---|"]
        lines.append(f"| header + container | – | {breakdown['header_bytes'] + breakdown['container_overhead_bytes']:,} | – |")
        for group, g in breakdown["groups"].items():
            lines.append(f"| {group} | {g['values']:,} | {g['bytes']:,} | {g['bits_per_value']:.3f} |")
    eff = summary.get("coding_efficiency")
    if eff and eff.get("values"):
        lines += ["", f"Entropy coding of its {eff['values']:,} quantized weights, bits per weight "
                  "(each tensor coded with its own statistics):", "",
                  "| empirical entropy | ANS | Huffman | ANS + histogram | Huffman + code table | whole sections |",
                  "|---|---|---|---|---|---|",
                  f"| {eff['entropy_bits_per_value']:.4f} | {eff['ans_bits_per_value']:.4f} "
                  f"({100 * (eff['ans_over_entropy'] - 1):+.2f} %) | {eff['huffman_bits_per_value']:.4f} | "
                  f"{eff['ans_with_histogram_bits_per_value']:.4f} | {eff['huffman_with_table_bits_per_value']:.4f} | "
                  f"{eff['section_bits_per_value']:.4f} |"]
    return "\n".join(lines) + "\n"
