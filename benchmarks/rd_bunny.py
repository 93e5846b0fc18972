"""Rate–distortion benchmark on the bundled Big Buck Bunny clip (issue #3): NeRV at four sizes, each
compressed four ways (8-bit; 20 % pruned; QAT; both), against x264, x265, AV1 and VVC.

    python benchmarks/rd_bunny.py                       # 180x320, everything on this machine
    python benchmarks/rd_bunny.py --size 720x1280 --params 0.75M,1.5M,3.2M --epochs 80 \\
        --finetune-epochs 5 --qat-epochs 5 --device cuda --name rd720

It is ``nervkit bench rd`` with the benchmark's settings; the work folder (``benchmarks/out/<name>``:
fitted runs, .nerv files) is reused, so fits made elsewhere (e.g. on a GPU, with the same command and
``--device cuda``) are picked up when copied into ``benchmarks/out/<name>/runs``. The summary, the
Markdown table, the plot and the per-series JSON are copied to ``benchmarks/results/<name>/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="180x320")
    parser.add_argument("--params", default="0.05M,0.15M,0.5M,1.5M")
    parser.add_argument("--epochs", default="300")
    parser.add_argument("--finetune-epochs", default="10")
    parser.add_argument("--qat-epochs", default="10")
    parser.add_argument("--methods", default="nerv,x264,x265,av1,vvc")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--name", default="rd180")
    args = parser.parse_args(argv)
    from nervkit.cli.main import main as nervkit

    work = ROOT / "out" / args.name
    code = nervkit(["bench", "rd", "--sample", "--size", args.size, "--methods", args.methods,
                    "--params", args.params, "--epochs", args.epochs, "--finetune-epochs", args.finetune_epochs,
                    "--qat-epochs", args.qat_epochs, "--device", args.device, "-o", str(work)])
    if code:
        return code
    results = ROOT / "results" / args.name
    results.mkdir(parents=True, exist_ok=True)
    for name in ("summary.json", "rd.md", "rd.png"):
        shutil.copy2(work / name, results / name)
    shutil.copytree(work / "results", results / "results", dirs_exist_ok=True)
    print(f"copied the results to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
