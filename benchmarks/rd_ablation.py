"""Which part of rate–distortion training buys how much (issue #15): one fit per method, then rate
fine-tunes that each change one part — the rate term (plain 8-bit + QAT for as many epochs instead), learned
step sizes (kept at their start), the entropy model's granularity (per tensor / per output channel instead of
per row + column), its family (Gaussian), the rounding surrogate (uniform noise, Quant-Noise), and the context
model (off; grids and embeddings only).

The full configuration runs at several λ (its RD curve); each variant at one λ. A variant's cost is the rate
change at equal PSNR against the full curve (log-rate interpolated between its points, or extrapolated
from the nearest two): +10 % means the variant needs 10 % more bits for the same quality::

    python benchmarks/rd_ablation.py                        # NeRV and HNeRV on Bunny 90x160, 32 frames
    python benchmarks/rd_ablation.py --methods nvp --params 0.2M

Results: ``benchmarks/results/rd_ablation.json`` and ``.md``; the fits and files stay in
``benchmarks/out/rd_ablation/`` (reused when rerun).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from common import machine, matmul_peak_gflops  # noqa: E402

#: variant name -> (compress settings beyond rd_lambda / rd_epochs, what it removes)
VARIANTS = {
    "tensor steps": ({"step_axes": "tensor"}, "one step and scale per tensor instead of per row + column"),
    "channel steps": ({"step_axes": "channel"}, "one step and scale per output channel"),
    "fixed steps": ({"learn_steps": False}, "step sizes kept at their start (σ/16 per output channel)"),
    "gaussian": ({"entropy_model": "gaussian"}, "Gaussian instead of Laplace"),
    "noise rounding": ({"rounding": "noise"}, "uniform noise instead of soft-rounding"),
    "quant-noise": ({"rounding": "quant-noise"}, "Quant-Noise (90 % rounded) instead of soft-rounding"),
    "no context": ({"context": False}, "no checkerboard context model for grids / embeddings"),
}
CONTEXT_METHODS = ("hnerv", "dnerv", "nvp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="nerv,hnerv")
    parser.add_argument("--params", default="0.1M")
    parser.add_argument("--size", default="90x160")
    parser.add_argument("--frames", default="0:32")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rd-epochs", type=int, default=15)
    parser.add_argument("--lambdas", default="0.1,0.3,1,3", help="λ of the full configuration's curve")
    parser.add_argument("--variant-lambda", type=float, default=0.3)
    parser.add_argument("--name", default="rd_ablation")
    args = parser.parse_args(argv)
    import nervkit

    video = str(Path(nervkit.__file__).parent / "assets" / "bigbuckbunny.mp4")
    work = ROOT / "out" / args.name
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"benchmark": "rd_ablation", "args": vars(args), "machine": machine(),
                     "fp32_matmul_peak_gflops": matmul_peak_gflops(), "methods": {}}
    for method in args.methods.split(","):
        run = work / f"{method}-{args.params}"
        if not (run / "run.json").is_file() or json.loads((run / "run.json").read_text()).get("status") != "complete":
            nervkit.fit(video, out=run, model=method, params=args.params, size=args.size, frames=args.frames,
                        epochs=args.epochs, progress=False, write_video=False, resume=(run / "run.json").is_file())

        def point(name: str, **settings) -> dict:
            cache = work / f"{method}-{name}.json"
            if cache.is_file():
                return json.loads(cache.read_text())
            start = time.perf_counter()
            report = nervkit.compress(run, work / f"{method}-{name}.nerv", **settings)
            out = {"bpp": report["bpp"], "psnr": report["psnr"], "ms_ssim": report["ms_ssim"],
                   "seconds": time.perf_counter() - start, "settings": settings,
                   "estimate_error": (report.get("rate") or {}).get("estimate_error")}
            cache.write_text(json.dumps(out))
            print(f"{method} {name}: {out['bpp']:.4f} bpp {out['psnr']:.2f} dB", flush=True)
            return out

        lambdas = [float(v) for v in args.lambdas.split(",")]
        full = [point(f"full-{lam:g}", rd_lambda=lam, rd_epochs=args.rd_epochs) for lam in lambdas]
        rows = {"8-bit + QAT (no rate term)": point("qat", qat_epochs=args.rd_epochs),
                "8-bit (current pipeline)": point("plain")}
        for name, (settings, _) in VARIANTS.items():
            if name == "no context" and method not in CONTEXT_METHODS:
                continue
            rows[name] = point(name.replace(" ", "-"), rd_lambda=args.variant_lambda, rd_epochs=args.rd_epochs,
                               **settings)
        nearest = min(range(len(lambdas)), key=lambda k: abs(math.log(lambdas[k] / args.variant_lambda)))
        rows["full"] = full[nearest]
        for row in rows.values():
            row["rate_vs_full"] = rate_change(full, row)
        results["methods"][method] = {"full_curve": full, "rows": rows}
    out = ROOT / "results" / args.name
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


def rate_change(curve: list[dict], p: dict) -> float | None:
    """Rate of ``p`` over the rate the curve needs for ``p``'s PSNR, − 1 (log-rate linear in PSNR between the
    two nearest points of the curve)."""
    pts = sorted(curve, key=lambda c: c["psnr"])
    if len(pts) < 2:
        return None
    i = max(1, min(len(pts) - 1, next((k for k, c in enumerate(pts) if c["psnr"] >= p["psnr"]), len(pts) - 1)))
    a, b = pts[i - 1], pts[i]
    if b["psnr"] == a["psnr"]:
        return None
    t = (p["psnr"] - a["psnr"]) / (b["psnr"] - a["psnr"])
    log_rate = math.log(a["bpp"]) + t * (math.log(b["bpp"]) - math.log(a["bpp"]))
    return p["bpp"] / math.exp(log_rate) - 1


def markdown(results: dict) -> str:
    lines = []
    for method, data in results["methods"].items():
        curve = ", ".join(f"{p['bpp']:.4f} bpp / {p['psnr']:.2f} dB" for p in data["full_curve"])
        lines += [f"**{method}** (full configuration at λ {results['args']['lambdas']}: {curve})", "",
                  "| variant | bpp | PSNR | rate at equal PSNR vs full |", "|---|---|---|---|"]
        for name, row in data["rows"].items():
            change = row["rate_vs_full"]
            lines.append(f"| {name} | {row['bpp']:.4f} | {row['psnr']:.2f} | "
                         f"{'n/a' if change is None else f'{100 * change:+.1f} %'} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
