"""The CUDA paths of every method, run where a CUDA device is present (the device machine; CI has none):
a tiny fit on the GPU through the CLI, compress with the quality check on the GPU, decompress on the
GPU twice (byte-identical PNGs), and the GPU decode within 8-bit rounding of the CPU decode of the same
file. D-NeRV fits a collection of two videos and decodes one of them alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY_MODELS, cli_ok, gradient_clip
from nervkit.io import write_video
from nervkit.models import list_methods

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the device machine)")

TINY = TINY_MODELS


def _pngs(folder: Path) -> np.ndarray:
    return np.stack([np.array(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))])


@pytest.mark.parametrize("method", [m for m in list_methods() if m in TINY])
def test_fit_compress_decompress_on_cuda(method: str, tmp_path: Path) -> None:
    frames = gradient_clip(12, 36, 60)
    inputs = [write_video(frames[:7], tmp_path / "a.mkv", fps=25, lossless=True),
              write_video(frames[7:], tmp_path / "b.mkv", fps=25, lossless=True)]
    if method != "d-nerv":
        inputs = [write_video(frames, tmp_path / "v.mkv", fps=25, lossless=True)]
    run = tmp_path / "run"
    cli_ok("fit", *inputs, "--model", method, *TINY[method], "--epochs", 4, "-o", run, "--quiet", "--no-video",
           "--device", "cuda")
    # NVP's latent grids as quantized weights: their JPEG/HEVC coding runs in ffmpeg, not on the GPU
    latent = ["--latent-codec", "weights"] if method == "nvp" else []
    report = json.loads(cli_ok("compress", run, "-o", tmp_path / "m.nerv", "--json", "--device", "cuda", *latent))
    assert report["device"] == "cuda" and report["psnr"] > 10
    for name in ("a", "b"):
        cli_ok("decompress", tmp_path / "m.nerv", "-o", tmp_path / f"{name}/", "--device", "cuda")
    cli_ok("decompress", tmp_path / "m.nerv", "-o", tmp_path / "cpu/", "--device", "cpu")
    a, b, cpu = _pngs(tmp_path / "a"), _pngs(tmp_path / "b"), _pngs(tmp_path / "cpu")
    assert len(a) == 12 and np.array_equal(a, b), "CUDA decoding is not deterministic"
    assert np.abs(a.astype(int) - cpu.astype(int)).max() <= 2, "CUDA and CPU decodes differ beyond rounding"
    if method == "d-nerv":
        cli_ok("decompress", tmp_path / "m.nerv", "--video", "b", "-o", tmp_path / "one/", "--device", "cuda")
        assert np.array_equal(_pngs(tmp_path / "one"), a[7:])


@pytest.mark.parametrize("method", ["nerv", "hnerv", "nvp"])
def test_rate_training_on_cuda(method: str, tmp_path: Path) -> None:
    """Rate training on the GPU (quantized forward pass, the rate term, the seeded rounding noise on the CUDA
    generator), then an RD fine-tune on the GPU: the file is what training estimated, and the GPU decode of
    it is deterministic."""
    video = write_video(gradient_clip(8, 36, 60), tmp_path / "v.mkv", fps=25, lossless=True)
    run = tmp_path / "run"
    cli_ok("fit", video, "--model", method, *TINY[method], "--epochs", 3, "-o", run, "--quiet", "--no-video",
           "--device", "cuda", "--rate-lambda", "0.01")
    report = json.loads(cli_ok("compress", run, "-o", tmp_path / "m.nerv", "--json", "--device", "cuda",
                               "--rd-epochs", 1))
    assert report["device"] == "cuda" and abs(report["rate"]["estimate_error"]) < 0.01
    for name in ("a", "b"):
        cli_ok("decompress", tmp_path / "m.nerv", "-o", tmp_path / f"{name}/", "--device", "cuda")
    assert np.array_equal(_pngs(tmp_path / "a"), _pngs(tmp_path / "b"))
