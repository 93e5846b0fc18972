"""Benchmark (issue #4): NeRV vs HNeRV vs DNeRV on Bunny 180×320 at one parameter budget and one number
of epochs — regression, interpolation on held-out odd frames, inpainting with masked inputs, training
speed — and DNeRV's fusion ablation (sum / conv / CCU).

Runs (each a nervkit run folder under ``--run-root``; finished runs are reused, interrupted ones resumed):

* regression, all 132 frames: ``nerv``, ``hnerv``, ``dnerv`` (CCU), ``dnerv-conv``, ``dnerv-sum`` —
  every method with its own paper recipe (NeRV: 0.7·L1 + 0.3·SSIM, lr 5e-4, batch 1; HNeRV: L2,
  lr 1e-3, batch 2; DNeRV: L2, lr 5e-4, batch 1) and ``--params`` counting every stored value (DNeRV's
  difference embeddings included); ``dnerv-paper`` (optional, ``--with-paper-count``) is DNeRV sized with
  the paper's accounting (difference embeddings not counted, so it stores ~1 M values more).
* interpolation: ``nerv-even``, ``hnerv-even``, ``dnerv-even`` trained on the even frames and scored on
  the odd ones ("encoder" protocol for HNeRV/DNeRV: the held-out frames go through the encoders, as in
  the HNeRV/DNeRV papers; "index" protocol for NeRV).
* inpainting: every regression model decodes from masked inputs (the DNeRV paper's protocol: trained on
  the clean video, masks ``disperse`` and ``central``); PSNR on the whole frame and inside the mask.
* speed: seconds per epoch (median of the epochs), FLOPs of one training iteration counted by
  FlopCounterMode on a real step, achieved GFLOP/s and its fraction of the fp32 matmul throughput
  measured before and after each run.

    python benchmarks/hybrid_bunny.py --epochs 300 --device cuda      # the papers' length (GPU)
    python benchmarks/hybrid_bunny.py --epochs 8                      # ~70 min on 2 cores
    python benchmarks/hybrid_bunny.py --epochs 1 --frames 0:8 --size 90x160 --run-root /tmp/hb \\
        --out /tmp/hb.json                                            # smoke test

Writes ``--out`` (JSON, schema ``nervkit-hybrid-bench/1``) and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    bare_step_seconds,
    fit_or_resume,
    machine,
    matmul_peak_gflops,
    summary,
    training_flops,
    write_json,
)

import nervkit  # noqa: E402
import nervkit.tasks  # noqa: E402
from nervkit.tasks.interpolation import FrameSplit  # noqa: E402

ROOT = Path(__file__).resolve().parent

#: run name -> (method, model options, training frames)
REGRESSION = {
    "nerv": ("nerv", {}, "all"),
    "hnerv": ("hnerv", {}, "all"),
    "dnerv": ("dnerv", {"fusion": "ccu"}, "all"),
    "dnerv-conv": ("dnerv", {"fusion": "conv"}, "all"),
    "dnerv-sum": ("dnerv", {"fusion": "sum"}, "all"),
}
PAPER_COUNT = {"dnerv-paper": ("dnerv", {"fusion": "ccu", "budget_counts": "paper"}, "all")}
INTERPOLATION = {
    "nerv-even": ("nerv", {}, "even"),
    "hnerv-even": ("hnerv", {}, "even"),
    "dnerv-even": ("dnerv", {"fusion": "ccu"}, "even"),
}
MASKS = ("disperse", "central")

OFFICIAL = {  # shared/specs/official-baselines-cpu.md: same frames, 16 epochs, 2-core CPU
    "source": "official HNeRV / DNeRV code on a 2-core CPU machine like this one, 16 epochs",
    "hnerv_1.5M": {"params": 1_453_599, "s_per_epoch": 65.34, "psnr_quarters": [23.13, 24.54, 24.97, 25.04],
                   "ms_ssim": 0.8907},
    "dnerv_everything_counted_1.51M": {"s_per_epoch": 39.0, "psnr_quarters": [21.73, 23.75, 24.47, 24.63],
                                       "ms_ssim": 0.8677},
    "dnerv_paper_count_1.48M": {"s_per_epoch": 70.6, "psnr_quarters": [23.06, 25.45, 26.45, 26.66],
                                "ms_ssim": 0.9284},
    "nerv_1.5M_100_epochs": {"s_per_epoch": 12.61, "psnr": 29.11},
}


@torch.no_grad()
def ccu_gate_statistics(fitted: nervkit.FittedRun, frames: int = 12) -> dict[str, float] | None:
    """Mean CCU gate v and RMS of the content / difference features and of the candidate u = tanh(…)
    (paper Eq. 5) over ``frames`` evenly spaced frames of a fitted DNeRV with CCU fusion (else None)."""
    from nervkit.models.dnerv import CollaborativeContentUnit

    units = [m for m in fitted.model.modules() if isinstance(m, CollaborativeContentUnit)]
    if not units:
        return None
    sums: dict[str, list[float]] = {"gate_v_mean": [], "content_rms": [], "diff_rms": [], "candidate_u_rms": []}

    def record(unit: CollaborativeContentUnit, inputs: tuple[torch.Tensor, torch.Tensor], _out: torch.Tensor) -> None:
        content, diff = inputs
        sums["gate_v_mean"].append(torch.sigmoid(unit.v_content(content) + unit.v_diff(diff)).mean().item())
        sums["candidate_u_rms"].append(torch.tanh(unit.u_content(content) + unit.u_diff(diff)).square().mean().sqrt().item())
        sums["content_rms"].append(content.square().mean().sqrt().item())
        sums["diff_rms"].append(diff.square().mean().sqrt().item())

    handle = units[0].register_forward_hook(record)
    n = fitted.model.geometry.num_frames
    fitted.model.decode_frames(list(range(0, n, max(1, n // frames))))
    handle.remove()
    return {k: statistics.mean(v) for k, v in sums.items()}


def fit_job(name: str, job: tuple[str, dict[str, Any], str], args: argparse.Namespace) -> nervkit.FittedRun:
    method, options, train_frames = job
    return fit_or_resume(Path(args.run_root) / name, device=args.device, threads=args.threads,
                         model=method, params=args.params, size=args.size, frames=args.frames,
                         train_frames=train_frames, model_options=options, epochs=args.epochs, seed=args.seed)


def run_record(name: str, fitted: nervkit.FittedRun, peaks: list[float], wall: float) -> dict[str, Any]:
    counts = fitted.model.parameter_counts()
    seconds = [e["seconds"] for e in fitted.history]
    flops = training_flops(fitted)
    step = bare_step_seconds(fitted)
    iterations = -(-len(_train_indices(fitted)) // int(fitted.meta["train"]["batch_size"]))
    median = statistics.median(seconds) if seconds else None
    achieved = flops * iterations / median / 1e9 if median else None
    metrics = json.loads((fitted.run_dir.path / "metrics.json").read_text())
    return {
        "name": name,
        "method": fitted.meta["method"],
        "config": fitted.meta["config"],
        "train": fitted.meta["train"],
        "parameters": {"official": counts.official, "stored": counts.total, "parts": counts.parts},
        "evals": fitted.evals,
        "final": {k: metrics.get(k) for k in ("psnr", "psnr_global", "ssim", "ms_ssim")},
        "tasks": {k: nervkit.tasks.summarize({k: metrics[k]})[k] for k in ("interpolation",) if k in metrics},
        "seconds_per_epoch": summary(seconds) if seconds else None,
        "flops_per_iteration": flops,
        "iterations_per_epoch": iterations,
        "achieved_gflops": achieved,
        "bare_step_seconds": step,
        "trainer_overhead": median / (step * iterations) - 1 if median else None,
        "matmul_gflops": peaks,
        "fraction_of_matmul": achieved / statistics.median(peaks) if achieved and peaks else None,
        "wall_seconds_this_call": wall,
        "ccu_gate": ccu_gate_statistics(fitted),
    }


def _train_indices(fitted: nervkit.FittedRun) -> list[int]:
    split = FrameSplit.parse(fitted.meta["data"].get("train_frames", "all"))
    return split.indices(fitted.model.geometry.num_frames)[0]


def inpainting(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Masked-input inpainting of one regression run, cached next to the run."""
    out: dict[str, Any] = {}
    for mask in MASKS:
        cache = Path(args.run_root) / name / f"inpaint-{mask}.json"
        if cache.is_file():
            out[mask] = json.loads(cache.read_text())
            continue
        result = nervkit.inpaint(Path(args.run_root) / name, mask, device=args.device)
        result = nervkit.tasks.summarize(result)
        cache.write_text(json.dumps(result, indent=2) + "\n")
        out[mask] = result
    return out


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    lines = [f"# NeRV vs HNeRV vs DNeRV, Bunny {result['config']['size']}, {result['config']['epochs']} epochs", ""]
    lines += ["| run | stored values | PSNR | MS-SSIM | disperse: whole / inside | central: whole / inside "
              "| s/epoch | GFLOP/iter | GFLOP/s (% of matmul) | trainer overhead |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        if r["train"].get("epochs") is None or name.endswith("-even"):
            continue
        inp = result["inpainting"].get(name, {})
        cells = []
        for mask in MASKS:
            m = inp.get(mask)
            cells.append(f"{m['whole_frame']['psnr']:.2f} / {m['inside_mask']['psnr']:.2f}" if m else "–")
        spe = r["seconds_per_epoch"]["median"] if r["seconds_per_epoch"] else float("nan")
        frac = r["fraction_of_matmul"] or float("nan")
        lines.append(f"| {name} | {r['parameters']['stored']:,} | {r['final']['psnr']:.2f} | {r['final']['ms_ssim']:.4f} "
                     f"| {cells[0]} | {cells[1]} | {spe:.1f} | {r['flops_per_iteration'] / 1e9:.1f} "
                     f"| {r['achieved_gflops'] or float('nan'):.1f} ({100 * frac:.0f} %) "
                     f"| {100 * (r.get('trainer_overhead') or float('nan')):+.0f} % |")
    lines += ["", "| interpolation run | train PSNR | held-out (odd) PSNR | held-out MS-SSIM | protocol |",
              "|---|---|---|---|---|"]
    for name, r in runs.items():
        interp = r["tasks"].get("interpolation")
        if not interp:
            continue
        lines.append(f"| {name} | {interp['train']['psnr']:.2f} | {interp['heldout']['psnr']:.2f} "
                     f"| {interp['heldout']['ms_ssim']:.4f} | {interp['heldout_protocol']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--params", default="1.5M")
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--frames", default=None, help="frame range (default: all 132)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated run names (default: all)")
    ap.add_argument("--with-paper-count", action="store_true", help="also fit DNeRV sized the paper's way")
    ap.add_argument("--run-root", default=str(ROOT / "out" / "hybrid"))
    ap.add_argument("--out", default=str(ROOT / "results" / "hybrid_bunny.json"))
    args = ap.parse_args(argv)

    # the main comparison first, then the interpolation runs, then the fusion ablation
    main_runs = {k: REGRESSION[k] for k in ("nerv", "hnerv", "dnerv")}
    jobs = {**main_runs, **INTERPOLATION, **REGRESSION, **(PAPER_COUNT if args.with_paper_count else {})}
    if args.only:
        wanted = args.only.split(",")
        unknown = [w for w in wanted if w not in {**jobs, **PAPER_COUNT}]
        if unknown:
            ap.error(f"unknown run(s) {unknown}; choose from {sorted({**jobs, **PAPER_COUNT})}")
        jobs = {k: v for k, v in {**jobs, **PAPER_COUNT}.items() if k in wanted}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    same = previous.get("config", {}).get("epochs") == args.epochs and previous.get("config", {}).get("size") == args.size
    result: dict[str, Any] = {
        "schema": "nervkit-hybrid-bench/1",
        "command": "python benchmarks/hybrid_bunny.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "config": {"epochs": args.epochs, "params": args.params, "size": args.size, "frames": args.frames,
                   "seed": args.seed},
        "runs": previous.get("runs", {}) if same else {},
        "inpainting": previous.get("inpainting", {}) if same else {},
        "official": OFFICIAL,
    }
    for name, job in jobs.items():
        finished = (Path(args.run_root) / name / "metrics.json").is_file()
        cpu = args.device != "cuda"
        peaks = [matmul_peak_gflops()] if cpu and not finished else []
        t0 = time.perf_counter()
        fitted = fit_job(name, job, args)
        wall = time.perf_counter() - t0
        if cpu and not finished:
            peaks.append(matmul_peak_gflops())
        earlier = result["runs"].get(name)
        if finished and earlier:  # a reused fit: keep the matmul throughput measured while it trained
            peaks, wall = earlier["matmul_gflops"], earlier["wall_seconds_this_call"]
        result["runs"][name] = run_record(name, fitted, peaks, wall)
        if job[2] == "all":
            result["inpainting"][name] = inpainting(name, args)
        write_json(out, result)  # after every run: a partial benchmark keeps what is finished
        r = result["runs"][name]
        print(f"{name}: PSNR {r['final']['psnr']:.2f} dB, {r['seconds_per_epoch']['median']:.1f} s/epoch", flush=True)
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
