"""Render BENCHMARKS.md's NeRV-training table from benchmarks/results/nerv_training.json.

    python benchmarks/summarize.py [results.json]   # prints Markdown
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def nerv_training(r: dict) -> str:
    m, off = r["machine"], r["official"]
    spe = r["seconds_per_epoch"]
    evals = r["evals"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mib'] // 1024} GiB, torch {m['torch']} "
        f"({m['torch_threads']} threads), {m['date']}.  Command: `{r['command'].strip()}`",
        "",
        "| | nervkit | official NeRV code |",
        "|---|---|---|",
        f"| parameters | {r['config']['parameters']:,} | {off['parameters']:,} |",
        f"| epochs | {len(evals) and evals[-1]['epoch']} | {off['epochs']} |",
        f"| s/epoch, median (min–max) | {spe['median']:.2f} ({spe['min']:.2f}–{spe['max']:.2f}) | "
        f"{off['seconds_per_epoch_median']} ({off['seconds_per_epoch_range'][0]}–{off['seconds_per_epoch_range'][1]}) |",
    ]
    psnrs = " / ".join(f"{e['psnr']:.2f}" for e in evals)
    lines.append(f"| PSNR @ 25/50/75/100 % | {psnrs} | {' / '.join(map(str, off['psnr_at_quarters']))} |")
    msssim = " / ".join(f"{e['ms_ssim']:.4f}" for e in evals)
    lines.append(f"| MS-SSIM @ 25/50/75/100 % | {msssim} | final {off['final_ms_ssim']} |")
    peak = r["matmul_peak_gflops"]
    lines += [
        f"| training FLOPs / iteration | {r['flops_per_iteration'] / 1e9:.2f} G | |",
        f"| achieved training GFLOP/s | {r['achieved_gflops']:.1f} | |",
        f"| fp32 matmul peak measured in the run | {peak['median']:.1f} GFLOP/s "
        f"({', '.join(f'{p:.0f}' for p in peak['measurements'])}) | |",
        f"| fraction of peak | {100 * r['fraction_of_peak']:.0f} % | |",
    ]
    for name, fps in r["decode_fps"].items():
        lines.append(f"| decode fps, {name} | {fps['median']:.2f} (min {fps['min']:.2f}, max {fps['max']:.2f}) | |")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/nerv_training.json")
    print(nerv_training(json.loads(path.read_text())))
