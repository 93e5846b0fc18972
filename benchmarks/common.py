"""Helpers shared by the benchmark scripts: machine description, matmul peak, JSON output, reusable
fits, training FLOPs and bare step times."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import nervkit
from nervkit.bench.machine import describe_machine
from nervkit.models import FrameBatch
from nervkit.models.registry import rebuild_model
from nervkit.train import ReconstructionLoss


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


def save_figure(fig: Any, path: Path) -> None:
    """Save a matplotlib figure to ``path`` atomically (temporary name, then rename) and close it."""
    import matplotlib.pyplot as plt

    tmp = path.with_suffix(".partial.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")  # a legend outside the axes is kept whole
    plt.close(fig)
    tmp.replace(path)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def fit_or_resume(run_dir: Path, *, device: str = "auto", threads: int = 0, **fit_options: Any) -> nervkit.FittedRun:
    """The finished run in ``run_dir`` (reused), resumed if interrupted, else fitted to the bundled
    sample with ``fit_options`` (:func:`nervkit.fit` keywords; no decoded video is written)."""
    if (run_dir / "metrics.json").is_file():
        return nervkit.load(run_dir)
    if (run_dir / "run.json").is_file():
        return nervkit.fit(out=run_dir, resume=True, write_video=False, device=device, threads=threads)
    return nervkit.fit(nervkit.sample_video(), out=run_dir, write_video=False, device=device, threads=threads,
                       **fit_options)


def _fresh_training_step(fitted: nervkit.FittedRun) -> tuple[torch.nn.Module, ReconstructionLoss, FrameBatch]:
    """A fresh model of the run's config, its loss and a batch of random frames of its batch size."""
    meta, geo = fitted.meta, fitted.model.geometry
    model = rebuild_model(meta["method"], meta["config"], geo)
    batch_size = int(meta["train"]["batch_size"])
    batch = FrameBatch(torch.arange(batch_size), torch.rand(batch_size, 3, geo.height, geo.width))
    if model.needs_neighbours:
        batch.neighbours = torch.rand(batch_size, 2, 3, geo.height, geo.width)
    return model, ReconstructionLoss.parse(meta["train"]["loss"]), batch


def training_flops(fitted: nervkit.FittedRun) -> int:
    """FLOPs of one training iteration of the run's model (its batch size; forward + loss + backward),
    counted on a fresh model of the same config and real-size random frames."""
    model, loss_fn, batch = _fresh_training_step(fitted)
    with FlopCounterMode(display=False) as counter:
        loss_fn(model.crop(model(batch)), batch.target).backward()
    return counter.get_total_flops()


def bare_step_seconds(fitted: nervkit.FittedRun, steps: int = 6) -> float:
    """Median seconds of one bare training step (forward + loss + backward + Adam) of a fresh model of
    the run's config on random frames: the floor that the trainer's seconds per iteration are compared
    with (the rest is data loading, progress and bookkeeping)."""
    model, loss_fn, batch = _fresh_training_step(fitted)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model.crop(model(batch)), batch.target).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def step_flops(forward_loss: Callable[[], torch.Tensor]) -> int:
    """FLOPs of one training iteration given as a closure that runs forward + loss and returns the
    loss (its backward is counted too; the optimizer update is not), for models built outside a
    nervkit run (e.g. an official implementation)."""
    with FlopCounterMode(display=False) as counter:
        forward_loss().backward()
    return counter.get_total_flops()


def timed_call(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call of ``fn``. On a shared machine the CPU seconds
    (all threads of this process) are the steadier of the two: they do not count time spent waiting
    for a core, although they do count OpenMP threads spinning while they wait for each other."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu
