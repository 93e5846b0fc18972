"""E-NeRV: the official 12,490,602-parameter model (spec §4.2, §10), paper-vs-code options (spec §9.5),
the ablation/alternative presets (paper Tables 2-3), budgets at any size, continuous-t decoding, the
three positional encodings, fit → compress → decompress through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import assert_decodes_identically, cli_ok, gradient_clip, meta_model
from nervkit.fitting import train_config as _train_config
from nervkit.errors import ConfigError
from nervkit.io import write_video
from nervkit.models import FrameBatch, VideoGeometry, create_model, get_method, rebuild_model
from nervkit.models.config import config_to_dict
from nervkit.models.enerv import ENeRV, UpgradedBlock, spatial_grid

BUNNY_720P = VideoGeometry(132, 720, 1280)
BUNNY_SMALL = VideoGeometry(132, 180, 320)
TINY = VideoGeometry(6, 36, 60)  # not a multiple of the strides: the model pads and crops
#: a small E-NeRV for fast forward passes (structure options untouched)
TINY_ENERV = {"grid_channels": 8, "lower_width": 8, "embed_dim": 16, "temporal_hidden": 32, "norm_dim": 8,
              "ffn_dim": 16, "head_dim": 8, "heads": 2, "pe_levels": 8, "xy_pe_levels": 8, "in_pe_levels": 8}


def tiny(geometry: VideoGeometry = TINY, seed: int = 0, **overrides) -> ENeRV:
    torch.manual_seed(seed)
    return create_model("enerv", geometry, **{**TINY_ENERV, **overrides})


def module_size(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- official accounting ----------------------------------------------------------------------------
def test_preset_has_the_official_12_49m_parameters_at_720p() -> None:
    model = meta_model("enerv", BUNNY_720P, preset="12.49M")
    cfg = model.config
    assert cfg.strides == (5, 2, 2, 2, 2) and (cfg.grid_height, cfg.grid_width) == (9, 16)
    assert cfg.widths == [588, 294, 147, 96, 96]
    counts = model.parameter_counts()
    assert counts.official == 12_490_602 and counts.total == 12_490_314
    assert counts.parts["grid"] == 288 == counts.official - counts.total
    expected_parts = {"temporal_mlp": 213_760, "spatial": 82_176, "phi": 131_712, "fusion": 590_464,
                      "to_conv": 50_372, "norm_mlp": 37_120, "head": 291}
    assert {k: counts.parts[k] for k in expected_parts} == expected_parts
    assert [module_size(b) for b in model.blocks] == [2_422_021, 6_224_568, 1_556_436, 508_416, 332_160]
    assert [module_size(m) for m in model.norm_linears] == [50_568, 151_704, 75_852, 37_926, 24_768]
    assert get_method("enerv").default_preset == "12.49M"


def test_budgets_at_180x320_keep_the_paper_stem_and_solve_c() -> None:
    # the official 1.5 M baseline at 180x320 (official-baselines-cpu.md): d = 256, C = 38, 1,497,542
    small = meta_model("enerv", BUNNY_SMALL, params=1_500_000)
    assert small.config.strides == (5, 2, 2) and small.config.embed_dim == 256
    assert small.config.grid_channels == 38 and small.parameter_counts().official == 1_497_542
    assert small.config.widths == [114, 57, 28]
    large = meta_model("enerv", BUNNY_SMALL, params=3_000_000)
    assert large.config.grid_channels == 83 and large.parameter_counts().official == 3_002_805
    # below ~1.4 M the paper's stem would take more than 3/4 of the budget: d is halved
    assert meta_model("enerv", BUNNY_SMALL, params=750_000).config.embed_dim == 128


@pytest.mark.parametrize("budget", [40_000, 150_000, 400_000])
def test_budget_is_met_at_90x160(budget: int) -> None:
    model = meta_model("enerv", VideoGeometry(16, 90, 160), params=budget)
    assert model.config.grid_channels >= 8
    assert abs(model.parameter_counts().official - budget) / budget < 0.04


def test_budget_keeps_user_options_and_rejects_two_sizes() -> None:
    model = meta_model("enerv", VideoGeometry(16, 90, 160), params=300_000, overrides={"embed_dim": 64})
    assert model.config.embed_dim == 64
    with pytest.raises(ConfigError, match="--grid-channels and --params"):
        create_model("enerv", TINY, params=50_000, grid_channels=16)


# -- paper vs official code ---------------------------------------------------------------------------
def test_grid_is_recomputed_not_stored() -> None:
    model = tiny()
    h, w = model.config.grid_height, model.config.grid_width
    assert torch.equal(model.grid, spatial_grid(h, w))
    assert torch.allclose(model.grid[1], torch.tensor([0.0, 1 / w]))  # row-major, row coordinate first
    assert torch.allclose(model.grid[w], torch.tensor([1 / h, 0.0]))
    stored = {name for group in model.stored_groups() for name in group.tensors}
    assert "grid" not in stored and "grid" not in model.state_dict()
    stored_values = sum(t.numel() for g in model.stored_groups() for t in g.tensors.values())
    assert stored_values == model.parameter_counts().total


def test_norm_activation_changes_outputs_not_counts() -> None:
    paper, code = tiny(), tiny(norm_activation=True)
    assert paper.parameter_counts() == code.parameter_counts()
    code.load_state_dict(paper.state_dict())
    idx = torch.tensor([0, 3])
    assert not torch.allclose(paper.decode(idx), code.decode(idx))


def test_upgraded_block_width_rules() -> None:
    # C <= C1 (every paper config): both rules give C0 = C/4
    assert module_size(UpgradedBlock(196, 588, 5, "gelu", "paper")) == 2_422_021
    assert module_size(UpgradedBlock(196, 588, 5, "gelu", "code")) == 2_422_021
    # C > C1: paper C0 = C1/4; code conv C -> C1, then conv C1 -> C1*s^2 + pixel shuffle
    paper, code = UpgradedBlock(64, 32, 2, "gelu", "paper"), UpgradedBlock(64, 32, 2, "gelu", "code")
    assert paper.body[0].out_channels == 8 * 4 and paper.body[2].in_channels == 8
    assert [m.out_channels for m in code.body if isinstance(m, torch.nn.Conv2d)] == [32, 128]
    x = torch.rand(1, 64, 3, 5)
    assert paper(x).shape == code(x).shape == (1, 32, 6, 10)
    a, b = tiny(expansion=0.5), tiny(expansion=0.5, upgraded_rule="code")
    assert a.parameter_counts().total != b.parameter_counts().total


# -- presets and options ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", list(get_method("enerv").presets))
def test_every_preset_builds_and_runs_at_a_tiny_size(preset: str) -> None:
    spec = get_method("enerv")
    overrides = {k: v for k, v in TINY_ENERV.items() if k not in spec.presets[preset]}
    torch.manual_seed(0)
    model = create_model("enerv", TINY, preset=preset, **{**overrides, "grid_channels": 8})
    frames = torch.rand(2, 3, 36, 60)
    pred = model(FrameBatch(torch.tensor([0, 5]), frames))
    assert pred.shape == (2, 3, *model.output_size)
    (model.crop(pred) - frames).abs().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_preset_structures_follow_the_ablation_tables() -> None:
    def parts(preset: str) -> dict[str, int]:
        return meta_model("enerv", BUNNY_720P, preset=preset).parameter_counts().parts

    v1, v2, v3 = parts("variant-1"), parts("variant-2"), parts("variant-3")
    assert "phi" in v1 and "fusion" not in v1 and "norm_mlp" not in v1
    assert "phi" in v2 and v2["fusion"] == 590_464 and "norm_mlp" not in v2
    assert "phi" in v3 and "fusion" not in v3 and v3["norm_mlp"] == 37_120
    counts = {p: meta_model("enerv", BUNNY_720P, preset=p).parameter_counts().official
              for p in ("e-nerv-mlp", "e-nerv-conv", "ours-1", "ours-2", "nerv-split", "nerv-cs")}
    assert counts == {"e-nerv-mlp": 12_007_818, "e-nerv-conv": 12_490_218, "ours-1": 5_819_570,
                      "ours-2": 7_150_970, "nerv-split": 7_228_310, "nerv-cs": 5_771_651}
    # E-NeRV-MLP: token MLP 144-144-144 + channel MLP 256-128-256; E-NeRV-Conv: one 3x3 conv 256 -> 256
    assert parts("e-nerv-mlp")["fusion"] == 2 * (144 * 144 + 144) + 65_920
    assert parts("e-nerv-conv")["fusion"] == 256 * 256 * 9 + 256


def test_without_spatial_attention_there_is_no_phi() -> None:
    model = tiny(spatial_attention=False)
    assert model.phi is None and "phi" not in model.parameter_counts().parts
    assert model.decode(torch.tensor([1])).shape == (1, 3, *model.output_size)


def test_split_stem_makes_rank_one_channels() -> None:
    model = tiny(stem="split", temporal_norm=False)
    f = model.feature_map(torch.tensor([0.3]))[0]
    assert f.shape == (8, model.config.grid_height, model.config.grid_width)
    assert all(int(torch.linalg.matrix_rank(channel)) <= 1 for channel in f)
    assert "grid" not in model.parameter_counts().parts  # no spatial branch, nothing extra counted


def test_forward_pads_and_crops_any_size() -> None:
    geometry = VideoGeometry(5, 37, 61)  # prime sides: no stride product fits
    model = tiny(geometry)
    oh, ow = model.output_size
    assert oh >= 37 and ow >= 61 and (oh, ow) != (37, 61)
    assert model.decode(torch.tensor([0, 4])).shape == (2, 3, oh, ow)
    frames = model.decode_frames([0, 2, 4])
    assert frames.shape == (3, 3, 37, 61) and 0 <= frames.min() and frames.max() <= 1
    rebuilt = rebuild_model("enerv", config_to_dict(model.config), geometry)
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.decode_frames([0, 2, 4]), frames)


# -- time -------------------------------------------------------------------------------------------
def test_time_is_normalised_by_n_minus_1_and_decode_at_is_continuous() -> None:
    model = tiny()
    assert model.frame_time(torch.tensor([5])).item() == 1.0  # t = i/(N-1), N = 6
    whole = model.decode_frames([1, 2])
    assert torch.equal(model.decode_frames_at([1.0, 2.0]), whole)
    between = model.decode_frames_at([1.5])[0]
    assert not torch.allclose(between, whole[0]) and not torch.allclose(between, whole[1])


def test_separate_encodings_and_the_in_base() -> None:
    model = tiny()
    assert model.t_encoding.base == model.xy_encoding.base == model.in_encoding.base == 1.25
    other = tiny(in_pe_base=1.05)
    assert (other.t_encoding.base, other.xy_encoding.base, other.in_encoding.base) == (1.25, 1.25, 1.05)
    other.load_state_dict(model.state_dict())  # same weights: only the IN branch's encoding differs
    idx = torch.tensor([1, 4])
    assert not torch.allclose(model.decode(idx), other.decode(idx))
    assert torch.equal(model.feature_map(model.frame_time(idx)), other.feature_map(other.frame_time(idx)))
    levels = tiny(xy_pe_levels=4)
    assert levels.xy_encoding.out_dim == 8 and levels.t_encoding.out_dim == levels.in_encoding.out_dim == 16


# -- training recipe and CLI round trip ------------------------------------------------------------------
def test_training_defaults_are_the_papers() -> None:
    defaults = get_method("enerv").train_defaults
    assert defaults == {"loss": "l1+ssim", "lr": 5e-4, "beta1": 0.5, "batch_size": 1, "warmup": 0.2}
    cfg = _train_config(None, {"lr": 1e-3}, defaults)
    assert (cfg.loss, cfg.lr, cfg.beta1, cfg.batch_size, cfg.warmup) == ("l1+ssim", 1e-3, 0.5, 1, 0.2)


def test_cli_fit_resume_compress_decompress_round_trip(tmp_path: Path) -> None:
    clip = write_video(gradient_clip(8), tmp_path / "clip.mkv", lossless=True)
    run = tmp_path / "run"
    cli_ok("fit", clip, "--model", "enerv", "--params", "40k", "-o", run, "--epochs", 2, "--quiet",
           "--no-video", "--threads", 1, "--train-frames", "3:1", "--in-pe-base", "1.05")
    cli_ok("fit", "--resume", "-o", run, "--quiet", "--no-video")  # a complete run just finishes
    meta = json.loads((run / "run.json").read_text())
    assert (meta["train"]["loss"], meta["train"]["lr"], meta["train"]["beta1"]) == ("l1+ssim", 5e-4, 0.5)
    counts = meta["parameters"]
    assert counts["official"] - counts["total"] == counts["parts"]["grid"]

    nerv = tmp_path / "v.nerv"
    cli_ok("compress", run, "-o", nerv, "--json")
    groups = json.loads(cli_ok("inspect", nerv, "--json"))["groups"]
    assert sum(g["values"] for g in groups.values()) == counts["total"]  # the grid is not stored
    assert_decodes_identically(nerv, tmp_path, frames=8)
    report = json.loads(cli_ok("eval", clip, tmp_path / "a", "--json"))
    assert report["psnr"] > 5
