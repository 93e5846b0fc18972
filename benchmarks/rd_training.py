"""Rate–distortion training against each method's current pipeline and x265 (issue #15).

For every method: the current pipeline (fits at several sizes, 8-bit + ANS; optionally pruned + QAT), rate
training as a fine-tune of every fit (``--rd-lambdas``, ``--rd-epochs``: series ``METHOD-rd``) and rate
training from the start (``--rate-lambdas``: series ``METHOD-rdfit``), all on one video against x265 slow.
Each method is one ``nervkit bench rd`` into ``benchmarks/out/<name>/<method>`` (reused when rerun); the
summary — BD-rate of every rate-trained series against its own pipeline and against x265, the file size
against the rate the training estimated, the training time per epoch with and without the rate term and the
decode times — goes to ``benchmarks/results/<name>.json`` / ``.md`` / ``.png``::

    python benchmarks/rd_training.py                                  # Bunny 180x320, 132 frames, this CPU
    python benchmarks/rd_training.py --methods nerv --epochs 300 --device cuda --size 720x1280 --name rd_training720
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from common import machine, matmul_peak_gflops  # noqa: E402

#: per method: the model sizes of its current-pipeline curve, and λ of its rate training (loss units per bpp)
DEFAULTS = {
    "nerv": {"params": "0.03M,0.06M,0.12M,0.25M", "rd": "0.003,0.01,0.03,0.1", "rate": "0.01,0.03"},
    "enerv": {"params": "0.05M,0.1M,0.2M,0.4M", "rd": "0.003,0.01,0.03,0.1", "rate": "0.01,0.03"},
    "hnerv": {"params": "0.03M,0.06M,0.12M,0.25M", "rd": "0.003,0.01,0.03,0.1", "rate": "0.01,0.03"},
    "nvp": {"params": "0.1M,0.2M,0.4M,0.8M", "rd": "0.003,0.01,0.03,0.1", "rate": "0.01,0.03"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="nerv,enerv,hnerv,nvp")
    parser.add_argument("--size", default="180x320")
    parser.add_argument("--frames", default="0:132")
    parser.add_argument("--epochs", default="60")
    parser.add_argument("--rd-epochs", default="15")
    parser.add_argument("--params", default=None, help="model sizes (default: per method, DEFAULTS)")
    parser.add_argument("--rd-lambdas", default=None)
    parser.add_argument("--rate-lambdas", default=None)
    parser.add_argument("--qat-epochs", default="0", help="QAT epochs of the current pipeline's -qat variant")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--name", default="rd_training")
    args = parser.parse_args(argv)
    from nervkit.cli.main import main as nervkit

    summaries = {}
    for method in args.methods.split(","):
        d = DEFAULTS.get(method, DEFAULTS["nerv"])
        work = ROOT / "out" / args.name / method
        argv = ["bench", "rd", "--sample", "--size", args.size, "--frames", args.frames, "--methods", f"{method},x265",
                "--params", args.params or d["params"], "--epochs", args.epochs, "--prune", "0",
                "--qat-epochs", args.qat_epochs, "--rd-epochs", args.rd_epochs,
                "--rd-lambdas", args.rd_lambdas or d["rd"], "--vmaf", "false", "--device", args.device,
                "-o", str(work)]
        if (args.rate_lambdas or d["rate"]) != "none":
            argv += ["--rate-lambdas", args.rate_lambdas or d["rate"]]
        code = nervkit(argv)
        if code:
            return code
        summaries[method] = json.loads((work / "summary.json").read_text())
    report = summarize(summaries, args)
    out = ROOT / "results" / args.name
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(markdown(report))
    plot(summaries, out.with_suffix(".png"))
    print(markdown(report))
    return 0


def summarize(summaries: dict, args: argparse.Namespace) -> dict:
    rows = {}
    for method, summary in summaries.items():
        series = {name: data["results"] for name, data in summary["series"].items()}
        plain = series[method]
        row = {"series": {}}
        for name, rd in series.items():
            if name == "x265":
                continue
            points = [dict(zip(rd, values)) for values in zip(*rd.values())]
            entry = {"points": [{k: p.get(k) for k in ("params", "bpp", "estimated_bpp", "psnr-rgb", "ms-ssim-rgb",
                                                        "training_time", "compression_time", "decoding_time",
                                                        "rate_lambda")} for p in points]}
            entry["bd_rate_vs_x265"] = _bd(series["x265"], rd)
            if name != method:
                entry["bd_rate_vs_own_pipeline"] = _bd(plain, rd)
            estimates = [abs(p["bpp"] / p["estimated_bpp"] - 1) for p in points if p.get("estimated_bpp")]
            entry["max_file_vs_estimate"] = max(estimates) if estimates else None
            row["series"][name] = entry
        rows[method] = row
    return {"benchmark": "rd_training", "args": vars(args), "machine": machine(),
            "fp32_matmul_peak_gflops": matmul_peak_gflops(), "methods": rows,
            "x265": summaries[next(iter(summaries))]["series"]["x265"]["results"]}


def _bd(anchor: dict, test: dict) -> float | None:
    """BD-rate (PSNR, PCHIP on the overlap) of ``test`` against ``anchor``; None without an overlap."""
    import math

    from nervkit.bench.bdrate import bd_rate

    try:
        value = bd_rate(anchor["bpp"], anchor["psnr-rgb"], test["bpp"], test["psnr-rgb"])
    except Exception:  # noqa: BLE001 - too few points or no overlap of the quality ranges
        return None
    return value if math.isfinite(value) else None


def markdown(report: dict) -> str:
    lines = ["| series | points (bpp / PSNR) | BD-rate vs own pipeline | BD-rate vs x265 slow | file vs estimate |",
             "|---|---|---|---|---|"]
    for method, row in report["methods"].items():
        for name, entry in row["series"].items():
            pts = ", ".join(f"{p['bpp']:.3f}/{p['psnr-rgb']:.2f}" for p in entry["points"])
            own = entry.get("bd_rate_vs_own_pipeline")
            x265 = entry.get("bd_rate_vs_x265")
            est = entry.get("max_file_vs_estimate")
            lines.append(f"| {name} | {pts} | {'' if own is None else f'{own:+.1f} %'} | "
                         f"{'n/a' if x265 is None else f'{x265:+.1f} %'} | "
                         f"{'' if est is None else f'≤ {100 * est:.2f} %'} |")
    return "\n".join(lines) + "\n"


def plot(summaries: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(5 * len(summaries), 4), squeeze=False)
    for ax, (method, summary) in zip(axes[0], summaries.items()):
        for name, data in summary["series"].items():
            r = data["results"]
            ax.plot(r["bpp"], r["psnr-rgb"], "o-" if name != "x265" else "k--", label=name, ms=3)
        ax.set_xscale("log")
        ax.set_xlabel("bpp (file)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(method)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
