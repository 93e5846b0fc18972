"""Benchmark (issue #14): the intra codecs D-NeRV can code its key-frames with (``nervkit.io.intra``: av1,
hevc, vvc, jpeg), each exactly as nervkit runs it, on 256×320 tiles of the Bunny clip.

Key-frames: frames 0, 8, 16, … of the 720×1280 clip (``--frames``), key-frame i cut at tile i mod 8 of
the 2×4 grid of 256×320 tiles anchored at the top-left corner (rows 0 and 256, columns 0, 320, 640,
960), so the set covers every tile. For each codec a sweep of its quality (its own quantizer scale,
lower = better; the default of ``io/intra.py`` included) gives, per key-frame, the bytes, the RGB PSNR
of the decoded frame against the tile, and the encode and decode times (one key-frame per call, as
D-NeRV codes them: single-threaded encoders, PyAV in-process, VVC through the ffmpeg binary); a point
is the mean bytes (bpp), the mean of the per-frame PSNRs and the median times per frame.

VVC takes seconds per 256×320 frame, so it codes every ``--slow-every``-th key-frame only; its BD-rate
against HEVC is computed on those key-frames (HEVC's points recomputed on the same subset), the other
codecs' on all of them (and, for comparison, on VVC's subset too). ``--av1-cpu-used 4,2`` adds libaom at
slower speed settings than nervkit's (``cpu-used`` 6) as extra series ``av1-cpu4``, ``av1-cpu2`` (on
the slow subset too): how much of AV1's gain the speed setting gives up. BD-rate: ``nervkit.bench.bdrate``
(PSNR, piecewise cubic). The RGB PSNR of each codec's colour round trip without coding (RGB → 4:2:0 →
RGB) is the ceiling it approaches at its best quality.

    python benchmarks/keyframe_codecs.py                         # ~2 min on 2 cores
    python benchmarks/keyframe_codecs.py --av1-cpu-used 4,2      # ~4 min: BENCHMARKS.md's run
    python benchmarks/keyframe_codecs.py --frames 0:24:8 --slow-every 3 --out /tmp/k.json   # smoke test

Writes ``--out`` (JSON, schema ``nervkit-keyframe-codecs-bench/1``), ``<out>.md`` (tables) and
``<out>.png`` (PSNR vs bpp, encode time).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save_figure, write_json

from nervkit.bench.bdrate import bd_quality, bd_rate
from nervkit.io import FrameRange, intra, read_video

ROOT = Path(__file__).resolve().parent
BUNNY = ROOT.parent / "src" / "nervkit" / "assets" / "bigbuckbunny.mp4"
TILE = (256, 320)
#: quality sweeps (each includes the codec's default)
SWEEPS = {
    "av1": [14, 17, 20, 26, 32, 38, 44, 50],
    "hevc": [19, 22, 25, 28, 31, 34, 37, 40],
    "vvc": [22, 27, 32, 37, 42],
    "jpeg": [2, 3, 4, 6, 9, 14, 20],
}
ANCHOR = "hevc"


def key_frames(frames: str) -> tuple[torch.Tensor, list[dict[str, int]]]:
    """The key-frame tiles (K, 3, 256, 320) uint8 and where each comes from."""
    video = read_video(BUNNY, frames=FrameRange.parse(frames))
    h, w = video.frames.shape[2:]
    grid = [(y, x) for y in range(0, h - TILE[0] + 1, TILE[0]) for x in range(0, w - TILE[1] + 1, TILE[1])]
    tiles, where = [], []
    for i, (frame, index) in enumerate(zip(video.frames, video.indices)):
        y, x = grid[i % len(grid)]
        tiles.append(frame[:, y : y + TILE[0], x : x + TILE[1]])
        where.append({"frame": int(index), "y": y, "x": x})
    return torch.stack(tiles).contiguous(), where


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return 10 * math.log10(255.0**2 / mse) if mse else 100.0


def ceiling(tiles: torch.Tensor, codec: str) -> float:
    """Mean RGB PSNR of ``codec``'s colour round trip alone (RGB → its 4:2:0 format → RGB as
    ``nervkit.io.intra`` decodes it, no coding): the PSNR its best quality approaches."""
    spec, values = intra.CODECS[codec], []
    for tile in tiles:
        image = tile.permute(1, 2, 0).contiguous().numpy()
        picture = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=spec.pix_fmt)
        if spec.upsample_to is not None:
            picture = picture.reformat(format=spec.upsample_to, interpolation="BILINEAR")
        values.append(psnr(torch.from_numpy(picture.to_ndarray(format="rgb24")), torch.from_numpy(image)))
    return statistics.mean(values)


def sweep(codec: str, tiles: torch.Tensor, qualities: list[int]) -> list[dict[str, Any]]:
    points = []
    for q in qualities:
        sizes, psnrs, enc, dec = [], [], [], []
        for tile in tiles:
            t = time.perf_counter()
            (stream,) = intra.encode_images(tile[None], codec, q)
            enc.append(time.perf_counter() - t)
            t = time.perf_counter()
            decoded = intra.decode_images([stream], codec)
            dec.append(time.perf_counter() - t)
            sizes.append(len(stream))
            psnrs.append(psnr(decoded[0], tile))
        point = {"quality": q, "bytes": sizes, "psnr": psnrs, "encode_ms": [1000 * s for s in enc],
                 "decode_ms": [1000 * s for s in dec]}
        points.append(point)
        summary = summarize(point, range(len(tiles)))
        print(f"  {codec} {q:>3}: {summary['bpp']:.3f} bpp {summary['psnr']:.2f} dB, encode "
              f"{summary['encode_ms']:.0f} ms decode {summary['decode_ms']:.1f} ms per frame", flush=True)
    return points


def summarize(point: dict[str, Any], frames: Any) -> dict[str, float]:
    """One RD point over the key-frames ``frames`` (positions in the codec's list)."""
    frames = list(frames)
    size = statistics.mean(point["bytes"][i] for i in frames)
    return {"quality": point["quality"], "bytes_per_frame": size, "bpp": 8 * size / (TILE[0] * TILE[1]),
            "psnr": statistics.mean(point["psnr"][i] for i in frames),
            "encode_ms": statistics.median(point["encode_ms"][i] for i in frames),
            "decode_ms": statistics.median(point["decode_ms"][i] for i in frames)}


def curve(points: list[dict[str, Any]], frames: Any) -> tuple[list[float], list[float]]:
    rows = [summarize(p, frames) for p in points]
    return [r["bpp"] for r in rows], [r["psnr"] for r in rows]


def quality_for(points: list[dict[str, float]], target: float) -> float | None:
    """The (fractional) quality at which a codec reaches ``target`` dB: PSNR interpolated linearly
    between the two sweep points around it (None outside the sweep)."""
    rows = sorted(points, key=lambda r: r["quality"])
    for a, b in itertools.pairwise(rows):
        lo, hi = sorted((a["psnr"], b["psnr"]))
        if lo <= target <= hi and a["psnr"] != b["psnr"]:
            return a["quality"] + (target - a["psnr"]) * (b["quality"] - a["quality"]) / (b["psnr"] - a["psnr"])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", default="0:96:8", help="key-frames of the clip (A:B:S; default 12)")
    parser.add_argument("--slow-every", type=int, default=2,
                        help="VVC and the --av1-cpu-used series code every N-th key-frame only")
    parser.add_argument("--codecs", default="av1,hevc,vvc,jpeg")
    parser.add_argument("--av1-cpu-used", default="", help="extra AV1 series at these libaom cpu-used values")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "keyframe_codecs.json")
    parser.add_argument("--render", action="store_true", help="only write <out>.md and <out>.png from --out")
    args = parser.parse_args(argv)
    if args.render:
        out = json.loads(args.out.read_text())
        args.out.with_suffix(".md").write_text(markdown(out))
        plot(out, args.out.with_suffix(".png"))
        return 0
    codecs = args.codecs.split(",")
    if ANCHOR not in codecs:
        parser.error(f"--codecs must include the anchor {ANCHOR}")
    slow = {"vvc"}
    for speed in filter(None, args.av1_cpu_used.split(",")):  # registered for this process only
        name, base = f"av1-cpu{int(speed)}", intra.CODECS["av1"]
        intra.CODECS[name] = replace(base, name=name, options={**base.options, "cpu-used": str(int(speed))})
        SWEEPS[name] = SWEEPS["av1"]
        codecs.append(name)
        slow.add(name)
    torch.set_num_threads(1)
    started = time.perf_counter()
    tiles, where = key_frames(args.frames)
    subsets = {c: list(range(0, len(tiles), args.slow_every)) if c in slow else list(range(len(tiles)))
               for c in codecs}
    print(f"{len(tiles)} key-frames {TILE[0]}x{TILE[1]} (vvc: {len(subsets.get('vvc', []))})", flush=True)

    results: dict[str, Any] = {}
    for codec in codecs:
        spec = intra.CODECS[codec]
        qualities = sorted(set(SWEEPS[codec]) | {spec.default_quality})
        t = time.perf_counter()
        points = sweep(codec, tiles[subsets[codec]], qualities)
        results[codec] = {
            "encoder": spec.encoder or f"ffmpeg binary: {spec.binary_encoder}", "decoder": spec.decoder,
            "pix_fmt": spec.pix_fmt, "quality_name": spec.quality_name, "default_quality": spec.default_quality,
            "key_frames": subsets[codec], "seconds": time.perf_counter() - t, "raw": points,
            "points": [summarize(p, range(len(subsets[codec]))) for p in points],
        }

    # BD-rate vs the anchor on each codec's key-frames (the anchor's points recomputed on that subset)
    anchor = results[ANCHOR]
    bd: dict[str, Any] = {}
    for codec in codecs:
        if codec == ANCHOR:
            continue
        mine = results[codec]
        positions = [anchor["key_frames"].index(k) for k in mine["key_frames"]]
        ar, aq = curve(anchor["raw"], positions)
        tr, tq = curve(mine["raw"], range(len(mine["key_frames"])))
        row = {"key_frames": len(positions), "bd_rate_percent": bd_rate(ar, aq, tr, tq),
               "bd_psnr_db": bd_quality(ar, aq, tr, tq)}
        if "vvc" in results and codec != "vvc":  # the same codec on VVC's subset, for a like-for-like look
            sub = results["vvc"]["key_frames"]
            ar, aq = curve(anchor["raw"], [anchor["key_frames"].index(k) for k in sub])
            tr, tq = curve(mine["raw"], [mine["key_frames"].index(k) for k in sub])
            row["bd_rate_percent_on_vvc_key_frames"] = bd_rate(ar, aq, tr, tq)
        bd[codec] = row

    # speed at the defaults, and the defaults' PSNR (each on its own key-frames; and on VVC's subset)
    defaults: dict[str, Any] = {}
    for codec, r in results.items():
        point = next(p for p in r["points"] if p["quality"] == r["default_quality"])
        defaults[codec] = dict(point)
    if "vvc" in results:
        sub = results["vvc"]["key_frames"]
        for codec, r in results.items():
            raw = next(p for p in r["raw"] if p["quality"] == r["default_quality"])
            defaults[codec]["on_vvc_key_frames"] = summarize(raw, [r["key_frames"].index(k) for k in sub])
    target = defaults[ANCHOR]["psnr"]
    equal = {codec: {"target_psnr": target, "quality": quality_for(r["points"], target)}
             for codec, r in results.items()}
    speed = {codec: {"encode_ms": d["encode_ms"], "decode_ms": d["decode_ms"],
                     "encode_vs_hevc": d["encode_ms"] / defaults[ANCHOR]["encode_ms"]}
             for codec, d in defaults.items()}

    out = {
        "schema": "nervkit-keyframe-codecs-bench/1",
        "machine": machine(),
        "command": " ".join(["python", "benchmarks/keyframe_codecs.py", *(argv if argv is not None else sys.argv[1:])]),
        "config": {"source": str(BUNNY.relative_to(ROOT.parent)), "frames": args.frames, "tile": list(TILE),
                   "key_frames": where, "slow_every": args.slow_every, "slow_codecs": sorted(slow),
                   "anchor": ANCHOR, "options": {c: intra.CODECS[c].options for c in codecs},
                   "psnr": "RGB, uint8, mean of the per-frame PSNRs", "bd": "nervkit.bench.bdrate, pchip",
                   "av": av.__version__},
        "ceiling_psnr": {codec: ceiling(tiles, codec) for codec in codecs},
        "codecs": results,
        "bd_vs_hevc": bd,
        "defaults": defaults,
        "equal_psnr_quality": equal,
        "speed": speed,
        "seconds": time.perf_counter() - started,
    }
    write_json(args.out, out)
    args.out.with_suffix(".md").write_text(markdown(out))
    plot(out, args.out.with_suffix(".png"))
    print(markdown(out))
    print(f"wrote {args.out}, {args.out.with_suffix('.md')}, {args.out.with_suffix('.png')} "
          f"in {out['seconds']:.0f} s")
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = ["| codec | quality | bytes/frame | bpp | PSNR (dB) | encode ms/frame | decode ms/frame |",
             "|---|---|---|---|---|---|---|"]
    for codec, c in r["codecs"].items():
        for p in c["points"]:
            mark = " (default)" if p["quality"] == c["default_quality"] else ""
            lines.append(f"| {codec} | {c['quality_name']} {p['quality']}{mark} | {p['bytes_per_frame']:,.0f} | "
                         f"{p['bpp']:.3f} | {p['psnr']:.2f} | {p['encode_ms']:.0f} | {p['decode_ms']:.1f} |")
    lines += ["", ("| codec | key-frames | BD-rate vs hevc | BD-PSNR vs hevc | on VVC's key-frames | encode time "
                   "at the default vs hevc |"), "|---|---|---|---|---|---|"]
    for codec, b in r["bd_vs_hevc"].items():
        other = b.get("bd_rate_percent_on_vvc_key_frames")
        lines.append(f"| {codec} | {b['key_frames']} | {b['bd_rate_percent']:+.1f} % | {b['bd_psnr_db']:+.2f} dB | "
                     + (f"{other:+.1f} %" if other is not None else "-")
                     + f" | {r['speed'][codec]['encode_vs_hevc']:.2g}x |")
    lines += ["", f"Defaults (PSNR target for equal quality: hevc's default, {r['defaults']['hevc']['psnr']:.2f} dB):",
              "", "| codec | default | bpp | PSNR (dB) | quality for hevc's PSNR |", "|---|---|---|---|---|"]
    for codec, d in r["defaults"].items():
        q = r["equal_psnr_quality"][codec]["quality"]
        name = r["codecs"][codec]["quality_name"]
        lines.append(f"| {codec} | {name} {d['quality']} | {d['bpp']:.3f} | {d['psnr']:.2f} | "
                     + (f"{q:.1f}" if q is not None else "outside the sweep") + " |")
    c = r["ceiling_psnr"]
    lines += ["", "Colour round trip without coding (RGB PSNR ceiling): "
              + ", ".join(f"{codec} {value:.2f} dB" for codec, value in c.items()) + "."]
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rd, speed) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    # every codec on the key-frames they all coded (the slow codecs' subset), so the curves compare
    common = sorted(set.intersection(*(set(c["key_frames"]) for c in r["codecs"].values())))
    for codec, c in r["codecs"].items():
        positions = [c["key_frames"].index(k) for k in common]
        pts = sorted((summarize(p, positions) for p in c["raw"]), key=lambda p: p["bpp"])
        (line,) = rd.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], marker="o", label=codec)
        d = next(p for p in pts if p["quality"] == c["default_quality"])
        rd.plot([d["bpp"]], [d["psnr"]], marker="*", markersize=16, color=line.get_color(), linestyle="none")
    if "hevc" in r["ceiling_psnr"]:
        rd.axhline(r["ceiling_psnr"]["hevc"], color="grey", linestyle=":", label="4:2:0 10-bit round trip")
    rd.set_xscale("log")
    rd.set_xlabel("bits per pixel (log)")
    rd.set_ylabel("PSNR RGB (dB)")
    rd.set_title(f"{len(common)} key-frames {TILE[0]}x{TILE[1]}, Bunny tiles (star: default quality)")
    rd.grid(True, alpha=0.3)
    rd.legend(fontsize="small")
    names = list(r["speed"])
    speed.bar(names, [r["speed"][n]["encode_ms"] for n in names], label="encode")
    speed.bar(names, [r["speed"][n]["decode_ms"] for n in names], label="decode", alpha=0.7)
    speed.set_yscale("log")
    speed.tick_params(axis="x", labelrotation=30)
    speed.set_ylabel("ms per key-frame at the default (median)")
    speed.legend(fontsize="small")
    speed.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
