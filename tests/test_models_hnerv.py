"""HNeRV: official parameter counts (spec §3.3, §10), any frame size, the stored embeddings and their
refresh hook, the encoder kept out of .nerv files, the method's training recipe, fit → compress →
decompress through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_decodes_identically, cli_ok, clip_tensor, gradient_clip, meta_model, run_cli
from nervkit.fitting import train_config as _train_config
from nervkit.compress.model_codec import parse_nerv, read_nerv, write_nerv
from nervkit.compress.prune import prunable_parameters
from nervkit.data import FrameStore
from nervkit.errors import BitstreamError, ConfigError, ModelError
from nervkit.io import write_video
from nervkit.models import FrameBatch, VideoGeometry, create_model, get_method
from nervkit.models.convnext import ConvNeXtEncoder
from nervkit.models.hnerv import HNeRV
from nervkit.train import TrainConfig, Trainer, evaluate_model

BUNNY_SMALL = VideoGeometry(132, 180, 320)
BUNNY_640 = VideoGeometry(132, 640, 1280)
TINY_MODEL = {"embed_channels": 4, "encoder_width": 8, "channels": 16, "lower_width": 8}






# -- official accounting ---------------------------------------------------------------------------
def test_budget_reproduces_the_official_180x320_baseline() -> None:
    model = meta_model("hnerv", BUNNY_SMALL, params=1_500_000)
    cfg = model.config
    assert cfg.strides == (5, 2, 2) and (cfg.embed_height, cfg.embed_width) == (9, 16)
    assert cfg.channels == 119 and cfg.widths == [99, 82, 68] and cfg.kernels == [1, 3, 5]
    assert cfg.model_size == 1.5  # the resolved config records the budget it was solved for
    counts = model.parameter_counts()
    assert counts.official == 1_453_599
    assert counts.parts["fc"] + counts.parts["blocks"] == 1_149_471  # decoder without the head
    assert counts.parts["embeddings"] == 304_128 == 132 * 16 * 9 * 16
    assert counts.total == counts.official + counts.parts["head"]  # every stored value; no encoder


@pytest.mark.parametrize(
    "preset,c_init,widths,decoder",
    [("640x1280-0.35M", 32, [27, 22, 18, 15, 12], 312_503),
     ("640x1280-0.75M", 48, [40, 33, 28, 23, 19], 718_740),
     ("640x1280-1.5M", 68, [57, 48, 40, 33, 28], 1_487_517),
     ("640x1280-3M", 97, [81, 68, 57, 48, 40], 3_011_603)],
)
def test_paper_presets_match_official_counts_at_640x1280(preset, c_init, widths, decoder) -> None:
    model = meta_model("hnerv", BUNNY_640, preset=preset)
    assert model.config.strides == (5, 4, 4, 2, 2) and model.config.kernels == [1, 3, 5, 5, 5]
    assert model.config.channels == c_init and model.config.widths == widths
    counts = model.parameter_counts()
    assert counts.official == decoder + 16_896  # + 132 embeddings of 16x2x4
    assert counts.parts["encoder"] == 306_160  # printed by the official code, never counted


@pytest.mark.parametrize("frames,c_init,widths,reported", [(600, 91, [76, 63, 52, 43, 36], 2.913),
                                                          (300, 92, [77, 64, 53, 44, 37], 2.975)])
def test_uvg_preset_solves_c_init_per_video_length(frames, c_init, widths, reported) -> None:
    model = meta_model("hnerv", VideoGeometry(frames, 960, 1920), preset="960x1920-3M")
    assert model.config.channels == c_init and model.config.widths == widths
    assert round(model.parameter_counts().official / 1e6, 3) == reported
    assert model.parameter_counts().parts["encoder"] == 326_640


def test_480x960_preset_uses_the_dnerv_paper_strides() -> None:
    model = meta_model("hnerv", VideoGeometry(600, 480, 960), preset="480x960-3M")
    cfg = model.config
    assert cfg.strides == (5, 4, 3, 2, 2) and (cfg.embed_height, cfg.embed_width) == (2, 4)
    assert abs(model.parameter_counts().official - 3e6) / 3e6 < 0.03


def test_budget_options_conflict_and_too_small_budgets() -> None:
    with pytest.raises(ConfigError, match="--channels and --params"):
        create_model("hnerv", VideoGeometry(4, 36, 60), params=20_000, channels=16)
    with pytest.raises(ModelError, match="too small for HNeRV"):
        meta_model("hnerv", BUNNY_SMALL, params=200_000)  # the embeddings alone take 304,128
    with pytest.raises(ConfigError, match="--kernel-max must be odd, got 4"):  # an option mistake
        create_model("hnerv", VideoGeometry(4, 36, 60), kernel_max=4, channels=8)
    with pytest.raises(ConfigError, match=r"--kernel-max must be >= --kernel-min \(3\), got 1"):
        create_model("hnerv", VideoGeometry(4, 36, 60), kernel_min=3, kernel_max=1, channels=8)


# -- any frame size, the stored embeddings ----------------------------------------------------------
@pytest.mark.parametrize("size,strides", [((37, 61), ()), ((36, 60), (2, 2)), ((19, 33), (2,))])
def test_any_frame_size_pads_and_crops(size, strides) -> None:
    torch.manual_seed(0)
    geometry = VideoGeometry(3, *size)
    model = create_model("hnerv", geometry, strides=strides, **TINY_MODEL)
    oh, ow = model.output_size
    assert oh >= size[0] and ow >= size[1] and oh % model.config.strides[0] == 0
    frames = torch.rand(2, 3, *size)
    pred = model(FrameBatch(torch.tensor([0, 2]), frames))
    assert pred.shape == (2, 3, oh, ow)
    assert model.decode_frames([0, 1, 2]).shape == (3, 3, *size)


def test_refresh_fills_the_embeddings_that_decode_uses() -> None:
    torch.manual_seed(0)
    frames = clip_tensor(5)
    model = create_model("hnerv", VideoGeometry(5, 36, 60), **TINY_MODEL).eval()
    assert not model.embeddings.any()  # nothing until refreshed
    model.refresh_side_info(FrameStore.from_tensor(frames))
    store_frames = FrameStore.from_tensor(frames).get(list(range(5)))
    with torch.no_grad():
        assert torch.equal(model.embeddings, model.encode(store_frames))
        predicted = model(FrameBatch(torch.arange(5), store_frames))
        # equal up to float rounding (the encoder's output is a permuted view, the buffer contiguous)
        assert torch.allclose(model.decode(torch.arange(5)), predicted, atol=1e-6)
    with pytest.raises(ModelError, match="3 frames but the model was fitted to 5"):
        model.refresh_side_info(FrameStore.from_tensor(frames[:3]))


def test_short_fit_improves_psnr_and_refreshes_embeddings() -> None:
    torch.manual_seed(1)
    store = FrameStore.from_tensor(clip_tensor(6))
    model = create_model("hnerv", VideoGeometry(6, 36, 60), params=40_000)
    model.refresh_side_info(store)
    before = evaluate_model(model, store).psnr
    cfg = _train_config(None, {"epochs": 12, "eval_every": 6, "threads": 1, "device": "cpu"},
                        get_method("hnerv").train_defaults)
    trainer = Trainer(model, store, cfg, device=torch.device("cpu"), progress=False)
    state = trainer.fit()
    after = evaluate_model(model, store).psnr
    assert after > before + 3, (before, after)
    assert [e["epoch"] for e in state.evals] == [6, 12]
    with torch.no_grad():  # the trainer refreshed the stored embeddings with the final encoder
        assert torch.equal(model.embeddings, model.encode(store.get(list(range(6)))))


# -- storage ----------------------------------------------------------------------------------------
def test_encoder_is_not_stored_and_a_file_rebuilds_without_it(tmp_path: Path) -> None:
    torch.manual_seed(2)
    frames = clip_tensor(4)
    model = create_model("hnerv", VideoGeometry(4, 36, 60), **TINY_MODEL).eval()
    model.refresh_side_info(FrameStore.from_tensor(frames))
    groups = {g.name: g for g in model.stored_groups()}
    assert groups["decoder"].kind == "weights" and groups["embeddings"].kind == "per_frame"
    names = [n for g in groups.values() for n in g.tensors]
    assert not [n for n in names if n.startswith("encoder")] and "head.weight" in names
    assert {n for n in model.state_dict() if not n.startswith("encoder.")} == set(names)
    assert not [n for n in prunable_parameters(model) if n.startswith(("encoder", "head"))]

    path = tmp_path / "m.nerv"
    write_nerv(path, model, bits=12, embed_bits=10)
    header = read_nerv(path).header
    assert {t["storage"] for t in header["tensors"] if t["name"] == "embeddings"} == {"per_frame"}
    rebuilt = read_nerv(path).build_model()
    assert rebuilt.encoder is None and rebuilt.parameter_counts().parts["encoder"] == 0
    assert not [n for n in rebuilt.state_dict() if n.startswith("encoder")]
    decoded = rebuilt.decode_frames(list(range(4)))
    assert torch.equal(decoded, read_nerv(path).build_model().decode_frames(list(range(4))))
    mse = (decoded - model.decode_frames(list(range(4)))).square().mean()
    assert mse < 1e-4  # 12/10-bit quantization: close to the float model
    with pytest.raises(ModelError, match="holds no encoder"):
        rebuilt.refresh_side_info(FrameStore.from_tensor(frames))


def test_a_file_with_encoder_tensors_does_not_load(tmp_path: Path) -> None:
    model = create_model("hnerv", VideoGeometry(2, 36, 60), **TINY_MODEL)
    write_nerv(tmp_path / "m.nerv", model)
    nerv = read_nerv(tmp_path / "m.nerv")
    nerv.tensors["encoder.stages.0.gamma"] = torch.zeros(4)
    with pytest.raises(BitstreamError, match="do not fit"):
        nerv.build_model()
    assert parse_nerv((tmp_path / "m.nerv").read_bytes()).build_model().encoder is None


# -- the method's training recipe -------------------------------------------------------------------
def test_training_defaults_apply_only_to_options_not_set() -> None:
    defaults = get_method("hnerv").train_defaults
    assert defaults == {"loss": "l2", "lr": 1e-3, "beta1": 0.9, "batch_size": 2, "warmup": 0.1}
    cfg = _train_config(None, {"lr": 5e-4}, defaults)
    assert (cfg.loss, cfg.lr, cfg.batch_size, cfg.beta1, cfg.warmup) == ("l2", 5e-4, 2, 0.9, 0.1)
    explicit = TrainConfig(epochs=3)
    assert _train_config(explicit, {}, defaults) == explicit  # an explicit TrainConfig is kept as given
    assert get_method("nerv").train_defaults == {}


def test_convnext_encoder_shapes() -> None:
    encoder = ConvNeXtEncoder((5, 2, 2), width=64, embed_channels=16)
    assert encoder(torch.rand(1, 3, 180, 320)).shape == (1, 16, 9, 16)
    assert sum(p.numel() for p in encoder.parameters()) == 101_744


# -- end to end through the CLI ---------------------------------------------------------------------


def test_cli_fit_compress_decompress_round_trip(tmp_path: Path) -> None:
    clip = write_video(gradient_clip(6), tmp_path / "clip.mkv", lossless=True)
    run = tmp_path / "run"
    cli_ok("fit", clip, "--model", "hnerv", "--params", "30k", "-o", run, "--epochs", 6, "--quiet", "--no-video",
       "--threads", 1)
    meta = json.loads((run / "run.json").read_text())
    assert (meta["train"]["loss"], meta["train"]["lr"], meta["train"]["batch_size"]) == ("l2", 1e-3, 2)
    counts = meta["parameters"]
    assert counts["parts"]["embeddings"] == 6 * 16 * 9 * 15

    nerv = tmp_path / "v.nerv"
    report = json.loads(cli_ok("compress", run, "-o", nerv, "--json"))
    sections = json.loads(cli_ok("inspect", nerv, "--json"))["groups"]
    assert sections["embeddings"]["values"] == counts["parts"]["embeddings"]
    assert sections["decoder"]["values"] == counts["total"] - counts["parts"]["embeddings"]
    assert report["bpp"] == pytest.approx(nerv.stat().st_size * 8 / (6 * 36 * 60))
    assert abs(report["psnr"] - meta["psnr"]) < 0.5  # 8-bit weights, 6-bit embeddings: little lost

    assert_decodes_identically(nerv, tmp_path, frames=6)
