"""D-NeRV on a collection of tile-videos vs one shared NeRV vs one NeRV per video, at equal file bytes
(issue #14; paper: He et al., CVPR 2023, Tables 1–3).

Every number comes from the real command line: ``nervkit fit`` over the collection, ``nervkit compress``
(8-bit weights, entropy-coded; D-NeRV's coded key-frames included in the bytes), the quality of the
model decoded from the file. Steps (each resumable: a finished step is read back from its folder):

1. **D-NeRV** (``--model d-nerv``, the paper's variant: per-pixel SAF, AV1 key-frames) at ``--params``;
   its file bytes B are the budget of the baselines.
2. **NeRV (shared)**: one NeRV over all frames of all videos, sized for B bytes (the parameter count
   that the D-NeRV file's bytes per stored weight give).
3. **NeRV per video**: one NeRV per video, each sized for B / (number of videos) (CPU scale only).
4. **Ablations** (paper Table 3) at ``--ablation-epochs``: no flow, no GTMLP, SAF → concatenation, the
   code's per-channel SAF, and HEVC / JPEG key-frames instead of AV1, against the default at the
   same length.
5. **x264 / x265** per video, the PSNR interpolated at D-NeRV's bpp from a CRF sweep, for orientation.

Scales::

    python benchmarks/d_nerv_collection.py cpu            # 12 Bunny tiles 120x160, 38 frames each
    python benchmarks/d_nerv_collection.py cpu --diverse  # + the tiles of ../shared/data/collection: 27 videos
    python benchmarks/d_nerv_collection.py gpu --minutes 5 --device cuda
        # the paper's UVG-S (C0 166, 15.96 M) on 256x320 tiles of Bunny and the collection videos,
        # cut into 66-frame segments (46 tile-videos), trained for the time given; shared NeRV at equal bytes

Results: ``benchmarks/results/d_nerv_collection[_diverse|_gpu].json`` (+ a plot); runs in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, matmul_peak_gflops, save_figure, write_json

ROOT = Path(__file__).resolve().parents[1]
BUNNY = ROOT / "src" / "nervkit" / "assets" / "bigbuckbunny.mp4"
COLLECTION = Path(os.environ.get("NERVKIT_COLLECTION", ROOT.parent / "shared" / "data" / "collection"))
OTHERS = ("cityCC0.mpg", "vtest.avi", "display-dual-monitors.webm")


def nervkit(*args: Any, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``nervkit ARGS --json`` (JSON on stdout); raise with its error line on failure."""
    cmd = [sys.executable, "-m", "nervkit", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\n{proc.stderr.strip()[-2000:]}")
    out = proc.stdout.strip()
    return json.loads(out[out.index("{"):]) if "{" in out else {}


def collection_args(scale: str, diverse: bool, work: Path) -> list[str]:
    """The fit arguments that describe the collection."""
    if scale == "gpu":
        listing = work / "videos.txt"
        lines = [f"{BUNNY} bunny"] + [f"{COLLECTION / name} {Path(name).stem}" for name in OTHERS]
        listing.write_text("\n".join(lines) + "\n")
        return ["--list", listing, "--tile", "256x320", "--frames", "0:132", "--segment-frames", "66"]
    if not diverse:
        return [BUNNY, "--tile", "240x320", "--size", "120x160", "--frames", "0:38"]
    # the 12 Bunny tiles and the 240x320 tiles of the other clips (cityCC0 2, vtest 4, the screencast 9):
    # 27 videos of 38 frames at 120x160
    listing = work / "videos.txt"
    lines = [f"{BUNNY} bunny"] + [f"{COLLECTION / name} {Path(name).stem}" for name in OTHERS]
    listing.write_text("\n".join(lines) + "\n")
    return ["--list", listing, "--tile", "240x320", "--size", "120x160", "--frames", "0:38"]


def fit_and_compress(name: str, work: Path, data: list[Any], options: list[Any], device: str) -> dict[str, Any]:
    """Fit (or reuse) run ``name`` and compress it; its numbers."""
    run, nerv = work / name, work / f"{name}.nerv"
    done = work / f"{name}.json"
    if done.is_file():
        return json.loads(done.read_text())
    started = time.perf_counter()
    if (run / "run.json").is_file() and not (run / "metrics.json").is_file():
        nervkit("fit", "--resume", "-o", run, "--quiet", "--device", device)
    elif not (run / "metrics.json").is_file():
        nervkit("fit", *data, *options, "-o", run, "--quiet", "--no-video", "--device", device)
    fit_seconds = time.perf_counter() - started
    report = nervkit("compress", run, "-o", nerv, "--json", "--quiet", "--device", device)
    meta = json.loads((run / "run.json").read_text())
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    result = {
        "name": name, "method": meta["method"], "options": [str(o) for o in options],
        "parameters": meta.get("parameters"), "bytes": report["bytes"], "bpp": report["bpp"],
        "group_bytes": report.get("group_bytes"), "psnr": report["psnr"], "ms_ssim": report["ms_ssim"],
        "videos": report.get("videos"), "fit_seconds": fit_seconds,
        "seconds_per_epoch": float(np.median([h["seconds"] for h in history if "seconds" in h])) if history else None,
    }
    write_json(done, result)
    return result


def probe_seconds_per_epoch(name: str, work: Path, data: list[Any], options: list[Any], device: str) -> float:
    """Seconds of one training epoch (a 1-epoch fit, no compression): to size a run for a time budget."""
    run = work / name
    if not (run / "metrics.json").is_file():
        nervkit("fit", *data, *options, "--epochs", 1, "-o", run, "--quiet", "--no-video", "--device", device)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    return float(history[-1]["seconds"])


def nerv_params_for(num_bytes: float, reference: dict[str, Any]) -> int:
    """The parameter count whose 8-bit coded weights take about ``num_bytes`` (the reference file's
    bytes per weight)."""
    groups = reference["group_bytes"] or {}
    weights = sum(v for k, v in groups.items() if k not in ("header", "key_frames"))
    per_param = weights / max(1, int(reference["parameters"]["official"]))
    return int(num_bytes / per_param)


def per_video_nerv(work: Path, data: list[Any], reference: dict[str, Any], epochs: int, device: str,
                   budget: float) -> dict[str, Any]:
    """One NeRV per video of the collection, each for ``budget`` / n bytes; the files' total bytes and the
    mean over the videos."""
    videos = reference["videos"]["per_video"]
    params = nerv_params_for(budget / len(videos), reference)
    rows = []
    for video in videos:
        first, count = video["first_frame"], video["frames"]
        sub = work / "per_video"
        sub.mkdir(parents=True, exist_ok=True)
        rows.append(fit_and_compress(video["name"], sub, [_source_of(work, video, first, count)],
                                     ["--model", "nerv", "--params", params, "--epochs", epochs,
                                      "--eval-every", epochs], device))
    total = sum(r["bytes"] for r in rows)
    # the same frames as the reference: its bpp scaled by the bytes
    return {"params_each": params, "bytes": total, "bpp": reference["bpp"] * total / reference["bytes"],
            "mean_psnr": float(np.mean([r["psnr"] for r in rows])),
            "mean_ms_ssim": float(np.mean([r["ms_ssim"] for r in rows])),
            "fit_seconds": sum(r["fit_seconds"] for r in rows), "videos": rows}


def _source_of(work: Path, video: dict[str, Any], first: int, count: int) -> Path:
    """Video ``video`` of the collection as a lossless file of its own (for the per-video fits)."""
    path = work / "tiles" / f"{video['name']}.mkv"
    if not path.is_file():
        import torch

        from nervkit.io import write_video

        store = torch.load(work / "frames.pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = store[first : first + count].permute(0, 2, 3, 1).numpy()
        write_video(list(frames), path, fps=25, lossless=True)
    return path


def save_frames(work: Path, run: Path) -> None:
    """The collection's frames (uint8 tensor) as the run loaded them, for per-video fits and codecs."""
    if (work / "frames.pt").is_file():
        return
    import torch

    import nervkit as nk

    store = nk.load(run).run.training_data().clean
    torch.save(store.frames.clone(), work / "frames.pt")


def codec_points(work: Path, reference: dict[str, Any], codecs: tuple[str, ...] = ("x264", "x265")) -> dict[str, Any]:
    """Each codec per video: a CRF sweep, PSNR interpolated (in log rate) at D-NeRV's bpp; the mean."""
    import torch

    from nervkit.bench.codecs import available_codecs, encode_decode

    frames = torch.load(work / "frames.pt")
    target = reference["bpp"]
    out: dict[str, Any] = {}
    for codec in codecs:
        if codec not in available_codecs():
            continue
        psnrs, rows = [], []
        for video in reference["videos"]["per_video"]:
            clip = frames[video["first_frame"] : video["first_frame"] + video["frames"]].permute(0, 2, 3, 1).numpy()
            points = []
            for crf in (18, 23, 28, 33, 38, 43, 48):
                res = encode_decode(clip, codec, crf)
                mse = np.mean((res.frames.astype(np.float64) - clip.astype(np.float64)) ** 2, axis=(1, 2, 3))
                points.append((res.bpp, float(np.mean(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))))
            points.sort()
            rates, qs = np.log([p[0] for p in points]), [p[1] for p in points]
            psnr = float(np.interp(math.log(target), rates, qs))
            psnrs.append(psnr)
            rows.append({"name": video["name"], "psnr_at_rate": psnr, "sweep": points})
        out[codec] = {"bpp": target, "mean_psnr": float(np.mean(psnrs)), "videos": rows}
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, entry in results["compared"].items():
        ax.scatter(entry["bpp"], entry["mean_psnr"], label=f"{label} ({entry['bytes'] / 1000:.0f} kB)", s=40)
    for codec, entry in results.get("codecs", {}).items():
        ax.scatter(entry["bpp"], entry["mean_psnr"], marker="x", label=f"{codec} (at D-NeRV's bpp)")
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("PSNR (dB), mean over the videos")
    ax.set_title(results["title"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scale", choices=("cpu", "gpu"))
    ap.add_argument("--diverse", action="store_true", help="CPU: Bunny tiles plus tiles of the other clips")
    ap.add_argument("--params", default=None, help="D-NeRV budget (CPU default 250k; GPU: the uvg-s preset)")
    ap.add_argument("--epochs", type=int, default=24, help="epochs of the main runs (CPU)")
    ap.add_argument("--ablation-epochs", type=int, default=8, help="epochs of the ablations (CPU)")
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument("--no-per-video", action="store_true")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="D-NeRV clips per batch (CPU default 4; GPU default 8, the official per-GPU batch)")
    ap.add_argument("--minutes", type=float, default=5.0, help="GPU: training time of each model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=None, help="where the runs go (default: /tmp/nervkit-dnerv-…)")
    args = ap.parse_args()

    suffix = "_gpu" if args.scale == "gpu" else ("_diverse" if args.diverse else "")
    work = args.work or Path(f"/tmp/nervkit-dnerv{suffix}")
    work.mkdir(parents=True, exist_ok=True)
    data = collection_args(args.scale, args.diverse, work)
    peak = matmul_peak_gflops() if args.scale == "cpu" else None
    results: dict[str, Any] = {"machine": machine(), "matmul_peak_gflops": peak, "date": time.strftime("%Y-%m-%d"),
                               "scale": args.scale, "data": [str(d) for d in data], "compared": {}}
    dnerv_opts: list[Any] = ["--model", "d-nerv"]
    if args.scale == "gpu":
        dnerv_opts += ["--preset", "uvg-s", "--batch-size", args.batch_size or 8]
        seconds = probe_seconds_per_epoch("d-nerv-probe", work, data, dnerv_opts, args.device)
        epochs = max(1, int(args.minutes * 60 / seconds))
        dnerv_opts += ["--epochs", epochs, "--eval-every", epochs]
        results["probe_seconds_per_epoch"] = {"d-nerv": seconds}
    else:
        epochs = args.epochs
        dnerv_opts += ["--params", args.params or "250k", "--epochs", epochs, "--batch-size", args.batch_size or 4,
                       "--eval-every", epochs]
    title = (f"{'GPU' if args.scale == 'gpu' else 'CPU'}: D-NeRV vs NeRV at equal file bytes, "
             f"{epochs} epochs")
    results["title"] = title
    dnerv = fit_and_compress("d-nerv", work, data, dnerv_opts, args.device)
    results["d-nerv"] = dnerv
    write_json(ROOT / "benchmarks" / "results" / f"d_nerv_collection{suffix}.json", results)
    if args.scale == "cpu":
        save_frames(work, work / "d-nerv")
    budget = dnerv["bytes"]
    nerv_params = nerv_params_for(budget, dnerv)
    nerv_epochs = epochs
    if args.scale == "gpu":  # the same training time for the shared NeRV
        seconds = probe_seconds_per_epoch("nerv-probe", work, data, ["--model", "nerv", "--params", nerv_params],
                                          args.device)
        nerv_epochs = max(1, int(args.minutes * 60 / seconds))
        results["probe_seconds_per_epoch"]["nerv"] = seconds
    shared = fit_and_compress("nerv-shared", work, data, ["--model", "nerv", "--params", nerv_params,
                                                         "--epochs", nerv_epochs, "--eval-every", nerv_epochs],
                              args.device)
    results["nerv_shared"] = shared

    def entry(r: dict[str, Any]) -> dict[str, Any]:
        mean = (r.get("videos") or {}).get("mean_over_videos", {})
        return {"bytes": r["bytes"], "bpp": r["bpp"], "mean_psnr": mean.get("psnr", r["psnr"]),
                "mean_ms_ssim": mean.get("ms_ssim", r["ms_ssim"]), "fit_seconds": r["fit_seconds"],
                "seconds_per_epoch": r["seconds_per_epoch"]}

    results["compared"]["D-NeRV"] = entry(dnerv)
    results["compared"]["NeRV (shared)"] = entry(shared)
    if args.scale == "cpu" and not args.no_per_video:
        per_video = per_video_nerv(work, data, dnerv, epochs, args.device, budget)
        results["nerv_per_video"] = per_video
        results["compared"]["NeRV per video"] = {k: per_video[k] for k in ("bytes", "bpp", "fit_seconds")} | {
            "mean_psnr": per_video["mean_psnr"], "mean_ms_ssim": per_video["mean_ms_ssim"], "seconds_per_epoch": None}
    if args.scale == "cpu" and not args.no_ablations:
        short = ["--model", "d-nerv", "--params", args.params or "250k", "--epochs", args.ablation_epochs,
                 "--batch-size", args.batch_size or 4, "--eval-every", args.ablation_epochs]
        variants = {"default": [], "no-flow": ["--flow", "false"], "no-gtmlp": ["--gtmlp", "false"],
                    "saf-concat": ["--saf", "concat"], "saf-channel (code)": ["--saf", "channel"],
                    "hevc key-frames": ["--keyframe-codec", "hevc"], "jpeg key-frames": ["--keyframe-codec", "jpeg"]}
        results["ablations"] = {}
        for label, extra in variants.items():
            slug = "abl-" + "".join(c if c.isalnum() else "-" for c in label)
            r = fit_and_compress(slug, work, data, [*short, *extra], args.device)
            results["ablations"][label] = {**entry(r), "parameters": r["parameters"], "group_bytes": r["group_bytes"]}
            write_json(ROOT / "benchmarks" / "results" / f"d_nerv_collection{suffix}.json", results)
    if args.scale == "cpu":
        results["codecs"] = codec_points(work, dnerv)
    write_json(ROOT / "benchmarks" / "results" / f"d_nerv_collection{suffix}.json", results)
    plot(results, ROOT / "benchmarks" / "results" / f"d_nerv_collection{suffix}.png")
    print(json.dumps({k: v for k, v in results["compared"].items()}, indent=1))


if __name__ == "__main__":
    main()
