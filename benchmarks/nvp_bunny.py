"""Benchmark (issue #6): NVP vs NeRV on Bunny 180×320 under wall-clock training budgets, NVP's
rate–distortion curve (JPEG/HEVC-coded grids vs magnitude pruning at the same bpp, paper Fig. 7) on
the plot of the other methods and the codecs, decode speed, and ×4 super-resolution from a 90×160 fit.

Time budgets: for each budget T (minutes) every method is fitted from scratch with its own recipe and
a schedule as long as T allows (epochs = T / the seconds per epoch measured on this machine just
before, then as the previous budget's run really took, so the cosine schedule ends near T); the JSON
records the training seconds actually spent (evaluation and checkpoints excluded).
NVP's epoch is ``--nvp-epoch-pixels`` samples so that short budgets still get several epochs.

    python benchmarks/nvp_bunny.py                                   # 1, 2, 5, 10 min (about 45 min)
    python benchmarks/nvp_bunny.py --minutes 0.2 --frames 0:8 --nvp-params 200k --nerv-params 100k \\
        --sr-minutes 0.2 --run-root /tmp/nb --out /tmp/nb.json      # smoke test

Writes ``--out`` (JSON, schema ``nervkit-nvp-bench/1``), a Markdown table and ``<out>.png`` (RD plot).
Codec and NeRV RD series come from ``--rd-summary`` (``benchmarks/rd_bunny.py`` at 180×320).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fit_or_resume, machine, matmul_peak_gflops, save_figure, summary, write_json  # noqa: E402

import nervkit  # noqa: E402
from nervkit.data import load_frames  # noqa: E402
from nervkit.io import FrameRange  # noqa: E402
from nervkit.metrics import QualityAccumulator  # noqa: E402
from nervkit.models import FrameBatch, PixelBatch, VideoGeometry, create_model, get_method  # noqa: E402
from nervkit.models.sizing import parse_param_count  # noqa: E402

ROOT = Path(__file__).resolve().parent
CODEC_POINTS = [(2, 18), (2, 21), (3, 25), (5, 28), (8, 32), (15, 38)]  # (JPEG -q:v, HEVC CRF)
PRUNE_POINTS = [0.0, 0.4, 0.6, 0.8, 0.9]


def step_seconds(method: str, geometry: VideoGeometry, params: int, pixels_per_batch: int, steps: int = 5) -> float:
    """Median seconds of one bare training step of a fresh model (its recipe's optimizer and batch)."""
    spec = get_method(method)
    model = create_model(method, geometry, params=params)
    recipe = spec.train_defaults
    opt_cls = torch.optim.AdamW if recipe.get("optimizer") == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=1e-4)
    if model.batch_kind == "pixels":
        n = pixels_per_batch
        batch = PixelBatch(torch.randint(geometry.num_frames, (n,)), torch.randint(geometry.height, (n,)),
                           torch.randint(geometry.width, (n,)), torch.rand(n, 3))
        target = batch.target
    else:
        batch = FrameBatch(torch.arange(1), torch.rand(1, 3, geometry.height, geometry.width))
        target = batch.frames
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        out = model(batch)
        out = model.crop(out) if out.dim() == 4 else out
        loss = (out - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return summary(times)["median"]


def fit_budget(name: str, args: argparse.Namespace, method: str, params: str, epochs: int,
               **extra: Any) -> nervkit.FittedRun:
    return fit_or_resume(Path(args.run_root) / name, device=args.device, threads=args.threads, model=method,
                         params=params, size=args.size, frames=args.frames, epochs=epochs, eval_every=epochs,
                         seed=args.seed, progress=False, **extra)


def run_record(fitted: nervkit.FittedRun, budget_s: float) -> dict[str, Any]:
    history = json.loads((fitted.run_dir.path / "history.json").read_text())
    metrics = json.loads((fitted.run_dir.path / "metrics.json").read_text())
    return {"budget_seconds": budget_s, "epochs": fitted.meta["train"]["epochs"],
            "train_seconds": history["train_seconds"], "psnr": metrics["psnr"], "ms_ssim": metrics["ms_ssim"],
            "parameters": fitted.model.parameter_counts().official}


def compress_point(run: Path, out: Path, **options: Any) -> dict[str, Any]:
    report = nervkit.compress(run, out, device="cpu", **options)
    return {k: report[k] for k in ("bytes", "bpp", "psnr", "ms_ssim")} | {"options": options}


def decode_fps(nerv: Path, repeats: int = 2) -> float:
    from nervkit.compress.model_codec import read_nerv

    model = read_nerv(nerv).build_model()
    n = model.geometry.num_frames
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for start in range(0, n, 8):
            model.decode_frames(list(range(start, min(start + 8, n))))
        rates.append(n / (time.perf_counter() - t0))
    return max(rates)


def super_resolution(args: argparse.Namespace, minutes: float, rate: dict[str, float]) -> dict[str, Any]:
    """Fit NVP to a 90×160 copy, render ×4 (360×640) and compare with bicubic ×4 of the 90×160 frames,
    all against the 360×640 ground truth."""
    frames = FrameRange.parse(args.frames) if args.frames else None
    low = load_frames(nervkit.sample_video(), frames=frames, size=(90, 160))
    high = load_frames(nervkit.sample_video(), frames=frames, size=(360, 640))
    params = parse_param_count(args.nvp_params) // 4
    per_epoch = args.nvp_epoch_pixels
    epochs = max(1, round(minutes * 60 / (rate["nvp_step_s"] * max(1, per_epoch // args.pixels_per_batch))))
    fitted = fit_or_resume(Path(args.run_root) / "nvp-sr-90x160", device=args.device, threads=args.threads,
                           model="nvp", params=params, size="90x160", frames=args.frames, epochs=epochs,
                           eval_every=epochs, seed=args.seed, progress=False, pixels_per_epoch=per_epoch,
                           pixels_per_batch=args.pixels_per_batch)
    model = fitted.model
    accs = {k: QualityAccumulator() for k in ("nvp_x4", "bicubic_x4_of_source", "bicubic_x4_of_nvp_fit")}
    n = len(low)
    for start in range(0, n, 4):
        idx = list(range(start, min(start + 4, n)))
        truth = high.get(idx)
        up_src = F.interpolate(low.get(idx), size=(360, 640), mode="bicubic", align_corners=False).clamp(0, 1)
        fit_low = model.decode_frames(idx)
        up_fit = F.interpolate(fit_low, size=(360, 640), mode="bicubic", align_corners=False).clamp(0, 1)
        accs["nvp_x4"].update(model.decode_frames_scaled(idx, 4), truth)
        accs["bicubic_x4_of_source"].update(up_src, truth)
        accs["bicubic_x4_of_nvp_fit"].update(up_fit, truth)
    out: dict[str, Any] = {"fit": run_record(fitted, minutes * 60), "low_size": [90, 160], "high_size": [360, 640]}
    for name, acc in accs.items():
        r = acc.result()
        out[name] = {"psnr": r.psnr, "ssim": r.ssim, "ms_ssim": r.ms_ssim}
    return out


def plot(result: dict[str, Any], rd: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nervkit.bench.plot import series_style

    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    if rd:  # the series names (x264, nerv-qat, ...): one fixed style each, the full name in the legend
        for name, series in rd["series"].items():
            r = series["results"]
            ax.plot(r["bpp"], r["psnr-rgb"], lw=1, label=name, **series_style(name))
    for key, series, label in (("codec", "nvp", "nvp (JPEG/HEVC grids)"),
                               ("pruned", "nvp-prune", "nvp-prune (pruned + 8-bit + ANS)")):
        pts = sorted(result["rd"][key], key=lambda p: p["bpp"])
        ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], lw=2, label=label, **series_style(series))
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (file size)")
    ax.set_ylabel("PSNR (dB, RGB)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: no curve covered
    ax.set_title(f"Bunny {result['config']['size']}: NVP ({result['rd']['minutes']:g} min fit) vs codecs / NeRV")
    fig.tight_layout()
    save_figure(fig, path)


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# NVP vs NeRV, Bunny {result['config']['size']}: quality after a wall-clock training budget", "",
             "| budget | method | epochs | train s | PSNR | MS-SSIM | file bpp | file PSNR |", "|---|---|---|---|---|---|---|---|"]
    for row in result["budgets"]:
        for method in ("nvp", "nerv"):
            r = row[method]
            lines.append(f"| {row['minutes']:g} min | {method} | {r['epochs']} | {r['train_seconds']:.0f} | "
                         f"{r['psnr']:.2f} | {r['ms_ssim']:.4f} | {r['file']['bpp']:.3f} | {r['file']['psnr']:.2f} |")
    s = result["speed"]
    lines += ["", f"NVP: {s['nvp_samples_per_s']:,.0f} pixel samples/s in training "
              f"({s['nvp_step_s']:.2f} s per {result['config']['pixels_per_batch']:,}-sample step); "
              f"NeRV: {s['nerv_step_s']:.3f} s per frame step. Decoding from the file: NVP {s['nvp_decode_fps']:.1f} "
              f"frames/s, NeRV {s['nerv_decode_fps']:.1f} frames/s.", "",
              "| NVP RD point | bpp | PSNR | MS-SSIM |", "|---|---|---|---|"]
    for key in ("codec", "pruned"):
        for p in sorted(result["rd"][key], key=lambda p: p["bpp"]):
            lines.append(f"| {key} {p['options']} | {p['bpp']:.3f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} |")
    sr = result.get("super_resolution")
    if sr:
        lines += ["", "| ×4 super-resolution (90×160 → 360×640) | PSNR | SSIM | MS-SSIM |", "|---|---|---|---|"]
        for k in ("nvp_x4", "bicubic_x4_of_source", "bicubic_x4_of_nvp_fit"):
            lines.append(f"| {k} | {sr[k]['psnr']:.2f} | {sr[k]['ssim']:.4f} | {sr[k]['ms_ssim']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", default="1,2,5,10", help="training budgets in minutes")
    ap.add_argument("--nvp-params", default="3M")
    ap.add_argument("--nerv-params", default="1.5M")
    ap.add_argument("--nvp-epoch-pixels", type=int, default=1 << 20, help="NVP samples per epoch")
    ap.add_argument("--pixels-per-batch", type=int, default=65536)
    ap.add_argument("--sr-minutes", type=float, default=2.0, help="budget of the 90x160 fit (0 = skip SR)")
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--frames", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rd-summary", default=str(ROOT / "results" / "rd180" / "summary.json"))
    ap.add_argument("--run-root", default=str(ROOT / "out" / "nvp"))
    ap.add_argument("--out", default=str(ROOT / "results" / "nvp_bunny.json"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    minutes = [float(m) for m in args.minutes.split(",")]
    h, w = (int(v) for v in args.size.split("x"))
    n = len(FrameRange.parse(args.frames).resolve(132)) if args.frames else 132
    geometry = VideoGeometry(n, h, w)
    nvp_params, nerv_params = parse_param_count(args.nvp_params), parse_param_count(args.nerv_params)
    peaks = [matmul_peak_gflops()]
    speed = {"nvp_step_s": step_seconds("nvp", geometry, nvp_params, args.pixels_per_batch),
             "nerv_step_s": step_seconds("nerv", geometry, nerv_params, 1)}
    speed["nvp_samples_per_s"] = args.pixels_per_batch / speed["nvp_step_s"]
    # seconds per epoch: from the bare step first, then what the previous budget's run really took
    epoch_s = {"nvp": speed["nvp_step_s"] * max(1, args.nvp_epoch_pixels // args.pixels_per_batch),
               "nerv": speed["nerv_step_s"] * n}
    files = Path(args.run_root) / "files"
    files.mkdir(parents=True, exist_ok=True)
    budgets = []
    for m in minutes:
        row: dict[str, Any] = {"minutes": m}
        for method, params, extra in (
                ("nvp", args.nvp_params, {"pixels_per_epoch": args.nvp_epoch_pixels,
                                          "pixels_per_batch": args.pixels_per_batch}),
                ("nerv", args.nerv_params, {})):
            epochs = max(1, round(m * 60 / epoch_s[method]))
            fitted = fit_budget(f"{method}-{m:g}min", args, method, params, epochs, **extra)
            rec = run_record(fitted, m * 60)
            epoch_s[method] = rec["train_seconds"] / rec["epochs"]
            rec["file"] = compress_point(fitted.run_dir.path, files / f"{method}-{m:g}min.nerv")
            row[method] = rec
            print(f"{m:g} min {method}: {rec['epochs']} epochs, {rec['train_seconds']:.0f} s, PSNR {rec['psnr']:.2f} "
                  f"(file {rec['file']['bpp']:.3f} bpp, {rec['file']['psnr']:.2f} dB)", flush=True)
        budgets.append(row)
    longest = Path(args.run_root) / f"nvp-{minutes[-1]:g}min"
    rd: dict[str, Any] = {"minutes": minutes[-1], "codec": [], "pruned": []}
    for q, crf in CODEC_POINTS:
        rd["codec"].append(compress_point(longest, files / f"rd-q{q}-crf{crf}.nerv", jpeg_quality=q, hevc_crf=crf))
    for p in PRUNE_POINTS:
        rd["pruned"].append(compress_point(longest, files / f"rd-prune{p:g}.nerv", latent_codec="weights", prune=p))
    speed["nvp_decode_fps"] = decode_fps(files / f"nvp-{minutes[-1]:g}min.nerv")
    speed["nerv_decode_fps"] = decode_fps(files / f"nerv-{minutes[-1]:g}min.nerv")
    result: dict[str, Any] = {
        "schema": "nervkit-nvp-bench/1",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "config": {"size": args.size, "frames": n, "nvp_params": args.nvp_params, "nerv_params": args.nerv_params,
                   "minutes": minutes, "nvp_epoch_pixels": args.nvp_epoch_pixels,
                   "pixels_per_batch": args.pixels_per_batch, "seed": args.seed},
        "speed": speed,
        "budgets": budgets,
        "rd": rd,
    }
    if args.sr_minutes > 0:
        result["super_resolution"] = super_resolution(args, args.sr_minutes, speed)
    peaks.append(matmul_peak_gflops())
    result["matmul_gflops"] = peaks
    out = Path(args.out)
    write_json(out, result)
    out.with_suffix(".md").write_text(markdown(result))
    rd_summary = json.loads(Path(args.rd_summary).read_text()) if Path(args.rd_summary).is_file() else None
    plot(result, rd_summary, out.with_suffix(".png"))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
