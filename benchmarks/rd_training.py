"""Rate–distortion training against each method's current pipeline and x265 (issue #15).

For every method: the current pipeline (fits at several sizes, 8-bit + ANS; optionally pruned + QAT), rate
training as a fine-tune of every fit (``--rd-lambdas``, ``--rd-epochs``: series ``METHOD-rd``) and rate
training from the start (``--rate-lambdas``: series ``METHOD-rdfit``), all on one video against x265 slow.
Each method is one ``nervkit bench rd`` into ``benchmarks/out/<name>/<method>`` (reused when rerun); the
summary — BD-rate of every rate-trained series against its own pipeline and against x265, the file size
against the rate the training estimated, the training time per epoch with and without the rate term and the
decode times — goes to ``benchmarks/results/<name>.json`` / ``.md`` / ``.png``::

    python benchmarks/rd_training.py                                  # Bunny 90x160, 32 frames, this CPU
    python benchmarks/rd_training.py --size 180x320 --frames 0:132 --epochs 300   # the issue's setting
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
DEFAULTS = {  # λ in each method's loss units: NeRV / E-NeRV train on l1+ssim, HNeRV / NVP on l2 (≈ 50× smaller)
    "nerv": {"params": "0.03M,0.06M,0.12M", "rd": "0.1,0.3,1,3", "rate": "0.3,1"},
    "enerv": {"params": "0.05M,0.1M,0.2M", "rd": "0.1,0.3,1,3", "rate": "none"},
    "hnerv": {"params": "0.12M,0.2M,0.35M", "rd": "0.002,0.006,0.02,0.06", "rate": "none"},  # 74 k in embeddings
    "nvp": {"params": "0.05M,0.1M,0.2M", "rd": "0.002,0.006,0.02,0.06", "rate": "none"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="nerv,enerv,hnerv,nvp")
    parser.add_argument("--size", default="90x160")
    parser.add_argument("--frames", default="0:32")
    parser.add_argument("--epochs", default="60")
    parser.add_argument("--rd-epochs", default="15")
    parser.add_argument("--params", default=None, help="model sizes (default: per method, DEFAULTS)")
    parser.add_argument("--rd-lambdas", default=None)
    parser.add_argument("--rate-lambdas", default=None)
    parser.add_argument("--qat-epochs", default=None, help="QAT epochs of the current pipeline's -qat variant "
                                                         "(default: --rd-epochs, the same training time)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--name", default="rd_training")
    parser.add_argument("--from-cache", default="", help="methods whose curves are assembled from the points "
                                                          "measured so far (files/*.json), nothing run: a benchmark "
                                                          "cut short")
    args = parser.parse_args(argv)
    from nervkit.cli.main import main as nervkit

    summaries = {}
    cached = [m for m in args.from_cache.split(",") if m]
    for method in cached:
        summaries[method] = from_cache(method, ROOT / "out" / args.name / method)
    for method in [m for m in args.methods.split(",") if m not in cached]:
        d = DEFAULTS.get(method, DEFAULTS["nerv"])
        work = ROOT / "out" / args.name / method
        argv = ["bench", "rd", "--sample", "--size", args.size, "--frames", args.frames, "--methods", f"{method},x265",
                "--params", args.params or d["params"], "--epochs", args.epochs, "--prune", "0",
                "--qat-epochs", args.qat_epochs or args.rd_epochs, "--rd-epochs", args.rd_epochs,
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


def from_cache(method: str, work: Path) -> dict:
    """A summary like ``bench rd``'s of the points measured so far in ``work``: the current pipeline and QAT
    per size, the rate-trained series as their RD front, x265."""
    from nervkit.bench.rd_neural import rd_front

    series: dict[str, list] = {}
    for path in sorted((work / "files").glob(f"{method}-*.json")):
        rest = path.stem[len(method) + 1:]
        params, _, variant = rest.partition("-")
        name = method + ("" if not variant else "-rd" if variant.startswith("rd") and not variant.startswith("rdfit")
                         else "-rdfit" if variant.startswith("rdfit") else f"-{variant}")
        series.setdefault(name, []).append(json.loads(path.read_text())["point"])
    out = {}
    for name, points in series.items():
        points = rd_front(points) if name.endswith(("-rd", "-rdfit")) else sorted(points, key=lambda p: p["params"])
        out[name] = {"results": {k: [p.get(k) for p in points] for k in points[0]}}
    out["x265"] = json.loads((work / "results" / "x265.json").read_text())
    return {"series": out, "partial": True}


def summarize(summaries: dict, args: argparse.Namespace) -> dict:
    rows = {}
    for method, summary in summaries.items():
        series = {name: data["results"] for name, data in summary["series"].items()}
        own = {name: series[name] for name in (method, f"{method}-qat") if name in series}
        row = {"series": {}}
        for name, rd in series.items():
            if name == "x265":
                continue
            points = [dict(zip(rd, values)) for values in zip(*rd.values())]
            entry = {"points": [{k: p.get(k) for k in ("params", "bpp", "estimated_bpp", "psnr-rgb", "ms-ssim-rgb",
                                                        "training_time", "compression_time", "decoding_time",
                                                        "rate_lambda")} for p in points]}
            entry["bd_rate_vs_x265"] = _bd(series["x265"], rd)
            if name not in own:  # against the current pipeline: 8-bit, and 8-bit + QAT for as many epochs
                entry["bd_rate_vs_own_pipeline"] = {anchor: _bd(data, rd) for anchor, data in own.items()}
            estimates = [abs(p["bpp"] / p["estimated_bpp"] - 1) for p in points if p.get("estimated_bpp")]
            entry["max_file_vs_estimate"] = max(estimates) if estimates else None
            row["series"][name] = entry
        row["rate_term_time_overhead"] = time_overhead(series, method)
        rows[method] = row
    return {"benchmark": "rd_training", "args": vars(args), "machine": machine(),
            "fp32_matmul_peak_gflops": matmul_peak_gflops(), "methods": rows,
            "x265": summaries[next(iter(summaries))]["series"]["x265"]["results"]}


def time_overhead(series: dict, method: str) -> dict:
    """How much longer training with the rate term takes: RD fine-tuning against QAT for as many epochs (per
    model size, median of the λ), and rate training from the start against the plain fit of the same size."""
    import statistics

    def by_size(name: str, key: str) -> dict:
        rd = series.get(name)
        out: dict = {}
        for params, value in zip(rd["params"], rd[key]) if rd else ():
            out.setdefault(params, []).append(value)
        return {p: statistics.median(v) for p, v in out.items()}

    result = {}
    qat, rd = by_size(f"{method}-qat", "compression_time"), by_size(f"{method}-rd", "compression_time")
    if qat and rd:
        result["rd_finetune_over_qat"] = statistics.median(rd[p] / qat[p] for p in rd if p in qat and qat[p])
    plain, rdfit = by_size(method, "training_time"), by_size(f"{method}-rdfit", "training_time")
    ratios = [rdfit[p] / plain[p] for p in rdfit if p in plain and plain[p]]
    if ratios:
        result["rdfit_over_plain_fit"] = statistics.median(ratios)
    return result


def _bd(anchor: dict, test: dict) -> float | None:
    """BD-rate (PSNR, PCHIP on the overlap) of ``test`` against ``anchor``'s RD front (a larger model that decodes
    worse than a smaller one is not part of the pipeline's best curve); None without an overlap."""
    import math

    from nervkit.bench.bdrate import bd_rate
    from nervkit.bench.rd_neural import rd_front

    front = rd_front([{"bpp": b, "psnr-rgb": q} for b, q in zip(anchor["bpp"], anchor["psnr-rgb"])])
    try:
        value = bd_rate([p["bpp"] for p in front], [p["psnr-rgb"] for p in front], test["bpp"], test["psnr-rgb"])
    except Exception:  # noqa: BLE001 - too few points or no overlap of the quality ranges
        return None
    return value if math.isfinite(value) else None


def markdown(report: dict) -> str:
    lines = ["| series | points (bpp / PSNR) | BD-rate vs own pipeline | BD-rate vs x265 slow | file vs estimate |",
             "|---|---|---|---|---|"]
    for method, row in report["methods"].items():
        for name, entry in row["series"].items():
            pts = ", ".join(f"{p['bpp']:.3f}/{p['psnr-rgb']:.2f}" for p in entry["points"])
            own = "; ".join(f"{'n/a' if v is None else f'{v:+.1f} %'} vs {k}"
                            for k, v in entry.get("bd_rate_vs_own_pipeline", {}).items())
            x265 = entry.get("bd_rate_vs_x265")
            est = entry.get("max_file_vs_estimate")
            lines.append(f"| {name} | {pts} | {own} | "
                         f"{'n/a' if x265 is None else f'{x265:+.1f} %'} | "
                         f"{'' if est is None else f'≤ {100 * est:.2f} %'} |")
    lines.append("")
    for method, row in report["methods"].items():
        over = row.get("rate_term_time_overhead") or {}
        parts = [f"{k.replace('_', ' ')} × {v:.2f}" for k, v in over.items()]
        if parts:
            lines.append(f"- {method}: training time with the rate term: {', '.join(parts)}")
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
