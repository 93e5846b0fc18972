"""The speed options of training and decoding (issue #16), on the CPU: ``--precision bf16|fp16`` (autocast,
fp16 with a gradient scaler), ``--compile`` (torch.compile), device-side evaluation, and their one-line
errors. fp32 without compile stays the deterministic reference (tests/test_train.py). The CUDA variants
(fp16 + GradScaler, bf16, compile, channels-last, frames on the device) are in tests/test_cuda_paths.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nervkit
from helpers import TINY_MODELS, cli_ok, gradient_clip, one_line_error, run_cli
from nervkit.data import FrameStore
from nervkit.errors import ConfigError, TrainingError
from nervkit.io import write_video
from nervkit.models import VideoGeometry, create_model
from nervkit.precision import autocast, check_precision
from nervkit.train import TrainConfig, Trainer, evaluate_model, load_checkpoint
from nervkit.train.signals import StopFlag, StopRequested

#: a tiny NeRV fit (8 frames of 36x60) that learns something in 30 epochs
FIT = ["--model", "nerv", *TINY_MODELS["nerv"], "--epochs", 30, "--lr", "5e-3", "--threads", 1, "--seed", 3,
       "--quiet", "--no-video"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(gradient_clip(), tmp_path_factory.mktemp("precision") / "clip.mkv", fps=25, lossless=True)


@pytest.fixture(scope="module")
def runs(clip, tmp_path_factory) -> dict[str, Path]:
    """The same tiny NeRV fit in fp32 and in bf16, through the CLI."""
    folder = tmp_path_factory.mktemp("precision_runs")
    for precision in ("fp32", "bf16"):
        cli_ok("fit", clip, "-o", folder / precision, *FIT, "--precision", precision)
    return {p: folder / p for p in ("fp32", "bf16")}


def _meta(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]


def _pngs(folder: Path) -> np.ndarray:
    return np.stack([np.array(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))])


# -- options and their errors ---------------------------------------------------------------------------------
def test_the_options_are_in_fit_help_and_bad_values_are_one_line_errors(clip, tmp_path) -> None:
    out = cli_ok("fit", "--help")
    assert "--precision {fp32,bf16,fp16}" in out and "--compile BOOL" in out
    line = one_line_error(run_cli("fit", clip, "-o", tmp_path / "a", *FIT, "--precision", "fp64"), "--precision")
    assert "fp32, bf16, fp16" in line and "fp64" in line
    one_line_error(run_cli("fit", clip, "-o", tmp_path / "a", *FIT, "--compile", "maybe"), "--compile")
    assert not (tmp_path / "a").exists()
    with pytest.raises(ConfigError, match="--precision must be one of"):
        TrainConfig(precision="half").validate()
    assert TrainConfig().precision == "fp32" and TrainConfig().compile is False


def test_a_device_without_bf16_is_refused_in_one_line(monkeypatch) -> None:
    check_precision("bf16", "cpu")
    check_precision("fp16", "cpu")  # PyTorch's CPU autocast runs float16 too (and a CPU GradScaler)
    monkeypatch.setattr("nervkit.precision._cuda_bf16", lambda device: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ConfigError, match="bf16 needs a GPU with bfloat16 support.*Tesla T4.*fp16") as info:
        check_precision("bf16", torch.device("cuda", 0))
    assert "\n" not in str(info.value)
    check_precision("fp16", torch.device("cuda", 0))  # every CUDA device runs fp16
    check_precision("fp32", torch.device("cuda", 0))


def test_autocast_is_nothing_in_fp32() -> None:
    with autocast("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with autocast("bf16", "cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


# -- bf16 -----------------------------------------------------------------------------------------------------
def test_a_bf16_fit_is_close_to_fp32_and_its_run_loads(runs, tmp_path) -> None:
    fp32, bf16 = _meta(runs["fp32"]), _meta(runs["bf16"])
    assert bf16["train"]["precision"] == "bf16" and fp32["train"]["precision"] == "fp32"
    assert bf16["train"]["compile"] is False and bf16["provenance"]["precision"] == "bf16"
    assert fp32["psnr"] > 25 and abs(bf16["psnr"] - fp32["psnr"]) < 1.0, (bf16["psnr"], fp32["psnr"])
    # the periodic evaluations ran in bf16, the final metrics in fp32 (as decoding gives the frames)
    history = json.loads((runs["bf16"] / "history.json").read_text())
    assert abs(history["evals"][-1]["psnr"] - bf16["psnr"]) < 0.5
    fitted = nervkit.load(runs["bf16"])
    assert fitted.decode([0, 1]).shape == (2, 3, 36, 60)
    assert _weights(runs["bf16"]).keys() == _weights(runs["fp32"]).keys()
    assert all(v.dtype == torch.float32 for v in _weights(runs["bf16"]).values() if v.is_floating_point())


def test_decoding_in_bf16_is_deterministic_and_close_to_fp32(runs, tmp_path) -> None:
    for name in ("a", "b"):
        cli_ok("decode", runs["fp32"], "-o", tmp_path / f"{name}/", "--precision", "bf16")
    cli_ok("decode", runs["fp32"], "-o", tmp_path / "fp32/")
    a, b, ref = _pngs(tmp_path / "a"), _pngs(tmp_path / "b"), _pngs(tmp_path / "fp32")
    assert len(a) == 8 and np.array_equal(a, b), "bf16 decoding is not deterministic"
    diff = np.abs(a.astype(int) - ref.astype(int))
    assert diff.mean() < 2 and not np.array_equal(a, ref)  # bf16 arithmetic really ran
    one_line_error(run_cli("decode", runs["fp32"], "-o", tmp_path / "c/", "--precision", "fp64"), "--precision")
    assert not (tmp_path / "c").exists()


def test_an_interrupted_bf16_fit_resumes_like_an_uninterrupted_one(runs, clip, tmp_path, monkeypatch) -> None:
    """SIGINT in the middle of epoch 2 (the trainer's stop flag, raised at the 11th of 8 iterations per
    epoch), then ``fit --resume``: the same weights, bit for bit, as the bf16 run that was not stopped."""
    calls = []

    def stop_at_the_11th(self) -> None:
        calls.append(1)
        if len(calls) == 11:
            raise StopRequested

    run = tmp_path / "run"
    monkeypatch.setattr(StopFlag, "check", stop_at_the_11th)
    code, _, err = run_cli("fit", clip, "-o", run, *FIT, "--precision", "bf16")
    monkeypatch.undo()
    assert code == 130 and "checkpoint saved" in err, err
    state = load_checkpoint(run / "checkpoint.pt")
    assert (state["epoch"], state["iteration"], state["train"]["precision"]) == (1, 3, "bf16")
    cli_ok("fit", "--resume", "-o", run, "--quiet", "--no-video")
    done, straight = _weights(run), _weights(runs["bf16"])
    assert all(torch.equal(done[k], straight[k]) for k in straight)
    def losses(r: Path) -> list[float]:
        return [e["loss"] for e in json.loads((r / "history.json").read_text())["epochs"]]

    assert losses(run) == losses(runs["bf16"])


# -- compile --------------------------------------------------------------------------------------------------
def test_a_compiled_nerv_fit_matches_the_eager_one(runs, clip, tmp_path) -> None:
    from torch._dynamo.utils import counters

    run = tmp_path / "compiled"
    counters.clear()
    cli_ok("fit", clip, "-o", run, *FIT, "--compile", "true")
    assert counters["stats"]["unique_graphs"] >= 1  # Dynamo really captured the forward pass
    meta, eager = _meta(run), _meta(runs["fp32"])
    assert meta["train"]["compile"] is True
    assert abs(meta["psnr"] - eager["psnr"]) < 0.5, (meta["psnr"], eager["psnr"])
    assert _weights(run).keys() == _weights(runs["fp32"]).keys()  # no "_orig_mod." prefix
    assert nervkit.load(run).decode([3]).shape == (1, 3, 36, 60)


def test_a_compiled_hnerv_fit_with_rate_training_matches_the_eager_one(clip, tmp_path) -> None:
    """A frame-conditioned method, compiled; its rate-distortion steps (the second half) run eagerly."""
    args = ["--model", "hnerv", *TINY_MODELS["hnerv"], "--epochs", 12, "--threads", 1, "--quiet", "--no-video",
            "--rate-lambda", "0.01", "--rate-start", "0.5"]
    cli_ok("fit", clip, "-o", tmp_path / "eager", *args)
    cli_ok("fit", clip, "-o", tmp_path / "compiled", *args, "--compile", "true")
    eager, compiled = _meta(tmp_path / "eager"), _meta(tmp_path / "compiled")
    assert abs(compiled["psnr"] - eager["psnr"]) < 0.5, (compiled["psnr"], eager["psnr"])
    state = load_checkpoint(tmp_path / "compiled" / "checkpoint.pt")
    assert state["rate"] and not any("_orig_mod" in k for k in state["model"])
    report = json.loads(cli_ok("compress", tmp_path / "compiled", "-o", tmp_path / "m.nerv", "--json"))
    assert abs(report["rate"]["estimate_error"]) < 0.01 and report["psnr"] > 10


def test_a_machine_where_compile_fails_gets_one_line_and_resumes_without(clip, tmp_path, monkeypatch) -> None:
    """No working C++ compiler for Inductor: a one-line error at the first step (no traceback), and the run
    resumes with --compile false (a runtime option, like --device), recorded in its resumes."""
    import torch._dynamo
    import torch._inductor.config as inductor

    torch._dynamo.reset()  # no graph compiled by another test may be reused
    monkeypatch.setattr(inductor.cpp, "cxx", (None, str(tmp_path / "no-such-g++")))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    run = tmp_path / "run"
    args = ["--model", "nerv", *TINY_MODELS["nerv"], "--epochs", 2, "--threads", 1, "--quiet", "--no-video"]
    one_line_error(run_cli("fit", clip, "-o", run, *args, "--compile", "true"), "--compile", "C++ compiler")
    monkeypatch.undo()
    torch._dynamo.reset()
    one_line_error(run_cli("fit", "--resume", "-o", run, "--epochs", 3), "--epochs")  # not a runtime option
    cli_ok("fit", "--resume", "-o", run, "--compile", "false", "--quiet", "--no-video")
    meta = _meta(run)
    assert meta["status"] == "complete" and meta["train"]["compile"] is True
    assert [r["compile"] for r in meta["resumed"]] == [False]


# -- fp16 on the CPU: the gradient scaler ------------------------------------------------------------------------
def _store() -> FrameStore:
    return FrameStore.from_tensor(torch.from_numpy(np.stack(gradient_clip(8, 36, 60))).permute(0, 3, 1, 2))


class _NoBar:
    def update(self, *args, **kwargs) -> None:
        pass


def _trainer(store: FrameStore, tmp: Path | None = None, **overrides) -> Trainer:
    torch.manual_seed(0)
    model = create_model("nerv", VideoGeometry(len(store), store.height, store.width), mlp_hidden=32,
                         grid_channels=16, lower_width=16)
    cfg = TrainConfig(**{"epochs": 4, "lr": 5e-3, "warmup": 0.1, "precision": "fp16", "grad_clip": 1.0,
                         "checkpoint_every": 1, **overrides})
    return Trainer(model, store, cfg, device=torch.device("cpu"), progress=False,
                   checkpoint_path=(tmp / "ckpt.pt") if tmp else None)


def test_fp16_on_the_cpu_trains_with_a_gradient_scaler_that_resumes(tmp_path) -> None:
    store = _store()
    full = _trainer(store)
    full.fit()
    assert full.scaler is not None and full.state.evals[-1]["psnr"] > 15
    part = _trainer(store, tmp_path)
    for _ in range(2):  # two epochs, as if killed after the epoch-2 checkpoint
        part._run_epoch(_NoBar())
    part.save()
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["scaler"]["scale"] > 0 and "_growth_tracker" in state["scaler"]
    resumed = _trainer(store, tmp_path)
    resumed.scaler = torch.amp.GradScaler("cpu", init_scale=3.0)  # a different scale: the checkpoint's wins
    resumed.load_state_dict(state)
    assert resumed.scaler.get_scale() == state["scaler"]["scale"]
    resumed.fit()
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_fp16_steps_the_scaler_skips_are_not_failures_but_a_collapsed_scale_is() -> None:
    store = _store()
    trainer = _trainer(store, epochs=1)
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24)  # the first steps overflow
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    assert trainer.scaler.get_scale() < 2.0**24  # steps were skipped, and training went on
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    collapsed = _trainer(store, epochs=1)
    collapsed.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**-20)
    with pytest.raises(TrainingError, match="fp16 gradients overflow.*--precision bf16"):
        collapsed.fit()


# -- evaluation ---------------------------------------------------------------------------------------------------
def test_evaluation_in_bf16_scores_in_fp32_and_the_cpu_store_stays_put() -> None:
    store = _store()
    assert store.on_device(torch.device("cpu")) is store and store.device.type == "cpu"
    trainer = _trainer(store, epochs=3, precision="fp32")
    trainer.fit()
    assert trainer.data_store is store  # on the CPU nothing moves
    fp32 = evaluate_model(trainer.model, store)
    bf16 = evaluate_model(trainer.model, store, precision="bf16")
    assert bf16.frames == fp32.frames == 8 and abs(bf16.psnr - fp32.psnr) < 0.5 and bf16.psnr != fp32.psnr
    assert all(isinstance(v, float) for v in bf16.psnr_per_frame)


def test_decompressing_a_file_in_bf16_is_deterministic_and_close_to_fp32(runs, tmp_path) -> None:
    nerv = tmp_path / "v.nerv"
    cli_ok("compress", runs["fp32"], "-o", nerv)
    for name in ("a", "b"):
        cli_ok("decompress", nerv, "-o", tmp_path / f"{name}/", "--precision", "bf16")
    cli_ok("decompress", nerv, "-o", tmp_path / "fp32/")
    a, b, ref = _pngs(tmp_path / "a"), _pngs(tmp_path / "b"), _pngs(tmp_path / "fp32")
    assert len(a) == 8 and np.array_equal(a, b), "bf16 decoding of a file is not deterministic"
    assert np.abs(a.astype(int) - ref.astype(int)).mean() < 2 and not np.array_equal(a, ref)
    one_line_error(run_cli("decompress", nerv, "-o", tmp_path / "c/", "--precision", "fp64"), "--precision")
