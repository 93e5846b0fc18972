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
    python benchmarks/rd_training.py --methods hinerv --name rd_training_hinerv --epochs 30 --rd-epochs 6 --fit-jobs 2

A method with a ``recipe`` in DEFAULTS (HiNeRV: 15 % pruned by the layer-normalised score, fine-tuned, then
Quant-Noise QAT with the symmetric quantizer) also gets that pipeline as series ``METHOD-recipe``, over the same
fits: ``--recipe-epochs`` (default: as many as the QAT variant) split 2:1 between the fine-tune after pruning
and QAT (the paper's 60 + 30 epochs after 300), and it counts as one of the method's own pipelines.
``--fit-jobs 2`` makes the plain fits of the sizes first, two processes at a time on one thread each (the same
fits ``bench rd`` would make, which it then reuses).
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
    # HiNeRV trains on 0.7·L1 + 0.3·(1 − MS-SSIM): the units of NeRV's l1+ssim family
    "hinerv": {"params": "0.05M,0.1M,0.2M", "rd": "0.1,0.3,1", "rate": "none",
               "recipe": {"prune": 0.15, "prune_score": "layer", "qat_noise": 0.9, "quantizer": "symmetric"}},
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
    parser.add_argument("--recipe-epochs", default=None, help="epochs of a method's own recipe (fine-tune after "
                                                              "pruning + QAT, split 2:1; default: as --qat-epochs)")
    parser.add_argument("--fit-jobs", type=int, default=1, help="fit the sizes first in this many processes at a "
                                                               "time, one thread each (1 = bench rd fits them)")
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
        if args.fit_jobs > 1:
            prefit(method, (args.params or d["params"]).split(","), work, args)
        code = nervkit(argv)
        if code:
            return code
        summaries[method] = json.loads((work / "summary.json").read_text())
        if d.get("recipe"):
            epochs = int(args.recipe_epochs or args.qat_epochs or args.rd_epochs)
            summaries[method]["series"][f"{method}-recipe"] = own_recipe(
                method, (args.params or d["params"]).split(","), d["recipe"], epochs, work, args)
    report = summarize(summaries, args)
    out = ROOT / "results" / args.name
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(markdown(report))
    plot(summaries, out.with_suffix(".png"))
    print(markdown(report))
    return 0


def prefit(method: str, sizes: list[str], work: Path, args: argparse.Namespace) -> None:
    """The plain fits of ``bench rd`` (same options; it reuses them), ``args.fit_jobs`` processes at a time, one
    thread each; unfinished ones are resumed."""
    import os
    import subprocess
    import time

    from nervkit.bench.rd import RD_MARKER

    work.mkdir(parents=True, exist_ok=True)
    if not (work / RD_MARKER).is_file():  # the folder is bench rd's (it refuses a non-empty folder without it)
        (work / RD_MARKER).write_text('{"written_by": "nervkit", "kind": "bench-rd"}\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    todo = [p for p in sizes if not (work / "runs" / f"{method}-{p}" / "metrics.json").is_file()]
    todo.sort(key=lambda p: -float(p.rstrip("MmKk")) * (1e3 if p[-1] in "kK" else 1e6 if p[-1] in "mM" else 1))
    running: list = []
    while todo or running:  # the largest first, a new fit as soon as one ends
        while todo and len(running) < args.fit_jobs:
            params = todo.pop(0)
            run = work / "runs" / f"{method}-{params}"
            run.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "nervkit", "fit", "-o", str(run), "--threads", "1", "--quiet", "--no-video",
                   "--device", args.device]
            cmd += ["--resume"] if (run / "run.json").is_file() else [
                "--sample", "--model", method, "--params", params, "--size", args.size, "--frames", args.frames,
                "--epochs", args.epochs, "--seed", "1"]
            print(f"fitting {run.name}: {' '.join(cmd[2:])}", flush=True)
            running.append(subprocess.Popen(cmd, env=env))
        time.sleep(1)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            if proc.returncode:
                raise SystemExit(f"a fit of {method} failed (exit {proc.returncode})")


def own_recipe(method: str, sizes: list[str], recipe: dict, epochs: int, work: Path, args: argparse.Namespace) -> dict:
    """Series ``METHOD-recipe``: every plain fit of ``work`` compressed with the method's own recipe (``recipe``:
    CompressConfig fields; ``epochs`` split 2:1 between fine-tuning after pruning and QAT), each file decoded
    and measured like ``bench rd``'s points, cached in ``files/METHOD-SIZE-recipe.json``."""
    import nervkit
    from nervkit.bench.rd import RDConfig
    from nervkit.bench.rd_neural import Variant, cached_point, neural_point
    from nervkit.compress.config import CompressConfig
    from nervkit.compress.model_codec import ENCODER_REVISION
    from nervkit.data import load_frames
    from nervkit.io import FrameRange
    from nervkit.io.atomic import write_json_atomic
    from nervkit.runs import Run

    finetune = round(2 * epochs / 3)
    settings = {"bits": 8, "embed_bits": 6, **recipe, "finetune_epochs": finetune, "qat_epochs": epochs - finetune}
    variant = Variant("-recipe", CompressConfig(**settings, evaluate=False, device=args.device))
    config = RDConfig(vmaf=False, device=args.device)
    h, w = (int(v) for v in args.size.split("x"))
    store = load_frames(nervkit.sample_video(), frames=FrameRange.parse(args.frames), size=(h, w))
    reference = store.frames.permute(0, 2, 3, 1).contiguous().numpy()
    points = []
    for params in sizes:
        run_dir = work / "runs" / f"{method}-{params}"
        run_meta = Run.at(run_dir).read_meta()
        nerv = work / "files" / f"{method}-{params}-recipe.nerv"
        key = {**settings, "fit_created": run_meta.get("created"), "encoder_revision": ENCODER_REVISION}
        point = cached_point(nerv.with_suffix(".json"), key) if nerv.is_file() else None
        if point is None:
            point = neural_point(run_dir, nerv, variant, reference, fps=store.fps, run_meta=run_meta, config=config,
                                 progress=False)
            write_json_atomic(nerv.with_suffix(".json"), {"settings": key, "point": point})
        print(f"{method}-{params}-recipe: {point['bpp']:.4f} bpp, {point['psnr-rgb']:.2f} dB", flush=True)
        points.append({"quality": float(point["params"]), **point})
    description = (f"{method}'s own recipe: {100 * settings['prune']:g} % pruned ({settings.get('prune_score')}), "
                   f"{finetune} fine-tuning + {epochs - finetune} QAT epochs (Quant-Noise {settings.get('qat_noise')}, "
                   f"{settings.get('quantizer')} quantizer), 8-bit + ANS")
    return {"name": f"{method}-recipe", "description": description, "settings": settings,
            "results": {k: [p.get(k) for p in points] for k in points[0]}}


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
        # the method's own pipelines: 8-bit, 8-bit + QAT, and its own recipe (DEFAULTS' "recipe") where it has one
        own = {name: series[name] for name in (method, f"{method}-qat", f"{method}-recipe") if name in series}
        row = {"series": {}}
        for name, rd in series.items():
            if name == "x265":
                continue
            points = [dict(zip(rd, values)) for values in zip(*rd.values())]
            entry = {"points": [{k: p.get(k) for k in ("params", "bpp", "estimated_bpp", "psnr-rgb", "ms-ssim-rgb",
                                                        "training_time", "compression_time", "decoding_time",
                                                        "rate_lambda")} for p in points]}
            entry["bd_rate_vs_x265"] = _bd(series["x265"], rd)
            if name not in (method, f"{method}-qat"):  # against the current pipeline: 8-bit, 8-bit + QAT for as
                # many epochs (and the method's own recipe)
                entry["bd_rate_vs_own_pipeline"] = {anchor: _bd(data, rd) for anchor, data in own.items()
                                                    if anchor != name}
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
