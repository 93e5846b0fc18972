"""Benchmark (issue #5): E-NeRV vs NeRV on Bunny 180×320 at equal parameter budgets and epochs —
PSNR / MS-SSIM vs epoch curves, seconds per epoch, the epoch at which E-NeRV passes NeRV's final PSNR
(the paper's "8× faster convergence"), and E-NeRV's 3:1 interpolation (every fourth frame held out,
t normalised before the split) with the IN branch's encoding base b = 1.25 and 1.05.

Runs (nervkit run folders under ``--run-root``; finished ones are reused, interrupted ones resumed):
``<method>-<budget>`` for every method and budget (all 132 frames, each method's own recipe, evaluated
every ``--eval-every`` epochs), ``enerv-<budget>-3to1-b<b>`` for every ``--interp-bases`` value and
``nerv-<budget>-3to1`` as the index-based reference (at the first budget).

    python benchmarks/enerv_bunny.py --epochs 300 --device cuda          # the paper's length (GPU)
    python benchmarks/enerv_bunny.py --epochs 30 --budgets 1.5M           # what 2 CPU cores allow
    python benchmarks/enerv_bunny.py --epochs 2 --frames 0:8 --size 90x160 --budgets 0.3M \\
        --run-root /tmp/eb --out /tmp/eb.json                             # smoke test

Writes ``--out`` (JSON, schema ``nervkit-enerv-bench/1``), a Markdown table and ``<out>.png`` (curves).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    bare_step_seconds,
    fit_or_resume,
    machine,
    matmul_peak_gflops,
    save_figure,
    summary,
    training_flops,
    write_json,
)

import nervkit  # noqa: E402
import nervkit.tasks  # noqa: E402

ROOT = Path(__file__).resolve().parent

OFFICIAL = {  # shared/specs/official-baselines-cpu.md: same frames, 2-core CPU
    "source": "official E-NeRV / NeRV code on a 2-core CPU machine like this one",
    "enerv_1.5M_60_epochs": {"params": 1_497_542, "s_per_epoch": 23.2, "psnr_quarters": [25.38, 28.28, 30.11, 30.47],
                             "ms_ssim": 0.9794},
    "nerv_1.5M_100_epochs": {"params": 1_502_473, "s_per_epoch": 12.61, "psnr_quarters": [25.81, 27.96, 28.94, 29.11],
                             "ms_ssim": 0.9723},
}


def jobs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Run name → nervkit.fit options."""
    out: dict[str, dict[str, Any]] = {}
    for budget in args.budgets.split(","):
        for method in args.methods.split(","):
            out[f"{method}-{budget}"] = {"model": method, "params": budget}
    first = args.budgets.split(",")[0]
    for base in (float(b) for b in args.interp_bases.split(",") if b):
        out[f"enerv-{first}-3to1-b{base:g}"] = {"model": "enerv", "params": first, "train_frames": "3:1",
                                                "model_options": {"in_pe_base": base}}
    if args.interp_bases:
        out[f"nerv-{first}-3to1"] = {"model": "nerv", "params": first, "train_frames": "3:1"}
    return out


def record(fitted: nervkit.FittedRun, peaks: list[float]) -> dict[str, Any]:
    metrics = json.loads((fitted.run_dir.path / "metrics.json").read_text())
    seconds = [e["seconds"] for e in fitted.history]
    counts = fitted.model.parameter_counts()
    interp = metrics.get("interpolation")
    return {
        "method": fitted.meta["method"],
        "config": fitted.meta["config"],
        "train": fitted.meta["train"],
        "parameters": {"official": counts.official, "stored": counts.total},
        "evals": [{k: e[k] for k in ("epoch", "psnr", "ms_ssim")} for e in fitted.evals],
        "final": {k: metrics.get(k) for k in ("psnr", "ssim", "ms_ssim")},
        "seconds_per_epoch": summary(seconds) if seconds else None,
        # the same step measured now (quiet when nothing else runs): the trainer's seconds per
        # iteration above were taken while the machine was shared, this is the side-by-side figure
        "bare_step_seconds": bare_step_seconds(fitted),
        "gflop_per_iteration": training_flops(fitted) / 1e9,
        "matmul_gflops": peaks,
        "interpolation": nervkit.tasks.summarize({"i": interp})["i"] if interp else None,
    }


def passing_epoch(evals: list[dict[str, Any]], psnr: float) -> int | None:
    """First evaluated epoch whose PSNR reaches ``psnr`` (None: never)."""
    return next((e["epoch"] for e in evals if e["psnr"] >= psnr), None)


