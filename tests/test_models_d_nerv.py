"""D-NeRV (He et al., CVPR 2023): the official parameter counts of every preset, the name (not DNeRV),
clips / padding / relative time / key-frames on a collection of two videos, the clip sampler, key-frames
coded once and decoded bit-exactly (also from a .nerv file), the equations of the blocks (SAF, GTMLP,
the code's content interpolation, warping), the ablations, budgets, the recipe, and tiny fits through
the Trainer and the CLI on a two-video collection.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from helpers import gradient_clip, run_cli
from nervkit.compress.model_codec import read_nerv, write_nerv
from nervkit.data import ClipBatch, ClipLayout, ClipSampler, FrameStore, SamplingOptions, make_sampler
from nervkit.errors import ConfigError, ModelError
from nervkit.models import FrameBatch, VideoGeometry, count_parameters, create_model, get_method, rebuild_model
from nervkit.models.config import config_to_dict
from nervkit.models.d_nerv import DNeRVClips, GlobalTemporalMLP, SpatiallyAdaptiveFusion
from nervkit.models.flow import backward_warp
from nervkit.train import Trainer
from nervkit.train.config import TrainConfig

OFFICIAL = VideoGeometry(3900, 256, 320)  # the official geometry: 256x320 tiles, clips of 8
H, W = 36, 60
COUNTS = (10, 7)  # two videos: 2 clips (the second padded) and 1 clip (padded)
TWO = VideoGeometry(sum(COUNTS), H, W, segments=COUNTS)
SMALL = {"grid_channels": 8, "stem_hidden": 16, "pe_levels": 16, "encoder_width": 8, "lower_width": 8}


@pytest.fixture
def intra():
    """``nervkit.io.intra``, the real key-frame codec (AV1 through PyAV by default)."""
    return importlib.import_module("nervkit.io.intra")


def two_videos() -> FrameStore:
    """Two synthetic videos of 10 and 7 frames at 36x60, one after the other."""
    a = np.stack(gradient_clip(COUNTS[0]))
    b = np.stack(gradient_clip(COUNTS[1]))[:, ::-1].copy()  # another video: mirrored, moving the other way
    frames = torch.from_numpy(np.concatenate([a, b])).permute(0, 3, 1, 2).contiguous()
    return FrameStore(frames, 25.0, list(range(len(frames))), (H, W), segments=COUNTS, names=("a", "b"))


def size(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


# -- official counts, the name ---------------------------------------------------------------------------
@pytest.mark.parametrize("preset,c0,expected", [
    ("uvg-xs", 107, 8_017_893), ("uvg-s", 166, 15_955_472), ("uvg-m", 213, 24_197_711),
    ("uvg-l", 291, 41_660_324), ("uvg-xl", 382, 67_953_362),
    ("ucf101-s", 198, 21_388_894), ("ucf101-m", 281, 39_144_463), ("ucf101-l", 361, 61_302_972)])
def test_presets_have_the_official_codes_parameter_counts(preset: str, c0: int, expected: int) -> None:
    """The counts of the official DNeRV module built with fc_dim C0 at 256x320, strides 4,2,2,2,2, T = 8
    (model.py at boheumd/D-NeRV 788d8be, counted on the CPU; spec §1.2: 8.02 … 61.30 M)."""
    spec = get_method("d-nerv")
    config = spec.build_config(OFFICIAL, preset=preset)
    assert (config.strides, config.grid_height, config.grid_width, config.grid_channels) == \
        ((4, 2, 2, 2, 2), 4, 5, c0)
    assert count_parameters(spec, config, OFFICIAL) == expected


def test_uvg_s_parts_are_the_official_layers() -> None:
    """Spec §1.2's table for UVG-S (C0 = 166): widths, the stage-0 conv, GTMLP sizes, encoder, stem."""
    spec = get_method("d-nerv")
    config = spec.build_config(OFFICIAL, preset="uvg-s")
    with torch.device("meta"):
        model = DNeRVClips(config, OFFICIAL)
    assert config.widths == [332, 166, 83, 42, 32]
    assert model.blocks[0].conv.weight.shape == (5312, 230, 3, 3)
    assert [size(b.gtmlp) for b in model.blocks] == [23_904, 11_952, 5_976, 3_024, 2_304]
    assert size(model.encoder) == 133_184 and size(model.stem) == 245_760 + 512 + 512 * 3320 + 3320
    assert [size(b.saf) for b in model.blocks] == [29_900, 43_160, 21_580, 10_790, 5_460]
    assert size(model.refine) == 280 + 8 + 216 + 3 and len(model.flow_heads) == 6


