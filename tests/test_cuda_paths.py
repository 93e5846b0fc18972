"""The CUDA paths of every method, run where a CUDA device is present (the device machine; CI has none):
a tiny fit on the GPU through the CLI, compress with the quality check on the GPU, decompress on the
GPU twice (byte-identical PNGs), and the GPU decode within 8-bit rounding of the CPU decode of the same
file. D-NeRV fits a collection of two videos and decodes one of them alone. The speed options of issue #16
on the GPU: fp16 (GradScaler) and bf16 fits and decodes, torch.compile, channels-last, frames on the device."""

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


# -- the speed options (issue #16): reduced precision, compile, channels-last, frames on the device ---------------
def _fit_psnr(run: Path) -> float:
    return json.loads((run / "run.json").read_text())["psnr"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_fits_on_cuda(precision: str, tmp_path: Path) -> None:
    """fp16 (autocast + GradScaler, unscaled before --grad-clip; its state in the checkpoint) and bf16 fits
    on the GPU within 1 dB of the fp32 fit; decoding in that precision on the GPU is deterministic."""
    from helpers import one_line_error, run_cli
    from nervkit.train import load_checkpoint

    video = write_video(gradient_clip(8, 36, 60), tmp_path / "v.mkv", fps=25, lossless=True)
    args = ["--model", "nerv", *TINY["nerv"], "--epochs", 30, "--lr", "5e-3", "--seed", 3, "--grad-clip", 1,
            "--quiet", "--no-video", "--device", "cuda"]
    if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        one_line_error(run_cli("fit", video, "-o", tmp_path / "no", *args, "--precision", "bf16"), "bf16")
        return
    cli_ok("fit", video, "-o", tmp_path / "fp32", *args)
    cli_ok("fit", video, "-o", tmp_path / precision, *args, "--precision", precision)
    assert abs(_fit_psnr(tmp_path / precision) - _fit_psnr(tmp_path / "fp32")) < 1.0
    state = load_checkpoint(tmp_path / precision / "checkpoint.pt")
    assert state["train"]["precision"] == precision
    assert ("scaler" in state) == (precision == "fp16")
    if precision == "fp16":
        assert state["scaler"]["scale"] > 0
    for name in ("a", "b"):
        cli_ok("decode", tmp_path / precision, "-o", tmp_path / f"{name}/", "--device", "cuda", "--precision", precision)
    assert np.array_equal(_pngs(tmp_path / "a"), _pngs(tmp_path / "b")), f"{precision} decoding is not deterministic"


@pytest.mark.parametrize("method,precision", [("nerv", "fp32"), ("hnerv", "fp16")])
def test_compiled_fits_on_cuda(method: str, precision: str, tmp_path: Path) -> None:
    """torch.compile on the GPU (Inductor/Triton), alone and with fp16 autocast: as good as eager, and the
    checkpoint holds the plain module's keys."""
    from nervkit.train import load_checkpoint

    video = write_video(gradient_clip(8, 36, 60), tmp_path / "v.mkv", fps=25, lossless=True)
    args = ["--model", method, *TINY[method], "--epochs", 20, "--seed", 3, "--quiet", "--no-video", "--device", "cuda",
            "--precision", precision]
    cli_ok("fit", video, "-o", tmp_path / "eager", *args)
    cli_ok("fit", video, "-o", tmp_path / "compiled", *args, "--compile", "true")
    assert abs(_fit_psnr(tmp_path / "compiled") - _fit_psnr(tmp_path / "eager")) < 0.5
    eager = load_checkpoint(tmp_path / "eager" / "checkpoint.pt")["model"]
    compiled = load_checkpoint(tmp_path / "compiled" / "checkpoint.pt")["model"]
    assert eager.keys() == compiled.keys()


@pytest.mark.parametrize("method", ["nerv", "hnerv"])
def test_channels_last_and_frames_on_the_device(method: str, tmp_path: Path, monkeypatch) -> None:
    """A method that declares ``prefers_channels_last`` trains channels-last on CUDA (as well as
    channels-first), is handed back contiguous and checkpointed contiguous; the training frames live on
    the GPU, and evaluation there matches evaluation from the host's frames."""
    from helpers import clip_tensor
    from nervkit.data import FrameStore
    from nervkit.models import VideoGeometry, create_model, get_method
    from nervkit.train import TrainConfig, Trainer, evaluate_model, load_checkpoint

    store = FrameStore.from_tensor(clip_tensor(8, 36, 60))
    options = {"nerv": {"mlp_hidden": 32, "grid_channels": 16, "lower_width": 16},
               "hnerv": {"encoder_width": 8, "channels": 16, "embed_channels": 4, "lower_width": 4}}[method]
    psnr = {}
    for channels_last in (False, True):
        monkeypatch.setattr(get_method(method).model_cls, "prefers_channels_last", channels_last)
        torch.manual_seed(0)
        model = create_model(method, VideoGeometry(8, 36, 60), **options)
        bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        config = TrainConfig(epochs=15, lr=5e-3, warmup=0.1, precision="bf16" if bf16 else "fp16")
        ckpt = tmp_path / f"cl{int(channels_last)}.pt"
        trainer = Trainer(model, store, config, device=torch.device("cuda"), progress=False, checkpoint_path=ckpt)
        assert trainer.data_store.device.type == "cuda" and store.device.type == "cpu"
        convs = [p for p in trainer.model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
        assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs) == channels_last
        trainer.fit()
        assert all(p.is_contiguous() for p in trainer.model.parameters())
        assert all(t.is_contiguous() for t in load_checkpoint(ckpt)["model"].values())
        psnr[channels_last] = trainer.state.evals[-1]["psnr"]
        on_device = evaluate_model(trainer.model, trainer.data_store)
        from_host = evaluate_model(trainer.model, store)
        assert on_device.psnr_per_frame == from_host.psnr_per_frame
    assert abs(psnr[True] - psnr[False]) < 0.5, psnr