def convergence(runs: dict[str, Any], budgets: list[str]) -> dict[str, Any]:
    """Per budget: the epoch at which E-NeRV passes NeRV's final PSNR, and the speed-up in epochs."""
    out = {}
    for budget in budgets:
        nerv, enerv = runs.get(f"nerv-{budget}"), runs.get(f"enerv-{budget}")
        if not nerv or not enerv:
            continue
        target = nerv["final"]["psnr"]
        epoch = passing_epoch(enerv["evals"], target)
        nerv_epochs = nerv["evals"][-1]["epoch"]
        out[budget] = {"nerv_final_psnr": target, "nerv_epochs": nerv_epochs, "enerv_passes_at_epoch": epoch,
                       "epoch_speedup": nerv_epochs / epoch if epoch else None,
                       "time_speedup": (nerv_epochs * nerv["seconds_per_epoch"]["median"])
                       / (epoch * enerv["seconds_per_epoch"]["median"]) if epoch else None}
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in result["runs"].items():
        if run["interpolation"]:
            continue
        epochs = [e["epoch"] for e in run["evals"]]
        for ax, key in zip(axes, ("psnr", "ms_ssim")):
            ax.plot(epochs, [e[key] for e in run["evals"]], marker="o", ms=3, label=name)
    from matplotlib.ticker import MaxNLocator

    for ax, label in zip(axes, ("PSNR (dB)", "MS-SSIM")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Bunny {result['config']['size']}: quality vs epoch at equal budgets")
    fig.tight_layout()
    save_figure(fig, path)


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# E-NeRV vs NeRV, Bunny {result['config']['size']}, {result['config']['epochs']} epochs", "",
             "| run | parameters (official) | final PSNR | MS-SSIM | s/epoch | bare step s | GFLOP/iter "
             "| PSNR at 25/50/75 % |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in result["runs"].items():
        if r["interpolation"]:
            continue
        ev = r["evals"]
        quarter = [ev[max(0, round(len(ev) * q) - 1)]["psnr"] for q in (0.25, 0.5, 0.75)]
        lines.append(f"| {name} | {r['parameters']['official']:,} | {r['final']['psnr']:.2f} | {r['final']['ms_ssim']:.4f} "
                     f"| {r['seconds_per_epoch']['median']:.1f} | {r['bare_step_seconds']:.3f} "
                     f"| {r['gflop_per_iteration']:.1f} | {' / '.join(f'{p:.2f}' for p in quarter)} |")
    lines += ["", "| budget | NeRV final PSNR | E-NeRV passes it at epoch | speed-up (epochs) | speed-up (time) |",
              "|---|---|---|---|---|"]
    for budget, c in result["convergence"].items():
        fmt = lambda v: "–" if v is None else f"{v:.1f}x"  # noqa: E731
        lines.append(f"| {budget} | {c['nerv_final_psnr']:.2f} | {c['enerv_passes_at_epoch'] or 'not reached'} "
                     f"| {fmt(c['epoch_speedup'])} | {fmt(c['time_speedup'])} |")
    lines += ["", "| 3:1 interpolation run | seen PSNR | unseen PSNR | unseen MS-SSIM |", "|---|---|---|---|"]
    for name, r in result["runs"].items():
        i = r["interpolation"]
        if i:
            lines.append(f"| {name} | {i['train']['psnr']:.2f} | {i['heldout']['psnr']:.2f} | {i['heldout']['ms_ssim']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--budgets", default="1.5M,3M")
    ap.add_argument("--methods", default="nerv,enerv", help="compared at every budget (hnerv, dnerv too)")
    ap.add_argument("--interp-bases", default="1.25,1.05", help="IN-branch bases of the 3:1 runs ('' = none)")
    ap.add_argument("--eval-every", type=int, default=0, help="evaluate every N epochs (0 = epochs/15)")
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--frames", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated run names (default: all)")
    ap.add_argument("--run-root", default=str(ROOT / "out" / "enerv"))
    ap.add_argument("--out", default=str(ROOT / "results" / "enerv_bunny.json"))
    args = ap.parse_args(argv)

    todo = jobs(args)
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(todo))
        if unknown:
            ap.error(f"unknown run(s) {unknown}; choose from {sorted(todo)}")
        todo = {k: v for k, v in todo.items() if k in args.only.split(",")}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    config = {"epochs": args.epochs, "size": args.size, "frames": args.frames, "seed": args.seed}
    result: dict[str, Any] = {
        "schema": "nervkit-enerv-bench/1",
        "command": "python benchmarks/enerv_bunny.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "config": config,
        "runs": previous.get("runs", {}) if previous.get("config") == config else {},
        "official": OFFICIAL,
    }
    eval_every = args.eval_every or max(1, args.epochs // 15)
    for name, options in todo.items():
        run_dir = Path(args.run_root) / name
        finished = (run_dir / "metrics.json").is_file()
        peaks = [] if finished or args.device == "cuda" else [matmul_peak_gflops()]
        fitted = fit_or_resume(run_dir, device=args.device, threads=args.threads, size=args.size,
                               frames=args.frames, epochs=args.epochs, seed=args.seed, eval_every=eval_every,
                               **options)
        if peaks:
            peaks.append(matmul_peak_gflops())
        elif name in result["runs"]:
            peaks = result["runs"][name]["matmul_gflops"]
        result["runs"][name] = record(fitted, peaks)
        result["convergence"] = convergence(result["runs"], args.budgets.split(","))
        write_json(out, result)
        r = result["runs"][name]
        print(f"{name}: PSNR {r['final']['psnr']:.2f} dB, {r['seconds_per_epoch']['median']:.1f} s/epoch", flush=True)
    result["convergence"] = convergence(result["runs"], args.budgets.split(","))
    write_json(out, result)
    out.with_suffix(".md").write_text(markdown(result))
    plot(result, out.with_suffix(".png"))
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
