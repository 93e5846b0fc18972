"""benchmarks/gpu_scale.py (issue #16) at its tiny CPU size: records, resumability, time budget.

The script runs its fits and files in child processes (seconds of start-up each on a busy machine), so
these tests keep to a few runs of 36x64 pixels, 4 frames and a handful of epochs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_scale.py"
sys.path.insert(0, str(SCRIPT.parent))

import gpu_scale

pytestmark = pytest.mark.slow


def run_script(*args: str, timeout: float = 400) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, time.monotonic() - start


def load(results: Path) -> dict:
    return json.loads((results / "gpu_scale_tiny.json").read_text())


def is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_tiny_records_and_second_invocation_skips(tmp_path: Path) -> None:
    out, results = tmp_path / "out", tmp_path / "results"
    from nervkit.models import list_methods

    proc, _ = run_script("--tiny", "--out", str(out), "--results", str(results))
    summary = load(results)
    runs = {(r["config"], r["variant"]): r for r in summary["runs"]}
    if "hinerv" in list_methods():
        assert "all finished" in proc.stdout and summary["complete"]
        assert summary["progress"] == {"runs_done": 2, "runs_planned": 2, "codec_points_left": 0}
        assert set(runs) == {("nerv-S", "fp32"), ("hinerv-bunny-S", "fp32")}
    else:  # skipped with a note, picked up once the method is registered
        assert set(runs) == {("nerv-S", "fp32")} and any("hinerv" in n for n in summary["notes"])
    for r in runs.values():
        assert r["status"] == "done" and r["epochs"] == r["epochs_done"] == 2 and r["size"] == "36x64"
        for key in ("seconds_per_epoch", "psnr", "ms_ssim", "train_seconds", "peak_rss_mib"):
            assert is_number(r[key]), (key, r[key])
        assert r["device"] == "cpu" and r["peak_gpu_memory_gib"] is None and r["memory_note"]
        assert [c[0] for c in r["psnr_curve"]] == [1, 2] and all(is_number(c[1]) for c in r["psnr_curve"])
        (f,) = r["files"]
        assert f["bits"] == 8 and f["bytes"] > 0 and is_number(f["bpp"]) and is_number(f["psnr"])
        assert abs(f["psnr"] - r["psnr"]) < 1.0  # the 8-bit file decodes close to the float model
        assert "vs_x265" in f
    x265 = summary["codecs"]["36x64"]["x265"]
    assert [p["quality"] for p in x265] == [36, 28] and all(is_number(p["bpp"]) and is_number(p["psnr"]) for p in x265)
    md = (results / "gpu_scale_tiny.md").read_text()
    assert "| nerv-S | fp32 |" in md and "| hinerv-bunny-S | fp32 |" in md and "x265 at 36x64" in md
    assert (results / "gpu_scale_tiny.png").stat().st_size > 0

    # the same command again: nothing is refitted, recompressed or re-encoded
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".pt", ".nerv") or "codecs" in p.parts}
    proc, _ = run_script("--tiny", "--out", str(out), "--results", str(results))
    assert "epochs" not in proc.stdout  # no work lines
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert load(results)["runs"] == summary["runs"]


def test_interrupted_fit_is_resumed_by_the_next_invocation(tmp_path: Path) -> None:
    out, results = tmp_path / "out", tmp_path / "results"
    common = ["--tiny", "--configs", "nerv-S", "--variants", "fp32,bf16", "--epochs", "30", "--codecs", "none",
              "--out", str(out), "--results", str(results)]
    # stopped (SIGINT, as when the budget runs out) once the fit has logged 3 epochs
    proc, _ = run_script(*common, "--stop-fit-after-epochs", "3")
    assert "run the same command again" in proc.stdout
    run = out / "runs" / "nerv-S--fp32"
    assert json.loads((run / "run.json").read_text())["status"] == "training"
    assert (run / "checkpoint.pt").is_file()
    first = load(results)
    assert not first["complete"]
    (r,) = first["runs"]  # the bf16 run was not started in this invocation
    assert r["status"] == "training" and 3 <= r["epochs_done"] < 30 and r["files"] == []

    proc, _ = run_script(*common)
    assert "all finished" in proc.stdout
    summary = load(results)
    runs = {r["variant"]: r for r in summary["runs"]}
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert fp32["status"] == bf16["status"] == "done"
    assert fp32["slices"] == 2 and fp32["resumes"] == 1 and fp32["epochs_done"] == 30
    assert [c[0] for c in fp32["psnr_curve"]] == list(range(3, 31, 3))
    assert bf16["precision"] == "bf16" and fp32["precision"] == "fp32"
    vs = bf16["vs_fp32"]
    assert is_number(vs["speedup"]) and vs["speedup"] > 0
    assert is_number(vs["psnr_diff_db"]) and abs(vs["psnr_diff_db"]) < 1.0
    assert is_number(vs["file_psnr_diff_db"])


def test_budget_stops_cleanly_and_leaves_the_work_for_later(tmp_path: Path) -> None:
    out, results = tmp_path / "out", tmp_path / "results"
    budget = 25
    proc, seconds = run_script("--tiny", "--configs", "nerv-S", "--epochs", "100000", "--codecs", "none",
                               "--budget-seconds", str(budget), "--out", str(out), "--results", str(results))
    assert seconds < budget + 15  # the interpreter's start before the clock, and a loaded machine
    assert "run the same command again" in proc.stdout
    summary = load(results)
    assert not summary["complete"] and summary["progress"]["runs_done"] == 0
    run = out / "runs" / "nerv-S--fp32"
    if (run / "run.json").is_file():  # the child got as far as the run: it is resumable, not finished
        assert json.loads((run / "run.json").read_text())["status"] == "training"
        if gpu_scale.history(run):  # stopped while training: SIGINT made it checkpoint
            assert (run / "checkpoint.pt").is_file()


def test_variant_options() -> None:
    both = {"--precision", "--compile"}
    assert gpu_scale.variant_options("fp32", both) == ["--precision", "fp32"]
    assert gpu_scale.variant_options("bf16+compile", both) == ["--precision", "bf16", "--compile", "true"]
    assert gpu_scale.variant_options("compile", both) == ["--precision", "fp32", "--compile", "true"]
    assert gpu_scale.variant_options("fp32", set()) == []  # an older nervkit: fp32 is all it does
    with pytest.raises(gpu_scale.Unsupported, match="no --precision"):
        gpu_scale.variant_options("bf16", set())
    with pytest.raises(gpu_scale.Unsupported, match="no --compile"):
        gpu_scale.variant_options("compile", {"--precision"})
    with pytest.raises(ValueError):
        gpu_scale.variant_options("fp8", both)
    with pytest.raises(ValueError):
        gpu_scale.variant_options("bf16+fp16", both)


def test_paper_configs_build_at_their_sizes() -> None:
    """Every GPU-scale configuration resolves at its size (meta device: no weights allocated)."""
    from nervkit.models import VideoGeometry, list_methods
    from nervkit.models.registry import count_parameters, get_method

    counts = {}
    for name, cfg in gpu_scale.CONFIGS.items():
        if cfg.method not in list_methods():
            continue
        h, w = gpu_scale.parse_size(cfg.size)
        geometry = VideoGeometry(num_frames=132, height=h, width=w)
        spec = get_method(cfg.method)
        counts[name] = count_parameters(spec, spec.build_config(geometry, preset=cfg.preset, params=None,
                                                                overrides={}), geometry)
    assert counts["enerv-12.49M"] == 12_490_602
    assert 3.1e6 < counts["nerv-S"] < 3.3e6 and counts["nerv-S"] < counts["nerv-M"] < counts["nerv-L"]
    assert 2.9e6 < counts["hnerv-3M"] < 3.1e6
