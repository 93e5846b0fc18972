"""HiNeRV: the official parameter counts (hierarchical encodings counted), patches equal to the whole frame,
the patch sampler, the budget solver and derived scales, fractional frame positions, fit → compress →
decompress through the CLI, bad patch sizes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers import TINY_MODELS, assert_decodes_identically, cli_ok, gradient_clip, meta_model, one_line_error, \
    run_cli
from nervkit.data import FrameStore, SamplingOptions, make_sampler
from nervkit.data.patches import PatchBatch, patch_origins
from nervkit.errors import ConfigError
from nervkit.io import write_video
from nervkit.models import VideoGeometry, create_model
from nervkit.models.hinerv import derive_scales

UVG = VideoGeometry(600, 1080, 1920)


@pytest.mark.parametrize("preset,total,encodings", [
    ("S", 3_188_933, 240_800), ("M", 6_489_553, 484_600), ("L", 12_818_953, 998_220),
    ("XL", 25_649_557, 2_042_740), ("XXL", 50_726_919, 4_214_664)])
def test_uvg_presets_match_the_official_counts(preset: str, total: int, encodings: int) -> None:
    """3.19 / 6.49 / 12.82 / 25.65 / 50.73 M at 1080×1920, 600 frames (spec §3), the hierarchical encodings
    (0.24 … 4.21 M) counted — the official counter reports them as 0."""
    model = meta_model("hinerv", UVG, preset=preset)
    counts = model.parameter_counts()
    assert counts.total == counts.official == total
    assert counts.parts["encodings"] == encodings > 0
    assert model.output_size == (1080, 1920) and model.config.scales == (5, 3, 2, 2)


def test_uvg_s_layout_is_the_official_one() -> None:
    cfg = meta_model("hinerv", UVG, preset="S").config
    assert (cfg.base_height, cfg.base_width) == (18, 32)
    assert cfg.widths == [280, 140, 70, 35] and cfg.stage_inputs == [280, 280, 140, 70]
    assert cfg.base_grid_shapes() == [(150, 18, 32, 2), (75, 18, 32, 4)]
    assert [shape[-1] for shape in cfg.encoding_shapes(600, 0)] == [4, 8, 16]
    assert [cfg.encoding_shapes(600, k)[0][-1] for k in range(4)] == [4, 2, 1, 1]
    assert [shape[0] for shape in cfg.encoding_shapes(600, 0)] == [600, 300, 150]


def test_derived_scales_are_the_official_ones_at_the_papers_sizes() -> None:
    assert derive_scales(720, 1280) == (5, 2, 2, 2)  # Bunny 720p
    assert derive_scales(1080, 1920) == (5, 3, 2, 2)  # UVG, MCL-JCV
    for height, width in [(90, 160), (36, 60), (180, 320), (100, 37)]:
        scales = derive_scales(height, width)
        p = math.prod(scales)
        assert math.ceil(height / p) * p < 1.35 * height and math.ceil(width / p) * p < 1.35 * width


@pytest.mark.parametrize("budget", [60_000, 400_000, 1_500_000])
def test_budget_is_met(budget: int) -> None:
    counts = meta_model("hinerv", VideoGeometry(32, 180, 320), params=budget).parameter_counts()
    assert abs(counts.total - budget) < 0.03 * budget


def _perturbed(geometry: VideoGeometry, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("hinerv", geometry, **options)
    with torch.no_grad():  # weights far from their start, so that every border effect shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


@pytest.mark.parametrize("geometry,options", [
    (VideoGeometry(6, 90, 160), {"params": 60_000}),  # derived scales 3,3,2,1; output 90x162
    (VideoGeometry(5, 40, 60), {"params": 30_000, "scales": (2, 2, 1, 1)}),  # a stage without up-sampling
    (VideoGeometry(4, 80, 120), {"params": 40_000, "scales": (5, 2, 2, 2)}),
])
def test_patches_equal_the_whole_frame(geometry, options) -> None:
    """Patches rendered with receptive-field padding, masks and clamped edges, stitched together, are the
    whole frame (up to float rounding), at the frame's borders and corners too."""
    model = _perturbed(geometry, **options)
    frames = torch.tensor([0, geometry.num_frames - 1])
    with torch.no_grad():
        whole = model.decode(frames)
        shape = model.patch_shape()
        origins = patch_origins(model.output_size, shape)
        rows, cols = origins[:, 0].repeat(2), origins[:, 1].repeat(2)
        positions = frames.repeat_interleave(len(origins)).float()
        patches = model.render_patches(positions, rows, cols, shape)
    assert whole.std() > 0.03  # not a flat output
    stitched = torch.zeros_like(whole)
    for i, (y, x) in enumerate(zip(rows.tolist(), cols.tolist())):
        stitched[i // len(origins), :, y:y + shape[0], x:x + shape[1]] = patches[i]
    torch.testing.assert_close(stitched, whole, atol=2e-6, rtol=0)


def test_patch_gradients_equal_the_whole_frame_gradients() -> None:
    """Training on all patches of a frame gives the whole frame's gradient (the padding regions carry no
    extra gradient into the weights)."""
    geometry = VideoGeometry(3, 40, 60)
    model = _perturbed(geometry, params=20_000, scales=(2, 2, 1, 1))
    target = torch.rand(1, 3, 40, 60)
    model.decode(torch.tensor([1])).sub(target).square().sum().backward()
    whole = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    shape = model.patch_shape()
    origins = patch_origins(model.output_size, shape)
    pred = model.render_patches(torch.ones(len(origins)), origins[:, 0], origins[:, 1], shape)
    crops = torch.stack([target[0, :, y:y + shape[0], x:x + shape[1]] for y, x in origins.tolist()])
    pred.sub(crops).square().sum().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, whole[name], atol=1e-4, rtol=1e-4, msg=name)


