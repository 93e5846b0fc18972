"""The ``nervkit`` command line end to end: real clips, real training (tiny models), no mocks.

Most commands run in-process through :func:`nervkit.cli.main.main`; the ones where the process
matters (SIGKILL and resume, torchrun) run as subprocesses.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import cli_ok, gradient_clip, H, N, run_cli, W, write_audio_only  # noqa: F401
from nervkit.io import probe_video, read_video, write_video

SMALL_MODEL = ["--mlp-hidden", "32", "--grid-channels", "16", "--lower-width", "16"]




def frames_of(path: Path) -> torch.Tensor:
    return read_video(path).frames


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NERVKIT_DEBUG", None)
    return env


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli_input") / "clip.mkv"
    return write_video(gradient_clip(), path, fps=25, lossless=True)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, clip) -> tuple[Path, dict]:
    """One small run, fitted once for the module: (run folder, the --json summary)."""
    run = tmp_path_factory.mktemp("cli_runs") / "run"
    out = cli_ok("fit", clip, "-o", run, "--epochs", 4, "--lr", "2e-3", "--quiet", "--json", "--threads", 1,
             *SMALL_MODEL)
    return run, json.loads(out)


# 1. fit -------------------------------------------------------------------------------------------------
def test_fit_writes_a_complete_run(fitted):
    run, summary = fitted
    for name in ("run.json", "checkpoint.pt", "history.json", "metrics.json", "decoded.mp4"):
        assert (run / name).is_file(), name
    assert not (run / "cache").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".")], "temporary files left behind"
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["method"] == "nerv"
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["frames"] == N and math.isfinite(metrics["psnr"])
    info = probe_video(run / "decoded.mp4")
    assert (info.num_frames, *info.size) == (N, H, W)
    # --json: a parseable summary
    assert summary["run"] == str(run)
    assert summary["psnr"] == pytest.approx(metrics["psnr"])
    assert summary["parameters"] == meta["parameters"]["official"] > 0
    assert summary["frames"] == N and summary["size"] == [H, W] and summary["epochs"] == 4


def test_fit_prints_the_run_folder_and_psnr(tmp_path, clip):
    run = tmp_path / "plain"
    out = cli_ok("fit", clip, "-o", run, "--params", "20k", "--epochs", 2, "--quiet", "--no-video",
             "--threads", 1)
    lines = out.splitlines()
    assert lines[0] == f"run folder: {run}"
    psnr = json.loads((run / "metrics.json").read_text())["psnr"]
    assert f"PSNR {psnr:.2f} dB" in out
    assert "parameters" in out and f"{N} frames {H}x{W}" in out
    assert not (run / "decoded.mp4").exists()  # --no-video


# 2. decode ----------------------------------------------------------------------------------------------
def test_decode_lossless_png_and_mp4_have_the_input_geometry(fitted, tmp_path):
    run, _ = fitted
    mkv = tmp_path / "out.mkv"
    assert f"wrote {mkv}" in cli_ok("decode", run, "-o", mkv, "--lossless")
    png = tmp_path / "frames"
    cli_ok("decode", run, "-o", f"{png}/")
    mp4 = tmp_path / "out.mp4"
    cli_ok("decode", run, "-o", mp4)
    assert probe_video(mkv).pix_fmt == "bgr0"
    assert len(sorted(png.glob("*.png"))) == N
    for path in (mkv, png, mp4):
        frames = frames_of(path)
        assert tuple(frames.shape) == (N, 3, H, W), path
    # the lossless outputs hold the same frames
    assert torch.equal(frames_of(mkv), frames_of(png))
    # the lossy mp4 is close to them
    diff = (frames_of(mp4).float() - frames_of(mkv).float()).abs().mean()
    assert diff < 3.0


def test_decode_a_frame_range(fitted, tmp_path):
    run, _ = fitted
    cli_ok("decode", run, "-o", tmp_path / "part.mkv", "--lossless", "--frames", "2:5")
    cli_ok("decode", run, "-o", tmp_path / "all.mkv", "--lossless")
    part, full = frames_of(tmp_path / "part.mkv"), frames_of(tmp_path / "all.mkv")
    assert tuple(part.shape) == (3, 3, H, W)
    assert torch.equal(part, full[2:5])


# 3. eval ------------------------------------------------------------------------------------------------
def test_eval_table_and_json(fitted, clip, tmp_path):
    run, _ = fitted
    decoded = tmp_path / "decoded.mkv"
    cli_ok("decode", run, "-o", decoded, "--lossless")
    table = cli_ok("eval", clip, decoded)
    for label in ("PSNR (dB)", "PSNR global (dB)", "SSIM", "MS-SSIM", f"{N} frames of {H}x{W}"):
        assert label in table
    report = json.loads(cli_ok("eval", clip, decoded, "--json"))
    for key in ("psnr", "psnr_global", "ssim", "ms_ssim"):
        assert isinstance(report[key], float) and math.isfinite(report[key]), key
    assert report["frames"] == N and (report["height"], report["width"]) == (H, W)
    assert f"{report['psnr']:.2f}" in table
    # the 8-bit lossless decode scores what the float model scored during fit (rounding only)
    metrics = json.loads((run / "metrics.json").read_text())
    assert abs(report["psnr"] - metrics["psnr"]) < 0.2
    # -o writes the same report
    cli_ok("eval", clip, decoded, "-o", tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["psnr"] == report["psnr"]


def test_eval_of_a_video_against_itself(clip):
    report = json.loads(cli_ok("eval", clip, clip, "--json"))
    assert report["psnr"] == 100.0 and report["psnr_global"] == 100.0
    assert report["ssim"] == pytest.approx(1.0) and report["ms_ssim"] == pytest.approx(1.0)


# 4. determinism -----------------------------------------------------------------------------------------
def test_decoding_is_deterministic(fitted, tmp_path):
    run, _ = fitted
    cli_ok("decode", run, "-o", tmp_path / "a.mkv", "--lossless")
    cli_ok("decode", run, "-o", tmp_path / "b.mkv", "--lossless")
    assert torch.equal(frames_of(tmp_path / "a.mkv"), frames_of(tmp_path / "b.mkv"))


# 5. info ------------------------------------------------------------------------------------------------
def test_info(fitted):
    run, summary = fitted
    text = cli_ok("info", run)
    assert "method:     nerv" in text
    assert f"{summary['parameters']:,}" in text
    assert f"{N} frames {H}x{W}" in text
    assert "training:   4/4 epochs" in text
    assert "final:      PSNR" in text
    data = json.loads(cli_ok("info", run, "--json"))
    assert data["method"] == "nerv" and data["status"] == "complete"
    assert data["geometry"] == {"num_frames": N, "height": H, "width": W}
    assert data["parameters"]["official"] == summary["parameters"]
    assert [e["epoch"] for e in data["history"]["epochs"]] == [1, 2, 3, 4]


# 6. resume ----------------------------------------------------------------------------------------------
RESUME_MODEL = ["--mlp-hidden", "64", "--grid-channels", "64", "--lower-width", "32"]  # ~0.3 s per epoch


def _checkpoint_epoch(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # replaced while we read it
        return -1


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, clip):
    opts = ["--epochs", 8, "--checkpoint-every", 1, "--threads", 1, "--quiet", "--no-video", "--lr", "2e-3",
            *RESUME_MODEL]
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nervkit", "fit", str(clip), "-o", str(killed), *map(str, opts)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env())
    ckpt = killed / "checkpoint.pt"
    deadline = time.monotonic() + 120
    last_mtime, epoch = None, 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.is_file():
                mtime = ckpt.stat().st_mtime_ns
                if mtime != last_mtime:
                    last_mtime, epoch = mtime, _checkpoint_epoch(ckpt)
                    if epoch >= 2:
                        break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert 2 <= state["epoch"] < 8
    assert json.loads((killed / "run.json").read_text())["status"] == "training"
    assert not (killed / "history.json").exists()

    cli_ok("fit", "--resume", "-o", killed, "--quiet", "--no-video")
    history = json.loads((killed / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == list(range(1, 9))
    assert json.loads((killed / "run.json").read_text())["status"] == "complete"

    straight = tmp_path / "straight"
    cli_ok("fit", clip, "-o", straight, *opts)
    a = torch.load(killed / "checkpoint.pt", map_location="cpu", weights_only=True)
    b = torch.load(straight / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == 8
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [e["loss"] for e in a["history"]] == [e["loss"] for e in b["history"]]


def test_resume_of_a_complete_run_just_finishes(fitted):
    run, _ = fitted
    before = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    out = cli_ok("fit", "--resume", "-o", run, "--quiet", "--json")
    assert json.loads(out)["epochs"] == 4
    after = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3, 4]


def test_resume_with_a_conflicting_epochs_value_is_a_one_line_error(fitted):
    run, _ = fitted
    run_json = (run / "run.json").read_bytes()
    code, out, err = run_cli("fit", "--resume", "-o", run, "--epochs", 9, "--quiet")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("nervkit")
    assert "--epochs 9" in err and "4" in err
    assert (run / "run.json").read_bytes() == run_json


# 7. models and help -------------------------------------------------------------------------------------
def test_models_lists_every_method_and_its_presets():
    out = cli_ok("models")
    sections = {}  # method -> its indented lines
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.split(":", 1)[0]
            sections[name] = []
        else:
            sections[name].append(line.strip())
    assert list(sections) == ["d-nerv", "dnerv", "enerv", "hinerv", "hnerv", "nerv", "nvp"]
    for method, names in (("nerv", ("S", "M", "L")), ("hnerv", ("640x1280-1.5M", "960x1920-3M")),
                          ("nvp", ("nvp-s", "nvp-l")),
                          ("enerv", ("12.49M", "variant-1", "e-nerv-mlp", "nerv-split")),
                          ("dnerv", ("640x1280-0.35M", "960x1920-3M-small-diff", "960x1920-official")),
                          ("d-nerv", ("uvg-xs", "uvg-s", "uvg-xl", "ucf101-s", "ucf101-l")),
                          ("hinerv", ("S", "M", "L", "XL", "XXL", "bunny-XXS", "bunny-S", "mcl-L"))):
        presets = next(line for line in sections[method] if line.startswith("presets:"))
        for name in names:
            assert name in presets.split(":", 1)[1].replace(",", " ").split()


def test_fit_help_shows_architecture_and_training_options():
    out = cli_ok("fit", "--model", "nerv", "--help")
    assert "nerv architecture" in out and "training:" in out
    for option in ("--grid-channels", "--mlp-hidden", "--strides", "--epochs", "--lr", "--batch-size", "--resume"):
        assert option in out, option


# 8. torchrun --------------------------------------------------------------------------------------------
def test_fit_with_torchrun_two_processes(tmp_path, clip):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "nervkit", "fit", str(clip), "-o", str(run), "--params", "20k", "--epochs", "3",
           "--threads", "1", "--device", "cpu", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for name in ("run.json", "checkpoint.pt", "history.json", "metrics.json", "decoded.mp4"):
        assert (run / name).is_file(), name
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete"
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert f"run folder: {run}" in proc.stdout and "PSNR" in proc.stdout
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 3
    assert tuple(frames_of(run / "decoded.mp4").shape) == (N, 3, H, W)


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path, clip):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "nervkit", "fit", str(clip), "-o", str(run), "--epochs", "400", "--quiet",
           "--no-video", "--threads", "1", "--checkpoint-every", "1", *SMALL_MODEL]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env())
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (run / "checkpoint.pt").is_file():  # training has begun
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "checkpoint saved" in lines[0] and f"--resume -o {run}" in lines[0]
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert 1 <= state["epoch"] < 400  # the work up to the signal was kept, the run did not finish
