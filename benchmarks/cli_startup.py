"""How fast the light commands answer (issue #17): ``nervkit --version``, ``--help``, ``models`` and
``completion bash`` on the fast path (the shipped catalog, no torch) beside the same command lines on the
live path (the models imported first, as before the catalog existed), side by side in one run, each a
fresh process; plus ``import torch`` alone, and optionally ``nervkit report`` on a run folder.

    python benchmarks/cli_startup.py [--repeats 7] [--report-run runs/bunny]

Writes benchmarks/results/cli_startup.json (medians, ratios, the machine and its fp32 matmul peak
measured in the same run).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMANDS = [["--version"], ["--help"], ["models"], ["completion", "bash"]]
#: the fast path: what the ``nervkit`` console script runs
FAST = "import sys; from nervkit.cli.main import main; sys.exit(main(sys.argv[1:]))"
#: the live path: the models already imported, so the catalog is not trusted (nervkit.cli.catalog.load)
LIVE = "import sys; import nervkit.models; from nervkit.cli.main import main; sys.exit(main(sys.argv[1:]))"


def seconds(argv: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--report-run", help="also time `nervkit report` on this run folder")
    parser.add_argument("--out", default=str(HERE / "results" / "cli_startup.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from common import machine, matmul_peak_gflops, write_json

    python = sys.executable
    rows = []
    for command in COMMANDS:
        fast = seconds([python, "-c", FAST, *command], args.repeats)
        live = seconds([python, "-c", LIVE, *command], args.repeats)
        rows.append({"command": "nervkit " + " ".join(command), "fast_s": statistics.median(fast),
                     "live_s": statistics.median(live), "ratio": statistics.median(live) / statistics.median(fast),
                     "fast_all": fast, "live_all": live})
        print(f"nervkit {' '.join(command):<18} fast {rows[-1]['fast_s']:.3f} s  live {rows[-1]['live_s']:.3f} s  "
              f"({rows[-1]['ratio']:.0f}x)", flush=True)
    torch_import = statistics.median(seconds([python, "-c", "import torch"], args.repeats))
    result = {"machine": machine(), "matmul_peak_gflops": matmul_peak_gflops(), "repeats": args.repeats,
              "import_torch_s": torch_import, "commands": rows}
    if args.report_run:
        with tempfile.TemporaryDirectory() as tmp:
            report = seconds([python, "-m", "nervkit", "report", args.report_run, "-o", f"{tmp}/r.html", "--show",
                              "3"], 3)
        result["report"] = {"run": args.report_run, "seconds_median": statistics.median(report), "all": report}
        print(f"nervkit report {args.report_run}: {statistics.median(report):.2f} s", flush=True)
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