def test_fractional_positions_read_the_grids_between_frames() -> None:
    model = _perturbed(VideoGeometry(6, 36, 60), params=20_000)
    with torch.no_grad():
        at_integers = model.decode_frames_at([0.0, 2.0, 5.0])
        assert torch.equal(at_integers, model.decode_frames([0, 2, 5]))
        between = model.decode_frames_at([2.5])
        lo, hi = model.decode_frames([2, 3])
    assert not torch.equal(between[0], lo) and not torch.equal(between[0], hi)
    assert (between[0] - (lo + hi) / 2).abs().mean() < (lo - hi).abs().mean()


def test_patch_sampler_visits_every_patch_once_per_epoch_with_weights_past_the_frame() -> None:
    geometry = VideoGeometry(4, 90, 160)
    model = create_model("hinerv", geometry, params=40_000)  # output 90x162: two columns past the frame
    frames = torch.rand(4, 3, 90, 160)
    store = FrameStore.from_tensor(frames)
    sampler = make_sampler(model, store, [0, 1, 2, 3], SamplingOptions(seed=3, batch_size=1))
    per_frame = len(patch_origins(model.output_size, model.patch_shape()))
    assert sampler.batches_per_epoch == 4
    keys = torch.cat(sampler.plan(0))
    assert len(keys) == 4 * per_frame and len({tuple(k) for k in keys.tolist()}) == 4 * per_frame
    assert [k.tolist() for k in sampler.plan(1)] == [k.tolist() for k in sampler.plan(1)]
    assert [k.tolist() for k in sampler.plan(1)] != [k.tolist() for k in sampler.plan(0)]
    batch = sampler.load(sampler.plan(0)[0])
    assert isinstance(batch, PatchBatch) and batch.target.shape[1:] == (3, *model.patch_shape())
    stored = store.get(batch.indices)
    for i in range(len(batch.indices)):
        y, x = int(batch.rows[i]), int(batch.cols[i])
        inside = stored[i, :, y:y + batch.target.shape[2], x:x + batch.target.shape[3]]
        torch.testing.assert_close(batch.target[i, :, :, :inside.shape[2]], inside)
        assert batch.weight[i, 0, :, :inside.shape[2]].eq(1).all() and batch.weight[i, 0, :, inside.shape[2]:].eq(0).all()


def test_patch_size_must_tile_the_output_or_cover_it() -> None:
    model = create_model("hinerv", VideoGeometry(4, 90, 160), params=40_000)
    assert model.patch_shape(18) == (18, 18)
    with pytest.raises(ConfigError, match="choose one of 18, or 162"):
        model.patch_shape(20)
    assert model.patch_shape(162) == model.patch_shape(1000) == (90, 162)  # whole frames


def test_whole_frame_patches_train_on_whole_frames() -> None:
    geometry = VideoGeometry(3, 40, 60)
    model = _perturbed(geometry, params=20_000, scales=(2, 2, 1, 1))
    store = FrameStore.from_tensor(torch.rand(3, 3, 40, 60))
    sampler = make_sampler(model, store, [0, 1, 2], SamplingOptions(seed=1, batch_size=2, patch_size=60))
    assert sampler.batches_per_epoch == 2
    batch = sampler.load(sampler.plan(0)[0])
    assert batch.target.shape == (2, 3, 40, 60) and batch.weight is None
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model.decode(batch.indices))


def test_cli_fit_compress_decompress(tmp_path: Path) -> None:
    clip = write_video(gradient_clip(6), tmp_path / "clip.mkv", lossless=True)
    run = tmp_path / "run"
    cli_ok("fit", clip, "--model", "hinerv", *TINY_MODELS["hinerv"], "-o", run, "--epochs", 8, "--quiet",
           "--no-video", "--threads", 1)
    meta = json.loads((run / "run.json").read_text())
    train = meta["train"]
    assert (train["loss"], train["lr"], train["grad_clip"], train["batch_size"]) == ("0.7*l1+0.3*ms-ssim5", 2e-3,
                                                                                      1.0, 1)
    assert meta["psnr"] > 13  # from 8 dB (a grey frame); HiNeRV starts slowly
    nerv = tmp_path / "v.nerv"
    report = json.loads(cli_ok("compress", run, "-o", nerv, "--json"))
    groups = json.loads(cli_ok("inspect", nerv, "--json"))["groups"]
    assert set(groups) == {"decoder", "grids"}
    assert groups["decoder"]["values"] + groups["grids"]["values"] == meta["parameters"]["total"]
    assert abs(report["psnr"] - meta["psnr"]) < 0.5
    assert_decodes_identically(nerv, tmp_path, frames=6)


def test_bad_patch_size_is_one_line(tmp_path: Path) -> None:
    clip = write_video(gradient_clip(4), tmp_path / "clip.mkv", lossless=True)
    result = run_cli("fit", clip, "--model", "hinerv", *TINY_MODELS["hinerv"], "-o", tmp_path / "run",
                     "--epochs", 1, "--patch-size", 7)
    one_line_error(result, "--patch-size 7")
    assert not (tmp_path / "run").exists()
