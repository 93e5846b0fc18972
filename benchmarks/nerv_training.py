"""Benchmark: NeRV training on Bunny 180×320 against the official code's CPU numbers.

Configuration (= the official baseline in shared specs, official-baselines-cpu.md): the 132 Bunny
frames shrunk 4× by exact box averaging (PIL ``Image.reduce(4)``, which nervkit's resize reproduces),
NeRV with strides 5,2,2, grid 9×16×18, lower width 32 (1,502,473 parameters, what ``--params 1.5M``
gives), loss 0.7·L1 + 0.3·(1−SSIM), Adam β=(0.5, 0.999), lr 5e-4, batch 1, 20 % warm-up + cosine.

Measures: seconds per epoch (median/min/max, training loop only), PSNR/MS-SSIM at 25/50/75/100 % of
the epochs, training FLOPs per iteration (counted by torch's FlopCounterMode on a real step: forward
+ loss + backward), the achieved GFLOP/s and its fraction of the fp32 matmul peak measured in the
same run (before and after training), and decode speed (frames/s) at 180×320 (the trained model) and
720×1280 (NeRV-S). Resumable: rerunning continues the training run in --run-dir.

    python benchmarks/nerv_training.py                 # 100 epochs (~30 min on 2 cores)
    python benchmarks/nerv_training.py --epochs 2 --frames 0:8 --out /tmp/smoke.json   # smoke test
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, matmul_peak_gflops, summary, training_flops, write_json  # noqa: E402

import nervkit  # noqa: E402
from nervkit.data import load_frames  # noqa: E402
from nervkit.io import FrameRange  # noqa: E402
from nervkit.models import VideoGeometry, create_model  # noqa: E402

OFFICIAL = {  # shared/specs/official-baselines-cpu.md, NeRV ~1.5 M, 100 epochs, same frames
    "source": "official NeRV code (haochen-rye/NeRV @ 6904589) on a 2-core CPU machine like this one",
    "parameters": 1_502_473,
    "epochs": 100,
    "seconds_per_epoch_median": 12.61,
    "seconds_per_epoch_range": [10.35, 15.07],
    "psnr_at_quarters": [25.81, 27.96, 28.94, 29.11],
    "final_ms_ssim": 0.9723,
    "note": "its loop also computes MS-SSIM every step (~2.8 s of each epoch); nervkit does not",
}


@torch.no_grad()
def decode_fps(model: torch.nn.Module, frames: int, batch: int, repeats: int) -> dict[str, float]:
    model.eval()
    idx = torch.arange(frames)
    model.decode(idx[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for s in range(0, frames, batch):
            model.decode(idx[s : s + batch])
        rates.append(frames / (time.perf_counter() - t))
    return summary(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--params", default="1.5M")
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--frames", default=None, help="frame range (default: all 132)")
    ap.add_argument("--loss", default="l1+ssim")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-dir", default="benchmarks/out/nerv_training_run")
    ap.add_argument("--out", default="benchmarks/results/nerv_training.json")
    ap.add_argument("--decode-repeats", type=int, default=5)
    args = ap.parse_args()

    peaks = [matmul_peak_gflops()]
    run_dir = Path(args.run_dir)
    resume = (run_dir / "run.json").is_file()
    t0 = time.perf_counter()
    fitted = nervkit.fit(
        None if resume else nervkit.sample_video(),
        out=run_dir,
        resume=resume,
        model="nerv",
        params=None if resume else args.params,
        size=None if resume else args.size,
        frames=None if resume else args.frames,
        write_video=False,
        **({} if resume else {"epochs": args.epochs, "loss": args.loss, "lr": args.lr, "seed": args.seed}),
    )
    wall = time.perf_counter() - t0
    peaks.append(matmul_peak_gflops())

    geo = fitted.model.geometry
    params = fitted.model.parameter_counts().official
    flops = training_flops(fitted)
    epoch_seconds = [e["seconds"] for e in fitted.history]
    median_epoch = statistics.median(epoch_seconds)
    achieved = flops * geo.num_frames / median_epoch / 1e9
    peak = statistics.median(peaks)

    store = load_frames(nervkit.sample_video(), size=(geo.height, geo.width),
                        frames=FrameRange.parse(args.frames) if args.frames else None)
    report = fitted.metrics
    small = decode_fps(fitted.model, geo.num_frames, 1, args.decode_repeats)
    small_b8 = decode_fps(fitted.model, geo.num_frames, 8, args.decode_repeats)
    torch.manual_seed(0)
    hd = create_model("nerv", VideoGeometry(132, 720, 1280), preset="S")
    hd_fps = decode_fps(hd, 16, 1, max(2, args.decode_repeats // 2))

    result = {
        "benchmark": "nerv_training",
        "command": "python benchmarks/nerv_training.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "config": {"frames": geo.num_frames, "size": [geo.height, geo.width], "parameters": params,
                   "model": fitted.meta["config"], "train": fitted.meta["train"]},
        "seconds_per_epoch": summary(epoch_seconds),
        "wall_seconds": wall,
        "evals": fitted.evals,
        "final": {"psnr": report.psnr if report else None, "ms_ssim": report.ms_ssim if report else None,
                  "ssim": report.ssim if report else None},
        "flops_per_iteration": flops,
        "achieved_gflops": achieved,
        "matmul_peak_gflops": {"measurements": peaks, "median": peak},
        "fraction_of_peak": achieved / peak,
        "decode_fps": {
            f"{geo.height}x{geo.width}_batch1": small,
            f"{geo.height}x{geo.width}_batch8": small_b8,
            "720x1280_nerv_S_batch1": hd_fps,
        },
        "official": OFFICIAL,
        "frames_checked": len(store),
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")
    print(f"s/epoch median {median_epoch:.2f} (official {OFFICIAL['seconds_per_epoch_median']}); "
          f"{achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f} % of measured peak {peak:.1f}")
    for ev in fitted.evals:
        print(f"epoch {ev['epoch']:>4}: PSNR {ev['psnr']:.2f} dB  MS-SSIM {ev['ms_ssim']:.4f}")
    print(f"decode fps: {small['median']:.1f} (180x320 b1), {small_b8['median']:.1f} (b8), "
          f"{hd_fps['median']:.2f} (720x1280 NeRV-S)")


if __name__ == "__main__":
    main()
