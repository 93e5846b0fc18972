"""Helpers shared by the benchmark scripts: machine description, matmul peak, JSON output."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from nervkit.bench.machine import describe_machine


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, torch build and threads: where the numbers were measured."""
    info = describe_machine("cuda" if torch.cuda.is_available() else "cpu")
    return {**info, "cuda": info["gpu"]}  # "cuda": the key of the results written so far


def matmul_peak_gflops(n: int = 2048, repeats: int = 5, trials: int = 3) -> float:
    """Measured fp32 matmul throughput (GFLOP/s): median over ``trials`` of ``repeats`` n×n products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        rates.append(2 * n**3 * repeats / (time.perf_counter() - t) / 1e9)
    return statistics.median(rates)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