def test_d_nerv_is_not_dnerv() -> None:
    assert get_method("d-nerv").model_cls is DNeRVClips and get_method("D-NeRV").model_cls is DNeRVClips
    assert get_method("dnerv").model_cls is not DNeRVClips
    with pytest.raises(ConfigError, match="did you mean 'd-nerv'"):
        get_method("d-nerf")
    with pytest.raises(ConfigError, match="did you mean 'dnerv'"):
        get_method("dnerf")


# -- clips, padding, relative time, key-frames ------------------------------------------------------------
def _reference(length: int, clip: int) -> list[dict]:
    """The official data layout (spec §1.1, 1-based frames) of one video, clip by clip."""
    clips = []
    for k in range(-(-length // clip)):
        start, end = k * clip + 1, min(length, (k + 1) * clip + 1)
        raw = list(range(k * clip + 1, (k + 1) * clip + 1))
        frames = [min(f, length) for f in raw]
        clips.append({"mask": [f <= length for f in raw], "frames": [f - 1 for f in frames],
                      "keys": (start - 1, end - 1),
                      "d": [(f - start) / max(1, end - start) for f in frames],
                      "t": [(f - 1) / (length - 1) if length > 1 else 0.0 for f in frames]})
    return clips


@pytest.mark.parametrize("counts,clip", [((10, 7), 8), ((600, 300), 8), ((1, 9, 17), 8), ((5, 4), 2), ((3,), 1)])
def test_layout_follows_the_official_clips(counts: tuple[int, ...], clip: int) -> None:
    layout = ClipLayout(counts, clip)
    table = layout.table(list(range(layout.num_clips)))
    row = 0
    for v, (start, n) in enumerate(zip(layout.starts, counts)):
        for ref in _reference(n, clip):
            assert table.inside[row].tolist() == ref["mask"]
            assert table.frames[row].tolist() == [start + f for f in ref["frames"]]
            assert torch.allclose(table.distances[row], torch.tensor(ref["d"]))
            assert torch.allclose(table.times[row], torch.tensor(ref["t"]))
            assert [layout.key_frames[s] for s in table.keys[row].tolist()] == [start + f for f in ref["keys"]]
            row += 1
    assert row == layout.num_clips
    # ⌈L/T⌉ + 1 distinct key-frames per video, one fewer when the last frame starts a clip
    assert layout.num_key_frames == sum(-(-n // clip) + (1 if (n - 1) % clip else 0) for n in counts)


def test_uvg_has_495_key_frames_per_tile() -> None:
    assert ClipLayout((600,) * 6 + (300,), 8).num_key_frames == 495  # spec §1.1


def test_two_videos_clips_padding_and_relative_time() -> None:
    layout = ClipLayout(COUNTS, 8)
    assert layout.clips == ((0, 0), (0, 1), (1, 0)) and layout.key_frames == (0, 8, 9, 10, 16)
    table = layout.table([1, 2])
    assert table.frames.tolist() == [[8, 9, 9, 9, 9, 9, 9, 9], list(range(10, 17)) + [16]]
    assert table.inside.tolist() == [[True, True] + [False] * 6, [True] * 7 + [False]]
    # t in each video's own time axis: frame 8 of a 10-frame video is 8/9, frame 3 of a 7-frame one 3/6
    assert torch.allclose(table.times[0, :2], torch.tensor([8 / 9, 1.0]))
    assert torch.allclose(table.times[1], torch.tensor([0, 1, 2, 3, 4, 5, 6, 6]) / 6)
    # the last clip's end key-frame is clamped to the video's last frame: d reaches 1 there
    assert table.distances[0].tolist() == [0.0] + [1.0] * 7 and table.keys.tolist() == [[1, 2], [3, 4]]
    assert torch.allclose(table.distances[1], torch.tensor([0, 1, 2, 3, 4, 5, 6, 6]) / 6)
    assert layout.locate([0, 9, 10, 16, 12.5]) == ([0, 1, 2, 2, 2], [0, 1, 0, 6, 2], [0, 0, 0, 0, 0.5])
    with pytest.raises(ModelError, match="outside"):
        layout.locate([17])


def test_sampler_trains_on_counted_frames_only() -> None:
    store = two_videos()
    layout = ClipLayout(COUNTS, 8)
    sampler = ClipSampler(store, list(range(17)), layout, 2, seed=3)
    assert sampler.batches_per_epoch == 2 and sampler.description == "clips" and sampler.whole_frames
    keys = sampler.plan(0)
    assert sorted(torch.cat(keys).tolist()) == [0, 1, 2] and [k.tolist() for k in sampler.plan(0)] == \
        [k.tolist() for k in keys]
    batches = [sampler.load(k) for k in keys]
    assert sorted(torch.cat([b.indices for b in batches]).tolist()) == list(range(17))  # no padding
    for batch in batches:
        assert torch.equal(batch.target, store.get(batch.indices))
        pred = torch.rand(batch.valid.numel(), 3, 40, 64)
        cropped = batch.crop(pred)
        assert cropped.shape == batch.target.shape
        assert torch.equal(cropped, pred[batch.valid.reshape(-1)][..., :H, :W])
        assert torch.allclose(batch.mse(cropped), (cropped - batch.target).square().flatten(1).mean(1))
    # held-out frames are not counted, a clip without a training frame is not drawn; loss masks follow
    mask = torch.ones(17, 1, H, W)
    mask[3, :, :5] = 0
    held = ClipSampler(store, [0, 2, 3, 4, 6], layout, 4, seed=3, loss_mask=mask)
    (only,) = held.plan(0)
    batch = held.load(only)
    assert only.tolist() == [0] and batch.indices.tolist() == [0, 2, 3, 4, 6]
    assert torch.equal(batch.weight, mask[[0, 2, 3, 4, 6]])
    # the sampler of a D-NeRV model is the clip sampler, from the model's own layout
    model = create_model("d-nerv", TWO, **SMALL)
    made = make_sampler(model, store, list(range(17)), SamplingOptions(seed=1, batch_size=3))
    assert isinstance(made, ClipSampler) and made.layout == model.clip_layout and made.batches_per_epoch == 1


# -- key-frames ----------------------------------------------------------------------------------------------
def test_key_frames_coded_once_and_decoded_bit_exactly(intra, monkeypatch, tmp_path: Path) -> None:
    store = two_videos()
    torch.manual_seed(0)
    model = create_model("d-nerv", TWO, **SMALL).eval()
    calls = []
    encode = intra.encode_images
    monkeypatch.setattr(intra, "encode_images", lambda frames, *a: calls.append(len(frames)) or encode(frames, *a))
    model.refresh_side_info(store)
    assert calls == [5]  # the five key-frames 0, 8, 9 | 10, 16, each coded once
    streams = encode(store.frames[[0, 8, 9, 10, 16]], model.config.keyframe_codec, model.config.quality)
    assert model.keyframe_lengths.tolist() == [len(s) for s in streams]
    assert bytes(model.keyframe_bitstream.numpy()) == b"".join(streams)
    assert model.config.keyframe_bytes == sum(map(len, streams))
    assert torch.equal(model.keyframes, intra.decode_images(streams, model.config.keyframe_codec, size=(H, W)))
    model.refresh_side_info(store)  # the same frames: nothing to recode (the key-frames ignore the weights)
    assert calls == [5]
    # stored: the weights and the bitstreams; a rebuilt model decodes them to the same key-frames
    groups = {g.name: g for g in model.stored_groups()}
    assert groups["key_frames"].kind == "key_frames"
    assert set(groups["key_frames"].tensors) == {"keyframe_bitstream", "keyframe_lengths"}
    assert "keyframes" not in groups["decoder"].tensors and "keyframe_source" not in groups["decoder"].tensors
    stored = {name: t for g in model.stored_groups() for name, t in g.tensors.items()}
    assert sum(t.numel() for t in stored.values()) == model.parameter_counts().total
    rebuilt = rebuild_model("d-nerv", config_to_dict(model.config), TWO)
    rebuilt.load_stored(stored)
    assert torch.equal(rebuilt.keyframes, model.keyframes)
    assert torch.equal(rebuilt.decode_frames(range(17)), model.decode_frames(range(17)))
    # a .nerv file holds the bitstreams verbatim: the same key-frames come back
    write_nerv(tmp_path / "m.nerv", model, bits=8)
    from_file = read_nerv(tmp_path / "m.nerv")
    assert {s.name: s.bytes for s in from_file.sizes}["keyframe_lengths"] > 0
    loaded = from_file.build_model()
    assert torch.equal(loaded.keyframes, model.keyframes) and loaded.config.keyframe_bytes == model.config.keyframe_bytes
    assert (loaded.decode_frames(range(17)) - model.decode_frames(range(17))).abs().max() < 0.05
    # other frames (e.g. inpainting's masked ones) are coded again
    changed = two_videos()
    changed.frames[8] = 255 - changed.frames[8]
    model.refresh_side_info(changed)
    assert calls == [5, 5] and not torch.equal(model.keyframes[1], rebuilt.keyframes[1])


def test_a_checkpoint_keeps_the_coded_key_frames(intra) -> None:
    store = two_videos()
    model = create_model("d-nerv", TWO, **SMALL)
    model.refresh_side_info(store)
    fresh = rebuild_model("d-nerv", config_to_dict(create_model("d-nerv", TWO, **SMALL).config), TWO)
    assert fresh.keyframe_bitstream.numel() == 0
    fresh.load_state_dict(model.state_dict())  # a checkpoint written after coding: the buffer grows
    assert torch.equal(fresh.keyframe_bitstream, model.keyframe_bitstream)
    assert fresh.config.keyframe_bytes == model.config.keyframe_bytes
    assert torch.equal(fresh.keyframe_source, model.keyframe_source)


def test_training_batches_need_coded_key_frames() -> None:
    model = create_model("d-nerv", TWO, **SMALL)
    batch = ClipSampler(two_videos(), list(range(17)), model.clip_layout, 1, seed=0).load(torch.tensor([0]))
    with pytest.raises(ModelError, match="refresh_side_info"):
        model(batch)


# -- the network -----------------------------------------------------------------------------------------------
def test_forward_on_clips_is_decode_of_their_frames(intra) -> None:
    store = two_videos()
    torch.manual_seed(1)
    model = create_model("d-nerv", TWO, **SMALL).eval()
    model.refresh_side_info(store)
    batch = ClipSampler(store, list(range(17)), model.clip_layout, 3, seed=0).load(torch.tensor([1, 2, 0]))
    with torch.no_grad():
        pred = model(batch)
        assert pred.shape == (24, 3, *model.output_size)
        assert torch.allclose(batch.crop(pred), model.decode_frames(batch.indices), atol=1e-6)
        # a frame batch decodes its frames (the contract's whole-frame path)
        assert torch.equal(model(FrameBatch(torch.tensor([3, 12]))), model.decode(torch.tensor([3, 12])))
        # continuous time: integer positions are decode; a fractional one lies between its neighbours' inputs
        assert torch.equal(model.decode_at(torch.tensor([0.0, 9.0, 16.0])), model.decode(torch.tensor([0, 9, 16])))
        between = model.decode_frames_at([12.5])
        assert between.shape == (1, 3, H, W)
        with pytest.raises(ModelError, match="positions"):
            model.decode_at(torch.tensor([16.5]))


def test_spatially_adaptive_fusion_follows_equations_5_and_6() -> None:
    torch.manual_seed(2)
    x, content = torch.randn(3, 5, 4, 6), torch.randn(3, 8, 4, 6)
    pixel = SpatiallyAdaptiveFusion(8, 5, "pixel")
    style = pixel.style(content)
    assert style.shape == (3, 2, 4, 6)  # gamma, beta in R^{H x W x 1}
    assert torch.allclose(pixel(x, content), style[:, :1] * x + style[:, 1:])
    channel = SpatiallyAdaptiveFusion(8, 5, "channel")
    style = channel.style(content)
    assert torch.allclose(channel(x, content), x * (1 + style[:, :5]) + style[:, 5:])
    concat = SpatiallyAdaptiveFusion(8, 5, "concat")
    assert concat.style is None and torch.equal(concat(x, content), torch.cat([x, content], 1))


def test_global_temporal_mlp_follows_equation_8() -> None:
    torch.manual_seed(3)
    mlp = GlobalTemporalMLP(channels=4, clip_length=3)
    x = torch.randn(2 * 3, 4, 5, 2)  # two clips of three frames
    weight = mlp.mix.weight.view(4, 3, 3)  # W_c: output frame x input frame, per channel
    bias = mlp.mix.bias.view(4, 3)
    clips = x.view(2, 3, 4, 5, 2)
    expected = clips + torch.einsum("cts,nschw->nthcw", weight, clips).permute(0, 1, 3, 2, 4) \
        + bias.t().view(1, 3, 4, 1, 1)
    assert torch.allclose(mlp(x), expected.reshape(6, 4, 5, 2), atol=1e-5)


def test_code_content_interpolation_is_trilinear_resampling() -> None:
    model = create_model("d-nerv", TWO, **SMALL)
    keys = torch.tensor([0.0, 1.0]).view(1, 1, 2, 1, 1)
    for t in (8, 5, 2, 1):
        trilinear = F.interpolate(keys, scale_factor=(t / 2, 1, 1), mode="trilinear").view(t)
        assert torch.allclose(model._slot_weights(t, torch.device("cpu")).view(t), trilinear)
    assert model._slot_weights(8, torch.device("cpu")).view(8).tolist() == \
        [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1]  # spec §1.2: not the distances d


def test_backward_warp_samples_at_the_flow() -> None:
    image = torch.arange(12.0).view(1, 1, 3, 4)
    flow = torch.zeros(1, 2, 3, 4)
    assert torch.equal(backward_warp(image, flow), image)
    flow[:, 0] = 1.0  # one pixel to the right (x), the last column repeats the border
    assert torch.allclose(backward_warp(image, flow)[0, 0], torch.tensor([[1, 2, 3, 3], [5, 6, 7, 7],
                                                                          [9, 10, 11, 11]]).float())
    flow[:, 0], flow[:, 1] = 0.0, 0.5  # half a row down: bilinear
    assert torch.allclose(backward_warp(image, flow)[0, 0, 0], torch.tensor([2.0, 3, 4, 5]))


def test_ablations_change_the_architecture() -> None:
    base = create_model("d-nerv", TWO, **SMALL)
    flows = create_model("d-nerv", TWO, **SMALL, flow=False)
    assert flows.flow_heads is None and len(base.flow_heads) == len(base.blocks) + 1
    assert size(base) - size(flows) == size(base.flow_heads)
    temporal = create_model("d-nerv", TWO, **SMALL, gtmlp=False)
    assert all(b.gtmlp is None for b in temporal.blocks)
    assert size(base) - size(temporal) == sum(size(b.gtmlp) for b in base.blocks) > 0
    concat = create_model("d-nerv", TWO, **SMALL, saf="concat")
    channel = create_model("d-nerv", TWO, **SMALL, saf="channel")
    enc = base.config.encoder_width
    for b_pixel, b_concat, b_channel in zip(base.blocks, concat.blocks, channel.blocks):
        c_in = b_pixel.conv.in_channels
        assert b_pixel.saf.style.out_channels == 2 and b_channel.saf.style.out_channels == 2 * c_in
        assert b_concat.saf.style is None and b_concat.conv.in_channels == c_in + enc
    # the code's variants add no parameters but change the output
    code = create_model("d-nerv", TWO, **SMALL, content_interpolation="code", first_input="code")
    assert size(code) == size(base)
    code.load_state_dict(base.state_dict())
    with torch.no_grad():
        assert not torch.allclose(code.decode(torch.tensor([3])), base.decode(torch.tensor([3])))


def test_budgets_and_options() -> None:
    model = create_model("d-nerv", TWO, params=20_000)  # far below the 480 -> 512 stem: a small stem
    assert abs(model.parameter_counts().official - 20_000) / 20_000 < 0.05 and model.config.stem_hidden < 512
    big = create_model("d-nerv", VideoGeometry(132, 256, 320), params=1_500_000)
    assert big.config.stem_hidden == 512 and big.config.strides == (4, 2, 2, 2, 2)
    assert abs(big.parameter_counts().official - 1_500_000) / 1_500_000 < 0.04
    kept = create_model("d-nerv", TWO, params=60_000, stem_hidden=24)
    assert kept.config.stem_hidden == 24  # what the user set stays
    # a rate budget leaves room for the key-frames, estimated at --keyframe-bpp
    geometry = VideoGeometry(132, 256, 320)
    spec = get_method("d-nerv")
    rate = spec.build_config(geometry, params=2_000_000, overrides={"budget_counts": "rate"})
    keys = rate.keyframe_bytes_estimate(geometry)
    assert keys == -(-18 * 256 * 320 * 0.3 // 8)  # 18 key-frames of 132 frames, 0.3 bpp
    assert abs(count_parameters(spec, rate, geometry) - (2_000_000 - keys)) / 2_000_000 < 0.04
    with pytest.raises(ModelError, match="key-frames alone"):
        spec.build_config(geometry, params=30_000, overrides={"budget_counts": "rate"})
    with pytest.raises(ConfigError, match="--grid-channels and --params"):
        create_model("d-nerv", TWO, params=50_000, grid_channels=8)
    for options, flag in [({"saf": "film"}, "--saf"), ({"clip_length": 0}, "--clip-length"),
                          ({"dataset_std": (1.0, 0.0, 1.0)}, "--dataset-std"), ({"keyframe_codec": "png"},
                                                                               "--keyframe-codec")]:
        with pytest.raises(ConfigError, match=flag):
            create_model("d-nerv", TWO, **options)


def test_training_defaults_are_the_official_recipe() -> None:
    defaults = get_method("d-nerv").train_defaults
    assert defaults["optimizer"] == "adamw" and defaults["lr"] == 5e-4 and defaults["warmup"] == 0.2
    assert defaults["loss"] == "0.7*l1+0.3*ssim" and defaults["batch_size"] == 32
    assert (defaults["beta1"], defaults["beta2"], defaults["weight_decay"]) == (0.9, 0.999, 0.0)


# -- fitting ---------------------------------------------------------------------------------------------------
def test_tiny_fit_on_two_videos_through_the_trainer(intra) -> None:
    store = two_videos()
    torch.manual_seed(0)
    model = create_model("d-nerv", TWO, params=60_000)
    model.refresh_side_info(store)  # the trainer's job once it refreshes before the first step
    config = TrainConfig(epochs=12, lr=5e-3, optimizer="adamw", beta1=0.9, batch_size=2, loss="0.7*l1+0.3*ssim",
                         eval_every=12, threads=1)
    state = Trainer(model, store, config, device=torch.device("cpu"), progress=False).fit()
    assert len(state.history) == 12 and state.history[-1]["psnr"] > state.history[0]["psnr"] + 3
    assert state.evals[-1]["psnr"] > 15  # every real frame of both videos, decoded from the key-frames


def test_tiny_fit_through_the_cli_on_two_videos(intra, tmp_path: Path) -> None:
    from nervkit.io import write_video

    store = two_videos()
    paths = []
    for name, start, count in (("a", 0, 10), ("b", 10, 7)):
        frames = store.frames[start : start + count].permute(0, 2, 3, 1).numpy()
        paths.append(write_video(list(frames), tmp_path / f"{name}.mkv", fps=25, lossless=True))
    run = tmp_path / "run"
    code, out, err = run_cli("fit", *paths, "--model", "d-nerv", "--params", "60k", "--batch-size", 2,
                             "--epochs", 3, "--lr", 5e-3, "-o", run, "--quiet", "--no-video", "--threads", 1)
    assert code == 0, err
    meta = json.loads((run / "run.json").read_text())
    assert meta["method"] == "d-nerv" and meta["geometry"]["segments"] == [10, 7]
    assert meta["train"]["optimizer"] == "adamw" and meta["train"]["loss"] == "0.7*l1+0.3*ssim"
    parts = meta["parameters"]["parts"]  # counted as fitted: the coded key-frames are known
    assert parts["keyframe_lengths"] == 5 and parts["keyframe_bytes"] > 0
    code, out, err = run_cli("compress", run, "-o", tmp_path / "r.nerv", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["psnr"] > 10 and report["group_bytes"]["key_frames"] >= parts["keyframe_bytes"]
    assert [v["name"] for v in report["videos"]["per_video"]] == ["a", "b"]


def test_torchrun_shards_clips_across_two_processes(tmp_path: Path) -> None:
    """DDP (gloo, two processes): each rank codes the same key-frames (bit-exact), trains on its share of
    the clips, and the run holds the per-video quality of the whole collection."""
    import os
    import subprocess

    from nervkit.io import write_video

    store = two_videos()
    paths = []
    for name, start, count in (("a", 0, 10), ("b", 10, 7)):
        frames = store.frames[start : start + count].permute(0, 2, 3, 1).numpy()
        paths.append(str(write_video(list(frames), tmp_path / f"{name}.mkv", fps=25, lossless=True)))
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "nervkit",
           "fit", *paths, "--model", "d-nerv", *[str(v) for kv in SMALL.items() for v in
                                                 (f"--{kv[0].replace('_', '-')}", kv[1])],
           "--clip-length", "4", "--batch-size", "1", "--epochs", "2", "-o", str(run), "--threads", "1",
           "--device", "cpu", "--quiet", "--no-video"]
    env = {k: v for k, v in os.environ.items() if k != "NERVKIT_DEBUG"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["geometry"]["segments"] == [10, 7]
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    videos = json.loads((run / "metrics.json").read_text())["videos"]
    assert [v["name"] for v in videos["per_video"]] == ["a", "b"]
